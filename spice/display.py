"""A display the application draws on: the public face of one display worker."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import trio

from spice.adapters.display_worker import (
    BarrierCmd,
    Command,
    CopyBitsCmd,
    CursorHideCmd,
    CursorMoveCmd,
    CursorSetCmd,
    DisplayWorker,
    FillCmd,
    MonitorsCmd,
    ResizeCmd,
    UpdateCmd,
)
from spice.domain.display.monitors import MAX_MONITORS, check_heads
from spice.domain.display.pixels import cursor_bgra, owned_bgrx, to_bgrx
from spice.domain.display.surface import Pixels
from spice.domain.geometry import Box
from spice.domain.messages.cursor import CursorShape
from spice.errors import ConfigError

#: Pixel counts above which conversions run in a thread.
_THREAD_PIXELS = 64 * 1024

_owned_bgrx = owned_bgrx

#: The largest display side (as the command's --size); a surface this size is 256 MiB.
MAX_SIDE = 8192
#: Coordinates beyond this are refused at the call rather than clipped (SPICE's are int32).
_MAX_COORD = 1 << 30


def _int(name: str, value: object) -> int:
    """``value`` as an int (numpy integers too), else TypeError naming the argument."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not a bool")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None
    if not -_MAX_COORD <= number <= _MAX_COORD:
        raise ConfigError(f"{name}={number} is out of range")
    return number


def _point16(name: str, value: object) -> int:
    """A pointer coordinate: the cursor channel carries them as int16."""
    number = _int(name, value)
    if not -0x8000 <= number <= 0x7FFF:
        raise ConfigError(f"{name}={number} does not fit the cursor channel's int16")
    return number


def check_size(width: object, height: object) -> tuple[int, int]:
    """A display size, checked: 1 to :data:`MAX_SIDE` pixels a side."""
    w, h = _int("width", width), _int("height", height)
    if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
        raise ConfigError(f"a display is 1 to {MAX_SIDE} pixels a side, not {w}x{h}")
    return w, h


#: A monitor as the application names it: (x, y, width, height) on the display.
Monitor = tuple[int, int, int, int]


def check_monitors(monitors: Iterable[Any], width: int, height: int) -> tuple[Box, ...]:
    """Monitors as (x, y, width, height) rectangles of a ``width`` x ``height`` display,
    checked: 1 to :data:`MAX_MONITORS`, each non-empty and on the display."""
    if isinstance(monitors, (str, bytes)):
        raise TypeError("monitors must be a list of (x, y, width, height) tuples")
    boxes = []
    for i, item in enumerate(monitors):
        try:
            x, y, w, h = item
        except (TypeError, ValueError):
            raise TypeError(f"monitor {i} must be (x, y, width, height), not {item!r}") from None
        boxes.append(
            Box(
                _int(f"monitor {i} x", x),
                _int(f"monitor {i} y", y),
                _int("width", w),
                _int("height", h),
            )
        )
    try:
        return check_heads(boxes, width, height)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _bgrx_as_is(image: Any) -> bool:
    """An array the surface takes without conversion: (h, w, 4) uint8, C-contiguous."""
    return (
        isinstance(image, np.ndarray)
        and image.ndim == 3
        and image.shape[2] == 4
        and image.dtype == np.uint8
        and image.flags.c_contiguous
    )


def _not_negative(name: str, value: object) -> int:
    number = _int(name, value)
    if number < 0:
        raise ConfigError(f"{name} must not be negative, not {number}")
    return number


