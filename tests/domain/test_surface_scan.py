"""The compiled change scan of Surface.put gives exactly what the numpy form gives: the same
boxes, pixels and tile generations, for whole frames and windows, clipped or not."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spice.domain.display import surface as S
from spice.domain.geometry import Box


@pytest.fixture(autouse=True, scope="module")
def _compiled() -> None:
    S.warm_up()


def _put_both(a: S.Surface, b: S.Surface, x: int, y: int, pixels: np.ndarray) -> None:
    S._scan_ready = True
    got = a.put(x, y, pixels)
    S._scan_ready = False
    try:
        want = b.put(x, y, pixels)
    finally:
        S._scan_ready = True
    assert got == want
    assert np.array_equal(a.pixels, b.pixels)
    assert np.array_equal(a.tiles, b.tiles)


@settings(max_examples=150, deadline=None)
@given(
    size=st.tuples(st.integers(1, 200), st.integers(1, 200)),
    puts=st.lists(
        st.tuples(
            st.integers(-40, 200), st.integers(-40, 200), st.integers(1, 150),
            st.integers(1, 150), st.booleans(), st.integers(0, 2**32 - 1),
        ),
        min_size=1,
        max_size=4,
    ),
)  # fmt: skip
def test_the_compiled_scan_matches_numpy(
    size: tuple[int, int], puts: list[tuple[int, int, int, int, bool, int]]
) -> None:
    w, h = size
    a, b = S.Surface(w, h), S.Surface(w, h)
    for x, y, pw, ph, window, seed in puts:
        rng = np.random.default_rng(seed)
        # Few distinct values: runs of equal pixels, so changes are sparse and scattered.
        pixels = rng.integers(0, 2, (ph, pw + 3, 4), dtype=np.uint8)
        pixels = pixels[:, 2 : 2 + pw] if window else np.ascontiguousarray(pixels[:, :pw])
        _put_both(a, b, x, y, pixels)


def test_a_whole_put_copies_a_changed_frame_whole_and_an_unchanged_one_damages_nothing() -> None:
    rng = np.random.default_rng(1)
    surface = S.Surface(200, 120)
    frame = rng.integers(0, 256, (64, 96, 4), dtype=np.uint8)
    assert surface.put(20, 10, frame, whole=True) == [Box(20, 10, 96, 64)]
    assert np.array_equal(surface.pixels[10:74, 20:116], frame)
    stamp = surface.stamp
    assert surface.put(20, 10, frame.copy(), whole=True) == []  # same pixels: the scan says so
    assert surface.stamp == stamp
    # A change on a row the sample skips is still found (by the scan).
    frame2 = frame.copy()
    frame2[3, 5] ^= 0xFF
    assert surface.put(20, 10, frame2, whole=True) == surface_boxes_of(frame, frame2, 20, 10)
    assert np.array_equal(surface.pixels[10:74, 20:116], frame2)
    # Clipped at the edge like put.
    assert surface.put(150, 100, frame, whole=True) == [Box(150, 100, 50, 20)]
    assert np.array_equal(surface.pixels[100:120, 150:200], frame[:20, :50])


def surface_boxes_of(a: np.ndarray, b: np.ndarray, x: int, y: int) -> list[Box]:
    """What put reports for drawing ``b`` over ``a`` at (x, y) on a surface of its own."""
    reference = S.Surface(200, 120)
    reference.put(x, y, a)
    return reference.put(x, y, b)
