"""What the inter-frame stream codecs (VP8, H.264) share: the names the server's
``video_codecs`` option takes, an encoded frame, the shape of an encoder, and a decoder for tests
and quality checks.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction
from typing import Any, Protocol

import attrs

from spice.domain.codecs.yuv import bgrx_to_i420
from spice.domain.display.surface import Pixels

#: Stream codecs the server can send, by name.
VIDEO_CODECS = ("mjpeg", "vp8", "h264")


def parse_video_codecs(text: str) -> tuple[str, ...]:
    """``--video-codecs``: names separated by commas or semicolons, each optionally with
    QEMU's encoder prefix ("spice:mjpeg;gstreamer:h264" is "mjpeg,h264"). ValueError for an
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


@attrs.frozen
class VideoFrame:
    """One encoded frame of a stream (any codec): its size on the wire and its bytes."""

    width: int
    height: int
    payload: bytes
    keyframe: bool = False
    #: The multimedia time (ms) it is shown at, when the encoder chose it (VP8, H.264; else 0).
    mm_time: int = 0


class VideoEncoder(Protocol):
    """One stream's stateful encoder: every frame it returns must reach the client, in
    order, or the next one must be a keyframe. Its size and bit rate are fixed for its life."""

    width: int
    height: int
    bit_rate: int

    def encode(self, pixels: Pixels, pts_ms: int, *, keyframe: bool = False) -> tuple[bytes, bool]:
        """``pixels``: (h, w, 4) BGRX of the encoder's size or twice it (halved on the way),
        shown at ``pts_ms`` (increasing); returns the frame's bytes and whether it is a
        keyframe (the first frame always is; ``keyframe`` asks for one)."""
        ...


@functools.cache
def encoder_available(name: str) -> bool:
    """Whether PyAV's FFmpeg has the encoder ``name`` ("libvpx", "libx264")."""
    try:
        import av

        av.codec.Codec(name, "w")
    except Exception:  # no av, or an FFmpeg without that encoder
        return False
    return True


class AvEncoder:
    """A :class:`VideoEncoder` on a PyAV (FFmpeg) encoder that takes I420 made by the numba
    conversion of :mod:`spice.domain.codecs.yuv` (which halves on the way, and takes a tenth
    of the CPU of FFmpeg's swscale for 720p: 1.1 ms against 11.1 here). A subclass names the
    encoder and sets its options (:meth:`_configure`); times are in milliseconds, the
    multimedia clock's unit."""

    #: The codec's name in messages, and FFmpeg's name of its encoder.
    label = "video"
    encoder = ""

    def __init__(self, width: int, height: int, bit_rate: int) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 4:
            raise ValueError(
                f"{self.label} frames here need an even width and a height a multiple of 4, "
                f"not {width}x{height}"
            )
        self.width = width
        self.height = height
        self.bit_rate = bit_rate
        self._ctx = self._open()
        self._last_pts = -1
        self.frames = 0

    def _open(self) -> Any:
        import av

        ctx: Any = av.CodecContext.create(self.encoder, "w")
        ctx.width, ctx.height = self.width, self.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, 1000)
        ctx.bit_rate = self.bit_rate
        self._configure(ctx)
        ctx.open()
        return ctx

    def _configure(self, ctx: Any) -> None:
        """Set the codec's own options on ``ctx`` before it opens."""
        raise NotImplementedError

    def encode(self, pixels: Pixels, pts_ms: int, *, keyframe: bool = False) -> tuple[bytes, bool]:
        import av

        h, w = pixels.shape[:2]
        if (w, h) == (self.width, self.height):
            halve = False
        elif (w, h) == (2 * self.width, 2 * self.height):
            halve = True
        else:
            raise ValueError(f"a {w}x{h} frame for a {self.width}x{self.height} encoder")
        pts = max(int(pts_ms), self._last_pts + 1)
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(bgrx_to_i420(pixels, halve=halve), format="yuv420p")
        frame.pts = pts
        if keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        packets = self._ctx.encode(frame)
        self.frames += 1
        data = b"".join(bytes(p) for p in packets)
        return data, any(p.is_keyframe for p in packets)


class VideoDecoder:
    """Frames of one stream back to BGRX, through PyAV (``"vp8"`` or ``"h264"``)."""

    def __init__(self, codec: str) -> None:
        import av

        self._ctx: Any = av.CodecContext.create(codec, "r")
        self.codec = codec

    def decode(self, data: bytes) -> Pixels:
        import av

        frames = self._ctx.decode(av.Packet(data))
        if not frames:
            raise ValueError(f"the {self.codec} frame decoded to nothing")
        out: Pixels = frames[-1].to_ndarray(format="bgra")
        return out
