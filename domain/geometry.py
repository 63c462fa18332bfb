"""Screen rectangles as the application thinks of them: x, y, width, height.

The wire's Rect (top, left, bottom, right) lives in :mod:`domain.messages.display`.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    @property
    def empty(self) -> bool:
        return self.w <= 0 or self.h <= 0

    @property
    def area(self) -> int:
        return 0 if self.empty else self.w * self.h

    def intersect(self, other: Box) -> Box:
        x, y = max(self.x, other.x), max(self.y, other.y)
        r, b = min(self.right, other.right), min(self.bottom, other.bottom)
        return Box(x, y, max(0, r - x), max(0, b - y))

    def overlaps(self, other: Box) -> bool:
        return not self.intersect(other).empty

    def contains(self, other: Box) -> bool:
        return (
            self.x <= other.x
            and self.y <= other.y
            and other.right <= self.right
            and other.bottom <= self.bottom
        )

    def union(self, other: Box) -> Box:
        if self.empty:
            return other
        if other.empty:
            return self
        x, y = min(self.x, other.x), min(self.y, other.y)
        return Box(x, y, max(self.right, other.right) - x, max(self.bottom, other.bottom) - y)

    def bands(self, max_rows: int) -> list[Box]:
        """Split into horizontal bands of at most ``max_rows`` rows, top first."""
        return [
            Box(self.x, y, self.w, min(max_rows, self.bottom - y))
            for y in range(self.y, self.bottom, max_rows)
        ]
