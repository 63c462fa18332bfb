"""A display the application draws on: the public face of one display worker."""

from __future__ import annotations

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
    ResizeCmd,
    UpdateCmd,
)
from spice.domain.display.pixels import cursor_bgra, owned_bgrx, to_bgrx
from spice.domain.display.surface import Pixels
from spice.domain.geometry import Box
from spice.domain.messages.cursor import CursorShape

#: Pixel counts above which conversions run in a thread.
_THREAD_PIXELS = 64 * 1024

_owned_bgrx = owned_bgrx


class Display:
    """Draw on one display. Every method may be awaited from the server's Trio loop; they wait
    only when the display worker is behind (its command queue is bounded)."""

    def __init__(self, worker: DisplayWorker) -> None:
        self._worker = worker

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
    def framebuffer(self) -> Pixels:
        """A copy of the current content, (h, w, 4) BGRX."""
        return self._worker.surface.pixels.copy()

    async def _send(self, cmd: Command) -> None:
        await self._worker.submit(cmd)

    async def update(
        self, x: int, y: int, image: Any, width: int | None = None, height: int | None = None
    ) -> None:
        """Draw ``image`` with its top-left corner at (x, y). ``image``: a numpy BGRX (h, w, 4)
        or RGB (h, w, 3) uint8 array, a PIL image, or BGRX bytes with ``width`` and ``height``.
        The pixels are copied, so the caller may reuse its buffer at once."""
        small = isinstance(image, np.ndarray) and image.size <= _THREAD_PIXELS * 4
        if small:
            pixels = _owned_bgrx(image, width, height)
        else:
            # Conversion and copy of a large image is pixel work: off the event loop.
            pixels = await trio.to_thread.run_sync(_owned_bgrx, image, width, height)
        await self._send(UpdateCmd(x, y, pixels))

    async def fill(self, x: int, y: int, width: int, height: int, color: int) -> None:
        """Fill a rectangle with ``color`` (0xRRGGBB)."""
        await self._send(FillCmd(Box(x, y, width, height), color & 0xFFFFFF))

    async def copy_rect(
        self, src_x: int, src_y: int, x: int, y: int, width: int, height: int
    ) -> None:
        """Copy the width x height area at (src_x, src_y) to (x, y): scrolling and moving
        windows, sent as COPY_BITS so the client moves pixels it already has."""
        await self._send(CopyBitsCmd(src_x, src_y, Box(x, y, width, height)))

    async def scroll(self, x: int, y: int, width: int, height: int, dy: int, dx: int = 0) -> None:
        """Scroll the content of a rectangle by (dx, dy); the uncovered strip keeps its old
        pixels until the application draws it."""
        box = Box(x, y, width, height)
        dest = box.intersect(Box(x + dx, y + dy, width, height))
        if dest.empty:
            return
        await self.copy_rect(dest.x - dx, dest.y - dy, dest.x, dest.y, dest.w, dest.h)

    async def resize(self, width: int, height: int) -> None:
        """Change the display size; clients get a new primary surface."""
        await self._send(ResizeCmd(width, height))

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
        await self._send(CursorMoveCmd(x, y))

    async def hide_cursor(self) -> None:
        await self._send(CursorHideCmd())

    async def sync(self) -> None:
        """Wait until every command sent so far has been applied to the surface."""
        done = trio.Event()
        await self._send(BarrierCmd(done))
        await done.wait()


__all__ = ["Display", "to_bgrx"]
