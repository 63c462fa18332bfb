"""What the application hears of the clients' microphones (``server.record_events()``).

A recording is opened by the application (``server.record.start()``); each client then
answers with :class:`RecordStarted` (the client's START_MARK), :class:`RecordData` frames and,
when the application stops it or the client goes, :class:`RecordStopped`.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np


@attrs.frozen
class RecordStarted:
    client: Any
    frequency: int
    channels: int
    #: "raw" or "opus": how the client sends it (the PCM is decoded either way).
    mode: str


@attrs.frozen
class RecordData:
    """Interleaved signed 16-bit little-endian PCM from one client."""

    client: Any
    pcm: bytes
    frequency: int
    channels: int
    #: The client's mm time for the frame (ms).
    time: int

    @property
    def samples(self) -> np.ndarray[Any, np.dtype[np.int16]]:
        """The PCM as an int16 array of shape (frames, channels)."""
        return np.frombuffer(self.pcm, dtype="<i2").reshape(-1, self.channels)

    @property
    def level(self) -> float:
        """RMS level from 0.0 (silence) to 1.0 (full scale)."""
        if not self.pcm:
            return 0.0
        x = self.samples.astype(np.float64) / 32768.0
        return float(np.sqrt(np.mean(x * x)))


@attrs.frozen
class RecordStopped:
    client: Any
    #: "stopped" (by the application) or "disconnected".
    reason: str


RecordEvent = RecordStarted | RecordData | RecordStopped
