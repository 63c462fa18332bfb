"""The monitors (heads) of one display: rectangles of its primary surface, as the C server
sends them in MONITORS_CONFIG. spice-gtk opens one window per head and shows that part of the
primary in it; spice-html5 shows the whole primary.

An empty layout means "one monitor showing the whole primary", which follows the primary's
size; a layout of rectangles is checked against the primary here, once, for the public API
and the display worker alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from spice.domain.geometry import Box

#: Monitors one display may have (QXL's own limit; spice-gtk accepts up to 256).
MAX_MONITORS = 16


def check_heads(heads: Iterable[Box], width: int, height: int) -> tuple[Box, ...]:
    """``heads`` as a tuple, or ValueError: 1 to :data:`MAX_MONITORS` non-empty rectangles
    that lie on a ``width`` x ``height`` primary (they may overlap: mirrored monitors)."""
    out = tuple(heads)
    if not 1 <= len(out) <= MAX_MONITORS:
        raise ValueError(f"a display has 1 to {MAX_MONITORS} monitors, not {len(out)}")
    whole = Box(0, 0, width, height)
    for i, box in enumerate(out):
        if box.empty or box.x < 0 or box.y < 0 or not whole.contains(box):
            raise ValueError(
                f"monitor {i} ({box.x}, {box.y}, {box.w}x{box.h}) does not lie on the "
                f"{width}x{height} display"
            )
    return out


def side_by_side(count: int, width: int, height: int) -> tuple[Box, ...]:
    """``count`` monitors of ``width`` x ``height`` in a row, left to right."""
    return tuple(Box(i * width, 0, width, height) for i in range(count))


def kept_on_resize(heads: Sequence[Box], width: int, height: int) -> tuple[Box, ...]:
    """The layout after a resize that named none: kept if it still lies on the new primary,
    else back to one monitor showing all of it."""
    whole = Box(0, 0, width, height)
    if heads and all(whole.contains(box) for box in heads):
        return tuple(heads)
    return ()
