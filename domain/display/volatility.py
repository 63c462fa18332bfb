"""Which parts of a display a client keeps getting lossless images of: content redrawn many
times a second that does not stream (flat, synthetic animation in ``filter`` mode, a fast
terminal, a spinner larger than a cursor).

Two things follow for such an area. Its images are not worth a slot in the client's image
cache, nor the digest that names them (SHA-256 of every pixel: 2.4 ms for a 1280x720 area
here, as much as encoding it as LZ4): they are sent uncached and undigested. And where the
link has room, they go as LZ4, which encodes about 2.5x faster than LZ_RGB for about 1.4x the
bytes, so a client on a fast link gets the frame rate the CPU allows rather than the one the
compact codec allows.

Each tile of ``TILE`` x ``TILE`` pixels keeps a rate of images sent over it, decayed with time
constant ``TAU``: an area whose tiles average ``VOLATILE_RATE`` images per second or more is
volatile. Pure: time is passed in.
"""

from __future__ import annotations

import numpy as np

from spice.domain.geometry import Box

TILE = 64
#: Decay time constant of the per-tile rate, in seconds.
TAU = 0.5
#: Images per second over an area from which it counts as volatile (a blinking cursor or a
#: ticking clock stays below; video-rate redraws are far above).
VOLATILE_RATE = 6.0


class Volatility:
    """Per-tile send rates of one client's surface."""

    def __init__(self, width: int, height: int) -> None:
        rows, cols = -(-height // TILE), -(-width // TILE)
        #: Decayed count of images per tile as of ``_stamp``; rate = count / TAU.
        self._count = np.zeros((rows, cols), np.float64)
        self._stamp = np.zeros((rows, cols), np.float64)

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

    def rate(self, box: Box, now: float) -> float:
        """Images per second sent over ``box`` lately (its tiles' mean)."""
        span = self._span(box)
        if span is None:
            return 0.0
        return float(self._decayed(span, now).mean()) / TAU

    def volatile(self, box: Box, now: float) -> bool:
        return self.rate(box, now) >= VOLATILE_RATE
