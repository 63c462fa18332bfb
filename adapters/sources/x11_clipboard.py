"""The X display's CLIPBOARD and PRIMARY and the SPICE clients' clipboard as one, both ways,
as spice-vdagent makes them in a guest: a Trio task over
:class:`~adapters.sources.x11_selection.XSelections` (every X call in a worker thread).

- An X program copies: the task reads the selection (UTF-8 text and/or PNG) and hands it to
  the server's clipboard, which every client can then paste.
- A client copies (``ClipboardOffered``): the task takes the X selection with its own window
  and answers X programs' pastes by reading the client's data through the server's clipboard
  (once per copy, then from a cache). The client clears: the task gives the selection up.
- No loops: the X side never reports our own ownership, and the server's clipboard never
  reports the application's own copies as offers.

The server's clipboard is seen through :class:`ClipboardPeer` (``spice.Clipboard`` fits it);
adapters never import the public API. If the X server goes away the task retries, like the
screen source.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

import trio

from spice.adapters.sources.x11_screen import LOST
from spice.adapters.sources.x11_selection import (
    STEP_TIMEOUT,
    OwnerChanged,
    Request,
    XSelections,
)
from spice.domain.agent.app_events import AgentAppEvent, ClipboardCleared, ClipboardOffered
from spice.domain.sources.selection import SELECTION_NAMES, X_SELECTIONS

log = logging.getLogger(__name__)

#: X pastes being answered at once; more are refused at once (each waits on a client).
MAX_PENDING = 8
#: Seconds a client gets to hand over what an X program pastes.
CLIENT_TIMEOUT = 5.0
RETRY = 2.0
T = TypeVar("T")


class ClipboardPeer(Protocol):
    """What the bridge needs of the server's clipboard (``spice.Clipboard``)."""

    async def set(self, contents: Mapping[int, bytes], *, selection: str = ...) -> None: ...

    async def clear(self, *, selection: str = ...) -> None: ...

    async def read(
        self, type: int, *, selection: str = ..., timeout: float = ...
    ) -> bytes | None: ...


