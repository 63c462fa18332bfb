"""What ``Display.update`` accepts: numpy BGRX and RGB arrays, PIL images, raw BGRX bytes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spice.display import _owned_bgrx, to_bgrx


def test_rgb_array_becomes_bgrx() -> None:
    rgb = np.array([[[1, 2, 3], [4, 5, 6]]], dtype=np.uint8)
    assert to_bgrx(rgb).tolist() == [[[3, 2, 1, 0], [6, 5, 4, 0]]]


def test_pil_images_of_any_mode() -> None:
    img = Image.new("RGB", (2, 1), (10, 20, 30))
    assert to_bgrx(img).tolist() == [[[30, 20, 10, 0]] * 2]
    rgba = Image.new("RGBA", (1, 1), (10, 20, 30, 40))
    assert to_bgrx(rgba).tolist() == [[[30, 20, 10, 0]]]
    grey = Image.new("L", (1, 1), 77)
    assert to_bgrx(grey).tolist() == [[[77, 77, 77, 0]]]


def test_raw_bgrx_bytes_need_a_size_that_matches() -> None:
    raw = bytes(range(16))
    assert to_bgrx(raw, 2, 2).shape == (2, 2, 4)
    with pytest.raises(ValueError, match="expected 12 bytes"):
        to_bgrx(raw[:13], 3, 1)
    with pytest.raises(ValueError, match="need width and height"):
        to_bgrx(raw)


def test_bad_arrays_are_refused() -> None:
    with pytest.raises(ValueError):
        to_bgrx(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ValueError):
        to_bgrx(np.zeros((2, 2, 4), dtype=np.float32))
    with pytest.raises(TypeError):
        to_bgrx("not an image")


def test_updates_never_alias_the_callers_buffer() -> None:
    frame = np.zeros((4, 4, 4), dtype=np.uint8)
    owned = _owned_bgrx(frame, None, None)
    frame[...] = 9
    assert owned.max() == 0
    buf = bytearray(64)
    owned = _owned_bgrx(buf, 4, 4)
    buf[:] = b"\x09" * 64
    assert owned.max() == 0
