"""A display surface: the server's copy of what clients should see.

Pixels are a numpy array of shape (height, width, 4), bytes B, G, R, X per pixel: the memory
layout of SPICE's 32_xRGB surface format, so a region goes on the wire as BITMAP 32BIT rows
without conversion. The display worker owns one per display; the methods here are pure pixel
operations and the worker decides where they run (large ones in a thread).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from domain.geometry import Box

Pixels = npt.NDArray[np.uint8]


def color_to_bgrx(color: int) -> tuple[int, int, int, int]:
    """0x00RRGGBB as the four bytes of one 32_xRGB pixel."""
    return (color & 0xFF, color >> 8 & 0xFF, color >> 16 & 0xFF, 0)


class Surface:
    def __init__(self, width: int, height: int) -> None:
        if not (0 < width <= 16384 and 0 < height <= 16384):
            raise ValueError(f"surface size {width}x{height} out of range")
        self.width = width
        self.height = height
        self.pixels: Pixels = np.zeros((height, width, 4), dtype=np.uint8)

    @property
    def box(self) -> Box:
        return Box(0, 0, self.width, self.height)

    def clip(self, box: Box) -> Box:
        return box.intersect(self.box)

    def put(self, x: int, y: int, src: Pixels) -> Box:
        """Copy ``src`` (h, w, 4) with its top-left at (x, y), clipped; returns the area."""
        h, w = src.shape[:2]
        area = self.clip(Box(x, y, w, h))
        if not area.empty:
            sx, sy = area.x - x, area.y - y
            self.pixels[area.y : area.bottom, area.x : area.right] = src[
                sy : sy + area.h, sx : sx + area.w
            ]
        return area

    def fill(self, box: Box, color: int) -> Box:
        area = self.clip(box)
        if not area.empty:
            self.pixels[area.y : area.bottom, area.x : area.right] = color_to_bgrx(color)
        return area

    def copy_bits(self, src_x: int, src_y: int, dest: Box) -> Box:
        """Copy the area of ``dest``'s size at (src_x, src_y) onto ``dest`` (overlap-safe).
        Both must lie inside the surface; returns the destination (empty when not)."""
        src = Box(src_x, src_y, dest.w, dest.h)
        if dest.empty or not self.box.contains(dest) or not self.box.contains(src):
            return Box(0, 0, 0, 0)
        block = self.pixels[src.y : src.bottom, src.x : src.right].copy()
        self.pixels[dest.y : dest.bottom, dest.x : dest.right] = block
        return dest

    def read(self, box: Box) -> bytes:
        """The rows of ``box`` as tightly packed BGRX bytes (stride 4 * w)."""
        return self.pixels[box.y : box.bottom, box.x : box.right].tobytes()

    def read_into(self, box: Box, out: Pixels) -> memoryview:
        """Copy ``box`` into the front of ``out`` (a flat uint8 buffer of at least 4 * area
        bytes) and return a view of those bytes. ``np.copyto`` releases the GIL and reusing
        ``out`` avoids faulting in fresh pages for every frame."""
        size = box.w * box.h * 4
        view = out[:size].reshape(box.h, box.w, 4)
        np.copyto(view, self.pixels[box.y : box.bottom, box.x : box.right])
        return memoryview(out[:size].data)
