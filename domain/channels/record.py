"""The record channel: the client's microphone to the application.

Everything that affects the state machine lives here. The server opens a stream with START
(channels, S16, frequency) and closes it with STOP; the client then sends MODE (RAW, or OPUS
when we announced the cap) and START_MARK before its DATA. DATA comes out as
:class:`RecordFrames` of interleaved S16 PCM, decoded from Opus where needed.

What a client may get wrong, and what follows:
- DATA while no stream is open (before START, after STOP): dropped and counted; the first of a
  run comes out as :class:`DataWhileStopped` so the adapter logs one line. A real client may
  have one frame in flight when STOP crosses it, so this is not fatal.
- a MODE we did not offer, RAW data that is not whole samples, a frame over
  ``MAX_FRAME_BYTES``, an Opus packet that does not decode: :class:`RemoteProtocolError`
  (the adapter logs one line and closes this channel only).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs

from spice.domain.caps import CapabilitySet
from spice.domain.channel import ChannelConnection
from spice.domain.codecs.opus import OpusDecoder, OpusError, opus_capable
from spice.domain.enums import AudioDataMode, AudioFmt, RecordCap
from spice.domain.errors import LocalProtocolError, RemoteProtocolError
from spice.domain.link import NEED_DATA
from spice.domain.messages import audio as m

#: 100 ms of 48 kHz stereo S16: spice-gtk sends 10 ms frames; more is not a microphone.
MAX_FRAME_BYTES = 19200
#: The largest body a record client may send (a frame and its 6-byte head).
MAX_RECORD_MESSAGE = MAX_FRAME_BYTES + 64


@attrs.frozen
class RecordStarted:
    """The client began sending (START_MARK), in ``mode``."""

    time: int
    mode: AudioDataMode


@attrs.frozen
class RecordFrames:
    """Interleaved S16LE PCM at the stream's rate and channel count."""

    time: int
    pcm: bytes
    frequency: int
    channels: int


@attrs.frozen
class DataWhileStopped:
    """The first DATA of a run that arrived with no stream open (later ones only count)."""

    dropped: int


class RecordChannel(ChannelConnection):
    CLIENT_MESSAGES = m.CLIENT_MESSAGES

    def __init__(
        self, *, mini_header: bool, client_caps: CapabilitySet, server_caps: CapabilitySet
    ) -> None:
        super().__init__(mini_header=mini_header, max_message_size=MAX_RECORD_MESSAGE)
        self.client_caps = client_caps
        self.server_caps = server_caps
        self.recording = False
        self.frequency = 48000
        self.channels = 2
        #: The client's MODE; RAW until it says otherwise (the reference server's default).
        self.mode = AudioDataMode.RAW
        self._decoder: OpusDecoder | None = None
        #: DATA messages dropped because no stream was open.
        self.dropped = 0
        self._warned = False
        self._pending: deque[Any] = deque()

    # -- the server's side ---------------------------------------------------------------------
    def start(self, *, frequency: int = 48000, channels: int = 2) -> None:
        if self.recording:
            raise LocalProtocolError("record START while recording")
        if not 0 < channels <= 2 or not 8000 <= frequency <= 192000:
            raise LocalProtocolError(f"record at {frequency} Hz x {channels} channels")
        self.frequency, self.channels = frequency, channels
        self.recording = True
        self._warned = False
        self._decoder = None
        self.send(m.RecordStart(channels, AudioFmt.S16, frequency))

    def stop(self) -> None:
        if not self.recording:
            raise LocalProtocolError("record STOP while not recording")
        self.recording = False
        self.send(m.RecordStop())

    def set_volume(self, volume: tuple[int, ...]) -> bool:
        if RecordCap.VOLUME not in self.client_caps:
            return False
        self.send(m.RecordVolume(volume))
        return True

    def set_mute(self, mute: bool) -> bool:
        if RecordCap.VOLUME not in self.client_caps:
            return False
        self.send(m.RecordMute(mute))
        return True

    # -- the client's side ---------------------------------------------------------------------
    def next_event(self) -> Any:
        if not self._pending:
            event = super().next_event()
            if event is not NEED_DATA:
                self._pending.append(event)
        return self._pending.popleft() if self._pending else NEED_DATA

    def _handle(self, msg: Any) -> Any:
        if isinstance(msg, m.RecordMode):
            return self._on_mode(msg.mode)
        if isinstance(msg, m.RecordStartMark):
            return RecordStarted(msg.time, self.mode)
        if isinstance(msg, m.RecordData):
            return self._on_data(msg)
        return None

    def _on_mode(self, mode: int) -> None:
        if mode == AudioDataMode.RAW:
            self.mode = AudioDataMode.RAW
        elif mode == AudioDataMode.OPUS and RecordCap.OPUS in self.server_caps:
            self.mode = AudioDataMode.OPUS
        else:
            raise RemoteProtocolError(f"record MODE {mode} was not offered")
        self._decoder = None
        return None

    def _on_data(self, msg: m.RecordData) -> Any:
        if not self.recording:
            self.dropped += 1
            if self._warned:
                return None
            self._warned = True
            return DataWhileStopped(self.dropped)
        if len(msg.data) > MAX_FRAME_BYTES:
            raise RemoteProtocolError(f"record frame of {len(msg.data)} bytes")
        if self.mode == AudioDataMode.OPUS:
            pcm = self._decode_opus(msg.data)
        else:
            if len(msg.data) % (2 * self.channels):
                raise RemoteProtocolError(
                    f"record RAW frame of {len(msg.data)} bytes is not whole "
                    f"{self.channels}-channel samples"
                )
            pcm = msg.data
        if not pcm:
            return None
        return RecordFrames(msg.time, pcm, self.frequency, self.channels)

    def _decode_opus(self, packet: bytes) -> bytes:
        if self._decoder is None:
            if not opus_capable(self.frequency, self.channels):
                raise RemoteProtocolError(f"record Opus at {self.frequency} Hz was not offered")
            self._decoder = OpusDecoder(self.frequency, self.channels)
        try:
            return self._decoder.decode(packet)
        except OpusError as exc:
            raise RemoteProtocolError(str(exc)) from None
