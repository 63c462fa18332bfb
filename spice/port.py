"""A named port: a byte pipe between the application and a client (SPICE port channel), as
QEMU's ``-chardev spiceport,name=...`` offers one to a guest.

``port = server.open_port("org.example.echo")`` gives a :class:`Port`, a ``trio.abc.Stream``:
``send_all`` writes to the client that holds the port (waiting until one does),
``receive_some`` returns what a client wrote, ``events()`` says when a client opened or closed
it (and its PORT_EVENTs such as BREAK). One client holds a port at a time. Clients see the
ports that were open when they connected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio

from spice.adapters.channels.port import PortEndpoint
from spice.domain.input_events import InputClient
from spice.domain.messages.port import MAX_PORT_NAME
from spice.domain.port_events import PortAppEvent
from spice.errors import ConfigError


def check_port_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a port name is a str, not {type(name).__name__}")
    raw = name.encode()
    if not 1 <= len(raw) <= MAX_PORT_NAME or "\0" in name:
        raise ConfigError(f"a port name is 1 to {MAX_PORT_NAME} UTF-8 bytes without NUL")
    return name


class Port(trio.abc.Stream):
    """The application's side of one named port (see the module's text).

    If the client goes away during ``send_all``, that call raises ``trio.BrokenResourceError``
    (a PortClosed event follows); the port stays usable for the next client. After
    :meth:`aclose` the client hears the port closed, ``receive_some`` returns ``b""`` and
    ``send_all`` raises ``trio.ClosedResourceError``; ``server.open_port`` with the same name
    opens it again.
    """

    def __init__(self, endpoint: PortEndpoint) -> None:
        self._endpoint = endpoint

    @property
    def name(self) -> str:
        return self._endpoint.name

    @property
    def opened(self) -> bool:
        """Whether the application has the port open (until :meth:`aclose`)."""
        return self._endpoint.opened

    @property
    def client(self) -> InputClient | None:
        """The client that holds the port now (a :class:`spice.Client`), or None."""
        return self._endpoint.client

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._endpoint.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._endpoint.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._endpoint.receive_some(max_bytes)

    async def next_event(self) -> PortAppEvent:
        """The next :class:`~spice.domain.port_events.PortOpened`, ``PortClosed`` or
        ``PortEventReceived`` (at most 64 wait; older ones are dropped)."""
        return await self._endpoint.next_event()

    def events(self) -> AsyncIterator[PortAppEvent]:
        """``async for event in port.events(): ...``"""
        return self._endpoint.events()

    async def aclose(self) -> None:
        self._endpoint.close()
        await trio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        state = "open" if self.opened else "closed"
        return f"<spice.Port {self.name!r} {state}>"


__all__ = ["Port", "check_port_name"]