class X11Clipboard:
    """Join X display ``display_name``'s selections to ``clipboard``; ``events`` are the
    server's agent events (client copies and clears). ``limit`` bounds each copy."""

    def __init__(
        self,
        display_name: str | None,
        clipboard: ClipboardPeer,
        events: trio.abc.ReceiveChannel[AgentAppEvent],
        *,
        xauthority: str | os.PathLike[str] | None = None,
        limit: int = 16 << 20,
        retry: float = RETRY,
        client_timeout: float = CLIENT_TIMEOUT,
        step_timeout: float = STEP_TIMEOUT,
    ) -> None:
        self.display_name = display_name
        self.clipboard = clipboard
        self.events = events
        self.xauthority = xauthority
        self.limit = limit
        self.retry = retry
        self.client_timeout = client_timeout
        self.step_timeout = step_timeout
        self.x: XSelections | None = None
        self.connected = trio.Event()
        #: Copies passed each way (for tests).
        self.from_x = 0
        self.to_x = 0
        self._owner_lock = trio.CapacityLimiter(1)  # the owner connection: one call at a time
        self._reader_lock = trio.CapacityLimiter(1)
        self._pending = trio.Semaphore(MAX_PENDING)
        self._cache: dict[int, dict[int, bytes | None]] = {}
        self._latest: dict[int, int] = {}  # per selection: the newest X owner change seen
        self._set_from_x: set[int] = set()
        self._wake = trio.Event()
        self._poke = trio.Event()

    @property
    def shown_name(self) -> str:
        return self.display_name or "$DISPLAY"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow_clients)
            started = False
            while True:
                try:
                    x = await trio.to_thread.run_sync(
                        lambda: XSelections(
                            self.display_name,
                            xauthority=self.xauthority,
                            limit=self.limit,
                            step_timeout=self.step_timeout,
                        ),
                        limiter=self._owner_lock,
                    )
                except LOST as exc:
                    if not started:
                        raise
                    log.debug("X display %s: selections unreachable: %r", self.shown_name, exc)
                    await trio.sleep(self.retry)
                    continue
                if not started:
                    task_status.started()
                    started = True
                try:
                    await self._serve(x)
                except LOST as exc:
                    log.info("X display %s: selections lost (%r)", self.shown_name, exc)
                finally:
                    self.x = None
                    self.connected = trio.Event()
                    await trio.to_thread.run_sync(x.close, limiter=self._owner_lock)
                await trio.sleep(self.retry)

    async def _serve(self, x: XSelections) -> None:
        self.x = x
        self.connected.set()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read_owners, x)
            fd = x.fileno()
            while True:
                await self._owner_wait(fd)
                happenings = await self._owner_call(x.poll)
                if not happenings and not x.alive():
                    raise OSError("the X connection closed")
                for happening in happenings:
                    if isinstance(happening, OwnerChanged):
                        self._latest[happening.selection] = happening.timestamp
                        self._wake.set()
                    elif isinstance(happening, Request):
                        self._start_answer(nursery, x, happening)

    async def _owner_wait(self, fd: int) -> None:
        """Until the owner connection's socket is readable, or a call on it may have read
        events into XCB's queue (a reply's read takes the events before it along)."""
        async with trio.open_nursery() as nursery:

            async def readable() -> None:
                await trio.lowlevel.wait_readable(fd)
                nursery.cancel_scope.cancel()

            async def poked() -> None:
                await self._poke.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(readable)
            nursery.start_soon(poked)
        self._poke = trio.Event()

    async def _owner_call(self, fn: Callable[..., T], *args: object) -> T:
        try:
            return await trio.to_thread.run_sync(fn, *args, limiter=self._owner_lock)
        finally:
            self._poke.set()

    # -- X -> clients -----------------------------------------------------------------------

    async def _read_owners(self, x: XSelections) -> None:
        """Read each selection's newest X owner, one at a time; a burst of changes (PRIMARY
        follows every mouse selection) costs one read of the last."""
        done: dict[int, int] = {}
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            for selection, when in list(self._latest.items()):
                if done.get(selection) == when:
                    continue
                done[selection] = when
                await self._take_from_x(x, selection, when)

    async def _take_from_x(self, x: XSelections, selection: int, when: int) -> None:
        name = SELECTION_NAMES[selection]
        owner = await self._owner_call(x.owner_of, selection)
        if owner == 0:
            if selection in self._set_from_x:
                self._set_from_x.discard(selection)
                await self.clipboard.clear(selection=name)
            return
        if owner == x.window:
            return  # a client's copy, ours since
        contents = await trio.to_thread.run_sync(
            x.read_owner, selection, when, limiter=self._reader_lock
        )
        if contents is None or self._latest.get(selection) != when:
            return  # nothing we can share, or already replaced
        try:
            await self.clipboard.set(contents, selection=name)
        except ValueError as exc:
            log.info("X display %s: %s not shared: %s", self.shown_name, name, exc)
            return
        self._set_from_x.add(selection)
        self.from_x += 1

    # -- clients -> X -----------------------------------------------------------------------
    async def _follow_clients(self) -> None:
        with contextlib.suppress(trio.EndOfChannel, trio.ClosedResourceError):
            async for event in self.events:
                if isinstance(event, ClipboardOffered | ClipboardCleared):
                    await self._client_event(event)

    async def _client_event(self, event: ClipboardOffered | ClipboardCleared) -> None:
        x = self.x
        if event.selection not in X_SELECTIONS:
            return
        self._cache.pop(event.selection, None)
        self._set_from_x.discard(event.selection)
        if x is None:
            return
        try:
            if isinstance(event, ClipboardOffered):
                if not (event.has_text or event.has_image):
                    return
                owned = await self._owner_call(x.own, event.selection, event.types)
                if owned:
                    self.to_x += 1
                else:
                    log.info("X display %s: the X server kept its selection", self.shown_name)
            else:
                await self._owner_call(x.disown, event.selection)
        except LOST as exc:
            log.info("X display %s: selection not changed: %r", self.shown_name, exc)

    def _start_answer(self, nursery: trio.Nursery, x: XSelections, request: Request) -> None:
        try:
            self._pending.acquire_nowait()
        except trio.WouldBlock:
            nursery.start_soon(self._answer, x, request, None, False)
            return
        nursery.start_soon(self._answer, x, request, None, True)

    async def _answer(
        self, x: XSelections, request: Request, data: bytes | None, ask: bool
    ) -> None:
        try:
            if ask:
                data = await self._client_data(request.selection, request.type)
            with contextlib.suppress(*LOST):
                await self._owner_call(x.answer, request, data)
        finally:
            if ask:
                self._pending.release()

    async def _client_data(self, selection: int, type_: int) -> bytes | None:
        cache = self._cache.setdefault(selection, {})
        if type_ in cache:
            return cache[type_]
        data = await self.clipboard.read(
            type_, selection=SELECTION_NAMES[selection], timeout=self.client_timeout
        )
        if self._cache.get(selection) is cache:  # not a newer copy meanwhile
            cache[type_] = data
        return data
