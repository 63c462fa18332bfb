"""Telling the protocols on one port apart from the first bytes of a connection.

A listening port of trio-spice takes native SPICE clients (whose first bytes are the link magic
``REDQ``) and browsers (an HTTP request: the HTML5 client's files, then a WebSocket upgrade),
as the reference server's ``reds`` does. :func:`sniff` reads just enough to decide and returns
a :class:`ReplayStream` that gives the peeked bytes back first, so the next stage (the link
stage, or the HTTP parser) sees the connection from its first byte.
"""

from __future__ import annotations

import enum

import trio

from spice.domain.enums import SPICE_MAGIC

#: Request methods we recognise as HTTP (enough of each to decide from four bytes).
_HTTP_STARTS = (
    b"GET ",
    b"HEAD",
    b"POST",
    b"PUT ",
    b"DELE",
    b"OPTI",
    b"PATC",
    b"CONN",
    b"TRAC",
    b"PRI ",
)
DECIDE = 4


class Protocol(enum.Enum):
    SPICE = "spice"
    HTTP = "http"
    #: A TLS ClientHello (handshake record, version 3.x) sent to a plain port.
    TLS = "tls"
    UNKNOWN = "unknown"

    def __repr__(self) -> str:
        return f"Protocol.{self.name}"


def classify(prefix: bytes) -> Protocol | None:
    """The protocol the first bytes of a connection belong to, or None while undecided."""
    head = prefix[:DECIDE]
    if not head:
        return None
    if head[0] == 0x16:  # a TLS handshake record; byte 2 is the major version, 3
        if len(head) < 2:
            return None
        return Protocol.TLS if head[1] == 0x03 else Protocol.UNKNOWN
    if len(head) < DECIDE:
        if SPICE_MAGIC.startswith(head) or any(s.startswith(head) for s in _HTTP_STARTS):
            return None
        return Protocol.UNKNOWN
    if head == SPICE_MAGIC:
        return Protocol.SPICE
    if head in _HTTP_STARTS:
        return Protocol.HTTP
    return Protocol.UNKNOWN


class ReplayStream(trio.abc.Stream):
    """A stream that first returns ``prefix`` (bytes already read from ``stream``), then
    whatever ``stream`` returns; writes and closing go straight to ``stream``."""

    def __init__(self, stream: trio.abc.Stream, prefix: bytes = b"") -> None:
        self.stream = stream
        self._prefix = bytearray(prefix)

    @property
    def pending(self) -> bytes:
        """The replayed bytes not yet returned by :meth:`receive_some`."""
        return bytes(self._prefix)

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._prefix:
            await trio.lowlevel.checkpoint()
            n = len(self._prefix) if max_bytes is None else min(max_bytes, len(self._prefix))
            chunk = bytes(self._prefix[:n])
            del self._prefix[:n]
            return chunk
        return await self.stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.stream.aclose()


class SniffFailed(Exception):
    """The connection closed or stayed silent before its protocol could be told."""


async def sniff(stream: trio.abc.Stream, timeout: float) -> tuple[Protocol, ReplayStream]:
    """Read until the protocol is known (at most ``timeout`` seconds).

    Raises :class:`SniffFailed` (with a one-line reason) on EOF, a broken connection or the
    deadline; the caller logs it and closes the stream.
    """
    buffer = bytearray()
    try:
        with trio.fail_after(timeout):
            while (kind := classify(bytes(buffer))) is None:
                data = await stream.receive_some()
                if not data:
                    what = f"after {len(buffer)} bytes" if buffer else "before sending anything"
                    raise SniffFailed(f"closed {what}")
                buffer += data
    except trio.TooSlowError:
        what = f"only {len(buffer)} bytes" if buffer else "nothing"
        raise SniffFailed(f"sent {what} within {timeout:g} s") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise SniffFailed(f"connection lost before the first bytes ({exc or 'reset'})") from None
    return kind, ReplayStream(stream, bytes(buffer))
