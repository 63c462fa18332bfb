"""A display surface: the server's copy of what clients should see, and what changed when.

Pixels are a numpy array of shape (height, width, 4), bytes B, G, R, X per pixel: the memory
layout of SPICE's 32_xRGB surface format, so a region goes on the wire as BITMAP 32BIT rows
without conversion. The display worker owns one per display; the methods here are pure pixel
operations and the worker decides where they run (large ones in a thread).

Every change stamps the tiles it touches (``TILE`` x ``TILE`` pixels) with a new value of one
surface-wide counter. The content of any box is then a function of the box and the largest
stamp among its tiles, because every later write to those tiles raises that maximum: so
``(box, generation(box), codec)`` names one encoded image exactly, and viewers that ask for the
same box at the same generation share one encode (:mod:`domain.display.encode_cache`).

:meth:`Surface.put` compares before it writes: an application that pushes whole frames only
damages the pixels that changed, as tight boxes per band of tiles.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from spice.domain.geometry import Box

Pixels = npt.NDArray[np.uint8]

#: Side of the square tiles that carry generations (and the height of the bands damage is
#: measured in). 64 keeps the per-tile bookkeeping of a 4K surface at 2,000 entries while a
#: changed text line still damages little more than itself.
TILE = 64
#: ``Surface.put(whole=True)`` compares every this many rows before it copies without a scan.
SAMPLE_ROWS = 8
#: Whether the compiled change scan is loaded (see :func:`warm_up`); until then a put
#: compares with numpy, so the first put never waits for a compile.
_scan_ready = False


def color_to_bgrx(color: int) -> tuple[int, int, int, int]:
    """0x00RRGGBB as the four bytes of one 32_xRGB pixel."""
    return (color & 0xFF, color >> 8 & 0xFF, color >> 16 & 0xFF, 0)


class Surface:
    def __init__(self, width: int, height: int) -> None:
        if not (0 < width <= 16384 and 0 < height <= 16384):
            raise ValueError(f"surface size {width}x{height} out of range")
        self.width = width
        self.height = height
        self.pixels: Pixels = np.zeros((height, width, 4), dtype=np.uint8)
        #: The stamp of the last change to each tile; 0 = never changed since creation.
        self.tiles = np.zeros((-(-height // TILE), -(-width // TILE)), dtype=np.int64)
        #: The last stamp handed out.
        self.stamp = 0

    @property
    def box(self) -> Box:
        return Box(0, 0, self.width, self.height)

    def clip(self, box: Box) -> Box:
        return box.intersect(self.box)

    # -- generations ---------------------------------------------------------------------
    def _tile_span(self, box: Box) -> tuple[slice, slice]:
        return (
            slice(box.y // TILE, -(-box.bottom // TILE)),
            slice(box.x // TILE, -(-box.right // TILE)),
        )

    def tile_cover(self, box: Box) -> Box:
        """``box`` grown to whole tiles: a change inside ``box`` may change the generation
        of any area that overlaps this (generations are kept per tile)."""
        x, y = box.x // TILE * TILE, box.y // TILE * TILE
        return Box(x, y, -(-box.right // TILE) * TILE - x, -(-box.bottom // TILE) * TILE - y)

    def generation(self, box: Box) -> int:
        """The largest stamp among the tiles under ``box`` (clipped): with the box, it names
        the box's content."""
        area = self.clip(box)
        if area.empty:
            return 0
        return int(self.tiles[self._tile_span(area)].max())

    def _touch(self, box: Box) -> None:
        self.stamp += 1
        self.tiles[self._tile_span(box)] = self.stamp

    # -- drawing -------------------------------------------------------------------------
    def put(self, x: int, y: int, src: Pixels, *, whole: bool = False) -> list[Box]:
        """Copy ``src`` (h, w, 4) with its top-left at (x, y), clipped. Returns the boxes whose
        pixels actually changed (tight per band of tiles); unchanged pixels damage nothing.
        ``whole``: the area is expected to change whole (a video frame over its stream): when
        a sample of its rows shows a change, it is copied as it is and returned whole, without
        the per-pixel scan (a quarter of the cost); an unchanged frame is still scanned."""
        h, w = src.shape[:2]
        area = self.clip(Box(x, y, w, h))
        if area.empty:
            return []
        sx, sy = area.x - x, area.y - y
        new = src[sy : sy + area.h, sx : sx + area.w]
        old = self.pixels[area.y : area.bottom, area.x : area.right]
        if whole and _sampled_rows_differ(old, new):
            old[...] = new
            self._touch(area)
            return [area]
        if _scan_ready:
            changed = _put_changes(old, new, area)
        else:
            changed = _changed_boxes(old, new, area)
            if changed:
                old[...] = new
        if changed:
            self.stamp += 1
            for box in changed:
                self.tiles[self._tile_span(box)] = self.stamp
        return changed

    def fill(self, box: Box, color: int) -> Box:
        """Fill ``box`` (clipped) with ``color``; returns the filled area, empty when every
        pixel already had that colour."""
        area = self.clip(box)
        if area.empty:
            return area
        region = self.pixels[area.y : area.bottom, area.x : area.right]
        bgrx = np.array(color_to_bgrx(color), dtype=np.uint8)
        if (region.view(np.uint32) == bgrx.view(np.uint32)[0]).all():
            return Box(area.x, area.y, 0, 0)
        region[...] = bgrx
        self._touch(area)
        return area

    def copy_bits(self, src_x: int, src_y: int, dest: Box) -> Box:
        """Copy the area of ``dest``'s size at (src_x, src_y) onto ``dest`` (overlap-safe).
        Both must lie inside the surface; returns the destination (empty when not)."""
        src = Box(src_x, src_y, dest.w, dest.h)
        if dest.empty or not self.box.contains(dest) or not self.box.contains(src):
            return Box(0, 0, 0, 0)
        block = self.pixels[src.y : src.bottom, src.x : src.right].copy()
        self.pixels[dest.y : dest.bottom, dest.x : dest.right] = block
        self._touch(dest)
        return dest

    def resized(self, width: int, height: int) -> Surface:
        """A new surface of the given size keeping the content where the two overlap; its
        stamps continue this one's, so no (box, generation) of the old names new content."""
        new = Surface(width, height)
        keep = new.box.intersect(self.box)
        new.pixels[: keep.h, : keep.w] = self.pixels[: keep.h, : keep.w]
        new.stamp = self.stamp + 1
        new.tiles[...] = new.stamp
        return new

    # -- reading -------------------------------------------------------------------------
    def read(self, box: Box) -> bytes:
        """The rows of ``box`` as tightly packed BGRX bytes (stride 4 * w)."""
        return self.pixels[box.y : box.bottom, box.x : box.right].tobytes()

    def view(self, box: Box) -> Pixels:
        """The pixels of ``box`` (clipped) in place: valid only while nothing draws."""
        area = self.clip(box)
        return self.pixels[area.y : area.bottom, area.x : area.right]

    def snapshot(self, box: Box) -> Pixels:
        """A C-contiguous copy of ``box`` (clipped), (h, w, 4), never a view: it is encoded
        while the surface goes on changing. The copy releases the GIL."""
        return self.view(box).copy()


