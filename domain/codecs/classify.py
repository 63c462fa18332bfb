"""Is an image photographic or flat? A cheap guess that picks between the lossless codecs (and
JPEG, when lossy is allowed) before anything is encoded.

Desktop content (text, widgets, flat fills) repeats pixels: most horizontal neighbours are
equal and few colours occur. Photographs and video have almost no equal neighbours and
change gradually. The C server's "graduality" test samples pixels the same way; this one looks
at up to ``SAMPLE_ROWS`` evenly spaced rows, so it costs about 0.1 ms on a 480x202 area and
0.3 ms on a 1080p frame.
"""

from __future__ import annotations

import numpy as np

from spice.domain.display.surface import Pixels

SAMPLE_ROWS = 48
#: Images smaller than this are never treated as photographic: too little to judge, and
#: the lossless codecs are cheap at that size.
MIN_PHOTO_PIXELS = 64 * 64
#: Share of equal horizontal neighbours above which content is flat.
FLAT_EQUAL_SHARE = 0.30
#: For video, flat content is what has more equal neighbours than this (test patterns and
#: UIs: over 0.9; a mandelbrot zoom: 0.27-0.40; film: under 0.2).
MOTION_EQUAL_SHARE = 0.7
#: A photo's neighbours differ, but mostly by little: the share of small steps among the
#: unequal ones must reach this.
GRADUAL_SHARE = 0.55
_SMALL_STEP = 24


def _neighbours(pixels: Pixels) -> tuple[float, float] | None:
    """(share of equal horizontal neighbours, share of small steps among the unequal ones)
    over sampled rows; None when the image is too small to judge."""
    h, w = pixels.shape[:2]
    if h * w < MIN_PHOTO_PIXELS or w < 8:
        return None
    # Whole rows, then the channels: numpy's fancy index with a channel slice, and a max
    # over a 3-wide last axis, each cost ten times the rest (0.9 ms for a 480x202 area).
    rows = pixels[np.linspace(0, h - 1, min(h, SAMPLE_ROWS)).astype(np.intp)].astype(np.int16)
    diff = np.abs(rows[:, :-1] - rows[:, 1:])
    step = np.maximum(np.maximum(diff[..., 0], diff[..., 1]), diff[..., 2])
    equal = int(np.count_nonzero(step == 0))
    unequal = step.size - equal
    if unequal == 0:
        return equal / step.size, 0.0
    small = int(np.count_nonzero(step <= _SMALL_STEP)) - equal
    return equal / step.size, small / unequal


def is_photographic(pixels: Pixels) -> bool:
    """Guess whether ``pixels`` ((h, w, 4) BGRX) is photographic (natural, gradual content):
    the test for still images, where a wrong "yes" costs QUIC's bytes on flat content."""
    shares = _neighbours(pixels)
    return shares is not None and shares[0] < FLAT_EQUAL_SHARE and shares[1] >= GRADUAL_SHARE


def is_natural_motion(pixels: Pixels) -> bool:
    """The looser test for video (``streaming_video="filter"``): rendered or filmed motion
    (a fractal zoom has flat areas between its gradients) streams; synthetic animation of
    flat colours (a test pattern, a UI) does not."""
    shares = _neighbours(pixels)
    return shares is not None and shares[0] < MOTION_EQUAL_SHARE and shares[1] >= GRADUAL_SHARE