class Display:
    """Draw on one display. Every method may be awaited from the server's Trio loop; they wait
    only when the display worker is behind (its command queue is bounded).

    Arguments are checked at the call (``TypeError``/``ValueError``), so a bad one never
    reaches the server's tasks. Before the server serves (or after it stopped) the drawing is
    applied at once to the display's content, which clients get when they connect.
    """

    def __init__(self, worker: DisplayWorker, serving: Callable[[], bool] = lambda: True) -> None:
        self._worker = worker
        self._serving = serving
        self._direct = trio.Lock()

    @property
    def id(self) -> int:
        return self._worker.display_id

    @property
    def width(self) -> int:
        return self._worker.surface.width

    @property
    def height(self) -> int:
        return self._worker.surface.height

    @property
    def monitors(self) -> tuple[Monitor, ...]:
        """The monitors clients show, as (x, y, width, height) rectangles of the display, in
        monitor id order: spice-gtk opens a window for each (spice-html5 shows the whole
        display). By default one, all of it."""
        heads = self._worker.heads or (Box(0, 0, self.width, self.height),)
        return tuple((b.x, b.y, b.w, b.h) for b in heads)

    async def set_monitors(self, monitors: Iterable[Monitor]) -> None:
        """Change the monitor layout on the current display size (1 to 16 rectangles that lie
        on it; they may overlap). Clients get a new MONITORS_CONFIG; no pixel is resent."""
        heads = check_monitors(monitors, self.width, self.height)
        await self._send(MonitorsCmd(heads))

    @property
    def framebuffer(self) -> Pixels:
        """A copy of the current content, (h, w, 4) BGRX."""
        return self._worker.surface.pixels.copy()

    async def _send(self, cmd: Command) -> None:
        if self._serving():
            await self._worker.submit(cmd)
            return
        # No worker task runs: its bounded queue would fill and block forever. Apply the
        # command here, in order with other calls made meanwhile.
        async with self._direct:
            await self._worker.apply(cmd)

    async def update(
        self, x: int, y: int, image: Any, width: int | None = None, height: int | None = None
    ) -> None:
        """Draw ``image`` with its top-left corner at (x, y). ``image``: a numpy BGRX (h, w, 4)
        or RGB (h, w, 3) uint8 array, a PIL image, or BGRX bytes with ``width`` and ``height``.
        The pixels are copied, so the caller may reuse its buffer at once."""
        x, y = _int("x", x), _int("y", y)
        # With nothing queued, copied into the surface from the caller's own pixels, once.
        direct = _bgrx_as_is(image) and self._serving()
        if direct and await self._worker.apply_at_once(UpdateCmd(x, y, image)):
            return
        small = isinstance(image, np.ndarray) and image.size <= _THREAD_PIXELS * 4
        if small:
            pixels = _owned_bgrx(image, width, height)
        else:
            # Conversion and copy of a large image is pixel work: off the event loop.
            pixels = await trio.to_thread.run_sync(_owned_bgrx, image, width, height)
        await self._send(UpdateCmd(x, y, pixels))

    async def fill(self, x: int, y: int, width: int, height: int, color: int) -> None:
        """Fill a rectangle with ``color`` (0xRRGGBB)."""
        x, y = _int("x", x), _int("y", y)
        width, height = _not_negative("width", width), _not_negative("height", height)
        color = _int("color", color)
        await self._send(FillCmd(Box(x, y, width, height), color & 0xFFFFFF))

    async def copy_rect(
        self, src_x: int, src_y: int, x: int, y: int, width: int, height: int
    ) -> None:
        """Copy the width x height area at (src_x, src_y) to (x, y): scrolling and moving
        windows, sent as COPY_BITS so the client moves pixels it already has. Both areas
        must lie on the display, or nothing happens."""
        src_x, src_y, x, y = (
            _int(n, v)
            for n, v in zip(("src_x", "src_y", "x", "y"), (src_x, src_y, x, y), strict=True)
        )
        width, height = _not_negative("width", width), _not_negative("height", height)
        await self._send(CopyBitsCmd(src_x, src_y, Box(x, y, width, height)))

    async def scroll(self, x: int, y: int, width: int, height: int, dy: int, dx: int = 0) -> None:
        """Scroll the content of a rectangle by (dx, dy); the uncovered strip keeps its old
        pixels until the application draws it."""
        x, y, dx, dy = _int("x", x), _int("y", y), _int("dx", dx), _int("dy", dy)
        width, height = _not_negative("width", width), _not_negative("height", height)
        box = Box(x, y, width, height)
        dest = box.intersect(Box(x + dx, y + dy, width, height))
        if dest.empty:
            return
        await self.copy_rect(dest.x - dx, dest.y - dy, dest.x, dest.y, dest.w, dest.h)

    async def resize(
        self, width: int, height: int, *, monitors: Iterable[Monitor] | None = None
    ) -> None:
        """Change the display size (1 to :data:`MAX_SIDE` pixels a side); clients get a new
        primary surface. ``monitors`` is the layout on the new size; without it the layout is
        kept if it still fits, else the display becomes one monitor."""
        width, height = check_size(width, height)
        heads = None if monitors is None else check_monitors(monitors, width, height)
        await self._send(ResizeCmd(width, height, heads))

    async def set_cursor(
        self,
        image: Any,
        hot_x: int = 0,
        hot_y: int = 0,
        *,
        x: int | None = None,
        y: int | None = None,
    ) -> None:
        """Set the pointer shape from an (h, w, 4) uint8 array in B, G, R, A order (straight
        alpha) or a PIL image with alpha."""
        x = None if x is None else _point16("x", x)
        y = None if y is None else _point16("y", y)
        bgra = cursor_bgra(image)
        h, w = bgra.shape[:2]
        self._cursor_serial = getattr(self, "_cursor_serial", 0) + 1
        shape = CursorShape(
            unique=(self.id << 24) | self._cursor_serial,
            width=w,
            height=h,
            hot_x=hot_x,
            hot_y=hot_y,
            pixels=bgra.tobytes(),
        )
        cur = self._worker.cursor
        await self._send(
            CursorSetCmd(shape, cur.x if x is None else x, cur.y if y is None else y, True)
        )

    async def move_cursor(self, x: int, y: int) -> None:
        """Move the pointer (clients show this in server mouse mode)."""
        x, y = _point16("x", x), _point16("y", y)
        await self._send(CursorMoveCmd(x, y))

    async def hide_cursor(self) -> None:
        await self._send(CursorHideCmd())

    async def sync(self) -> None:
        """Wait until every command sent so far has been applied to the surface."""
        done = trio.Event()
        await self._send(BarrierCmd(done))
        await done.wait()


__all__ = [
    "MAX_MONITORS",
    "MAX_SIDE",
    "Display",
    "Monitor",
    "check_monitors",
    "check_size",
    "to_bgrx",
]
