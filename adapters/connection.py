"""One linked channel connection: a stream, its channel machine and one writer at a time.

The reader feeds the machine and hands events to a callback; every write goes through a lock
(a reader's automatic answers, such as motion acks, and a writer task both write) and a
deadline, so a client that stops reading is dropped instead of stalling its session forever.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from spice.adapters.quick_lock import QuickLock
from spice.adapters.sniff import ReplayStream
from spice.domain.channel import ChannelConnection
from spice.domain.link import NEED_DATA
from spice.domain.messages.base import Pong

log = logging.getLogger(__name__)

#: How long one write may stay blocked before the client counts as gone (the reference server
#: drops a client whose main channel stays blocked for 30 s).
DEFAULT_SEND_TIMEOUT = 30.0
RECEIVE_SIZE = 65536
#: Client messages handled before the reader lets other tasks run.
EVENTS_PER_TURN = 64
#: Buffers per ``sendmsg`` (Linux takes up to 1024, IOV_MAX).
GATHER_MAX = 512


def _plain_socket(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The socket ``stream`` writes to unchanged (plain TCP, perhaps behind the replay of
    sniffed bytes), or None (TLS, WebSocket, anything else)."""
    while isinstance(stream, ReplayStream):
        stream = stream.stream
    if isinstance(stream, trio.SocketStream) and hasattr(stream.socket, "sendmsg"):
        return stream.socket
    return None


def ping_stamp() -> int:
    """The timestamp our PINGs carry: Trio's clock in nanoseconds (the display machine stamps
    its probes with the same clock, passed in as seconds)."""
    return int(trio.current_time() * 1e9)


class ClientGone(Exception):
    """The peer closed, reset, or stopped reading for longer than the send timeout.
    ``by_peer``: the peer closed or reset the connection (routine when a client quits), as
    opposed to the server giving up on it."""

    def __init__(self, message: str, *, by_peer: bool = False) -> None:
        super().__init__(message)
        self.by_peer = by_peer


class Wakeup:
    """A level-triggered wake-up for one waiting task: ``set`` any number of times, ``wait``
    returns once per burst of sets."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = trio.Event()


class Connection:
    def __init__(
        self,
        stream: trio.abc.Stream,
        machine: ChannelConnection,
        *,
        label: str,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
        max_output: int | None = None,
    ) -> None:
        self.stream = stream
        #: Bytes the machine may have queued for writing: more means the client cannot keep
        #: up with what it asks for, and it is dropped rather than buffered for.
        self.max_output = max_output
        self.machine = machine
        self.label = label
        self.send_timeout = send_timeout
        self._send_lock = QuickLock()
        #: The TCP socket when the stream writes to it as it is (no TLS or WebSocket
        #: framing in between): then a flush writes all its parts at once.
        self._socket = _plain_socket(stream)
        #: Set whenever something arrives that may unblock a writer (acks, init).
        self.received = Wakeup()
        self.bytes_sent = 0
        #: Seconds of the last PING's round trip, once one was answered.
        self.round_trip: float | None = None
        #: Round trips of the last few PINGs by id, and a wake-up when one is answered.
        self.pongs: dict[int, float] = {}
        self.pong_arrived = Wakeup()

    async def flush(self) -> None:
        """Write everything the machine has queued."""
        async with self._send_lock:
            parts = self.machine.data_to_send()
            if not parts:
                return
            if self.max_output is not None:
                queued = sum(len(part) for part in parts)
                if queued > self.max_output:
                    raise ClientGone(
                        f"{self.label}: {queued} bytes queued for writing, over the limit of "
                        f"{self.max_output}; closing"
                    )
            try:
                with trio.fail_after(self.send_timeout):
                    if self._socket is not None:
                        await self._send_gathered(self._socket, parts)
                    else:
                        for part in parts:
                            await self.stream.send_all(part)
                            self.bytes_sent += len(part)
            except trio.TooSlowError:
                raise ClientGone(f"{self.label}: client stopped reading") from None
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise ClientGone(
                    f"{self.label}: {exc or 'connection lost'}", by_peer=True
                ) from None

    async def _send_gathered(
        self, sock: trio.socket.SocketType, parts: list[bytes | memoryview]
    ) -> None:
        """Write ``parts`` with as few system calls as the socket takes: a message's header,
        its fields and its image go in one ``sendmsg``, so they leave in one segment rather
        than one tiny segment each (and the client's reader wakes once)."""
        views = [memoryview(part).cast("B") for part in parts]
        first = 0
        while first < len(views):
            sent = await sock.sendmsg(views[first : first + GATHER_MAX])
            self.bytes_sent += sent
            while first < len(views) and sent >= len(views[first]):
                sent -= len(views[first])
                first += 1
            if sent:
                views[first] = views[first][sent:]

    async def read_loop(self, on_event: Callable[[Any], Awaitable[None]]) -> None:
        """Decode what the machine already holds (bytes that came with the ticket), then read
        until EOF; hand each event to ``on_event`` and flush automatic answers. Protocol errors
        propagate (the caller logs and closes)."""
        while True:
            handled = 0
            while (event := self.machine.next_event()) is not NEED_DATA:
                handled += 1
                if handled % EVENTS_PER_TURN == 0:
                    # A read holds thousands of small messages: let other clients run.
                    await trio.lowlevel.checkpoint()
                if isinstance(event, Pong):
                    # Our PINGs carry ping_stamp(): Trio's clock in ns.
                    now = trio.current_time()
                    self.round_trip = now - event.timestamp / 1e9
                    self.machine.on_round_trip(self.round_trip, now)
                    self.pongs[event.id] = self.round_trip
                    while len(self.pongs) > 8:
                        del self.pongs[next(iter(self.pongs))]
                    self.pong_arrived.set()
                    continue
                await on_event(event)
            self.received.set()
            await self.flush()
            try:
                data = await self.stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ClientGone(
                    f"{self.label}: {exc or 'connection lost'}", by_peer=True
                ) from None
            if not data:
                raise ClientGone(f"{self.label}: closed by peer", by_peer=True)
            self.machine.receive_data(data)

    async def aclose(self) -> None:
        with trio.move_on_after(1) as scope:
            scope.shield = True
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self.stream.aclose()
