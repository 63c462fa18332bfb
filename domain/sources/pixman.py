"""Pixels in pixman formats (what QEMU's D-Bus display hands over) to the display's BGRX.

A pixman format code is ``bpp << 24 | type << 16 | a << 12 | r << 8 | g << 4 | b`` (pixman.h's
``PIXMAN_FORMAT``): bits per pixel, channel order (ARGB, ABGR, BGRA, RGBA, most significant
channel first) and each channel's width. Pixels are host-endian integers of ``bpp`` bits,
which is little-endian on the hosts this runs on: ``x8r8g8b8`` lies in memory as B, G, R, X,
already the display's layout. Alpha is dropped (a guest's framebuffer is opaque).
"""

from __future__ import annotations

import attrs
import numpy as np
import numpy.typing as npt

TYPE_ARGB, TYPE_ABGR, TYPE_BGRA, TYPE_RGBA = 2, 3, 8, 9


def pixman_format(bpp: int, kind: int, a: int, r: int, g: int, b: int) -> int:
    """pixman.h's ``PIXMAN_FORMAT``."""
    return bpp << 24 | kind << 16 | a << 12 | r << 8 | g << 4 | b


X8R8G8B8 = pixman_format(32, TYPE_ARGB, 0, 8, 8, 8)
A8R8G8B8 = pixman_format(32, TYPE_ARGB, 8, 8, 8, 8)
X8B8G8R8 = pixman_format(32, TYPE_ABGR, 0, 8, 8, 8)
A8B8G8R8 = pixman_format(32, TYPE_ABGR, 8, 8, 8, 8)
B8G8R8X8 = pixman_format(32, TYPE_BGRA, 0, 8, 8, 8)
B8G8R8A8 = pixman_format(32, TYPE_BGRA, 8, 8, 8, 8)
R8G8B8X8 = pixman_format(32, TYPE_RGBA, 0, 8, 8, 8)
R8G8B8A8 = pixman_format(32, TYPE_RGBA, 8, 8, 8, 8)
R8G8B8 = pixman_format(24, TYPE_ARGB, 0, 8, 8, 8)
B8G8R8 = pixman_format(24, TYPE_ABGR, 0, 8, 8, 8)
R5G6B5 = pixman_format(16, TYPE_ARGB, 0, 5, 6, 5)
X1R5G5B5 = pixman_format(16, TYPE_ARGB, 0, 5, 5, 5)
A1R5G5B5 = pixman_format(16, TYPE_ARGB, 1, 5, 5, 5)

