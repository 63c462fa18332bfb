"""The registry of channel kinds: for each channel type the server serves through it, the
capabilities it announces at link time and how its machine is built.

Adding a channel kind is one entry here and one runner in ``adapters/channels/``; the link
stage reads the caps from :func:`server_caps` and the session dispatches by :data:`KINDS`.
(Main predates the registry: the session runs it by hand, as it owns the session.)
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from spice.domain.caps import CapabilitySet
from spice.domain.channel import ChannelConnection
from spice.domain.channels.cursor import CursorChannel
from spice.domain.channels.display import DisplayChannel
from spice.domain.channels.inputs import InputsChannel
from spice.domain.channels.playback import PlaybackChannel
from spice.domain.channels.port import PortChannel
from spice.domain.channels.record import RecordChannel
from spice.domain.enums import (
    ChannelType,
    DisplayCap,
    InputsCap,
    MouseMode,
    PlaybackCap,
    RecordCap,
)


@attrs.frozen
class ChannelSetup:
    """What a machine needs from the link and the server's options."""

    mini_header: bool
    client_caps: CapabilitySet
    server_caps: CapabilitySet
    #: Playback: whether Opus may be used (``--playback-compression``).
    compression: bool = True
    #: Inputs: the session's mouse mode (which of motion and position count).
    mouse_mode: MouseMode = MouseMode.SERVER
    #: Display: ``--image-compression`` and ``--jpeg-wan-compression``.
    image_compression: str = "auto_glz"
    jpeg_wan_compression: str = "auto"
    #: Display: the main channel's network test found a slow link (JPEG in "auto").
    low_bandwidth: bool = False
    #: Display: the video encoders are warmed up (streams may start).
    codecs_warm: bool = True
    #: Display: the stream codecs the server may use (``--video-codecs``).
    video_codecs: frozenset[str] = frozenset({"mjpeg", "vp8", "h264"})


@attrs.frozen
class ChannelKind:
    type: ChannelType
    caps: CapabilitySet
    make: Callable[[ChannelSetup], ChannelConnection]


def _playback(setup: ChannelSetup) -> PlaybackChannel:
    return PlaybackChannel(
        mini_header=setup.mini_header,
        client_caps=setup.client_caps,
        compression=setup.compression,
    )


def _record(setup: ChannelSetup) -> RecordChannel:
    return RecordChannel(
        mini_header=setup.mini_header,
        client_caps=setup.client_caps,
        server_caps=setup.server_caps,
    )


def _port(setup: ChannelSetup) -> PortChannel:
    return PortChannel(mini_header=setup.mini_header)


def _display(setup: ChannelSetup) -> DisplayChannel:
    return DisplayChannel(
        mini_header=setup.mini_header,
        client_caps=setup.client_caps,
        server_caps=setup.server_caps,
        image_compression=setup.image_compression,
        jpeg_wan_compression=setup.jpeg_wan_compression,
        low_bandwidth=setup.low_bandwidth,
        codecs_warm=setup.codecs_warm,
        video_codecs=setup.video_codecs,
    )


def _inputs(setup: ChannelSetup) -> InputsChannel:
    return InputsChannel(mini_header=setup.mini_header, mouse_mode=setup.mouse_mode)


def _cursor(setup: ChannelSetup) -> CursorChannel:
    return CursorChannel(mini_header=setup.mini_header)


KINDS: dict[ChannelType, ChannelKind] = {
    # As the reference server: VOLUME (and the client decides nothing else on playback).
    ChannelType.PLAYBACK: ChannelKind(
        ChannelType.PLAYBACK, CapabilitySet.of(PlaybackCap.VOLUME, PlaybackCap.LATENCY), _playback
    ),
    # OPUS: spice-gtk then sends its microphone as Opus at 48 kHz.
    ChannelType.RECORD: ChannelKind(
        ChannelType.RECORD, CapabilitySet.of(RecordCap.VOLUME, RecordCap.OPUS), _record
    ),
    ChannelType.DISPLAY: ChannelKind(
        ChannelType.DISPLAY,
        CapabilitySet.of(
            DisplayCap.MONITORS_CONFIG,
            DisplayCap.PREF_COMPRESSION,
            DisplayCap.STREAM_REPORT,
            DisplayCap.PREF_VIDEO_CODEC_TYPE,
        ),
        _display,
    ),
    # KEY_SCANCODE: spice-gtk then sends a press and release as one message.
    ChannelType.INPUTS: ChannelKind(
        ChannelType.INPUTS, CapabilitySet.of(InputsCap.KEY_SCANCODE), _inputs
    ),
    # No channel caps, as the reference server.
    ChannelType.CURSOR: ChannelKind(ChannelType.CURSOR, CapabilitySet(), _cursor),
    # No channel caps: LZ4 compression of port data is not offered.
    ChannelType.PORT: ChannelKind(ChannelType.PORT, CapabilitySet(), _port),
}


def server_caps(channel_type: int) -> CapabilitySet | None:
    """The caps announced for a registered kind (None: not in the registry)."""
    for kind in KINDS.values():
        if kind.type == channel_type:
            return kind.caps
    return None
