"""Is an image photographic or flat? A cheap guess that picks between the lossless codecs (and
JPEG, when lossy is allowed) before anything is encoded.

Desktop content (text, widgets, flat fills) repeats pixels: most horizontal neighbours are
equal and few colours occur. Photographs and video have almost no equal neighbours and
change gradually. The C server's "graduality" test samples pixels the same way; this one looks
at up to ``SAMPLE_ROWS`` evenly spaced rows, so it costs well under a millisecond on a 1080p
frame.
"""

from __future__ import annotations

import numpy as np

from domain.display.surface import Pixels

SAMPLE_ROWS = 48
#: Images smaller than this are never treated as photographic: too little to judge, and
#: the lossless codecs are cheap at that size.
MIN_PHOTO_PIXELS = 64 * 64
#: Share of equal horizontal neighbours above which content is flat.
FLAT_EQUAL_SHARE = 0.30
#: A photo's neighbours differ, but mostly by little: the share of small steps among the
#: unequal ones must reach this.
GRADUAL_SHARE = 0.55
_SMALL_STEP = 24


def is_photographic(pixels: Pixels) -> bool:
    """Guess whether ``pixels`` ((h, w, 4) BGRX) is photographic (natural, gradual content)."""
    h, w = pixels.shape[:2]
    if h * w < MIN_PHOTO_PIXELS or w < 8:
        return False
    rows = pixels[np.linspace(0, h - 1, min(h, SAMPLE_ROWS)).astype(np.intp), :, :3]
    left = rows[:, :-1].astype(np.int16)
    right = rows[:, 1:].astype(np.int16)
    step = np.abs(left - right).max(axis=2)
    equal = float((step == 0).mean())
    if equal >= FLAT_EQUAL_SHARE:
        return False
    unequal = step[step > 0]
    if unequal.size == 0:
        return False
    return float((unequal <= _SMALL_STEP).mean()) >= GRADUAL_SHARE