def _sampled_rows_differ(old: Pixels, new: Pixels) -> bool:
    """Whether any of every ``SAMPLE_ROWS``-th row differs, looked at row by row: a video
    frame differs within its first rows, so this usually stops after a few kilobytes."""
    return any(old[row].tobytes() != new[row].tobytes() for row in range(0, len(old), SAMPLE_ROWS))


@njit(cache=True, nogil=True)
def _copy_changes(
    old: npt.NDArray[np.uint32],
    new: npt.NDArray[np.uint32],
    y0: int,
    x0: int,
    bounds: npt.NDArray[np.int64],
) -> None:  # pragma: no cover - compiled
    """Write the pixels of ``new`` that differ into ``old`` (both (h, w) uint32 views of
    one area whose top-left is (x0, y0) on the surface), and widen ``bounds[ty, tx]`` (x0, y0,
    x1, y1: surface coordinates, end exclusive) of each tile around the pixels that changed.
    One pass over both arrays."""
    h, w = old.shape
    ty0 = y0 // TILE
    tx0 = x0 // TILE
    for r in range(h):
        y = y0 + r
        ty = y // TILE - ty0
        c = 0
        row_first = w
        row_last = -1
        while c < w:
            x = x0 + c
            end = min(w, (x // TILE + 1) * TILE - x0)
            # The first and last differing pixels of each tile's segment; the row is then
            # copied once from its first to its last (equal pixels in between are copied
            # too: harmless, and a plain copy runs far faster than a branch per pixel).
            first = c
            while first < end and old[r, first] == new[r, first]:
                first += 1
            if first < end:
                last = end - 1
                while old[r, last] == new[r, last]:
                    last -= 1
                row_first = min(row_first, first)
                row_last = last
                tx = x // TILE - tx0
                b = bounds[ty, tx]
                b[0] = min(b[0], x0 + first)
                b[1] = min(b[1], y)
                b[2] = max(b[2], x0 + last + 1)
                b[3] = max(b[3], y + 1)
            c = end
        if row_last >= 0:
            old[r, row_first : row_last + 1] = new[r, row_first : row_last + 1]


def _put_changes(old: Pixels, new: Pixels, area: Box) -> list[Box]:
    """Copy ``new`` over ``old`` (both the pixels of ``area``) where they differ; return tight
    boxes around the changed pixels, one per run of changed tile columns in each band of
    ``TILE`` rows aligned to the surface, vertically adjacent boxes joined where compact."""
    ty0, tx0 = area.y // TILE, area.x // TILE
    rows = -(-area.bottom // TILE) - ty0
    cols = -(-area.right // TILE) - tx0
    bounds = np.empty((rows, cols, 4), np.int64)
    bounds[..., :2] = 1 << 40
    bounds[..., 2:] = -1
    _copy_changes(old.view(np.uint32)[..., 0], new.view(np.uint32)[..., 0], area.y, area.x, bounds)
    boxes: list[Box] = []
    # Runs of consecutive changed tile columns in each band: each run is one box. (Plain
    # Python over the few hundred tiles: numpy's per-call cost would dominate.)
    for band in bounds.tolist():
        run: list[int] | None = None
        for x0, y0, x1, y1 in band:
            if x1 < 0:
                if run is not None:
                    boxes.append(Box(run[0], run[1], run[2] - run[0], run[3] - run[1]))
                    run = None
            elif run is None:
                run = [x0, y0, x1, y1]
            else:
                run[1], run[2], run[3] = min(run[1], y0), x1, max(run[3], y1)
        if run is not None:
            boxes.append(Box(run[0], run[1], run[2] - run[0], run[3] - run[1]))
    return _compact(_join_vertical(boxes))


def warm_up() -> None:
    """Compile (or load from numba's cache) the change scan; puts use it from then on."""
    global _scan_ready
    if _scan_ready:
        return
    # Two compiled forms: contiguous rows (a full-width put, twice as fast) and any layout
    # (a window of the surface), which every other mix converts to: no call compiles.
    for rows in ("uint32[:, ::1]", "uint32[:, :]"):
        _copy_changes.compile(f"void({rows}, {rows}, int64, int64, int64[:, :, ::1])")
    _copy_changes.disable_compile()
    _scan_ready = True


def _changed_boxes(old: Pixels, new: Pixels, area: Box) -> list[Box]:
    """The numpy form of :func:`_put_changes` (without the copy), used until the compiled scan
    is loaded (:func:`warm_up`): the same boxes around the pixels that differ."""
    diff = old.view(np.uint32)[..., 0] != new.view(np.uint32)[..., 0]
    boxes: list[Box] = []
    top = area.y
    while top < area.bottom:
        bottom = min(area.bottom, (top // TILE + 1) * TILE)
        band = diff[top - area.y : bottom - area.y]
        cols = band.any(axis=0)
        if cols.any():
            # Runs of changed tile columns, tightened to the changed pixels.
            x0 = area.x
            tile_of = (np.arange(area.w) + x0) // TILE
            changed_tiles = np.unique(tile_of[cols])
            run_start = prev = int(changed_tiles[0])
            runs: list[tuple[int, int]] = []
            for t in changed_tiles[1:].tolist():
                if t != prev + 1:
                    runs.append((run_start, prev))
                    run_start = t
                prev = t
            runs.append((run_start, prev))
            for first, last in runs:
                lo = max(first * TILE, x0) - x0
                hi = min((last + 1) * TILE, area.right) - x0
                sub_cols = np.flatnonzero(cols[lo:hi])
                rows = np.flatnonzero(band[:, lo:hi].any(axis=1))
                boxes.append(
                    Box(
                        x0 + lo + int(sub_cols[0]),
                        top + int(rows[0]),
                        int(sub_cols[-1] - sub_cols[0]) + 1,
                        int(rows[-1] - rows[0]) + 1,
                    )
                )
        top = bottom
    return _compact(_join_vertical(boxes))


def _compact(boxes: list[Box]) -> list[Box]:
    """One box for the whole change when that wastes little: one image per frame of a video
    or an animation (a client then never shows half of one frame with half of the next), and
    one area for video detection; scattered changes (text lines far apart) stay apart. Many
    pieces (an animation's parts) are joined more readily: each image costs a message."""
    if len(boxes) < 2:
        return boxes
    union = boxes[0]
    for box in boxes[1:]:
        union = union.union(box)
    covered = sum(b.area for b in boxes)
    if union.area <= 2 * covered or (len(boxes) > 4 and union.area <= 4 * covered):
        return [union]
    return boxes


def _join_vertical(boxes: list[Box]) -> list[Box]:
    """Join a box with the one above it when they touch and their union wastes little (a text
    line that straddles a band boundary becomes one image again)."""
    out: list[Box] = []
    for box in boxes:
        for i, prev in enumerate(out):
            if prev.bottom == box.y and prev.overlaps(Box(box.x, box.y - 1, box.w, 1)):
                union = prev.union(box)
                if union.area * 4 <= (prev.area + box.area) * 5:
                    out[i] = union
                    break
        else:
            out.append(box)
    return out
