"""A Trio lock whose uncontended acquire does not yield.

``trio.Lock`` makes every ``async with`` a checkpoint: even when nobody holds it, the task
goes back through the scheduler once. On the display path a frame takes four such locks
(the apply, the surface twice, the writer's send), each a scheduler pass for nothing. This
one takes a free lock at once and waits, in ``trio.Lock``'s order, only when it is held or
others wait; a task that must notice cancellation does so at its next real wait.
"""

from __future__ import annotations

from types import TracebackType

import trio


class QuickLock:
    def __init__(self) -> None:
        self._lock = trio.Lock()

    async def __aenter__(self) -> None:
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()
