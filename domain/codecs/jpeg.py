"""JPEG images (image type JPEG, 105): baseline JFIF from BGRX pixels, through libjpeg-turbo
(simplejpeg, which releases the GIL while it encodes).

Lossy: used only for photographic areas and only when the server's ``jpeg_wan_compression``
allows it (see :mod:`domain.codecs.select`). The clients treat JPEG images as lossy in their
cache, so they are never cached here.
"""

from __future__ import annotations

import numpy as np
import simplejpeg

from spice.domain.display.surface import Pixels

#: libjpeg quality for still images. The C server uses 85 (34.4 dB on a 1080p photo here);
#: 90 at 4:2:0 gives 35.9 dB there for 0.20x the QUIC bytes (85: 0.16x).
DEFAULT_QUALITY = 90


def encode_jpeg_bgrx(pixels: Pixels, quality: int = DEFAULT_QUALITY) -> bytes:
    """A baseline JFIF file of ``pixels`` ((h, w, 4) BGRX). Rows may lie apart (a view of
    an area of the surface): libjpeg-turbo reads them in place, with their pitch."""
    if pixels.strides[1:] != (4, 1) or pixels.strides[0] < 4 * pixels.shape[1]:
        pixels = np.ascontiguousarray(pixels)
    data: bytes = simplejpeg.encode_jpeg(
        pixels, quality=quality, colorspace="BGRX", colorsubsampling="420"
    )
    return data


def decode_jpeg_bgrx(data: bytes) -> Pixels:
    """Decode a JPEG to (h, w, 4) BGRX (for tests and quality checks)."""
    out: Pixels = simplejpeg.decode_jpeg(data, colorspace="BGRX")
    return out


def psnr(a: Pixels, b: Pixels) -> float:
    """Peak signal-to-noise ratio of two (h, w, 4) BGRX images over B, G and R, in dB."""
    diff = a[..., :3].astype(np.float64) - b[..., :3].astype(np.float64)
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0 * 255.0 / mse))
