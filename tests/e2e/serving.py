"""Starting a real trio-spice server on 127.0.0.1 inside a test, and comparing what a client
shows with what the application drew."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import trio

import spice


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server in another process)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def read_until(proc: trio.Process, marker: bytes, timeout: float) -> bytes:
    """What ``proc`` printed (its stdout) up to and including ``marker``; fails when it ends
    or takes longer than ``timeout`` seconds first."""
    assert proc.stdout is not None
    output = b""
    with trio.fail_after(timeout):
        while marker not in output:
            chunk = await proc.stdout.receive_some(4096)
            assert chunk, output.decode(errors="replace")
            output += chunk
    return output


async def read_rest(proc: trio.Process, timeout: float = 5.0) -> bytes:
    """What ``proc`` prints on stdout until it closes it, or for ``timeout`` seconds."""
    assert proc.stdout is not None
    output = b""
    with trio.move_on_after(timeout):
        while chunk := await proc.stdout.receive_some(4096):
            output += chunk
    return output


@asynccontextmanager
async def running_server(
    width: int = 320, height: int = 240, **options: Any
) -> AsyncIterator[spice.Server]:
    options.setdefault("disable_ticketing", "password" not in options)
    server = spice.Server(addr="127.0.0.1", port=0, **options)
    server.add_display(width, height)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        await server.codecs_ready()
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


def same_pixels(shown: np.ndarray, expected: np.ndarray) -> bool:
    """Equal in B, G, R (the pad byte of 32_xRGB means nothing)."""
    return shown.shape == expected.shape and bool(np.array_equal(shown[..., :3], expected[..., :3]))


async def wait_same(client: Any, display: spice.Display, timeout: float = 10.0) -> np.ndarray:
    """Poll the client's primary surface until it equals the display's framebuffer."""
    await display.sync()
    expected = display.framebuffer
    shown = None
    with trio.move_on_after(timeout):
        while True:
            shown = await client.screenshot()
            if same_pixels(shown, expected):
                return shown
            await trio.sleep(0.05)
    if shown is None or shown.shape != expected.shape:
        diff = "shape differs"
    else:
        wrong = np.any(shown[..., :3] != expected[..., :3], axis=2)
        diff = f"{int(np.count_nonzero(wrong))} pixels differ"

    raise AssertionError(f"client never showed the framebuffer: {diff}\n{client.describe(30)}")


async def collect_input(events: Any, count: int, timeout: float = 10.0) -> list[Any]:
    """The next ``count`` input events the application receives, leaving out lock-state
    syncs (spice-gtk sends those when it sees fit); fewer if ``timeout`` passes first."""
    got: list[Any] = []
    with trio.move_on_after(timeout):
        while len(got) < count:
            event = await events.receive()
            if not isinstance(event, spice.KeyboardModifiersEvent):
                got.append(event)
    return got
