"""The display's thread hop: the function runs in another thread, its result or its error
comes back, a cancel waits for it to finish, and a limiter's token is held only meanwhile."""

from __future__ import annotations

import threading

import pytest
import trio

from spice.adapters.thread_hop import run_in_thread


async def test_the_function_runs_in_a_worker_thread_and_its_result_comes_back() -> None:
    here = threading.get_ident()
    ident = await run_in_thread(threading.get_ident)
    assert ident != here
    assert await run_in_thread(lambda: 6 * 7) == 42


async def test_its_error_is_raised_in_the_task() -> None:
    def boom() -> None:
        raise ValueError("in the thread")

    with pytest.raises(ValueError, match="in the thread"):
        await run_in_thread(boom)


async def test_a_cancel_waits_until_the_function_is_done() -> None:
    """The function works on the surface under its lock: the task may not leave before it
    ends, even when cancelled (as ``trio.to_thread.run_sync`` by default)."""
    started, release = threading.Event(), threading.Event()
    finished: list[bool] = []

    def work() -> str:
        started.set()
        release.wait(5)
        finished.append(True)
        return "done"

    got: list[str] = []
    scope = trio.CancelScope()
    left = trio.Event()

    async def hop() -> None:
        with scope:
            got.append(await run_in_thread(work))
            await trio.sleep(10)  # the deferred cancel lands here
        left.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hop)
        await trio.to_thread.run_sync(started.wait)
        scope.cancel()
        await trio.sleep(0.05)
        assert not finished and not left.is_set()  # still parked in the hop
        release.set()
    assert left.is_set() and scope.cancelled_caught
    assert finished == [True] and got == ["done"]


async def test_a_limiter_token_is_held_while_the_function_runs() -> None:
    limiter = trio.CapacityLimiter(1)
    seen: list[int] = []
    await run_in_thread(lambda: seen.append(limiter.borrowed_tokens), limiter=limiter)
    assert seen == [1] and limiter.borrowed_tokens == 0

    def boom() -> None:
        raise RuntimeError

    with pytest.raises(RuntimeError):
        await run_in_thread(boom, limiter=limiter)
    assert limiter.borrowed_tokens == 0


async def test_hops_beyond_the_limiter_wait_their_turn() -> None:
    limiter = trio.CapacityLimiter(1)
    running, peak = 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        threading.Event().wait(0.02)
        with lock:
            running -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(lambda: run_in_thread(work, limiter=limiter))
    assert peak == 1
