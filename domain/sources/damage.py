"""What to read back from a screen: damage rectangles, or a comparison of two frames, turned
into a few boxes.

An X server reports damage as a region: y-x banded rectangles, often hundreds of tiny ones when
a terminal draws text. Each box costs the source one image request, so past
:data:`MAX_BOXES` the rectangles are snapped to a grid of :data:`TILE` pixels and the marked
tiles merged into runs (a row's consecutive tiles, then equal runs of consecutive rows). A
few extra pixels read are cheap: the display surface damages only pixels that really changed,
so what reaches a client is never more than what changed.

Where the server has no Damage extension, the source compares each new frame with the last,
tile by tile (:func:`changed_tiles`), and hands over the same kind of boxes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from spice.domain.geometry import Box

#: Edge of the grid tiles, in pixels.
TILE = 32
#: Damage rectangles read one by one up to this many; more go through the tile grid.
MAX_BOXES = 16


def grid_boxes(marked: npt.NDArray[np.bool_], tile: int, width: int, height: int) -> list[Box]:
    """Boxes covering the marked tiles of a (rows, cols) grid, clipped to width x height:
    runs of marked tiles in each row, then the same run on consecutive rows made one box."""
    boxes: list[Box] = []
    open_runs: dict[tuple[int, int], Box] = {}
    for row in range(marked.shape[0]):
        runs: list[tuple[int, int]] = []
        line = marked[row]
        col, cols = 0, line.shape[0]
        while col < cols:
            if line[col]:
                start = col
                while col < cols and line[col]:
                    col += 1
                runs.append((start, col))
            else:
                col += 1
        still_open: dict[tuple[int, int], Box] = {}
        for run in runs:
            y = row * tile
            h = min(tile, height - y)
            x = run[0] * tile
            w = min(run[1] * tile, width) - x
            prev = open_runs.pop(run, None)
            still_open[run] = Box(x, prev.y, w, prev.h + h) if prev else Box(x, y, w, h)
        boxes.extend(open_runs.values())
        open_runs = still_open
    boxes.extend(open_runs.values())
    return sorted(boxes, key=lambda b: (b.y, b.x))


def capture_boxes(
    rects: Iterable[Box], width: int, height: int, *, max_boxes: int = MAX_BOXES, tile: int = TILE
) -> list[Box]:
    """The boxes to read for damage ``rects`` on a width x height screen: the rectangles
    themselves (clipped) when there are few, else their tiles merged; never more than
    ``max_boxes`` (the bounding box when even the tiles are too many)."""
    screen = Box(0, 0, width, height)
    clipped = [r for r in (screen.intersect(r) for r in rects) if not r.empty]
    if len(clipped) <= max_boxes:
        return clipped
    rows, cols = -(-height // tile), -(-width // tile)
    marked = np.zeros((rows, cols), dtype=bool)
    for r in clipped:
        marked[r.y // tile : -(-r.bottom // tile), r.x // tile : -(-r.right // tile)] = True
    boxes = grid_boxes(marked, tile, width, height)
    if len(boxes) <= max_boxes:
        return boxes
    bound = clipped[0]
    for r in clipped[1:]:
        bound = bound.union(r)
    return [bound]


def changed_tiles(
    old: npt.NDArray[np.uint8], new: npt.NDArray[np.uint8], *, tile: int = TILE
) -> npt.NDArray[np.bool_]:
    """Which tiles of two same-sized (h, w, 4) frames differ (the pad byte ignored)."""
    if old.shape != new.shape:
        raise ValueError("frames of different sizes")
    h, w = new.shape[:2]
    diff = np.any(old[..., :3] != new[..., :3], axis=2)
    rows, cols = -(-h // tile), -(-w // tile)
    padded = np.zeros((rows * tile, cols * tile), dtype=bool)
    padded[:h, :w] = diff
    marked = np.asarray(padded.reshape(rows, tile, cols, tile).any(axis=(1, 3)), dtype=bool)
    return marked


def scan_boxes(
    old: npt.NDArray[np.uint8],
    new: npt.NDArray[np.uint8],
    *,
    max_boxes: int = MAX_BOXES,
    tile: int = TILE,
) -> list[Box]:
    """The boxes in which ``new`` differs from ``old``, on the tile grid (at most
    ``max_boxes``; their bounding box beyond that)."""
    h, w = new.shape[:2]
    boxes = grid_boxes(changed_tiles(old, new, tile=tile), tile, w, h)
    if len(boxes) <= max_boxes:
        return boxes
    bound = boxes[0]
    for b in boxes[1:]:
        bound = bound.union(b)
    return [bound]
