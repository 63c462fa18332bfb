"""Server settings shared by the adapters (what QEMU's -spice and Xspice's options set)."""

from __future__ import annotations

import uuid as uuid_mod
from pathlib import Path

import attrs

from spice.domain.agent.machine import AgentConfig
from spice.domain.codecs.select import DEFAULT_MODE
from spice.domain.enums import ChannelType
from spice.domain.ticket import TicketPolicy


@attrs.define
class ServerConfig:
    ticket: TicketPolicy = attrs.field(factory=TicketPolicy)
    name: str | None = None
    uuid: uuid_mod.UUID | None = None
    #: Offer client (absolute) mouse mode; without it clients stay in server mode.
    client_mouse: bool = True
    #: Seconds a connection may take to finish the link stage.
    link_timeout: float = 30.0
    #: Seconds one write may block before the client is dropped.
    send_timeout: float = 30.0
    #: Image compression, as QEMU's image-compression: auto_glz, auto_lz, quic, glz, lz, lz4
    #: or off (see :mod:`domain.codecs.select`; GLZ is encoded as LZ).
    image_compression: str = DEFAULT_MODE
    #: JPEG for photographic areas: "auto" (when the client's link is slow), "never", "always".
    jpeg_wan_compression: str = "auto"
    #: Video streams (MJPEG) for areas that change at video rates: "filter" (photographic
    #: content only, the C server's default), "all", or "off".
    streaming_video: str = "filter"
    #: Seconds between PINGs on the main channel; two unanswered drop the client.
    ping_interval: float = 15.0
    #: Seconds a display connection may take to send DISPLAY_INIT.
    display_init_timeout: float = 30.0
    #: Whether the server also listens for TLS (then plain keyboard input earns a warning).
    tls_available: bool = False
    #: Channel types that must use TLS / must not (QEMU's tls-channel / plaintext-channel).
    secure_channels: frozenset[ChannelType] = frozenset()
    plaintext_channels: frozenset[ChannelType] = frozenset()
    #: The emulated guest agent: clipboard, file transfer switches and limits.
    agent: AgentConfig = attrs.field(factory=AgentConfig)
    #: Where files sent by clients are stored; None announces file transfer as disabled.
    file_transfer_dir: Path | None = None
    #: Offer the playback and record channels.
    audio: bool = True
    #: Opus for playback to clients that take it (QEMU's playback-compression); RAW otherwise.
    playback_compression: bool = True
