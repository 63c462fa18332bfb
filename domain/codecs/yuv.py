"""BGRX pixels to I420 (planar YUV 4:2:0, what VP8 encodes), optionally halved on the way, in
one pass.

BT.601 with limited range (Y 16-235, U and V 16-240), what browsers and libvpx assume for VP8
that signals nothing else, in the usual 8-bit integer form. Chroma is the mean of each 2x2
block of output pixels. numba-compiled with ``nogil``: about 1-2 ms for a 1280x720 frame (or
for halving one to 640x360), where a separate downscale and FFmpeg's conversion took 9 ms.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from spice.domain.display.surface import Pixels

I420 = npt.NDArray[np.uint8]


@njit(cache=True, nogil=True, inline="always")
def _pixel(src: Pixels, y: int, x: int, f: int) -> tuple[int, int, int]:  # pragma: no cover
    """The (b, g, r) of output pixel (y, x): the source pixel, or the mean of its 2x2 block."""
    if f == 1:
        return int(src[y, x, 0]), int(src[y, x, 1]), int(src[y, x, 2])
    sy, sx = 2 * y, 2 * x
    b = int(src[sy, sx, 0]) + src[sy, sx + 1, 0] + src[sy + 1, sx, 0] + src[sy + 1, sx + 1, 0]
    g = int(src[sy, sx, 1]) + src[sy, sx + 1, 1] + src[sy + 1, sx, 1] + src[sy + 1, sx + 1, 1]
    r = int(src[sy, sx, 2]) + src[sy, sx + 1, 2] + src[sy + 1, sx, 2] + src[sy + 1, sx + 1, 2]
    return (b + 2) >> 2, (g + 2) >> 2, (r + 2) >> 2


@njit(cache=True, nogil=True)
def _to_i420(src: Pixels, f: int, out: I420) -> None:  # pragma: no cover - compiled
    """``out``: (h * 3 // 2, w), Y rows then U then V (each (h/2, w/2), packed two rows to a
    row of ``out``: FFmpeg's yuv420p ndarray layout); ``f``: 1 or 2 source pixels per output
    pixel along each axis."""
    h = out.shape[0] * 2 // 3
    w = out.shape[1]
    cw = w // 2
    q = h // 4
    for cy in range(h // 2):
        y0 = 2 * cy
        row = h + cy // 2
        off = (cy % 2) * cw
        for cx in range(cw):
            x0 = 2 * cx
            b0, g0, r0 = _pixel(src, y0, x0, f)
            b1, g1, r1 = _pixel(src, y0, x0 + 1, f)
            b2, g2, r2 = _pixel(src, y0 + 1, x0, f)
            b3, g3, r3 = _pixel(src, y0 + 1, x0 + 1, f)
            out[y0, x0] = ((66 * r0 + 129 * g0 + 25 * b0 + 128) >> 8) + 16
            out[y0, x0 + 1] = ((66 * r1 + 129 * g1 + 25 * b1 + 128) >> 8) + 16
            out[y0 + 1, x0] = ((66 * r2 + 129 * g2 + 25 * b2 + 128) >> 8) + 16
            out[y0 + 1, x0 + 1] = ((66 * r3 + 129 * g3 + 25 * b3 + 128) >> 8) + 16
            r = (r0 + r1 + r2 + r3 + 2) >> 2
            g = (g0 + g1 + g2 + g3 + 2) >> 2
            b = (b0 + b1 + b2 + b3 + 2) >> 2
            out[row, off + cx] = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128
            out[row + q, off + cx] = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128


def bgrx_to_i420(pixels: Pixels, halve: bool = False) -> I420:
    """``pixels`` ((h, w, 4) BGRX) as I420 of (w, h), or of (w/2, h/2) with ``halve``: a
    (h' * 3 // 2, w') array, FFmpeg's yuv420p ndarray layout. The output size must be a
    multiple of 4 in height and of 2 in width."""
    h, w = pixels.shape[:2]
    f = 2 if halve else 1
    oh, ow = h // f, w // f
    if oh % 4 or ow % 2 or oh == 0 or ow == 0:
        raise ValueError(f"I420 of {ow}x{oh}: the height must be a multiple of 4, width of 2")
    out = np.empty((oh * 3 // 2, ow), np.uint8)
    _to_i420(np.ascontiguousarray(pixels), f, out)
    return out


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel on a tiny image."""
    bgrx_to_i420(np.zeros((8, 8, 4), np.uint8), halve=True)
