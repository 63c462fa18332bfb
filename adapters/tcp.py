"""The TCP transport: listening sockets (IPv4 and IPv6) whose connections go to the core.

The accept loop is trio's ``serve_listeners`` with one change: when accepting fails for want
of file descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) it logs one line (at most
every :data:`ACCEPT_LOG_INTERVAL`, not a traceback every 100 ms), backs off up to
:data:`MAX_ACCEPT_BACKOFF` and keeps serving the connections it has.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Awaitable, Callable

import trio

from spice.domain.admission import Verdict

log = logging.getLogger(__name__)

#: Errors of accept() that mean "out of resources": wait and retry, do not stop listening.
CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_LOG_INTERVAL = 10.0
MIN_ACCEPT_BACKOFF = 0.05
MAX_ACCEPT_BACKOFF = 1.0

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


#: Descriptors kept for everything else (listeners, files served, threads, logs).
RESERVED_FDS = 64
DEFAULT_MAX_CONNECTIONS = 1000


def default_max_connections() -> int:
    """1000, or fewer if the descriptor limit would be reached first (then accept() fails
    with EMFILE and every client waits)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return DEFAULT_MAX_CONNECTIONS
    if soft == resource.RLIM_INFINITY:
        return DEFAULT_MAX_CONNECTIONS
    return max(16, min(DEFAULT_MAX_CONNECTIONS, soft - RESERVED_FDS))


def peer_address(peer: str) -> str:
    """The address in a peer label (``1.2.3.4:5 tls``, ``[::1]:5 ws``): what limits count by."""
    host = peer.split(" ", 1)[0]
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def log_refusal(logger: logging.Logger, peer: str, verdict: Verdict) -> None:
    """One line for a refused connection, unless one was logged recently for its address."""
    if verdict.log:
        more = (
            f" ({verdict.suppressed} more refused since the last line)"
            if verdict.suppressed
            else ""
        )
        logger.warning("%s: refused: %s, closing%s", peer, verdict.refusal.value, more)


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
        try:
            tune(stream)
            await handler(stream, peer_name(stream))
        finally:
            await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_accept_loop, listener, on_accept, nursery)
        task_status.started(listeners)


async def _accept_loop(
    listener: trio.SocketListener,
    on_accept: Callable[[trio.SocketStream], Awaitable[None]],
    nursery: trio.Nursery,
) -> None:
    backoff = MIN_ACCEPT_BACKOFF
    logged = -ACCEPT_LOG_INTERVAL
    failures = 0
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in CAPACITY_ERRNOS:
                    raise
                failures += 1
                now = trio.current_time()
                if now - logged >= ACCEPT_LOG_INTERVAL:
                    log.warning(
                        "cannot accept connections: %s (%d times since the last line); "
                        "lower --max-connections or raise the descriptor limit (ulimit -n)",
                        exc.strerror or exc,
                        failures,
                    )
                    logged, failures = now, 0
                await trio.sleep(backoff)
                backoff = min(backoff * 2, MAX_ACCEPT_BACKOFF)
                continue
            backoff = MIN_ACCEPT_BACKOFF
            nursery.start_soon(on_accept, stream)
