"""Server settings shared by the adapters (what QEMU's -spice and Xspice's options set)."""

from __future__ import annotations

import uuid as uuid_mod
from pathlib import Path

import attrs

from spice.domain.admission import Limits
from spice.domain.agent.machine import AgentConfig
from spice.domain.codecs.select import DEFAULT_MODE
from spice.domain.enums import ChannelType
from spice.domain.framing import DEFAULT_MAX_CLIENT_MESSAGE
from spice.domain.sasl import SaslUser
from spice.domain.ticket import TicketPolicy

#: The largest message a client may send on each channel (others: DEFAULT_MAX_CLIENT_MESSAGE).
#: Main carries agent data in 2 KiB chunks; record carries audio frames (raw 48 kHz stereo:
#: 3,840 bytes per 20 ms); the others send a few dozen bytes at most.
DEFAULT_MAX_MESSAGE: dict[ChannelType, int] = {
    ChannelType.MAIN: DEFAULT_MAX_CLIENT_MESSAGE,
    ChannelType.DISPLAY: 4096,
    ChannelType.INPUTS: 4096,
    ChannelType.CURSOR: 4096,
    ChannelType.PLAYBACK: 4096,
    ChannelType.RECORD: 65536,
    # spice-gtk sends each port write as one message.
    ChannelType.PORT: 1 << 20,
}
#: Bytes one channel connection may have queued for writing before its client is dropped
#: (a full-screen uncompressed 4K frame is 33 MB).
DEFAULT_MAX_OUTPUT = 64 << 20


@attrs.define
class ServerConfig:
    ticket: TicketPolicy = attrs.field(factory=TicketPolicy)
    name: str | None = None
    uuid: uuid_mod.UUID | None = None
    #: Offer client (absolute) mouse mode; without it clients stay in server mode.
    client_mouse: bool = True
    #: Offer client mouse mode through the agent even when ``client_mouse`` is off (QEMU's
    #: agent-mouse: a guest with no tablet follows the client's pointer through its agent).
    agent_mouse: bool = False
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
    #: content, the C server's default, and here also any content a viewer's measured link
    #: cannot carry losslessly), "all", or "off".
    streaming_video: str = "filter"
    #: Codecs streams may use: "mjpeg", "vp8" and "h264" (VP8 for clients that play it and
    #: cannot scale MJPEG frames, i.e. spice-html5; H.264 for spice-gtk on a slow link; see
    #: ``DisplayChannel._stream_codec``).
    video_codecs: tuple[str, ...] = ("mjpeg", "vp8", "h264")
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
    #: Connection counts, link attempts and the delay after failed tickets (per address).
    limits: Limits = attrs.field(factory=Limits)
    #: The largest message a client may send, per channel type.
    max_message: dict[ChannelType, int] = attrs.field(factory=lambda: dict(DEFAULT_MAX_MESSAGE))
    #: Bytes one channel connection may have queued for writing before its client is dropped.
    max_output: int = DEFAULT_MAX_OUTPUT
    #: Input events a second one inputs channel may deliver, and the burst above that; beyond
    #: it motion is coalesced and other events dropped (one log line).
    #: SASL accounts by name (see :mod:`domain.sasl`); set, links authenticate with SASL
    #: instead of the ticket (the C server's spice_server_set_sasl).
    sasl_users: dict[str, SaslUser] | None = None
    #: The SASL mechanisms to offer (None: all; PLAIN only over TLS whatever this says).
    sasl_mechanisms: frozenset[str] | None = None
    input_rate: float = 200.0
    input_burst: int = 400
