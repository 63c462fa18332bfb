"""The display worker: one task per display that owns its surface and cursor (the C server's
RedWorker thread, as a Trio task).

The application's commands arrive on a bounded memory channel, so a producer faster than the
worker waits instead of growing a queue. The worker applies each command to the surface (large
pixel copies in a thread: numpy releases the GIL) and records it in every attached client's
:class:`~domain.display_pipe.DisplayPipe`, then wakes that client's writer.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import trio

from adapters.connection import Wakeup
from domain.display_pipe import DisplayPipe
from domain.geometry import Box
from domain.messages.cursor import CursorShape
from domain.surface import Pixels, Surface

log = logging.getLogger(__name__)

#: Pixel counts above which a copy runs in a worker thread rather than on the event loop.
THREAD_PIXELS = 64 * 1024
COMMAND_QUEUE = 16
#: Pixel bytes that may wait in the command queue (about four full-HD frames); a producer
#: beyond that waits, so a fast application cannot queue hundreds of megabytes.
QUEUE_BYTES = 32 * 1024 * 1024
CURSOR_QUEUE = 8


@attrs.frozen
class UpdateCmd:
    x: int
    y: int
    pixels: Pixels


@attrs.frozen
class FillCmd:
    box: Box
    color: int


@attrs.frozen
class CopyBitsCmd:
    src_x: int
    src_y: int
    box: Box


@attrs.frozen
class ResizeCmd:
    width: int
    height: int


@attrs.frozen
class CursorSetCmd:
    shape: CursorShape | None
    x: int
    y: int
    visible: bool


@attrs.frozen
class CursorMoveCmd:
    x: int
    y: int


@attrs.frozen
class CursorHideCmd:
    pass


@attrs.frozen
class BarrierCmd:
    """Sets ``done`` once every command before it has been applied."""

    done: trio.Event


Command = (
    UpdateCmd
    | FillCmd
    | CopyBitsCmd
    | ResizeCmd
    | CursorSetCmd
    | CursorMoveCmd
    | CursorHideCmd
    | BarrierCmd
)


@attrs.define
class CursorState:
    shape: CursorShape | None = None
    x: int = 0
    y: int = 0
    visible: bool = True


class DisplayClient:
    """One client's display connection as the worker sees it."""

    def __init__(self) -> None:
        self.pipe = DisplayPipe()
        self.wake = Wakeup()
        self.image_ids = itertools.count(1)
        self._scratch: Pixels | None = None
        #: The client's display connection (for its statistics), once linked.
        self.connection: Any = None

    def scratch(self, nbytes: int) -> Pixels:
        """This client's reusable pixel buffer, at least ``nbytes`` long. The writer builds and
        sends one op at a time, so the buffer is free again when the next op is built."""
        if self._scratch is None or self._scratch.size < nbytes:
            self._scratch = np.empty(nbytes, dtype=np.uint8)
        return self._scratch


class CursorClient:
    """One client's cursor connection: a short queue of cursor commands; a new shape makes
    everything queued before it obsolete, so the queue stays bounded."""

    def __init__(self) -> None:
        self.queue: deque[CursorSetCmd | CursorMoveCmd | CursorHideCmd] = deque()
        self.wake = Wakeup()

    def push(self, cmd: CursorSetCmd | CursorMoveCmd | CursorHideCmd) -> None:
        if isinstance(cmd, CursorSetCmd) or len(self.queue) >= CURSOR_QUEUE:
            self.queue.clear()
        elif (
            isinstance(cmd, CursorMoveCmd)
            and self.queue
            and isinstance(self.queue[-1], CursorMoveCmd)
        ):
            self.queue.pop()
        self.queue.append(cmd)
        self.wake.set()


