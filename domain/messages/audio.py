"""Playback and record channel message bodies (spice.proto ``channel PlaybackChannel`` and
``channel RecordChannel``).

Time fields are the session's multimedia clock in ms. Audio is signed 16-bit little-endian,
interleaved (``AudioFmt.S16``); a DATA body is the time followed by the frame itself (RAW PCM
or one Opus packet) up to the end of the body. Numbers from the client stay plain ints: a
newer client may send modes we do not know, and the machine, not the decoder, refuses them.
"""

from __future__ import annotations

import struct
from typing import ClassVar

import attrs

from spice.domain.enums import MsgcRecord, MsgPlayback, MsgRecord
from spice.domain.messages.codec import Fixed, Layout, registry, uint_check

# -- playback (server to client) ---------------------------------------------------------------


@attrs.frozen
class PlaybackData:
    MSG_TYPE: ClassVar[int] = MsgPlayback.DATA
    time: int = attrs.field(validator=uint_check(32))
    data: bytes

    def encode(self) -> bytes:
        return struct.pack("<I", self.time) + self.data


@attrs.frozen
class PlaybackMode:
    MSG_TYPE: ClassVar[int] = MsgPlayback.MODE
    time: int = attrs.field(validator=uint_check(32))
    mode: int = attrs.field(validator=uint_check(16))
    data: bytes = b""

    def encode(self) -> bytes:
        return struct.pack("<IH", self.time, self.mode) + self.data


@attrs.frozen
class PlaybackStart(Fixed):
    MSG_TYPE: ClassVar[int] = MsgPlayback.START
    LAYOUT: ClassVar[Layout] = Layout("IHII", "START")
    channels: int = attrs.field(validator=uint_check(32))
    format: int = attrs.field(validator=uint_check(16))
    frequency: int = attrs.field(validator=uint_check(32))
    time: int = attrs.field(validator=uint_check(32))


@attrs.frozen
class PlaybackStop(Fixed):
    MSG_TYPE: ClassVar[int] = MsgPlayback.STOP
    LAYOUT: ClassVar[Layout] = Layout("", "STOP")


def _encode_volume(volume: tuple[int, ...]) -> bytes:
    return struct.pack(f"<B{len(volume)}H", len(volume), *volume)


def _check_volume(_inst: object, _attr: object, value: tuple[int, ...]) -> None:
    if not 0 < len(value) < 256 or not all(0 <= v < 65536 for v in value):
        raise ValueError(f"volume {value!r}: 1 to 255 channels of uint16")


@attrs.frozen
class PlaybackVolume:
    """One uint16 level per channel (0 silent, 65535 full), as the client's mixer takes it."""

    MSG_TYPE: ClassVar[int] = MsgPlayback.VOLUME
    volume: tuple[int, ...] = attrs.field(validator=_check_volume)

    def encode(self) -> bytes:
        return _encode_volume(self.volume)


@attrs.frozen
class PlaybackMute:
    MSG_TYPE: ClassVar[int] = MsgPlayback.MUTE
    mute: bool

    def encode(self) -> bytes:
        return struct.pack("<B", int(self.mute))


@attrs.frozen
class PlaybackLatency(Fixed):
    """The least buffering the client should keep, in ms (spice-gtk's default is 200)."""

    MSG_TYPE: ClassVar[int] = MsgPlayback.LATENCY
    LAYOUT: ClassVar[Layout] = Layout("I", "LATENCY")
    latency_ms: int = attrs.field(validator=uint_check(32))


# -- record (server to client) -----------------------------------------------------------------


@attrs.frozen
class RecordStart(Fixed):
    MSG_TYPE: ClassVar[int] = MsgRecord.START
    LAYOUT: ClassVar[Layout] = Layout("IHI", "START")
    channels: int = attrs.field(validator=uint_check(32))
    format: int = attrs.field(validator=uint_check(16))
    frequency: int = attrs.field(validator=uint_check(32))


@attrs.frozen
class RecordStop(Fixed):
    MSG_TYPE: ClassVar[int] = MsgRecord.STOP
    LAYOUT: ClassVar[Layout] = Layout("", "STOP")


@attrs.frozen
class RecordVolume:
    MSG_TYPE: ClassVar[int] = MsgRecord.VOLUME
    volume: tuple[int, ...] = attrs.field(validator=_check_volume)

    def encode(self) -> bytes:
        return _encode_volume(self.volume)


@attrs.frozen
class RecordMute:
    MSG_TYPE: ClassVar[int] = MsgRecord.MUTE
    mute: bool

    def encode(self) -> bytes:
        return struct.pack("<B", int(self.mute))


# -- record (client to server) -----------------------------------------------------------------


@attrs.frozen
class RecordData(Fixed):
    MSG_TYPE: ClassVar[int] = MsgcRecord.DATA
    LAYOUT: ClassVar[Layout] = Layout("I", "RECORD_DATA", tail=True)
    time: int
    data: bytes


@attrs.frozen
class RecordMode(Fixed):
    MSG_TYPE: ClassVar[int] = MsgcRecord.MODE
    LAYOUT: ClassVar[Layout] = Layout("IH", "RECORD_MODE", tail=True)
    time: int
    mode: int
    data: bytes = b""


@attrs.frozen
class RecordStartMark(Fixed):
    MSG_TYPE: ClassVar[int] = MsgcRecord.START_MARK
    LAYOUT: ClassVar[Layout] = Layout("I", "RECORD_START_MARK")
    time: int


CLIENT_MESSAGES = registry(RecordData, RecordMode, RecordStartMark)
#: The playback channel has no client messages of its own.
PLAYBACK_CLIENT_MESSAGES = registry()
