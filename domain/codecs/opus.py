"""Opus for the audio channels: 10 ms frames of interleaved S16 PCM to one Opus packet each,
and back, through PyAV's codec contexts (libopus bundled in the ``av`` wheel; no files,
sockets or clocks, so it sits in the domain).

The frame size is the protocol's (``SND_CODEC_OPUS_FRAME_SIZE``, 480 samples per channel at
48 kHz): spice-gtk and spice-html5 decode each DATA message as one packet on its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Sample rates Opus takes (spice-gtk: 48000/24000/16000/12000/8000; html5: 48000 only).
OPUS_RATES = frozenset({48000, 24000, 16000, 12000, 8000})
#: Playback frames last 10 ms, as the reference server's.
FRAME_MS = 10
#: The reference server's Opus bit rate for playback (64 kbit/s stereo is transparent speech
#: and fine music, about 80 bytes per 10 ms packet).
DEFAULT_BIT_RATE = 64000


class OpusError(ValueError):
    """A packet did not decode, or PCM did not fit the encoder."""


def opus_capable(frequency: int, channels: int) -> bool:
    return frequency in OPUS_RATES and channels in (1, 2)


def frame_samples(frequency: int) -> int:
    """Samples per channel in one 10 ms frame."""
    return frequency * FRAME_MS // 1000


def _layout(channels: int) -> str:
    return "mono" if channels == 1 else "stereo"


class OpusEncoder:
    """One Opus stream: feed it exactly one frame (``frame_samples`` x channels int16) at a
    time, get one packet back."""

    def __init__(self, frequency: int, channels: int, bit_rate: int = DEFAULT_BIT_RATE) -> None:
        if not opus_capable(frequency, channels):
            raise OpusError(f"Opus does not take {frequency} Hz x {channels} channels")
        import av  # heavy: imported when an Opus stream is first needed

        self.frequency = frequency
        self.channels = channels
        self.samples = frame_samples(frequency)
        ctx: Any = av.CodecContext.create("libopus", "w")
        ctx.sample_rate = frequency
        ctx.layout = _layout(channels)
        ctx.format = "s16"
        ctx.bit_rate = bit_rate
        ctx.options = {"frame_duration": str(FRAME_MS), "application": "audio"}
        ctx.open()
        self._ctx = ctx
        self._av = av
        self._pts = 0

    def encode(self, pcm: bytes) -> bytes:
        want = self.samples * self.channels * 2
        if len(pcm) != want:
            raise OpusError(f"an Opus frame is {want} bytes of PCM, got {len(pcm)}")
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = self._av.AudioFrame.from_ndarray(samples, format="s16", layout=self._ctx.layout)
        frame.sample_rate = self.frequency
        frame.pts = self._pts
        self._pts += self.samples
        packets = self._ctx.encode(frame)
        # libopus answers every full frame with its packet at once (no frame reordering).
        return b"".join(bytes(p) for p in packets)


class OpusDecoder:
    """Decodes one packet at a time to interleaved little-endian S16 PCM bytes."""

    def __init__(self, frequency: int, channels: int) -> None:
        if not opus_capable(frequency, channels):
            raise OpusError(f"Opus does not take {frequency} Hz x {channels} channels")
        import av

        self.frequency = frequency
        self.channels = channels
        ctx: Any = av.CodecContext.create("libopus", "r")
        ctx.sample_rate = frequency
        ctx.layout = _layout(channels)
        ctx.open()
        self._ctx = ctx
        self._av = av

    def decode(self, packet: bytes) -> bytes:
        if not packet:
            raise OpusError("empty Opus packet")
        try:
            frames = self._ctx.decode(self._av.Packet(packet))
        except Exception as exc:  # PyAV raises its own error classes per errno
            raise OpusError(f"Opus packet of {len(packet)} bytes does not decode: {exc}") from None
        out = []
        for frame in frames:
            arr = frame.to_ndarray()
            if arr.dtype.kind == "f":
                arr = np.clip(np.round(arr * 32767.0), -32768, 32767).astype(np.int16)
            if frame.format.is_planar:
                arr = arr.T  # (channels, samples) -> interleaved
            out.append(np.ascontiguousarray(arr, dtype="<i2").tobytes())
        return b"".join(out)
