"""Audio both ways: ``server.playback`` (the application's sound to every client) and
``server.record`` (the clients' microphones to the application).

>>> server.playback.start(48000, 2)          # optional: write() starts 48 kHz stereo
>>> await server.playback.write(pcm)         # int16 array (n,) or (n, 2), or S16LE bytes
>>> server.playback.stop()
>>> server.record.start()                    # ask every client for its microphone
>>> async with server.record_events() as events:
...     async for event in events:           # RecordStarted, RecordData, RecordStopped
...         print(event.level)

Opus goes to clients that take it (``playback_compression=True``, rate 48/24/16/12/8 kHz),
RAW PCM to the others; Opus from a microphone is decoded before it reaches the application.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spice.adapters.channels.playback import PlaybackHub
from spice.adapters.channels.record import RecordHub


class Playback:
    """The server's one playback stream, heard by every connected client."""

    def __init__(self, hub: PlaybackHub) -> None:
        self._hub = hub

    @property
    def playing(self) -> bool:
        return self._hub.playing

    @property
    def frequency(self) -> int:
        return self._hub.frequency

    @property
    def channels(self) -> int:
        return self._hub.channels

    def start(self, frequency: int = 48000, channels: int = 2) -> None:
        """Open a stream (8000 to 48000 Hz, 1 or 2 channels); one already open at another
        format is stopped first."""
        self._hub.start(frequency, channels)

    async def write(self, pcm: bytes | np.ndarray[Any, Any]) -> None:
        """Play interleaved signed 16-bit PCM; returns once it is at most 100 ms ahead of
        real time (so a loop of writes plays at the right speed)."""
        await self._hub.write(pcm)

    def stop(self) -> None:
        self._hub.stop()

    def set_volume(self, volume: int | tuple[int, ...]) -> None:
        """0 to 65535, one level for every channel or one per channel."""
        self._hub.set_volume(volume)

    def set_mute(self, mute: bool) -> None:
        self._hub.set_mute(mute)

    def set_latency(self, latency_ms: int) -> None:
        """The least the clients should buffer (clients with the LATENCY cap)."""
        self._hub.set_latency(latency_ms)


class Record:
    """The clients' microphones; frames arrive in ``server.record_events()``."""

    def __init__(self, hub: RecordHub) -> None:
        self._hub = hub

    @property
    def recording(self) -> bool:
        return self._hub.recording

    def start(self, frequency: int = 48000, channels: int = 2) -> None:
        """Ask every client (and every later one) to send its microphone."""
        self._hub.start(frequency, channels)

    def stop(self) -> None:
        self._hub.stop()

    def set_volume(self, volume: int | tuple[int, ...]) -> None:
        """The clients' microphone gain, 0 to 65535."""
        self._hub.set_volume(volume)

    def set_mute(self, mute: bool) -> None:
        self._hub.set_mute(mute)
