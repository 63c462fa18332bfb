"""The X source's pure parts: scan codes to X keycodes, damage to capture boxes, XFixes
cursors to SPICE's pixels, the Xauthority entry of the private Xvfb."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spice.domain.geometry import Box
from spice.domain.scancodes import PAUSE
from spice.domain.sources.cursor import argb_premultiplied_to_bgra
from spice.domain.sources.damage import capture_boxes, changed_tiles, grid_boxes, scan_boxes
from spice.domain.sources.keymap import (
    SCANCODE_TO_EVDEV,
    SCANCODE_TO_US_KEYSYM,
    KeyMapper,
    XKeymap,
)
from spice.domain.sources.xauth import xauthority_entry

# -- key maps ---------------------------------------------------------------------------

# A piece of Xvfb's evdev keymap as GetKeyboardMapping gives it (xmodmap -pke on Debian).
EVDEV_KEYMAP = {
    9: (0xFF1B, 0, 0xFF1B),  # Escape
    10: (ord("1"), ord("!")),
    36: (0xFF0D, 0, 0xFF0D),  # Return
    38: (ord("a"), ord("A")),
    50: (0xFFE1,),  # Shift_L
    65: (0x20,),  # space
    111: (0xFF52,),  # Up
    110: (0xFF50,),  # Home
    127: (0xFF13,),  # Pause (evdev KEY_PAUSE = 119)
}


def keymap(table: dict[int, tuple[int, ...]], min_keycode: int = 8) -> XKeymap:
    rows = [table.get(code, ()) for code in range(min_keycode, 256)]
    width = max(len(r) for r in rows)
    flat = [sym for r in rows for sym in (*r, *(0,) * (width - len(r)))]
    return XKeymap.from_flat(min_keycode, width, flat)


def test_evdev_keymap_maps_keys_by_place() -> None:
    mapper = KeyMapper(keymap(EVDEV_KEYMAP))
    assert mapper.evdev
    assert mapper.keycode(0x01) == 9  # Esc
    assert mapper.keycode(0x02) == 10  # 1
    assert mapper.keycode(0x1E) == 38  # A
    assert mapper.keycode(0x2A) == 50  # left Shift
    assert mapper.keycode(0xE048) == 111  # Up: evdev 103
    assert mapper.keycode(0xE047) == 110  # Home: evdev 102
    assert mapper.keycode(PAUSE) == 127  # evdev 119
    assert mapper.keycode(0x30) is None  # B: not in this keymap at all


def test_place_wins_over_the_layout() -> None:
    # A French (AZERTY) evdev server: the key at US 'Q' carries 'a'. The scan code of that
    # place must press it, whatever character the server's layout gives it.
    table = dict(EVDEV_KEYMAP)
    table[24] = (ord("a"), ord("A"))  # evdev 16 = KEY_Q
    table[38] = (ord("q"), ord("Q"))
    mapper = KeyMapper(keymap(table))
    assert mapper.keycode(0x10) == 24
    assert mapper.keycode(0x1E) == 38


def test_other_keycodes_go_through_keysyms() -> None:
    # The old xfree86 numbering has Up at 98 and no evdev witnesses: look keysyms up.
    table = {9: (0xFF1B,), 36: (0xFF0D,), 38: (ord("a"), ord("A")), 98: (0xFF52,), 65: (0x20,)}
    shifted = {code + 1: syms for code, syms in table.items()}  # keycodes one off evdev's
    mapper = KeyMapper(keymap(shifted))
    assert not mapper.evdev
    assert mapper.keycode(0x01) == 10
    assert mapper.keycode(0x1E) == 39
    assert mapper.keycode(0xE048) == 99
    assert mapper.keycode(0x30) is None


def test_find_prefers_unshifted_columns() -> None:
    km = keymap({20: (0, 0, ord("x")), 30: (ord("x"),)})
    assert km.find(ord("x")) == 30
    assert km.find(0xFFFF) is None


def test_tables_cover_the_same_keys_with_set1_values() -> None:
    assert SCANCODE_TO_EVDEV[0x1C] == 28  # Enter (input-event-codes.h KEY_ENTER)
    assert SCANCODE_TO_EVDEV[0x58] == 88  # F12
    assert SCANCODE_TO_EVDEV[0xE053] == 111  # KEY_DELETE
    assert SCANCODE_TO_EVDEV[0xE05B] == 125  # KEY_LEFTMETA
    assert SCANCODE_TO_US_KEYSYM[0x10] == ord("q")
    assert SCANCODE_TO_US_KEYSYM[0x3B] == 0xFFBE  # F1
    assert SCANCODE_TO_US_KEYSYM[0x44] == 0xFFC7  # F10
    assert set(SCANCODE_TO_US_KEYSYM) <= set(SCANCODE_TO_EVDEV)


def test_short_keymap_reply() -> None:
    assert XKeymap.from_flat(8, 0, []).keysyms == ()
    assert KeyMapper(XKeymap.from_flat(8, 0, [])).keycode(0x1E) is None


# -- damage -----------------------------------------------------------------------------


def test_few_rectangles_are_read_as_they_are_clipped() -> None:
    rects = [Box(10, 10, 10, 10), Box(630, 470, 20, 20), Box(700, 0, 5, 5)]
    assert capture_boxes(rects, 640, 480) == [Box(10, 10, 10, 10), Box(630, 470, 10, 10)]


def test_many_rectangles_merge_on_the_tile_grid() -> None:
    # A line of text: 40 glyph cells of 6x13 at (0, 40)..(240, 53).
    rects = [Box(6 * i, 40, 6, 13) for i in range(40)]
    assert capture_boxes(rects, 640, 480) == [Box(0, 32, 256, 32)]


def test_grid_runs_merge_down_rows_and_clip_to_the_screen() -> None:
    marked = np.zeros((3, 4), dtype=bool)
    marked[0, 1:3] = True
    marked[1, 1:3] = True
    marked[2, 3] = True
    assert grid_boxes(marked, 32, 100, 70) == [Box(32, 0, 64, 64), Box(96, 64, 4, 6)]


def test_scattered_damage_ends_as_one_bounding_box() -> None:
    rects = [Box(64 * i, 64 * (i % 2), 1, 1) for i in range(20)]
    assert capture_boxes(rects, 2000, 200, max_boxes=4) == [Box(0, 0, 1217, 65)]


boxes = st.builds(
    Box,
    st.integers(-50, 700),
    st.integers(-50, 500),
    st.integers(0, 300),
    st.integers(0, 300),
)


@given(st.lists(boxes, max_size=60), st.integers(1, 20))
def test_capture_boxes_cover_every_damaged_pixel(rects: list[Box], max_boxes: int) -> None:
    width, height = 640, 480
    out = capture_boxes(rects, width, height, max_boxes=max_boxes)
    assert len(out) <= max(max_boxes, 1)
    want = np.zeros((height, width), dtype=bool)
    got = np.zeros((height, width), dtype=bool)
    for r in rects:
        c = Box(0, 0, width, height).intersect(r)
        if not c.empty:
            want[c.y : c.bottom, c.x : c.right] = True
    for b in out:
        assert Box(0, 0, width, height).contains(b)
        got[b.y : b.bottom, b.x : b.right] = True
    assert not (want & ~got).any()


def test_tile_scan_finds_a_10x10_change_in_its_tiles() -> None:
    old = np.zeros((480, 640, 4), np.uint8)
    new = old.copy()
    new[100:110, 200:210, 1] = 255
    new[300, 5, 3] = 9  # the pad byte means nothing
    assert changed_tiles(old, new).sum() == 1
    assert scan_boxes(old, new) == [Box(192, 96, 32, 32)]
    assert scan_boxes(old, old) == []
    with pytest.raises(ValueError):
        changed_tiles(old, new[:10])


# -- cursors ----------------------------------------------------------------------------


def test_cursor_words_to_straight_bgra() -> None:
    words = [
        0xFF102030,  # opaque: R 10, G 20, B 30
        0x00000000,  # transparent
        0x80400000,  # half-covered red: premultiplied 0x40 -> straight 0x80
        0x7F7F7F7F,  # half-covered white
    ]
    out = argb_premultiplied_to_bgra(words, 2, 2)
    assert out.shape == (2, 2, 4)
    assert out.tobytes() == bytes(
        [0x30, 0x20, 0x10, 0xFF, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0xFF, 0xFF, 0xFF, 0x7F]
    )
    with pytest.raises(ValueError):
        argb_premultiplied_to_bgra(words, 3, 2)


# -- Xauthority -------------------------------------------------------------------------


def test_xauthority_entry_layout() -> None:
    cookie = bytes(range(16))
    assert xauthority_entry(cookie) == (
        b"\xff\xff"  # FamilyWild
        + b"\x00\x00"  # address
        + b"\x00\x00"  # display number
        + b"\x00\x12MIT-MAGIC-COOKIE-1"
        + b"\x00\x10"
        + cookie
    )
    with pytest.raises(ValueError):
        xauthority_entry(b"x" * 70000)
