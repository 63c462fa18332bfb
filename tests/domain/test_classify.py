"""The photo/flat guess: its neighbour statistics against a plain per-pixel reference, and
the verdicts on content whose kind is known."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spice.domain.codecs.classify import (
    _SMALL_STEP,
    SAMPLE_ROWS,
    _neighbours,
    is_natural_motion,
    is_photographic,
)


def _reference(pixels: np.ndarray) -> tuple[float, float]:
    """Equal and small-step shares of horizontal neighbours, pixel by pixel, over the same
    evenly spaced rows."""
    h = pixels.shape[0]
    equal = small = unequal = 0
    for y in np.linspace(0, h - 1, min(h, SAMPLE_ROWS)).astype(np.intp):
        row = pixels[y, :, :3].astype(int)
        for x in range(row.shape[0] - 1):
            step = max(abs(int(a) - int(b)) for a, b in zip(row[x], row[x + 1], strict=True))
            if step == 0:
                equal += 1
            else:
                unequal += 1
                small += step <= _SMALL_STEP
    total = equal + unequal
    return equal / total, (small / unequal if unequal else 0.0)


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(64, 120),
    w=st.integers(64, 100),
    levels=st.sampled_from([2, 8, 40, 256]),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_shares_match_a_per_pixel_count(h: int, w: int, levels: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pixels = (rng.integers(0, levels, (h, w, 4)) * (255 // max(levels - 1, 1))).astype(np.uint8)
    pixels[: h // 2, : w // 2] = pixels[0, 0]  # a flat quarter: equal neighbours
    got = _neighbours(pixels)
    assert got is not None
    want = _reference(pixels)
    assert abs(got[0] - want[0]) < 1e-12 and abs(got[1] - want[1]) < 1e-12


def test_the_verdicts_on_known_content() -> None:
    yy, xx = np.mgrid[0:240, 0:320]
    rng = np.random.default_rng(3)
    photo = np.zeros((240, 320, 4), np.uint8)
    photo[..., :3] = ((xx + 2 * yy)[..., None] // 3 + rng.integers(0, 6, (240, 320, 3))) % 256
    flat = np.full((240, 320, 4), 200, np.uint8)
    flat[::12, :] = 0  # text-like rules on a flat page
    assert is_photographic(photo) and is_natural_motion(photo)
    assert not is_photographic(flat) and not is_natural_motion(flat)
    assert _neighbours(photo[:10, :10]) is None  # too small to judge
