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

import functools
import re
from fractions import Fraction
from typing import Any

import attrs

from spice.domain.codecs.yuv import bgrx_to_i420
from spice.domain.display.surface import Pixels

#: libvpx speed (VP8 takes -16..16; higher is faster): 16 takes a 720p frame to 640x360 VP8
#: in 4.3 ms of CPU here (conversion included) where 8 and 12 take 8.8-9.2 ms, for 0.01-0.14
#: dB less at 2.4 Mbit/s (natural and synthetic clips).
SPEED = 16
#: A keyframe may take at most this share of a frame's budget, in percent.
MAX_INTRA_PCT = 300


#: Stream codecs the server can send, by name.
VIDEO_CODECS = ("mjpeg", "vp8")


def parse_video_codecs(text: str) -> tuple[str, ...]:
    """``--video-codecs``: names separated by commas or semicolons, each optionally with
    QEMU's encoder prefix ("spice:mjpeg;gstreamer:vp8" is "mjpeg,vp8"). ValueError for an
    unknown name or none."""
    names: list[str] = []
    for part in re.split(r"[,;]", text):
        name = part.strip().rpartition(":")[2].strip().lower()
        if not name:
            continue
        if name not in VIDEO_CODECS:
            raise ValueError(
                f"unknown video codec {name!r}: this server sends {', '.join(VIDEO_CODECS)}"
            )
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError("no video codec named")
    return tuple(names)


@functools.cache
def available() -> bool:
    """Whether PyAV's FFmpeg has the libvpx encoder."""
    try:
        import av

        av.codec.Codec("libvpx", "w")
    except Exception:  # no av, or an FFmpeg without libvpx
        return False
    return True


@attrs.frozen
class VideoFrame:
    """One encoded frame of a stream (any codec): its size on the wire and its bytes."""

    width: int
    height: int
    payload: bytes
    keyframe: bool = False
    #: The multimedia time (ms) it is shown at, when the encoder chose it (VP8; else 0).
    mm_time: int = 0


class Vp8Encoder:
    """Encode BGRX frames of ``width`` x ``height`` (even) at about ``bit_rate`` bits/s."""

    def __init__(self, width: int, height: int, bit_rate: int, *, speed: int = SPEED) -> None:
        import av

        if width <= 0 or height <= 0 or width % 2 or height % 4:
            raise ValueError(
                f"VP8 frames here need an even width and a height a multiple of 4, "
                f"not {width}x{height}"
            )
        self.width = width
        self.height = height
        self.bit_rate = bit_rate
        ctx: Any = av.CodecContext.create("libvpx", "w")
        ctx.width, ctx.height = width, height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, 1000)  # pts in milliseconds: the multimedia clock's unit
        ctx.bit_rate = bit_rate
        ctx.options = {
            "deadline": "realtime",
            "cpu-used": str(speed),
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
        ctx.open()
        self._ctx = ctx
        self._last_pts = -1
        self.frames = 0

    def encode(self, pixels: Pixels, pts_ms: int, *, keyframe: bool = False) -> tuple[bytes, bool]:
        """One frame (``pixels``: (h, w, 4) BGRX of the encoder's size or twice it, halved
        on the way; shown at ``pts_ms``, increasing) to VP8 bytes; returns them and whether
        they are a keyframe (the first frame always is, and ``keyframe`` asks for one)."""
        import av

        h, w = pixels.shape[:2]
        size = (self.width, self.height)
        if (w, h) != size and (w, h) != (2 * self.width, 2 * self.height):
            raise ValueError(f"a {w}x{h} frame for a {self.width}x{self.height} encoder")
        pts = max(int(pts_ms), self._last_pts + 1)
        self._last_pts = pts
        yuv = bgrx_to_i420(pixels, halve=(w, h) != size)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = pts
        if keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        packets = self._ctx.encode(frame)
        self.frames += 1
        data = b"".join(bytes(p) for p in packets)
        key = any(p.is_keyframe for p in packets)
        return data, key


class Vp8Decoder:
    """VP8 frames back to BGRX (for tests and quality checks)."""

    def __init__(self) -> None:
        import av

        self._ctx: Any = av.CodecContext.create("vp8", "r")

    def decode(self, data: bytes) -> Pixels:
        import av

        frames = self._ctx.decode(av.Packet(data))
        if not frames:
            raise ValueError("the VP8 frame decoded to nothing")
        out: Pixels = frames[-1].to_ndarray(format="bgra")
        return out
