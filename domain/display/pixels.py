"""Conversions from what an application or a display source has to the surface's pixels
(BGRX) and to cursor shapes (BGRA). Pure, so a source in ``adapters/`` can use them as the
public API does; large conversions are numpy work that the caller runs in a thread."""

from __future__ import annotations

from typing import Any

import numpy as np

from spice.domain.display.surface import Pixels


def as_bgrx(array: np.ndarray) -> Pixels:
    """Validate an (h, w, 4) uint8 BGRX array, making it C-contiguous."""
    if array.ndim != 3 or array.shape[2] != 4 or array.dtype != np.uint8:
        raise ValueError("pixels must be a uint8 array of shape (height, width, 4), bytes B,G,R,X")
    return np.ascontiguousarray(array)


def to_bgrx(image: Any, width: int | None = None, height: int | None = None) -> Pixels:
    """Convert what the application has into an (h, w, 4) BGRX uint8 array.

    Accepts a numpy array of shape (h, w, 4) in BGRX order or (h, w, 3) in RGB order, a PIL
    image (any mode), or raw BGRX bytes together with ``width`` and ``height``.
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        if width is None or height is None:
            raise ValueError("raw BGRX bytes need width and height")
        buf = np.frombuffer(image, dtype=np.uint8)
        if buf.size != width * height * 4:
            raise ValueError(f"expected {width * height * 4} bytes of BGRX, got {buf.size}")
        return buf.reshape(height, width, 4)
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
            h, w = image.shape[:2]
            out = np.empty((h, w, 4), dtype=np.uint8)
            out[..., 0] = image[..., 2]
            out[..., 1] = image[..., 1]
            out[..., 2] = image[..., 0]
            out[..., 3] = 0
            return out
        return as_bgrx(image)
    if hasattr(image, "convert") and hasattr(image, "tobytes"):  # a PIL image
        rgbx = image.convert("RGBX") if image.mode != "RGBX" else image
        arr = np.frombuffer(rgbx.tobytes(), dtype=np.uint8).reshape(rgbx.height, rgbx.width, 4)
        out = arr[..., [2, 1, 0, 3]].copy()
        out[..., 3] = 0
        return out
    raise TypeError(f"cannot draw a {type(image).__name__}")


def owned_bgrx(image: Any, width: int | None = None, height: int | None = None) -> Pixels:
    """``to_bgrx`` that never returns a view of the caller's buffer."""
    pixels = to_bgrx(image, width, height)
    mutable = isinstance(image, (np.ndarray, bytearray, memoryview))
    if mutable and np.shares_memory(pixels, np.asarray(image)):
        pixels = pixels.copy()
    return pixels


def cursor_bgra(image: Any) -> Pixels:
    """A cursor shape as (h, w, 4) B, G, R, A (straight alpha), from such an array or a PIL
    image with alpha."""
    if isinstance(image, np.ndarray):
        bgra = np.ascontiguousarray(image, dtype=np.uint8)
    else:
        rgba = image.convert("RGBA")
        arr = np.frombuffer(rgba.tobytes(), dtype=np.uint8).reshape(rgba.height, rgba.width, 4)
        bgra = arr[..., [2, 1, 0, 3]].copy()
    if bgra.ndim != 3 or bgra.shape[2] != 4:
        raise ValueError("a cursor image is (h, w, 4) B, G, R, A")
    return bgra
