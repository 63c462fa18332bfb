"""What happens to each accepted connection before the link stage: the transports' dispatch.

One :class:`FrontDoor` per listening port. For each connection it runs, in order and within
``handshake_timeout`` each: the TLS handshake (TLS port only), the sniff of the first bytes,
then hands the stream to the SPICE core (``REDQ``) or to the HTTP stage (a request: the page's
files, or a WebSocket upgrade whose byte stream then goes to the core). The core gets a
:class:`trio.abc.Stream` and whether it is secure, never which transport it came by.

    TCP accept -> [TLS handshake] -> sniff -> SPICE link stage (core)
                                           -> HTTP -> static file | WebSocket -> SPICE link stage
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable

import attrs
import trio

from spice.adapters.http_static import HttpLimits, Site, serve_http
from spice.adapters.sniff import Protocol, SniffFailed, sniff
from spice.adapters.tcp import log_refusal, peer_address
from spice.adapters.tls import tls_handshake
from spice.adapters.websocket import choose_subprotocol, serve_websocket
from spice.domain.admission import Admission

log = logging.getLogger(__name__)

#: The core's entry point: (stream, peer, secure).
SpiceHandler = Callable[[trio.abc.Stream, str, bool], Awaitable[None]]


@attrs.frozen
class TransportLimits:
    #: Seconds for each stage before the link: TLS handshake, first bytes, HTTP request head,
    #: WebSocket handshake.
    handshake_timeout: float = 10.0
    #: Largest HTTP request head (431 above it).
    max_header_bytes: int = 16384
    #: Largest WebSocket message (closed with 1009 above it).
    max_message_bytes: int = 1 << 20
    #: Requests answered on one kept-alive HTTP connection.
    max_requests: int = 100
    #: Seconds an HTTP response may take to be written.
    send_timeout: float = 30.0

    @property
    def http(self) -> HttpLimits:
        return HttpLimits(
            max_header_bytes=self.max_header_bytes,
            timeout=self.handshake_timeout,
            max_requests=self.max_requests,
            send_timeout=self.send_timeout,
        )


class FrontDoor:
    """Dispatch for one listening port.

    ``tls``: the port's TLS context (connections are then secure). ``spice``: take native
    SPICE connections; ``http``: take HTTP (files from ``site``) and, with ``websocket``,
    WebSocket upgrades. ``allowed_origins``: pages of other origins that may open WebSockets
    (``*`` for any; by default only the server's own page). ``allowed_hosts``: names besides
    IP addresses and localhost that browsers may call this server by (``*`` for any).
    ``admission``: the server's connection counts (shared by its ports); over a limit a
    connection is closed at once, with one log line per address now and then.
    """

    def __init__(
        self,
        handler: SpiceHandler,
        *,
        site: Site | None = None,
        limits: TransportLimits | None = None,
        tls: ssl.SSLContext | None = None,
        spice: bool = True,
        http: bool = True,
        websocket: bool = True,
        allowed_origins: frozenset[str] | None = None,
        allowed_hosts: frozenset[str] = frozenset(),
        admission: Admission | None = None,
    ) -> None:
        self.handler = handler
        self.site = site or Site(None, None)
        self.limits = limits or TransportLimits()
        self.tls = tls
        self.take_spice = spice
        self.take_http = http
        self.take_websocket = websocket
        self.allowed_origins = allowed_origins
        self.allowed_hosts = allowed_hosts
        self.admission = admission

    @property
    def secure(self) -> bool:
        return self.tls is not None

    async def handle(self, stream: trio.abc.Stream, peer: str) -> None:
        """Serve one accepted connection until it is done; always closes it. Whatever goes
        wrong stays with this connection: the listener (trio's serve_listeners, which would
        stop on an exception) never sees it."""
        address = peer_address(peer)
        if self.admission is not None:
            verdict = self.admission.connection_opened(address, trio.current_time())
            if verdict is not None:
                log_refusal(log, peer, verdict)
                await trio.aclose_forcefully(stream)
                return
        try:
            await self._handle(stream, peer)
        except Exception:
            log.exception("%s: internal error in the transport stage; closing", peer)
        finally:
            if self.admission is not None:
                self.admission.connection_closed(address)

    async def _handle(self, stream: trio.abc.Stream, peer: str) -> None:
        timeout = self.limits.handshake_timeout
        owner_closes = False
        try:
            if self.tls is not None:
                tls_stream = await tls_handshake(stream, self.tls, peer, timeout)
                if tls_stream is None:
                    return
                stream = tls_stream
            try:
                kind, replay = await sniff(stream, timeout)
            except SniffFailed as exc:
                log.warning("%s: %s, closing", peer, str(exc))
                return
            if kind is Protocol.SPICE and self.take_spice:
                owner_closes = True
                await self.handler(replay, f"{peer} tls" if self.secure else peer, self.secure)
                return
            if kind is Protocol.HTTP and self.take_http:
                await serve_http(
                    replay,
                    peer,
                    site=self.site,
                    websocket=self._websocket if self.take_websocket else None,
                    choose_subprotocol=choose_subprotocol,
                    limits=self.limits.http,
                    secure=self.secure,
                    allowed_origins=self.allowed_origins,
                    allowed_hosts=self.allowed_hosts,
                )
                return
            if kind in (Protocol.UNKNOWN, Protocol.TLS) and self.take_spice:
                # As reds does: what is neither SPICE nor HTTP gets the link stage's
                # INVALID_MAGIC answer (and its one log line).
                owner_closes = True
                await self.handler(replay, peer, self.secure)
                return
            if kind is Protocol.TLS:
                log.warning("%s: a TLS handshake on a plain port (wrong port?), closing", peer)
            else:
                head = replay.pending[:16]
                log.warning(
                    "%s: %s connection not taken on this port (first bytes %r), closing",
                    peer,
                    kind.value,
                    head,
                )
        finally:
            if not owner_closes:
                await trio.aclose_forcefully(stream)

    async def _websocket(self, stream: trio.abc.Stream, peer: str, subprotocol: str | None) -> None:
        label = f"{peer} {'wss' if self.secure else 'ws'}"

        async def to_core(ws_stream: trio.abc.Stream, ws_peer: str) -> None:
            await self.handler(ws_stream, ws_peer, self.secure)

        await serve_websocket(
            stream,
            label,
            to_core,
            subprotocol=subprotocol,
            max_message_bytes=self.limits.max_message_bytes,
            timeout=self.limits.handshake_timeout,
        )
