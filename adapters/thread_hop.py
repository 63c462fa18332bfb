"""A hop to a worker thread for the display's per-frame work, lighter than
``trio.to_thread.run_sync``.

Every frame of a stream goes to a thread once (the copy into the surface and its JPEG).
``to_thread.run_sync`` pays, on every call, a pass through the scheduler to take its limiter,
a copy of the task's context, and a name for the thread set in the OS through ctypes (half
its cost here, none of it needed). This hop takes a thread from Trio's cache
(``start_thread_soon``), hands the outcome back through the run's token and parks the task
until then. Like ``to_thread.run_sync`` by default, the wait cannot be cancelled: the
function works on the surface under its lock, which must not be released before it is done.
It is only for plain functions that never call back into Trio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import outcome
import trio

T = TypeVar("T")


def _not_cancellable(_raise_cancel: object) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


async def run_in_thread(fn: Callable[[], T], *, limiter: trio.CapacityLimiter | None = None) -> T:
    """``fn()`` in a worker thread; its result, or its exception raised here. With
    ``limiter``, one of its tokens is held while ``fn`` runs (taken at once when one is
    free, without a scheduler pass)."""
    task = trio.lowlevel.current_task()
    token = trio.lowlevel.current_trio_token()
    if limiter is not None:
        try:
            limiter.acquire_on_behalf_of_nowait(task)
        except trio.WouldBlock:
            await limiter.acquire_on_behalf_of(task)
    try:

        def deliver(result: outcome.Outcome[T]) -> None:  # in the worker thread
            token.run_sync_soon(trio.lowlevel.reschedule, task, result)

        trio.lowlevel.start_thread_soon(fn, deliver)
        # The task is resumed with the outcome: its value returned, or its error raised.
        result: T = await trio.lowlevel.wait_task_rescheduled(_not_cancellable)
    finally:
        if limiter is not None:
            limiter.release_on_behalf_of(task)
    return result