class DisplayWorker:
    def __init__(self, display_id: int, width: int, height: int) -> None:
        self.display_id = display_id
        self.surface = Surface(width, height)
        self.cursor = CursorState(x=width // 2, y=height // 2)
        self.commands, self._receive = trio.open_memory_channel[Command](COMMAND_QUEUE)
        self._queued_bytes = 0
        self._drained = trio.Event()
        #: Held while pixels move within the surface (COPY_BITS) until the move is recorded in
        #: every pipe, and by a writer while it reads pixels: a read must not see a move that
        #: its pipe does not know about yet, or the client would get the move twice.
        self.surface_lock = trio.Lock()
        self.clients: set[DisplayClient] = set()
        self.cursor_clients: set[CursorClient] = set()

    # -- clients ---------------------------------------------------------------------------
    def attach(self, client: DisplayClient) -> None:
        """A display connection got DISPLAY_INIT: send it the whole primary."""
        client.pipe.new_primary(self.surface.width, self.surface.height, replace=False)
        self.clients.add(client)
        client.wake.set()

    def detach(self, client: DisplayClient) -> None:
        self.clients.discard(client)

    def attach_cursor(self, client: CursorClient) -> None:
        self.cursor_clients.add(client)

    def detach_cursor(self, client: CursorClient) -> None:
        self.cursor_clients.discard(client)

    async def submit(self, cmd: Command) -> None:
        """Queue a command, waiting while the queue is full by count or by pixel bytes."""
        size = cmd.pixels.nbytes if isinstance(cmd, UpdateCmd) else 0
        while self._queued_bytes and self._queued_bytes + size > QUEUE_BYTES:
            await self._drained.wait()
        self._queued_bytes += size
        try:
            await self.commands.send(cmd)
        except BaseException:
            self._release(size)
            raise

    def _release(self, size: int) -> None:
        if size:
            self._queued_bytes -= size
            self._drained.set()
            self._drained = trio.Event()

    # -- the task ----------------------------------------------------------------------------
    async def run(self) -> None:
        async with self._receive:
            async for cmd in self._receive:
                try:
                    await self.apply(cmd)
                finally:
                    self._release(cmd.pixels.nbytes if isinstance(cmd, UpdateCmd) else 0)

    async def apply(self, cmd: Command) -> None:
        surface = self.surface
        if isinstance(cmd, UpdateCmd):
            h, w = cmd.pixels.shape[:2]
            if h * w > THREAD_PIXELS:
                box = await trio.to_thread.run_sync(surface.put, cmd.x, cmd.y, cmd.pixels)
            else:
                box = surface.put(cmd.x, cmd.y, cmd.pixels)
            self._each_pipe(lambda p: p.damage(box))
        elif isinstance(cmd, FillCmd):
            box = surface.clip(cmd.box)
            if box.area > THREAD_PIXELS:
                await trio.to_thread.run_sync(surface.fill, box, cmd.color)
            else:
                surface.fill(box, cmd.color)
            self._each_pipe(lambda p: p.fill(box, cmd.color))
        elif isinstance(cmd, CopyBitsCmd):
            async with self.surface_lock:
                if cmd.box.area > THREAD_PIXELS:
                    box = await trio.to_thread.run_sync(
                        surface.copy_bits, cmd.src_x, cmd.src_y, cmd.box
                    )
                else:
                    box = surface.copy_bits(cmd.src_x, cmd.src_y, cmd.box)
                self._each_pipe(lambda p: p.copy_bits(cmd.src_x, cmd.src_y, box))
        elif isinstance(cmd, ResizeCmd):
            if (cmd.width, cmd.height) != (surface.width, surface.height):
                self.surface = await trio.to_thread.run_sync(
                    _resized, surface, cmd.width, cmd.height
                )
                self._each_pipe(lambda p: p.new_primary(cmd.width, cmd.height, replace=True))
        elif isinstance(cmd, CursorSetCmd):
            self.cursor = CursorState(cmd.shape, cmd.x, cmd.y, cmd.visible)
            self._each_cursor(cmd)
        elif isinstance(cmd, CursorMoveCmd):
            self.cursor.x, self.cursor.y, self.cursor.visible = cmd.x, cmd.y, True
            self._each_cursor(cmd)
        elif isinstance(cmd, CursorHideCmd):
            self.cursor.visible = False
            self._each_cursor(cmd)
        elif isinstance(cmd, BarrierCmd):
            cmd.done.set()

    def _each_pipe(self, record: Callable[[DisplayPipe], None]) -> None:
        for client in self.clients:
            record(client.pipe)
            client.wake.set()

    def _each_cursor(self, cmd: CursorSetCmd | CursorMoveCmd | CursorHideCmd) -> None:
        for client in self.cursor_clients:
            client.push(cmd)


def _resized(surface: Surface, width: int, height: int) -> Surface:
    """A new surface keeping the old content where the two overlap."""
    new = Surface(width, height)
    keep = new.box.intersect(surface.box)
    new.pixels[: keep.h, : keep.w] = surface.pixels[: keep.h, : keep.w]
    return new


def as_bgrx(array: np.ndarray) -> Pixels:
    """Validate an (h, w, 4) uint8 BGRX array, making it C-contiguous."""
    if array.ndim != 3 or array.shape[2] != 4 or array.dtype != np.uint8:
        raise ValueError("pixels must be a uint8 array of shape (height, width, 4), bytes B,G,R,X")
    return np.ascontiguousarray(array)
