"""The public server object: configure, add displays, serve, receive input."""

from __future__ import annotations

import logging
import uuid as uuid_mod
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from adapters import tcp
from adapters.config import ServerConfig
from adapters.core import SpiceCore
from domain.enums import ChannelType
from domain.input_events import InputEvent
from domain.ticket import TicketPolicy
from spice.display import Display

log = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class Server:
    """A SPICE server.

    >>> server = Server(port=5900, disable_ticketing=True)
    >>> display = server.add_display(1024, 768)
    >>> # in a Trio task:  await nursery.start(server.serve); await display.fill(...)

    ``password`` turns on ticketing (``password_expires`` is seconds since the epoch);
    ``disable_ticketing`` lets anyone in. With neither, nobody can log in (as QEMU).
    ``client_mouse`` offers the absolute (client) mouse mode, as a tablet or agent would.
    """

    def __init__(
        self,
        *,
        addr: str | None = "127.0.0.1",
        port: int = 5900,
        password: str | None = None,
        password_expires: float | None = None,
        disable_ticketing: bool = False,
        name: str | None = None,
        uuid: uuid_mod.UUID | str | None = None,
        ipv4_only: bool = False,
        ipv6_only: bool = False,
        client_mouse: bool = True,
        link_timeout: float = 30.0,
        send_timeout: float = 30.0,
        secure_channels: frozenset[ChannelType] = frozenset(),
        plaintext_channels: frozenset[ChannelType] = frozenset(),
    ) -> None:
        self.addr = addr
        self.port = port
        self.ipv4_only = ipv4_only
        self.ipv6_only = ipv6_only
        config = ServerConfig(
            ticket=TicketPolicy(
                password=password, expires_at=password_expires, ticketing=not disable_ticketing
            ),
            name=name,
            uuid=uuid_mod.UUID(str(uuid)) if uuid is not None else None,
            client_mouse=client_mouse,
            link_timeout=link_timeout,
            send_timeout=send_timeout,
            secure_channels=secure_channels,
            plaintext_channels=plaintext_channels,
        )
        self._core = SpiceCore(config)
        self.displays: list[Display] = []
        #: (host, port) pairs actually bound, once serving.
        self.addresses: list[tuple[str, int]] = []

    # -- configuration --------------------------------------------------------------------
    def add_display(self, width: int, height: int) -> Display:
        display = Display(self._core.add_display(width, height))
        self.displays.append(display)
        return display

    def set_password(self, password: str | None, expires: float | None = None) -> None:
        """Change the ticket for new connections (like spice_server_set_ticket)."""
        cfg = self._core.config
        cfg.ticket = TicketPolicy(password=password, expires_at=expires, ticketing=cfg.ticket.ticketing)

    # -- serving ---------------------------------------------------------------------------
    async def serve(self, *, task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled. ``await nursery.start(server.serve)`` returns once
        the sockets are bound (see :attr:`addresses`)."""
        listeners = await tcp.open_listeners(
            self.addr, self.port, ipv4_only=self.ipv4_only, ipv6_only=self.ipv6_only
        )
        self.addresses = tcp.bound_addresses(listeners)
        async with trio.open_nursery() as nursery:
            await nursery.start(self._core.run)
            await nursery.start(tcp.serve, listeners, self._core.handle_connection)
            for host, port in self.addresses:
                log.info("listening on %s:%d", host, port)
            task_status.started(self)

    @property
    def port_bound(self) -> int:
        return self.addresses[0][1]

    def add_client(self, stream: trio.abc.Stream, peer: str = "socket") -> None:
        """Serve a connection accepted elsewhere (spice_server_add_client)."""
        self._core.add_client(stream, peer)

    # -- clients -----------------------------------------------------------------------------
    @property
    def client_count(self) -> int:
        return len(self._core.sessions)

    async def wait_clients_changed(self) -> int:
        """Wait until a client connects or disconnects; returns the new count."""
        await self._core.wait_sessions_changed()
        return self.client_count

    def disconnect_all(self) -> None:
        self._core.disconnect_all()

    async def set_keyboard_leds(self, modifiers: int) -> None:
        """Tell clients the keyboard LEDs: SCROLL_LOCK 1, NUM_LOCK 2, CAPS_LOCK 4."""
        await self._core.set_keyboard_leds(modifiers)

    # -- input ------------------------------------------------------------------------------
    @asynccontextmanager
    async def input_events(self, queue: int = 256) -> AsyncIterator[trio.MemoryReceiveChannel[InputEvent]]:
        """``async with server.input_events() as events: async for event in events: ...``.
        The queue is bounded; a consumer that falls behind slows the clients' input down."""
        receive = self._core.subscribe_input(queue)
        async with receive:
            yield receive

    def on_input(self, callback: Callable[[InputEvent], None]) -> None:
        """Call ``callback(event)`` in the server's Trio thread for every input event."""
        self._core.on_input(callback)
