"""Port channels (the C server's spicevmc channel over a port char device): the application's
side of each named port (:class:`PortEndpoint`, a Trio byte stream with events) and the runner
of one client's port connection (:func:`run_port`).

One client at a time holds a port, as in the C server: a second client's port connection is
refused with one log line while the first is attached. Bytes from the client wait in a buffer
of at most :data:`RECEIVE_BUFFER` bytes; past that the connection's reader stops reading, so a
client writing faster than the application reads is slowed by TCP, never buffered without
bound. Events wait in a queue of :data:`EVENT_QUEUE`; an application that never reads them
loses the oldest (said once in the log).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import trio

from spice.adapters.channels.context import ChannelContext
from spice.adapters.connection import ClientGone, Connection, Wakeup
from spice.adapters.link import Linked
from spice.domain.channels.port import PortChannel, PortData
from spice.domain.channels.registry import KINDS, ChannelSetup
from spice.domain.enums import ChannelType
from spice.domain.input_events import InputClient
from spice.domain.messages.port import ClientPortEvent
from spice.domain.port_events import PortAppEvent, PortClosed, PortEventReceived, PortOpened

log = logging.getLogger(__name__)

#: Client bytes a port holds for the application before its reader stops reading.
RECEIVE_BUFFER = 1024 * 1024
#: Application bytes queued for the client per write (the rest waits for that to go out).
SEND_SLICE = 256 * 1024
#: Events a port holds for an application that does not read them.
EVENT_QUEUE = 64


class _Attached:
    """The one client connection a port is attached to."""

    def __init__(self, conn: Connection, client: InputClient | None) -> None:
        self.conn = conn
        self.client = client
        self.gone = False
        #: Set when the application closes or reopens the port.
        self.app_changed = Wakeup()


class PortEndpoint:
    """The application's side of one named port: ``send_all`` to the client that holds it
    (waiting for one), ``receive_some`` what a client wrote, ``events`` for opened/closed."""

    def __init__(self, channel_id: int, name: str) -> None:
        self.channel_id = channel_id
        self.name = name
        self.opened = True
        self._attached: _Attached | None = None
        self._attached_changed = Wakeup()
        self._incoming: deque[bytes] = deque()
        self._incoming_bytes = 0
        self._readable = Wakeup()
        self._drained = Wakeup()
        self._events: deque[PortAppEvent] = deque()
        self._events_arrived = Wakeup()
        self._events_dropped = False
        self._send_lock = trio.Lock()

    # -- the application's side ----------------------------------------------------------
    @property
    def client(self) -> InputClient | None:
        """The client that holds the port now, if any."""
        return self._attached.client if self._attached is not None else None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        async with self._send_lock:
            while True:
                self._check_open()
                attached = self._attached
                if attached is not None:
                    break
                await self._attached_changed.wait()
            machine = attached.conn.machine
            assert isinstance(machine, PortChannel)
            view = memoryview(data).cast("B")
            # A slice at a time: a huge write is never copied whole into the send queue.
            for start in range(0, len(view), SEND_SLICE):
                if attached.gone:
                    raise trio.BrokenResourceError(f"port {self.name}: the client went away")
                machine.send_data(view[start : start + SEND_SLICE])
                try:
                    await attached.conn.flush()
                except ClientGone as exc:
                    # The reader sees the same end and logs it; the bytes did not all arrive.
                    raise trio.BrokenResourceError(f"port {self.name}: {exc}") from None
            if attached.gone:
                raise trio.BrokenResourceError(f"port {self.name}: the client went away")

    async def wait_send_all_might_not_block(self) -> None:
        while self._attached is None:
            self._check_open()
            await self._attached_changed.wait()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        while not self._incoming:
            if not self.opened:
                return b""
            await self._readable.wait()
        chunk = self._incoming.popleft()
        if max_bytes is not None and len(chunk) > max_bytes:
            chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
            self._incoming.appendleft(rest)
        self._incoming_bytes -= len(chunk)
        self._drained.set()
        return chunk

    async def next_event(self) -> PortAppEvent:
        while not self._events:
            await self._events_arrived.wait()
        return self._events.popleft()

    async def events(self) -> AsyncIterator[PortAppEvent]:
        while True:
            yield await self.next_event()

    def close(self) -> None:
        """The application closes its side: the client hears PORT_EVENT CLOSED; waiting
        receivers get EOF, senders ClosedResourceError."""
        self.opened = False
        self._readable.set()
        self._attached_changed.set()
        self._incoming.clear()
        self._incoming_bytes = 0
        self._drained.set()
        if self._attached is not None:
            self._attached.app_changed.set()

    def reopen(self) -> None:
        self.opened = True
        if self._attached is not None:
            self._attached.app_changed.set()

    def _check_open(self) -> None:
        if not self.opened:
            raise trio.ClosedResourceError(f"port {self.name} is closed")

    # -- the session's side --------------------------------------------------------------
    def attach(self, conn: Connection, client: InputClient | None) -> _Attached | None:
        if self._attached is not None:
            return None
        self._attached = _Attached(conn, client)
        self._attached_changed.set()
        self._publish(PortOpened(self.name, client=client))
        return self._attached

    def detach(self, attached: _Attached) -> None:
        attached.gone = True
        if self._attached is attached:
            self._attached = None
            self._publish(PortClosed(self.name, client=attached.client))

    async def deliver(self, data: bytes) -> None:
        """Bytes from the client: wait while the application has a full buffer unread."""
        while self.opened and self._incoming_bytes >= RECEIVE_BUFFER:
            await self._drained.wait()
        if not self.opened:
            return  # as a closed char device: the bytes have nowhere to go
        self._incoming.append(data)
        self._incoming_bytes += len(data)
        self._readable.set()

    def client_event(self, event: int, client: InputClient | None) -> None:
        self._publish(PortEventReceived(self.name, event, client=client))

    def _publish(self, event: PortAppEvent) -> None:
        if len(self._events) >= EVENT_QUEUE:
            self._events.popleft()
            if not self._events_dropped:
                self._events_dropped = True
                log.warning("port %s: events not read; dropping the oldest", self.name)
        self._events.append(event)
        self._events_arrived.set()


class PortHub:
    """Every port the application opened, by channel id (their order of opening)."""

    def __init__(self) -> None:
        self.ports: list[PortEndpoint] = []

    def open(self, name: str) -> PortEndpoint:
        for port in self.ports:
            if port.name == name:
                if port.opened:
                    raise ValueError(f"port {name!r} is already open")
                port.reopen()
                return port
        port = PortEndpoint(len(self.ports), name)
        self.ports.append(port)
        return port

    def channel_ids(self) -> list[int]:
        return [port.channel_id for port in self.ports]


async def run_port(
    ctx: ChannelContext, stream: trio.abc.Stream, linked: Linked, label: str
) -> None:
    """One client's connection to one port, until it ends."""
    port = ctx.ports.ports[linked.request.channel_id]
    client = ctx.handle
    kind = KINDS[ChannelType.PORT]
    machine = kind.make(ChannelSetup(linked.mini_header, linked.request.channel_caps, kind.caps))
    assert isinstance(machine, PortChannel)
    assert isinstance(machine, PortChannel)
    conn = ctx.connection(stream, machine, label, ChannelType.PORT)
    attached = port.attach(conn, client)
    if attached is None:
        log.warning("%s: port %s is held by another client; closing", label, port.name)
        return
    machine.receive_data(linked.trailing)
    machine.start(port.name.encode(), port.opened)
    log.debug("%s: port %s opened by the client", label, port.name)

    async def on_event(event: Any) -> None:
        if isinstance(event, PortData):
            await port.deliver(event.data)
        elif isinstance(event, ClientPortEvent):
            port.client_event(event.event, client)

    async def follow_app() -> None:
        """Tell the client when the application closes or reopens the port."""
        while True:
            await attached.app_changed.wait()
            machine.set_opened(port.opened)
            await conn.flush()

    try:
        await ctx.run_pair(conn, on_event, follow_app)
    finally:
        port.detach(attached)
        log.debug("%s: port %s closed", label, port.name)
