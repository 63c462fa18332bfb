"""The playback channel: PCM from the application to the client's speakers.

Everything that affects the state machine lives here. Right after the link the server sends
MODE (the client plays nothing without one), then VOLUME/MUTE/LATENCY if the client announced
those caps and the application set them. A stream is START, DATA..., STOP; DATA outside a
stream is our own misuse (:class:`LocalProtocolError`). The mode is RAW, or OPUS when the
client has the cap, compression is on and the stream's rate and channel count suit Opus; a
stream in another mode than the last MODE sent is preceded by a fresh MODE. The client sends
nothing of its own on this channel.
"""

from __future__ import annotations

from typing import Any

from spice.domain.caps import CapabilitySet
from spice.domain.channel import ChannelConnection
from spice.domain.codecs.opus import opus_capable
from spice.domain.enums import AudioDataMode, AudioFmt, PlaybackCap
from spice.domain.errors import LocalProtocolError
from spice.domain.messages import audio as m


class PlaybackChannel(ChannelConnection):
    CLIENT_MESSAGES = m.PLAYBACK_CLIENT_MESSAGES

    def __init__(
        self, *, mini_header: bool, client_caps: CapabilitySet, compression: bool = True
    ) -> None:
        super().__init__(mini_header=mini_header)
        self.client_caps = client_caps
        self.compression = compression
        self.mode: AudioDataMode | None = None
        self.playing = False

    def mode_for(self, frequency: int, channels: int) -> AudioDataMode:
        if (
            self.compression
            and PlaybackCap.OPUS in self.client_caps
            and opus_capable(frequency, channels)
        ):
            return AudioDataMode.OPUS
        return AudioDataMode.RAW

    def start_link(self, mm_time: int, frequency: int = 48000, channels: int = 2) -> None:
        """MODE, right after the link (as the reference server does)."""
        self._send_mode(mm_time, self.mode_for(frequency, channels))

    def _send_mode(self, mm_time: int, mode: AudioDataMode) -> None:
        self.mode = mode
        self.send(m.PlaybackMode(mm_time, mode))

    def start(self, *, frequency: int, channels: int, mm_time: int) -> AudioDataMode:
        """START a stream; returns the mode its DATA must be in."""
        if self.playing:
            raise LocalProtocolError("playback START while a stream plays")
        mode = self.mode_for(frequency, channels)
        if mode != self.mode:
            self._send_mode(mm_time, mode)
        self.send(m.PlaybackStart(channels, AudioFmt.S16, frequency, mm_time))
        self.playing = True
        return mode

    def data(self, payload: bytes, mm_time: int) -> None:
        """One frame, already in :attr:`mode` (RAW PCM or one Opus packet)."""
        if not self.playing:
            raise LocalProtocolError("playback DATA outside a stream")
        self.send(m.PlaybackData(mm_time, payload))

    def stop(self) -> None:
        if not self.playing:
            raise LocalProtocolError("playback STOP without a stream")
        self.playing = False
        self.send(m.PlaybackStop())

    def set_volume(self, volume: tuple[int, ...]) -> bool:
        """VOLUME to a client that takes it; False when it does not."""
        if PlaybackCap.VOLUME not in self.client_caps:
            return False
        self.send(m.PlaybackVolume(volume))
        return True

    def set_mute(self, mute: bool) -> bool:
        if PlaybackCap.VOLUME not in self.client_caps:
            return False
        self.send(m.PlaybackMute(mute))
        return True

    def set_latency(self, latency_ms: int) -> bool:
        if PlaybackCap.LATENCY not in self.client_caps:
            return False
        self.send(m.PlaybackLatency(latency_ms))
        return True

    def _handle(self, msg: Any) -> Any:
        return None