#: 8-bit-channel formats: bytes per pixel and where B, G, R sit in a pixel's bytes in memory.
_BYTE_ORDER: dict[int, tuple[int, tuple[int, int, int]]] = {
    X8R8G8B8: (4, (0, 1, 2)),
    A8R8G8B8: (4, (0, 1, 2)),
    X8B8G8R8: (4, (2, 1, 0)),
    A8B8G8R8: (4, (2, 1, 0)),
    B8G8R8X8: (4, (3, 2, 1)),
    B8G8R8A8: (4, (3, 2, 1)),
    R8G8B8X8: (4, (1, 2, 3)),
    R8G8B8A8: (4, (1, 2, 3)),
    R8G8B8: (3, (0, 1, 2)),
    B8G8R8: (3, (2, 1, 0)),
}
#: 16-bit formats: (shift, width) of R, G, B in the pixel.
_PACKED16: dict[int, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = {
    R5G6B5: ((11, 5), (5, 6), (0, 5)),
    X1R5G5B5: ((10, 5), (5, 5), (0, 5)),
    A1R5G5B5: ((10, 5), (5, 5), (0, 5)),
}

FORMAT_NAMES: dict[int, str] = {
    X8R8G8B8: "x8r8g8b8",
    A8R8G8B8: "a8r8g8b8",
    X8B8G8R8: "x8b8g8r8",
    A8B8G8R8: "a8b8g8r8",
    B8G8R8X8: "b8g8r8x8",
    B8G8R8A8: "b8g8r8a8",
    R8G8B8X8: "r8g8b8x8",
    R8G8B8A8: "r8g8b8a8",
    R8G8B8: "r8g8b8",
    B8G8R8: "b8g8r8",
    R5G6B5: "r5g6b5",
    X1R5G5B5: "x1r5g5b5",
    A1R5G5B5: "a1r5g5b5",
}


class PixelFormatError(ValueError):
    """A format this module does not read, or a buffer that does not hold the image."""


@attrs.frozen
class Layout:
    """An image of ``width`` x ``height`` pixels in ``fmt`` with rows ``stride`` bytes apart,
    starting ``offset`` bytes into a buffer."""

    width: int
    height: int
    stride: int
    fmt: int
    offset: int = 0

    @property
    def bytes_per_pixel(self) -> int:
        return bytes_per_pixel(self.fmt)

    @property
    def size(self) -> int:
        """Bytes of the buffer the image needs, from its start (offset included)."""
        if self.height == 0 or self.width == 0:
            return self.offset
        return self.offset + self.stride * (self.height - 1) + self.width * self.bytes_per_pixel


def bytes_per_pixel(fmt: int) -> int:
    if fmt in _BYTE_ORDER:
        return _BYTE_ORDER[fmt][0]
    if fmt in _PACKED16:
        return 2
    raise PixelFormatError(f"pixman format 0x{fmt:08x} is not supported")


def check_layout(layout: Layout, buffer_size: int) -> None:
    """Raise :class:`PixelFormatError` unless the image fits a buffer of ``buffer_size``."""
    bpp = bytes_per_pixel(layout.fmt)
    if min(layout.width, layout.height, layout.stride, layout.offset) < 0:
        raise PixelFormatError(f"negative geometry in {layout}")
    if layout.height > 1 and layout.stride < layout.width * bpp:
        raise PixelFormatError(f"stride {layout.stride} < {layout.width} pixels of {bpp} bytes")
    if layout.size > buffer_size:
        raise PixelFormatError(
            f"{layout.width}x{layout.height} (stride {layout.stride}, offset {layout.offset}) "
            f"needs {layout.size} bytes, the buffer has {buffer_size}"
        )


def to_bgrx(
    data: bytes | bytearray | memoryview | npt.NDArray[np.uint8],
    layout: Layout,
    *,
    x: int = 0,
    y: int = 0,
    width: int | None = None,
    height: int | None = None,
) -> npt.NDArray[np.uint8]:
    """A fresh (h, w, 4) BGRX copy of the part (x, y, width, height) of the image ``layout``
    describes in ``data`` (the whole image by default). Raises :class:`PixelFormatError`."""
    buf = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data.ravel()
    check_layout(layout, buf.size)
    w = layout.width - x if width is None else width
    h = layout.height - y if height is None else height
    if x < 0 or y < 0 or w < 0 or h < 0 or x + w > layout.width or y + h > layout.height:
        raise PixelFormatError(f"part {x},{y} {w}x{h} is outside {layout.width}x{layout.height}")
    out = np.empty((h, w, 4), np.uint8)
    out[..., 3] = 0
    if w == 0 or h == 0:
        return out
    bpp = layout.bytes_per_pixel
    start = layout.offset + y * layout.stride + x * bpp
    rows = np.lib.stride_tricks.as_strided(
        buf[start:], shape=(h, w * bpp), strides=(layout.stride, 1), writeable=False
    )
    if layout.fmt in _BYTE_ORDER:
        px = rows.reshape(h, w, bpp)
        bi, gi, ri = _BYTE_ORDER[layout.fmt][1]
        out[..., 0] = px[..., bi]
        out[..., 1] = px[..., gi]
        out[..., 2] = px[..., ri]
        return out
    value = np.ascontiguousarray(rows).view("<u2").astype(np.uint32)
    for channel, (shift, bits) in zip((2, 1, 0), _PACKED16[layout.fmt], strict=True):
        v = (value >> shift) & ((1 << bits) - 1)
        # Widen to 8 bits by repeating the top bits, so full scale stays full scale.
        out[..., channel] = (v << (8 - bits)) | (v >> (2 * bits - 8))
    return out


def cursor_to_bgra(
    data: bytes | bytearray | memoryview, width: int, height: int
) -> npt.NDArray[np.uint8]:
    """QEMU's cursor (``CursorDefine``: host-endian 32-bit ARGB, straight alpha) as (h, w, 4)
    B, G, R, A. Raises :class:`PixelFormatError` for a size the data does not hold."""
    if width <= 0 or height <= 0 or len(data) < width * height * 4:
        raise PixelFormatError(f"cursor {width}x{height} with {len(data)} bytes of data")
    return np.frombuffer(data, np.uint8, width * height * 4).reshape(height, width, 4).copy()


__all__ = [
    "FORMAT_NAMES",
    "Layout",
    "PixelFormatError",
    "bytes_per_pixel",
    "check_layout",
    "cursor_to_bgra",
    "pixman_format",
    "to_bgrx",
]
