"""The TCP transport: listening sockets (IPv4 and IPv6) whose connections go to the core."""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable

import trio

log = logging.getLogger(__name__)

#: Called with each accepted connection and its peer's name; the listener closes the stream
#: when the handler returns.
Handler = Callable[[trio.SocketStream, str], Awaitable[None]]

KEEPALIVE_IDLE = 600


def peer_name(stream: trio.SocketStream) -> str:
    try:
        addr = stream.socket.getpeername()
    except OSError:
        return "?"
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def tune(stream: trio.SocketStream) -> None:
    """TCP_NODELAY (trio's default) and keepalive with a 10-minute idle, as reds does."""
    try:
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
    except OSError:
        pass


async def open_listeners(
    host: str | None, port: int, *, ipv4_only: bool = False, ipv6_only: bool = False
) -> list[trio.SocketListener]:
    if host is None:
        host = "0.0.0.0" if ipv4_only else ("::" if ipv6_only else None)
    listeners = await trio.open_tcp_listeners(port, host=host)
    if ipv4_only or ipv6_only:
        want = socket.AF_INET if ipv4_only else socket.AF_INET6
        keep = [lst for lst in listeners if lst.socket.family == want]
        for lst in listeners:
            if lst not in keep:
                await lst.aclose()
        if not keep:
            raise OSError(f"no {'IPv4' if ipv4_only else 'IPv6'} address to listen on for {host!r}")
        listeners = keep
    return listeners


def bound_addresses(listeners: list[trio.SocketListener]) -> list[tuple[str, int]]:
    return [lst.socket.getsockname()[:2] for lst in listeners]


async def serve(
    listeners: list[trio.SocketListener],
    handler: Handler,
    *,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    async def on_accept(stream: trio.SocketStream) -> None:
        tune(stream)
        await handler(stream, peer_name(stream))

    await trio.serve_listeners(on_accept, listeners, task_status=task_status)
