"""Client-side helpers for the transport tests: a WebSocket or TLS byte stream to a server on
127.0.0.1 that ``rawclient.link`` can run the SPICE link stage over, hand-written HTTP, and the
one-log-line check."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from trio_websocket import WebSocketConnection, wrap_client_stream

from spice.adapters.websocket import open_client

HOST = "127.0.0.1"


@asynccontextmanager
async def ws_connection(
    port: int,
    *,
    path: str = "/websockify",
    subprotocols: list[str] | None = None,
    tls: ssl.SSLContext | None = None,
    max_message: int = 64 << 20,
) -> AsyncIterator[tuple[WebSocketConnection, trio.abc.Stream]]:
    """A client WebSocket (and the TCP or TLS stream under it) for the block."""
    tcp = await trio.open_tcp_stream(HOST, port)
    raw: trio.SocketStream | trio.SSLStream[trio.SocketStream] = tcp
    if tls is not None:
        raw = trio.SSLStream(tcp, tls, server_hostname=HOST, https_compatible=True)
    async with trio.open_nursery() as nursery:
        ws = await wrap_client_stream(
            nursery,
            raw,
            f"{HOST}:{port}",
            path,
            subprotocols=["binary"] if subprotocols is None else subprotocols,
            max_message_size=max_message,
        )
        try:
            yield ws, raw
        finally:
            with trio.move_on_after(2) as scope:
                scope.shield = True
                await ws.aclose()
            await trio.aclose_forcefully(raw)
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def ws_stream(
    port: int, *, path: str = "/websockify", tls: ssl.SSLContext | None = None
) -> AsyncIterator[trio.abc.Stream]:
    """A SPICE byte stream over a WebSocket to ``port`` (the server's own adapter, client side)."""
    tcp = await trio.open_tcp_stream(HOST, port)
    raw: trio.SocketStream | trio.SSLStream[trio.SocketStream] = tcp
    if tls is not None:
        raw = trio.SSLStream(tcp, tls, server_hostname=HOST, https_compatible=True)
    stream = await open_client(raw, f"{HOST}:{port}", path, subprotocols=["binary"])
    try:
        yield stream
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


def client_tls_context(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    return context


async def tls_stream(port: int, ca_file: str) -> trio.SSLStream[trio.SocketStream]:
    raw = await trio.open_tcp_stream(HOST, port)
    stream = trio.SSLStream(
        raw, client_tls_context(ca_file), server_hostname=HOST, https_compatible=True
    )
    await stream.do_handshake()
    return stream


async def http_exchange(port: int, request: bytes, *, timeout: float = 5.0) -> bytes:
    """Send raw request bytes; read until the server closes (the whole response)."""
    stream = await trio.open_tcp_stream(HOST, port)
    async with stream:
        await stream.send_all(request)
        out = bytearray()
        with trio.fail_after(timeout):
            while True:
                try:
                    data = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    break
                if not data:
                    break
                out += data
    return bytes(out)


def status_of(response: bytes) -> int:
    line = response.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1.1 "), response[:200]
    return int(line.split()[1])


def local_port(stream: trio.abc.Stream) -> int:
    while not isinstance(stream, trio.SocketStream):
        stream = stream.transport_stream  # type: ignore[attr-defined]
    return int(stream.socket.getsockname()[1])


def lines_about(caplog: pytest.LogCaptureFixture, port: int) -> list[str]:
    """Log lines at INFO or above that name our end of a connection (``127.0.0.1:PORT``)."""
    needle = f"{HOST}:{port}"
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.INFO
        and needle in r.getMessage()
        and (r.getMessage().split(needle, 1)[1][:1] in ("", " ", ":"))
    ]
