"""Running a test client as a child process that speaks JSON lines: a reader task for its
events, a polite shutdown, and a process that is always reaped, whatever the test body does."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import trio


@asynccontextmanager
async def supervised(
    process: trio.Process,
    read_events: Callable[[], Awaitable[None]],
    shutdown: Callable[[], Awaitable[None]],
) -> AsyncIterator[None]:
    """Run ``read_events`` beside the block; afterwards ``shutdown`` (shielded), then kill and
    reap the process and close its pipes. A lone exception from the block is raised as it is,
    not wrapped in the nursery's exception group (the reader never raises)."""
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_events)
            try:
                yield
            finally:
                with trio.CancelScope(shield=True):
                    await shutdown()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        only = group.exceptions[0]
        raise only from only.__cause__
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    await stream.aclose()


async def stop_process(
    process: trio.Process, sig: int = signal.SIGTERM, grace: float = 5.0
) -> None:
    """Send ``sig``, give the process ``grace`` seconds, then kill it; always reaped."""
    if process.returncode is None:
        process.send_signal(sig)
        with trio.move_on_after(grace):
            await process.wait()
    if process.returncode is None:
        process.kill()
    await process.wait()


async def quit_politely(process: trio.Process, grace: float) -> None:
    """Ask a JSON-line probe to quit (and close its stdin), wait ``grace`` seconds, then
    terminate and finally kill it."""
    if process.returncode is None and process.stdin is not None:
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await process.stdin.send_all(b'{"cmd": "quit"}\n')
            await process.stdin.aclose()
    with trio.move_on_after(grace):
        await process.wait()
    await stop_process(process, signal.SIGTERM, 3)
