"""The QEMU source's pure parts: pixman formats to BGRX and QEMU key numbers, with vectors
written from pixman.h's PIXMAN_FORMAT and QEMU's D-Bus Keyboard documentation ("xtkbd +
special re-encoding of high bit")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spice.domain.scancodes import PAUSE, KeyEvent
from spice.domain.sources import pixman
from spice.domain.sources.pixman import Layout, PixelFormatError, cursor_to_bgra, to_bgrx
from spice.domain.sources.qemu_keys import (
    CAPS_LOCK,
    NUM_LOCK,
    SCANCODE_TO_QNUM,
    SCROLL_LOCK,
    lock_keys_to_tap,
    qnum_for,
)


def test_format_codes_follow_pixman_format() -> None:
    # bpp << 24 | type << 16 | a << 12 | r << 8 | g << 4 | b; ARGB 2, ABGR 3, BGRA 8, RGBA 9.
    assert pixman.X8R8G8B8 == 0x20020888
    assert pixman.A8R8G8B8 == 0x20028888
    assert pixman.X8B8G8R8 == 0x20030888
    assert pixman.A8B8G8R8 == 0x20038888
    assert pixman.B8G8R8X8 == 0x20080888
    assert pixman.B8G8R8A8 == 0x20088888
    assert pixman.R8G8B8X8 == 0x20090888
    assert pixman.R8G8B8A8 == 0x20098888
    assert pixman.R8G8B8 == 0x18020888
    assert pixman.B8G8R8 == 0x18030888
    assert pixman.R5G6B5 == 0x10020565
    assert pixman.X1R5G5B5 == 0x10020555
    assert pixman.A1R5G5B5 == 0x10021555


#: One pixel, red 0x11, green 0x22, blue 0x33 (and 0x44 in the pad/alpha byte), as it lies in
#: little-endian memory in each format.
PIXEL = {
    pixman.X8R8G8B8: b"\x33\x22\x11\x44",  # 0x44112233
    pixman.A8R8G8B8: b"\x33\x22\x11\x44",
    pixman.X8B8G8R8: b"\x11\x22\x33\x44",  # 0x44332211
    pixman.A8B8G8R8: b"\x11\x22\x33\x44",
    pixman.B8G8R8X8: b"\x44\x11\x22\x33",  # 0x33221144
    pixman.B8G8R8A8: b"\x44\x11\x22\x33",
    pixman.R8G8B8X8: b"\x44\x33\x22\x11",  # 0x11223344
    pixman.R8G8B8A8: b"\x44\x33\x22\x11",
    pixman.R8G8B8: b"\x33\x22\x11",  # 0x112233
    pixman.B8G8R8: b"\x11\x22\x33",  # 0x332211
}


@pytest.mark.parametrize("fmt", sorted(PIXEL), ids=lambda f: pixman.FORMAT_NAMES[f])
def test_eight_bit_formats(fmt: int) -> None:
    data = PIXEL[fmt] * 2
    out = to_bgrx(data, Layout(2, 1, len(data), fmt))
    assert out.shape == (1, 2, 4)
    assert out[0, 0].tolist() == [0x33, 0x22, 0x11, 0]
    assert out[0, 1].tolist() == [0x33, 0x22, 0x11, 0]


def test_sixteen_bit_formats_widen_to_full_scale() -> None:
    # r5g6b5: red 31 = 0xF800, green 63 = 0x07E0, blue 31 = 0x001F, red 16 = 0x8000.
    data = bytes.fromhex("00f8e0071f000080")
    out = to_bgrx(data, Layout(4, 1, 8, pixman.R5G6B5))
    assert out[0, :, :3].tolist() == [[0, 0, 255], [0, 255, 0], [255, 0, 0], [0, 0, 0x84]]
    # x1r5g5b5: red 31 = 0x7C00, green 31 = 0x03E0, blue 31 = 0x001F; the top bit is ignored.
    data = bytes.fromhex("007ce0031f80")
    out = to_bgrx(data, Layout(3, 1, 6, pixman.X1R5G5B5))
    assert out[0, :, :3].tolist() == [[0, 0, 255], [0, 255, 0], [255, 0, 0]]


def test_stride_offset_and_part() -> None:
    # 3x2 x8r8g8b8 with 4 bytes of padding per row, 5 bytes into the buffer.
    rows = [
        b"\x01\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00" + b"\xee" * 4,
        b"\x04\x00\x00\x00\x05\x00\x00\x00\x06\x00\x00\x00" + b"\xee" * 4,
    ]
    data = b"\xff" * 5 + b"".join(rows)
    layout = Layout(3, 2, 16, pixman.X8R8G8B8, offset=5)
    assert to_bgrx(data, layout)[..., 0].tolist() == [[1, 2, 3], [4, 5, 6]]
    assert to_bgrx(data, layout, x=1, y=1, width=2, height=1)[..., 0].tolist() == [[5, 6]]
    # The last row needs no padding after it.
    assert to_bgrx(data[:-4], layout)[..., 0].tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize(
    ("layout", "size"),
    [
        (Layout(2, 2, 8, 0x12345678), 100),  # not a format
        (Layout(2, 2, 8, pixman.X8R8G8B8), 15),  # one byte short
        (Layout(2, 2, 4, pixman.X8R8G8B8), 100),  # rows overlap
        (Layout(2, 2, 8, pixman.X8R8G8B8, offset=2), 16),  # the offset pushes it out
        (Layout(-1, 2, 8, pixman.X8R8G8B8), 100),
    ],
)
def test_layouts_that_do_not_fit_are_refused(layout: Layout, size: int) -> None:
    with pytest.raises(PixelFormatError):
        to_bgrx(bytes(size), layout)


def test_part_outside_the_image_is_refused() -> None:
    with pytest.raises(PixelFormatError):
        to_bgrx(bytes(16), Layout(2, 2, 8, pixman.X8R8G8B8), x=1, width=2)


@given(
    st.integers(1, 9), st.integers(1, 9), st.integers(0, 7), st.sampled_from(sorted(PIXEL)),
    st.binary(min_size=0, max_size=400),
)  # fmt: skip
def test_any_buffer_converts_or_is_refused(w: int, h: int, pad: int, fmt: int, data: bytes) -> None:
    layout = Layout(w, h, w * pixman.bytes_per_pixel(fmt) + pad, fmt)
    try:
        out = to_bgrx(data, layout)
    except PixelFormatError:
        assert len(data) < layout.size
    else:
        assert out.shape == (h, w, 4) and not out[..., 3].any()


def test_cursor_is_argb_in_memory_as_bgra() -> None:
    # 0x80112233: alpha 0x80, red 0x11, green 0x22, blue 0x33.
    out = cursor_to_bgra(b"\x33\x22\x11\x80" * 2, 2, 1)
    assert out.tolist() == [[[0x33, 0x22, 0x11, 0x80]] * 2]
    with pytest.raises(PixelFormatError):
        cursor_to_bgra(b"\x00" * 7, 2, 1)


def test_qemu_key_numbers() -> None:
    assert qnum_for(0x1E) == 0x1E  # A
    assert qnum_for(0x01) == 0x01  # Escape
    assert qnum_for(0x1C) == 0x1C  # Return
    assert qnum_for(0xE01C) == 0x9C  # keypad Enter: E0 1C
    assert qnum_for(0xE048) == 0xC8  # Up
    assert qnum_for(0xE05B) == 0xDB  # left Windows
    assert qnum_for(0xE038) == 0xB8  # right Alt
    assert qnum_for(PAUSE) == 0xC6
    assert qnum_for(0x60) is None
    assert qnum_for(0xE1) is None


def test_every_key_event_has_a_distinct_qemu_number() -> None:
    codes = [c for c in range(0x10000) if _is_key(c)] + [PAUSE]
    numbers = [qnum_for(c) for c in codes]
    assert None not in numbers
    assert all(0 < n < 0x100 for n in numbers if n is not None)
    # Pause shares 0xC6 with E0 46 (Ctrl+Break), as in QEMU's numbering; all others differ.
    assert len(set(numbers)) == len(numbers) - 1
    assert set(SCANCODE_TO_QNUM) == set(codes)


def _is_key(code: int) -> bool:
    try:
        KeyEvent(code, True)
    except ValueError:
        return False
    return True


def test_lock_keys_to_tap() -> None:
    assert lock_keys_to_tap(0, 0) == []
    assert lock_keys_to_tap(0, CAPS_LOCK) == [0x3A]
    assert lock_keys_to_tap(NUM_LOCK | CAPS_LOCK, NUM_LOCK) == [0x3A]
    assert lock_keys_to_tap(0, SCROLL_LOCK | NUM_LOCK | CAPS_LOCK) == [0x46, 0x45, 0x3A]
