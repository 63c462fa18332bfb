"""Which parts of a display a client keeps getting lossless images of: content redrawn many
times a second that does not stream (flat, synthetic animation in ``filter`` mode, a fast
terminal, a spinner larger than a cursor).

Where the link has room and the compact codec would fall behind (the client's images come to
many pixels a second: :meth:`Volatility.pixel_rate`), such an area's images go as LZ4, which
encodes about 4x faster than LZ_RGB for about 1.3x the bytes, so a client on a fast link gets
the frame rate the CPU allows rather than the one the compact codec allows. They are still
digested and cached: an animation that loops over a few pictures (a spinner, two pictures in
turn) comes from the client's cache.

Each tile of ``TILE`` x ``TILE`` pixels keeps a rate of images sent over it, decayed with time
constant ``TAU``: an area whose tiles average ``VOLATILE_RATE`` images per second or more is
volatile. So is an area whose tiles all had an image within ``QUICK_REDRAW``: a video's second
frame, asked for while its first is barely out, goes as LZ4 when it is large instead of
waiting for a rate to build up over three compact, slow images. Pure: time is passed in.
"""

from __future__ import annotations

import math

import numpy as np

from spice.domain.geometry import Box

TILE = 64
#: Decay time constant of the per-tile rate, in seconds.
TAU = 0.5
#: Images per second over an area from which it counts as volatile (a blinking cursor or a
#: ticking clock stays below; video-rate redraws are far above).
VOLATILE_RATE = 6.0
#: An area whose tiles all had an image this recently (s) is redrawn faster than a rate can
#: tell yet: the first frames of a video, before three images make it volatile.
QUICK_REDRAW = 1 / 15


class Volatility:
    """Per-tile send rates of one client's surface."""

    def __init__(self, width: int, height: int) -> None:
        rows, cols = -(-height // TILE), -(-width // TILE)
        #: Decayed count of images per tile as of ``_stamp``; rate = count / TAU.
        self._count = np.zeros((rows, cols), np.float64)
        self._stamp = np.zeros((rows, cols), np.float64)
        #: The sum of the tiles' decayed counts as of ``_total_stamp`` (every tile decays
        #: alike, so the sum decays as one count).
        self._total = 0.0
        self._total_stamp = 0.0

    def _span(self, box: Box) -> tuple[slice, slice] | None:
        rows, cols = self._count.shape
        ty0, tx0 = max(0, box.y // TILE), max(0, box.x // TILE)
        ty1, tx1 = min(rows, -(-box.bottom // TILE)), min(cols, -(-box.right // TILE))
        if box.empty or ty0 >= ty1 or tx0 >= tx1:
            return None
        return slice(ty0, ty1), slice(tx0, tx1)

    def _decayed(self, span: tuple[slice, slice], now: float) -> np.ndarray:
        age = np.maximum(now - self._stamp[span], 0.0)
        decayed: np.ndarray = self._count[span] * np.exp(-age / TAU)
        return decayed

    def sent(self, box: Box, now: float) -> None:
        """An image of ``box`` went to the client at ``now`` (s)."""
        span = self._span(box)
        if span is None:
            return
        self._count[span] = self._decayed(span, now) + 1.0
        self._stamp[span] = now
        tiles = (span[0].stop - span[0].start) * (span[1].stop - span[1].start)
        self._total = self._total_decayed(now) + tiles
        self._total_stamp = max(self._total_stamp, now)

    def _total_decayed(self, now: float) -> float:
        return self._total * math.exp(-max(now - self._total_stamp, 0.0) / TAU)

    def pixel_rate(self, now: float) -> float:
        """Pixels a second in the images sent lately, over the whole surface (each image
        counted by the tiles it touches): how much the lossless encoder has to keep up
        with."""
        return self._total_decayed(now) / TAU * TILE * TILE

    def rate(self, box: Box, now: float) -> float:
        """Images per second sent over ``box`` lately (its tiles' mean)."""
        span = self._span(box)
        if span is None:
            return 0.0
        return float(self._decayed(span, now).mean()) / TAU

    def volatile(self, box: Box, now: float) -> bool:
        return self.rate(box, now) >= VOLATILE_RATE

    def redrawn_quickly(self, box: Box, now: float) -> bool:
        """Whether every tile of ``box`` had an image within ``QUICK_REDRAW`` of ``now``:
        another image of it is asked for while the last is barely out."""
        span = self._span(box)
        if span is None:
            return False
        stamps = self._stamp[span]
        return bool(np.all(self._count[span] > 0) and np.all(now - stamps < QUICK_REDRAW))
