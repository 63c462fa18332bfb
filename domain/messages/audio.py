"""Playback and record channel message bodies (spice.proto ``channel PlaybackChannel`` and
``channel RecordChannel``).

Time fields are the session's multimedia clock in ms. Audio is signed 16-bit little-endian,
interleaved (``AudioFmt.S16``); a DATA body is the time followed by the frame itself (RAW PCM
or one Opus packet) up to the end of the body. Numbers from the client stay plain ints: a
newer client may send modes we do not know, and the machine, not the decoder, refuses them.
"""

from __future__ import annotations

import struct
from typing import ClassVar, Self

import attrs

from spice.domain.enums import MsgcRecord, MsgPlayback, MsgRecord
from spice.domain.messages.codec import registry, uint_check, unpack_exact

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
class PlaybackStart:
    MSG_TYPE: ClassVar[int] = MsgPlayback.START
    channels: int = attrs.field(validator=uint_check(32))
    format: int = attrs.field(validator=uint_check(16))
    frequency: int = attrs.field(validator=uint_check(32))
    time: int = attrs.field(validator=uint_check(32))

    def encode(self) -> bytes:
        return struct.pack("<IHII", self.channels, self.format, self.frequency, self.time)


@attrs.frozen
class PlaybackStop:
    MSG_TYPE: ClassVar[int] = MsgPlayback.STOP

    def encode(self) -> bytes:
        return b""


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
class PlaybackLatency:
    """The least buffering the client should keep, in ms (spice-gtk's default is 200)."""

    MSG_TYPE: ClassVar[int] = MsgPlayback.LATENCY
    latency_ms: int = attrs.field(validator=uint_check(32))

    def encode(self) -> bytes:
        return struct.pack("<I", self.latency_ms)


# -- record (server to client) -----------------------------------------------------------------


@attrs.frozen
class RecordStart:
    MSG_TYPE: ClassVar[int] = MsgRecord.START
    channels: int = attrs.field(validator=uint_check(32))
    format: int = attrs.field(validator=uint_check(16))
    frequency: int = attrs.field(validator=uint_check(32))

    def encode(self) -> bytes:
        return struct.pack("<IHI", self.channels, self.format, self.frequency)


@attrs.frozen
class RecordStop:
    MSG_TYPE: ClassVar[int] = MsgRecord.STOP

    def encode(self) -> bytes:
        return b""


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
class RecordData:
    MSG_TYPE: ClassVar[int] = MsgcRecord.DATA
    time: int
    data: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        (time,) = unpack_exact("I", body, "RECORD_DATA")
        return cls(time, bytes(body[4:]))


@attrs.frozen
class RecordMode:
    MSG_TYPE: ClassVar[int] = MsgcRecord.MODE
    time: int
    mode: int
    data: bytes = b""

    @classmethod
    def decode(cls, body: bytes) -> Self:
        time, mode = unpack_exact("IH", body, "RECORD_MODE")
        return cls(time, mode, bytes(body[6:]))


@attrs.frozen
class RecordStartMark:
    MSG_TYPE: ClassVar[int] = MsgcRecord.START_MARK
    time: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("I", body, "RECORD_START_MARK"))


CLIENT_MESSAGES = registry(RecordData, RecordMode, RecordStartMark)
#: The playback channel has no client messages of its own.
PLAYBACK_CLIENT_MESSAGES = registry()
