"""The WebSocket transport: the SPICE byte stream carried in binary WebSocket messages.

spice-html5 (the only WebSocket SPICE client) opens ``new WebSocket(uri, 'binary')``; the
server answers the upgrade with the ``binary`` subprotocol and from then on both sides put
SPICE bytes in binary messages whose boundaries mean nothing. :class:`WebSocketStream` turns a
trio-websocket connection back into a plain :class:`trio.abc.Stream`, so the link stage and
the channels never know which transport carries them. The HTTP stage (:mod:`adapters.http_static`)
has already read and checked the upgrade request; :func:`serve_websocket` replays it into
trio-websocket (wsproto underneath), accepts, and runs the SPICE handler on the stream.

Limits: a message larger than ``max_message_bytes`` closes the connection with 1009 (Message
Too Big, trio-websocket's check, made as the bytes arrive, so a frame that announces more is
never buffered); a text message closes it with 1003 (Unsupported Data); a frame wsproto cannot
parse (unmasked, bad opcode or length) drops the connection (trio-websocket sends no close
frame then). Each ends the stream with a :class:`trio.BrokenResourceError` whose text says
why (with the close code), which the stage above logs in its one line about the lost
connection.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_server_stream
from wsproto.connection import ConnectionState

log = logging.getLogger(__name__)

#: The subprotocol spice-html5 asks for (``spiceconn.js``): raw bytes in binary messages.
SUBPROTOCOL = "binary"
#: Seconds to wait for the peer's answer to our close frame before dropping the connection.
CLOSE_TIMEOUT = 2.0
#: How much one read of the socket may take (trio-websocket's default, 4 KiB, is slow).
RECEIVE_BYTES = 65536

NORMAL_CLOSE = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
NO_STATUS = 1005
ABNORMAL_CLOSURE = 1006
MESSAGE_TOO_BIG = 1009

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


class WebSocketStream(trio.abc.Stream):
    """A :class:`trio.abc.Stream` over a server-side WebSocket connection.

    ``receive_some`` reassembles the byte stream from binary messages (an empty message is
    skipped, never taken for end of file); ``send_all`` sends one binary message per call.
    ``raw`` is the stream under the WebSocket, closed by :meth:`aclose` whatever state the
    WebSocket is in.
    """

    def __init__(
        self, ws: WebSocketConnection, raw: trio.abc.Stream, *, max_message_bytes: int
    ) -> None:
        self.ws = ws
        self.raw = raw
        self.max_message_bytes = max_message_bytes
        self._pending = memoryview(b"")
        self._closed = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._closed:
            raise trio.ClosedResourceError("the WebSocket stream was closed")
        while not self._pending:
            try:
                message = await self.ws.get_message()
            except ConnectionClosed as exc:
                return self._on_closed(exc)
            if isinstance(message, str):
                await self._close(UNSUPPORTED_DATA, "SPICE goes in binary messages")
                raise trio.BrokenResourceError(
                    f"WebSocket text message received; closed with {UNSUPPORTED_DATA}"
                )
            self._pending = memoryview(message)
        n = len(self._pending) if max_bytes is None else min(max_bytes, len(self._pending))
        chunk = bytes(self._pending[:n])
        self._pending = self._pending[n:]
        return chunk

    def _on_closed(self, exc: ConnectionClosed) -> bytes:
        reason = exc.reason
        if reason is None:
            raise trio.BrokenResourceError("WebSocket protocol error") from None
        if reason.code == MESSAGE_TOO_BIG:
            limit = self.max_message_bytes
            raise trio.BrokenResourceError(
                f"WebSocket message over {limit} bytes; closed with {MESSAGE_TOO_BIG}"
            ) from None
        if reason.code in (NORMAL_CLOSE, GOING_AWAY, NO_STATUS, ABNORMAL_CLOSURE):
            # The peer closed, or dropped the TCP connection (1006): end of file.
            return b""
        # A frame wsproto could not parse (unmasked, bad opcode, bad UTF-8, ...) also lands
        # here, with the code it stands for (1002, 1007): trio-websocket drops the connection
        # then, without a close frame. Or the peer closed with an error code of its own.
        text = f": {reason.reason}" if reason.reason else ""
        raise trio.BrokenResourceError(f"WebSocket closed with {reason.code}{text}") from None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the WebSocket stream was closed")
        if not data:
            await trio.lowlevel.checkpoint()
            return
        lock = getattr(self.ws, "_stream_lock", None)
        state = getattr(getattr(self.ws, "_wsproto", None), "state", None)
        if self.ws.is_client or lock is None or state is None:
            await self._send_message(data)
            return
        # The fast path for a server: trio-websocket (through wsproto) copies a payload four
        # times on its way out, which made WebSocket a third as fast as TCP for full-screen
        # updates. A server's data frame is just a header before the bytes (no mask), so
        # write it here, under trio-websocket's own write lock, while the connection is open;
        # wsproto's state is untouched (it tracks only fragmented messages, never sent here).
        if self.ws.closed is not None or state is not ConnectionState.OPEN:
            raise trio.BrokenResourceError("WebSocket closed")
        header = binary_frame_header(len(data))
        try:
            async with lock:
                if len(data) <= COALESCE_BYTES:
                    await self.raw.send_all(header + bytes(data))
                else:
                    await self.raw.send_all(header)
                    await self.raw.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise trio.BrokenResourceError(
                f"WebSocket connection lost ({exc or 'reset'})"
            ) from None

    @property
    def fast_path(self) -> bool:
        """Whether :meth:`send_all` writes frames itself (a server on a trio-websocket whose
        internals it knows) rather than through :meth:`WebSocketConnection.send_message`."""
        return (
            not self.ws.is_client
            and hasattr(self.ws, "_stream_lock")
            and hasattr(self.ws, "_wsproto")
        )

    async def _send_message(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self.ws.send_message(bytes(data))
        except ConnectionClosed as exc:
            code = exc.reason.code if exc.reason is not None else PROTOCOL_ERROR
            raise trio.BrokenResourceError(f"WebSocket closed ({code})") from None

    async def wait_send_all_might_not_block(self) -> None:
        await self.raw.wait_send_all_might_not_block()

    async def _close(self, code: int, reason: str) -> None:
        with trio.move_on_after(CLOSE_TIMEOUT) as scope:
            scope.shield = True
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self.ws.aclose(code, reason)

    async def aclose(self) -> None:
        """Send a close frame, give the peer :data:`CLOSE_TIMEOUT` to answer, close the socket."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            await self._close(NORMAL_CLOSE, "")
        finally:
            await trio.aclose_forcefully(self.raw)


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
    async with trio.open_nursery() as nursery:
        try:
            with trio.move_on_after(timeout) as deadline:
                request = await wrap_server_stream(
                    nursery,
                    stream,
                    max_message_size=max_message_bytes,
                    receive_buffer_size=RECEIVE_BYTES,
                )
                ws = await request.accept(subprotocol=subprotocol)
            if deadline.cancelled_caught:
                log.warning(
                    "%s: WebSocket handshake not finished within %g s, closing", peer, timeout
                )
                await trio.aclose_forcefully(stream)
                return
            await handler(WebSocketStream(ws, stream, max_message_bytes=max_message_bytes), peer)
        except ConnectionClosed as exc:
            log.info("%s: connection lost during the WebSocket handshake (%s)", peer, exc)
            await trio.aclose_forcefully(stream)
        finally:
            # trio-websocket's reader task lives until its socket closes; the handler has
            # closed the stream by now (or failed): stop the reader in any case.
            nursery.cancel_scope.cancel()
