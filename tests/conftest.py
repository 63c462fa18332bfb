"""Shared fixtures: a real trio-spice server on 127.0.0.1, started inside the test's nursery.

``server_factory(**options)`` builds a :class:`spice.Server` with the options given (on top of
test-friendly defaults: loopback, port 0, ticketing off unless a password is given, short
timeouts), adds the displays asked for, starts it and returns it; the server is cancelled with
the test's nursery at teardown. ``server`` is the default one. The bound port is
``server.port_bound``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
import trio

import spice

HOST = "127.0.0.1"

ServerFactory = Callable[..., Awaitable[spice.Server]]

DEFAULTS: dict[str, Any] = {
    "addr": HOST,
    "port": 0,
    "link_timeout": 5.0,
    "send_timeout": 5.0,
}


@pytest.fixture
def server_factory(nursery: trio.Nursery) -> ServerFactory:
    async def start(
        *, displays: Sequence[tuple[int, int]] = ((320, 240),), **options: Any
    ) -> spice.Server:
        opts = {**DEFAULTS, "disable_ticketing": options.get("password") is None, **options}
        server = spice.Server(**opts)
        for width, height in displays:
            server.add_display(width, height)
        await nursery.start(server.serve)
        await server.codecs_ready()
        return server

    return start


@pytest.fixture
async def server(server_factory: ServerFactory) -> spice.Server:
    return await server_factory()
