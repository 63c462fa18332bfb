"""VP8 video frames (stream codec type 2) from BGRX pixels, through PyAV's libvpx (bundled in
the ``av`` wheel; it releases the GIL while it converts and encodes).

One :class:`Vp8Encoder` is one stream's encoder: VP8 frames depend on the frames before them,
so every frame it returns must reach the client, in order, or the next one must be a
keyframe. It is tuned for a live screen, as WebRTC tunes libvpx: the ``realtime`` deadline,
no look-ahead (a frame comes out as soon as it goes in), constant bit rate with a short
buffer, and keyframes capped at a few frames' budget so that one does not hold a slow link
for long. The bit rate is fixed for an encoder's life (libvpx through FFmpeg does not take a
new one mid-stream): a new rate is a new encoder, whose first frame is a keyframe.
"""

from __future__ import annotations

from typing import Any

from spice.domain.codecs.video import AvEncoder, encoder_available

#: libvpx speed (VP8 takes -16..16; higher is faster): 16 takes a 720p frame to 640x360 VP8
#: in 4.3 ms of CPU here (conversion included) where 8 and 12 take 8.8-9.2 ms, for 0.01-0.14
#: dB less at 2.4 Mbit/s (natural and synthetic clips).
SPEED = 16
#: A keyframe may take at most this share of a frame's budget, in percent.
MAX_INTRA_PCT = 300


def available() -> bool:
    """Whether PyAV's FFmpeg has the libvpx encoder."""
    return encoder_available("libvpx")


class Vp8Encoder(AvEncoder):
    """Encode BGRX frames of ``width`` x ``height`` at about ``bit_rate`` bits/s."""

    label = "VP8"
    encoder = "libvpx"

    def __init__(self, width: int, height: int, bit_rate: int, *, speed: int = SPEED) -> None:
        self.speed = speed
        super().__init__(width, height, bit_rate)

    def _configure(self, ctx: Any) -> None:
        ctx.options = {
            "deadline": "realtime",
            "cpu-used": str(self.speed),
            "lag-in-frames": "0",
            "auto-alt-ref": "0",
            "error-resilient": "1",
            "threads": "1",
            "undershoot-pct": "95",
            "buf-initial-sz": "300",
            "buf-optimal-sz": "400",
            "buf-sz": "500",
            "max-intra-rate": str(MAX_INTRA_PCT),
        }
