"""The WebSocket transport: the SPICE byte stream carried in binary WebSocket messages.

spice-html5 (the only WebSocket SPICE client) opens ``new WebSocket(uri, 'binary')``; the
server answers the upgrade with the ``binary`` subprotocol and from then on both sides put
SPICE bytes in binary messages whose boundaries mean nothing. :class:`WebSocketStream` drives
wsproto's sans-I/O machine over the raw stream and is itself a plain :class:`trio.abc.Stream`,
so the link stage and the channels never know which transport carries them. The HTTP stage
(:mod:`adapters.http_static`) has already read and checked the upgrade request;
:func:`serve_websocket` replays it into wsproto, accepts, and runs the SPICE handler.

There is no reader task: the SPICE reader's ``receive_some`` pulls frames, so a peer that
sends faster than it is served is held back by TCP. Since boundaries mean nothing, data frames
go to the reader as each frame ends, never reassembled into messages: memory per connection
is one read and at most one frame (under the message limit).

Limits, each ending the stream with a :class:`trio.BrokenResourceError` whose text says why
(the stage above logs it in its one line about the lost connection):

- a message larger than ``max_message_bytes``: closed with 1009 (Message Too Big), counted as
  the bytes arrive, so a frame that announces more is never buffered;
- a text message: 1003 (Unsupported Data);
- more than :data:`MAX_FRAGMENTS` frames in one message, or :data:`MAX_EMPTY_FRAMES` frames in
  a row that carry no byte (empty data frames, pings, pongs): 1008 (Policy Violation). Browsers
  send each message in one frame; a flood of tiny frames costs the server a parse per frame;
- a frame wsproto cannot parse (unmasked, bad opcode or length): its code (1002, 1007).

Fairness: one ``receive_some`` parses at most :data:`FRAME_BUDGET` frames and then lets other
tasks run, and a connection gets :data:`FRAME_RATE` frames a second (with a burst) before its
reads are paced, so a flood of tiny frames on many connections cannot starve the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable

import trio
from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.handshake import H11Handshake
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

log = logging.getLogger(__name__)

#: The subprotocol spice-html5 asks for (``spiceconn.js``): raw bytes in binary messages.
SUBPROTOCOL = "binary"
#: Seconds to wait for the peer's answer to our close frame before dropping the connection.
CLOSE_TIMEOUT = 2.0
#: How much one read of the socket may take. Clients send little (inputs, acks).
RECEIVE_BYTES = 65536
#: Frames parsed by one ``receive_some`` before other tasks get their turn.
FRAME_BUDGET = 64
#: Frames read while waiting for the peer's answer to our close frame.
CLOSE_FRAME_BUDGET = 256
#: Frames one message may be cut into (browsers never fragment what they send).
MAX_FRAGMENTS = 64
#: Frames in a row that carry no byte of SPICE data (empty frames, pings, pongs).
MAX_EMPTY_FRAMES = 64
#: Frames a second one connection may send, and the burst above that rate; beyond it its reads
#: wait (spice-html5 sends a few hundred at most: mouse motion, acks).
FRAME_RATE = 1000.0
FRAME_BURST = 2000.0

NORMAL_CLOSE = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
NO_STATUS = 1005
ABNORMAL_CLOSURE = 1006
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
_END_OF_FILE = (NORMAL_CLOSE, GOING_AWAY, NO_STATUS, ABNORMAL_CLOSURE)

#: Payloads up to this size go out in one write with their frame header (one copy); larger
#: ones are written after the header without being copied.
COALESCE_BYTES = 65536

SpiceHandler = Callable[[trio.abc.Stream, str], Awaitable[None]]


def binary_frame_header(length: int) -> bytes:
    """The header of one final, unmasked binary frame (RFC 6455 5.2) of ``length`` bytes."""
    if length < 126:
        return bytes((0x82, length))
    if length < 65536:
        return struct.pack("!BBH", 0x82, 126, length)
    return struct.pack("!BBQ", 0x82, 127, length)


class RefusedSubprotocols(ValueError):
    """The client offered subprotocols, none of which carries raw SPICE bytes."""


def choose_subprotocol(offered: list[str] | tuple[str, ...]) -> str | None:
    """``binary`` when offered, nothing when nothing was offered; otherwise refuse (a browser
    fails a connection whose answer names no subprotocol it asked for, and base64, the other
    one websockify knew, is not spoken here)."""
    if SUBPROTOCOL in offered:
        return SUBPROTOCOL
    if not offered:
        return None
    raise RefusedSubprotocols(
        f"subprotocols {', '.join(offered)} offered, only {SUBPROTOCOL} spoken"
    )


class _Closed(Exception):
    """Internal: the WebSocket ended; ``error`` None means end of file."""

    def __init__(self, error: str | None) -> None:
        super().__init__(error)
        self.error = error


class WebSocketStream(trio.abc.Stream):
    """A :class:`trio.abc.Stream` over an open WebSocket (wsproto ``connection``) on ``raw``.

    ``receive_some`` returns the bytes of binary frames as they come (an empty frame is
    skipped, never taken for end of file); ``send_all`` sends one binary message per call.
    :meth:`aclose` closes ``raw`` whatever state the WebSocket is in. Works for both ends
    (a client masks its frames through wsproto; a server writes its frames itself).
    """

    def __init__(
        self, connection: Connection, raw: trio.abc.Stream, *, max_message_bytes: int
    ) -> None:
        self.ws = connection
        self.raw = raw
        self.max_message_bytes = max_message_bytes
        self._client = connection.client
        self._pending = bytearray()
        self._frame = bytearray()
        self._ended: _Closed | None = None
        self._closed = False
        self._send_lock = trio.Lock()
        self._receive_lock = trio.Lock()
        self._message_bytes = 0
        self._fragments = 0
        self._empty_frames = 0
        self._tokens = FRAME_BURST
        self._refilled = trio.current_time()

    # -- receiving ---------------------------------------------------------------------------
    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._closed:
            raise trio.ClosedResourceError("the WebSocket stream was closed")
        async with self._receive_lock:
            while not self._pending:
                if self._ended is not None:
                    if self._ended.error is None:
                        return b""
                    raise trio.BrokenResourceError(self._ended.error)
                try:
                    await self._pump()
                except _Closed as closed:
                    self._ended = closed
            n = len(self._pending) if max_bytes is None else min(max_bytes, len(self._pending))
            chunk = bytes(self._pending[:n])
            del self._pending[:n]
            return chunk

    async def _pump(self) -> None:
        """Parse up to :data:`FRAME_BUDGET` frames, or read once when wsproto needs bytes."""
        frames = 0
        for event in self.ws.events():
            frames += await self._on_event(event)
            if frames >= FRAME_BUDGET:
                await self._pace(frames)
                return
        if frames:
            await self._pace(frames)
            if self._pending:
                return
        try:
            data = await self.raw.receive_some(RECEIVE_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            if self._peer_closed:
                raise _Closed(None) from None
            raise _Closed(f"WebSocket connection lost ({exc or 'reset'})") from None
        if not data:
            # The peer dropped TCP, with or without a close frame (1006): end of file.
            raise _Closed(None)
        if self.ws.state is ConnectionState.CLOSED:
            raise _Closed(None)
        self.ws.receive_data(bytes(data))

    @property
    def _peer_closed(self) -> bool:
        return self.ws.state is ConnectionState.CLOSED

    async def _pace(self, frames: int) -> None:
        """Yield to other tasks, and wait while this connection is over its frame rate."""
        now = trio.current_time()
        self._tokens = min(FRAME_BURST, self._tokens + (now - self._refilled) * FRAME_RATE)
        self._refilled = now
        self._tokens -= frames
        if self._tokens < 0:
            await trio.sleep(-self._tokens / FRAME_RATE)
        else:
            await trio.lowlevel.checkpoint()

    async def _on_event(self, event: Event) -> int:
        """Handle one event; returns how many whole frames it finished."""
        if isinstance(event, BytesMessage):
            data = event.data
            self._message_bytes += len(data)
            if self._message_bytes > self.max_message_bytes:
                await self._fail(
                    MESSAGE_TOO_BIG,
                    f"WebSocket message over {self.max_message_bytes} bytes",
                )
            # A frame's bytes are held until it ends (at most the message limit), so a frame
            # that grows over the limit is refused before SPICE sees any of it.
            self._frame += data
            if not event.frame_finished:
                return 0
            if self._frame:
                self._pending += self._frame
                self._frame.clear()
                self._empty_frames = 0
            else:
                await self._count_empty()
            if event.message_finished:
                self._message_bytes = self._fragments = 0
            else:
                self._fragments += 1
                if self._fragments >= MAX_FRAGMENTS:
                    await self._fail(
                        POLICY_VIOLATION, f"WebSocket message cut into over {MAX_FRAGMENTS} frames"
                    )
            return 1
        if isinstance(event, TextMessage):
            await self._fail(UNSUPPORTED_DATA, "WebSocket text message received")
        if isinstance(event, CloseConnection):
            await self._on_close(event)
        if isinstance(event, Ping):
            await self._count_empty()
            if self.ws.state is ConnectionState.OPEN:
                # After our close frame the peer's pings get no answer (RFC 6455 5.5.2).
                await self._write(self.ws.send(event.response()))
            return 1
        # A pong (we send no pings), or anything else: it carries no data.
        await self._count_empty()
        return 1

    async def _count_empty(self) -> None:
        self._empty_frames += 1
        if self._empty_frames >= MAX_EMPTY_FRAMES:
            await self._fail(
                POLICY_VIOLATION, f"{MAX_EMPTY_FRAMES} WebSocket frames in a row without data"
            )

    async def _on_close(self, event: CloseConnection) -> None:
        code, reason = event.code, event.reason
        if self.ws.state is ConnectionState.REMOTE_CLOSING:
            # The peer's close: answer it. A frame wsproto could not parse also arrives as a
            # CloseConnection (1002, 1007), in the OPEN state: close with that code.
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._write(self.ws.send(event.response()))
        elif self.ws.state is ConnectionState.OPEN:
            await self._fail(int(code), f"WebSocket protocol error: {reason or code}")
        if code in _END_OF_FILE:
            raise _Closed(None)
        text = f": {reason}" if reason else ""
        raise _Closed(f"WebSocket closed with {int(code)}{text}")

    async def _fail(self, code: int, why: str) -> None:
        """Close with ``code`` (best effort, bounded) and end the stream with ``why``."""
        await self._send_close(code, why[:100])
        raise _Closed(f"{why}; closed with {code}")

    async def _send_close(self, code: int, reason: str) -> None:
        if self.ws.state not in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            return
        data = self.ws.send(CloseConnection(code=code, reason=reason))
        with trio.move_on_after(CLOSE_TIMEOUT) as scope:
            scope.shield = True
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._write(data)

    async def _write(self, data: bytes | bytearray) -> None:
        async with self._send_lock:
            await self.raw.send_all(data)

    # -- sending -----------------------------------------------------------------------------
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the WebSocket stream was closed")
        if not data:
            await trio.lowlevel.checkpoint()
            return
        if self.ws.state is not ConnectionState.OPEN:
            raise trio.BrokenResourceError("WebSocket closed")
        try:
            async with self._send_lock:
                if self._client:
                    await self.raw.send_all(self.ws.send(BytesMessage(data=bytes(data))))
                elif len(data) <= COALESCE_BYTES:
                    # A server's data frame is just a header before the bytes (no mask): one
                    # write, without wsproto's copies of the payload.
                    await self.raw.send_all(binary_frame_header(len(data)) + bytes(data))
                else:
                    await self.raw.send_all(binary_frame_header(len(data)))
                    await self.raw.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise trio.BrokenResourceError(
                f"WebSocket connection lost ({exc or 'reset'})"
            ) from None

    async def wait_send_all_might_not_block(self) -> None:
        await self.raw.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Send a close frame, give the peer :data:`CLOSE_TIMEOUT` to answer, close the socket."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            if self.ws.state is ConnectionState.OPEN:
                await self._send_close(NORMAL_CLOSE, "")
                await self._await_close_answer()
        finally:
            await trio.aclose_forcefully(self.raw)

    async def _await_close_answer(self) -> None:
        """Read (and drop) until the peer's close frame, within the close deadline and a frame
        budget: a peer that keeps sending instead of answering is simply dropped."""
        frames = 0
        with trio.move_on_after(CLOSE_TIMEOUT) as scope:
            scope.shield = True
            with contextlib.suppress(
                trio.BrokenResourceError, trio.ClosedResourceError, LocalProtocolError
            ):
                while frames < CLOSE_FRAME_BUDGET:
                    for event in self.ws.events():
                        if isinstance(event, CloseConnection):
                            return
                        frames += 1
                        if frames % FRAME_BUDGET == 0:
                            await trio.lowlevel.checkpoint()
                        if frames >= CLOSE_FRAME_BUDGET:
                            return
                    if self.ws.state is ConnectionState.CLOSED:
                        return
                    data = await self.raw.receive_some(RECEIVE_BYTES)
                    if not data:
                        return
                    self.ws.receive_data(bytes(data))


async def _handshake(
    handshake: H11Handshake, stream: trio.abc.Stream, wanted: type[Event]
) -> Event:
    """Feed ``stream`` into the handshake until an event of type ``wanted``."""
    received = 0
    while True:
        for event in handshake.events():
            if isinstance(event, wanted):
                return event
            if isinstance(event, RejectConnection):
                raise ConnectionError(f"WebSocket refused with HTTP {event.status_code}")
        data = await stream.receive_some(RECEIVE_BYTES)
        received += len(data)
        if not data or received > 1 << 20:
            raise ConnectionError("connection lost during the WebSocket handshake")
        handshake.receive_data(bytes(data))


async def serve_websocket(
    stream: trio.abc.Stream,
    peer: str,
    handler: SpiceHandler,
    *,
    subprotocol: str | None,
    max_message_bytes: int,
    timeout: float,
) -> None:
    """Finish the opening handshake on ``stream`` (which replays the already-checked upgrade
    request) and run ``handler`` on the resulting byte stream until it returns."""
    handshake = H11Handshake(ConnectionType.SERVER)
    try:
        with trio.move_on_after(timeout) as deadline:
            await _handshake(handshake, stream, Request)
            await stream.send_all(handshake.send(AcceptConnection(subprotocol=subprotocol)))
    except (
        ConnectionError,
        RemoteProtocolError,
        trio.BrokenResourceError,
        trio.ClosedResourceError,
    ) as exc:
        log.info("%s: connection lost during the WebSocket handshake (%s)", peer, str(exc))
        await trio.aclose_forcefully(stream)
        return
    if deadline.cancelled_caught:
        log.warning("%s: WebSocket handshake not finished within %g s, closing", peer, timeout)
        await trio.aclose_forcefully(stream)
        return
    connection = handshake.connection
    assert connection is not None
    await handler(WebSocketStream(connection, stream, max_message_bytes=max_message_bytes), peer)


async def open_client(
    stream: trio.abc.Stream,
    host: str,
    path: str,
    *,
    subprotocols: list[str] | None = None,
    max_message_bytes: int = 64 << 20,
) -> WebSocketStream:
    """The client end (tests, tools): send the upgrade on ``stream``, wait for the answer."""
    handshake = H11Handshake(ConnectionType.CLIENT)
    await stream.send_all(
        handshake.send(Request(host=host, target=path, subprotocols=subprotocols or []))
    )
    await _handshake(handshake, stream, AcceptConnection)
    connection = handshake.connection
    assert connection is not None
    return WebSocketStream(connection, stream, max_message_bytes=max_message_bytes)
