"""The public server object: configure, add displays, serve, receive input."""

from __future__ import annotations

import logging
import os
import socket
import ssl
import uuid as uuid_mod
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from spice.adapters import tcp
from spice.adapters.config import DEFAULT_MAX_MESSAGE, DEFAULT_MAX_OUTPUT, ServerConfig
from spice.adapters.core import SpiceCore
from spice.adapters.front_door import FrontDoor, TransportLimits
from spice.adapters.html5_page import find_client_module, render_page
from spice.adapters.http_static import Site
from spice.adapters.tls import server_context
from spice.certs import CertificateFiles
from spice.display import Display
from spice.domain.admission import Limits
from spice.domain.codecs.select import DEFAULT_MODE, JPEG_WAN, MODES
from spice.domain.display.streams import MODES as STREAM_MODES
from spice.domain.enums import ChannelType, NotifySeverity
from spice.domain.input_events import InputEvent
from spice.domain.ticket import TicketPolicy

log = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "::1", "localhost"}

#: Channel names as QEMU's -spice tls-channel= / plaintext-channel= take them.
CHANNEL_NAMES: dict[str, ChannelType] = {
    "main": ChannelType.MAIN,
    "display": ChannelType.DISPLAY,
    "inputs": ChannelType.INPUTS,
    "cursor": ChannelType.CURSOR,
    "playback": ChannelType.PLAYBACK,
    "record": ChannelType.RECORD,
    "smartcard": ChannelType.SMARTCARD,
    "usbredir": ChannelType.USBREDIR,
    "port": ChannelType.PORT,
    "webdav": ChannelType.WEBDAV,
}
_ALL_CHANNELS = frozenset(CHANNEL_NAMES.values())

#: Where spice-html5 is looked for when none is named: Debian's package, then an npm install
#: (``npm install`` in the project, or in the current directory).
HTML5_DIRS = (
    Path("/usr/share/spice-html5"),
    Path(__file__).resolve().parent.parent / "node_modules" / "@spice-project" / "spice-html5",
    Path("node_modules") / "@spice-project" / "spice-html5",
)


def find_html5_dir(candidates: Iterable[Path] = HTML5_DIRS) -> Path | None:
    """The first directory that holds spice-html5's ``main.js`` (at its top or under src/)."""
    for candidate in candidates:
        if find_client_module(candidate) is not None:
            return candidate
    return None


ChannelSpec = ChannelType | str


def channel_security(
    tls_channels: Iterable[ChannelSpec] = (), plaintext_channels: Iterable[ChannelSpec] = ()
) -> tuple[frozenset[ChannelType], frozenset[ChannelType]]:
    """QEMU's rules: the channels named in ``tls_channels`` must use TLS, those in
    ``plaintext_channels`` must not; ``default`` in one list means every channel not named in
    the other. Names or :class:`ChannelType` values; a channel in both lists is an error."""

    def named(items: Iterable[ChannelSpec]) -> tuple[set[ChannelType], bool]:
        kinds: set[ChannelType] = set()
        default = False
        for item in items:
            if isinstance(item, ChannelType):
                kinds.add(item)
            elif item == "default":
                default = True
            elif item in CHANNEL_NAMES:
                kinds.add(CHANNEL_NAMES[item])
            else:
                choices = ", ".join([*CHANNEL_NAMES, "default"])
                raise ValueError(f"unknown channel {item!r} (one of {choices})")
        return kinds, default

    secure, secure_default = named(tls_channels)
    plain, plain_default = named(plaintext_channels)
    if secure_default and plain_default:
        raise ValueError("'default' cannot be both a TLS and a plaintext channel")
    both = secure & plain
    if both:
        raise ValueError(
            f"{', '.join(sorted(k.name.lower() for k in both))} named both TLS and plaintext"
        )
    if secure_default:
        secure = set(_ALL_CHANNELS - plain)
    if plain_default:
        plain = set(_ALL_CHANNELS - secure)
    return frozenset(secure), frozenset(plain)


def message_limits(overrides: Mapping[ChannelSpec, int]) -> dict[ChannelType, int]:
    """The largest client message per channel: the defaults with ``overrides`` (channel names
    or types) applied."""
    limits = dict(DEFAULT_MAX_MESSAGE)
    for channel, size in overrides.items():
        kind = channel if isinstance(channel, ChannelType) else CHANNEL_NAMES.get(channel)
        if kind is None:
            raise ValueError(f"unknown channel {channel!r} (one of {', '.join(CHANNEL_NAMES)})")
        if not 64 <= size <= 1 << 24:
            raise ValueError(f"message limit for {channel} must be 64 bytes to 16 MiB")
        limits[kind] = size
    return limits


def served_names(addr: str | None, allowed: Iterable[str]) -> frozenset[str]:
    """The names browsers may call this server by, besides IP addresses and localhost: the
    machine's host name, the listening address if it is a name, and ``allowed`` (``*``: any)."""
    names = {name.lower().rstrip(".") for name in allowed}
    names.add(socket.gethostname().lower())
    if addr:
        names.add(addr.lower())
    return frozenset(names)


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]" if ":" in host else host


class Server:
    """A SPICE server.

        >>> server = Server(port=5900, disable_ticketing=True)
        >>> display = server.add_display(1024, 768)
        >>> # in a Trio task:  await nursery.start(server.serve); await display.fill(...)

        ``password`` turns on ticketing (``password_expires`` is seconds since the epoch);
        ``disable_ticketing`` lets anyone in. With neither, nobody can log in (as QEMU).
        ``client_mouse`` offers the absolute (client) mouse mode, as a tablet or agent would.
        ``image_compression`` (QEMU's option): "auto_glz" (the default) and "auto_lz" send
        photographic areas as QUIC and the rest as LZ; "quic", "lz" and "lz4" (LZ4 to clients that
        decode it, else LZ) force one codec; "glz" is taken as "lz" (no GLZ dictionary); "off"
        sends uncompressed bitmaps; "auto" is "auto_glz". ``jpeg_wan_compression``: "auto" sends
        photographic areas as JPEG to clients on a slow link (under 10 Mbit/s), "always" to every
        client, "never" keeps every image lossless. ``streaming_video``: areas that change at
        video rates go as MJPEG streams: "filter" (the default, as QEMU's) only for photographic
        content, "all" for any, "off" never; when the motion stops clients get the area lossless.

        Transports (as QEMU's ``-spice``): ``port`` takes native SPICE clients and, unless
        ``websocket`` is False, browsers on the same port (HTTP for the page, then a WebSocket
        carrying SPICE; ``port=None`` opens no plain port). ``tls_port`` with a certificate
        (``x509_dir`` holding ca-cert.pem, server-cert.pem and server-key.pem, or the three
        ``x509_*_file`` paths) takes the same over TLS (``https://``/``wss://`` for browsers).
        ``tls_channels`` / ``plaintext_channels`` name the channels ("main", "display", ...,
        "default") that must / must not use TLS. ``ws_port`` is an extra port for browsers only.
        ``html5_dir`` is a spice-html5 directory to serve, with a page at ``/`` that connects
        back (:func:`find_html5_dir` finds an installed one); None serves no files.
        ``handshake_timeout`` bounds each stage before the link (TLS handshake, first bytes, HTTP
        request head, WebSocket handshake); ``max_http_header`` and ``max_ws_message`` bound the
        sizes; ``ws_allowed_origins`` lists other sites whose pages may open WebSockets here.
        ``allowed_hosts`` lists names (besides IP addresses, localhost names and the machine's host
        name) that browsers may use for this server; other Host headers get 403 (DNS rebinding).

        Limits (a connection over one is closed with one log line): ``max_connections`` open at
        once (default 1000, fewer under a low descriptor limit), ``max_connections_per_address``,
        ``link_attempts_per_second`` per address (bursts of three seconds' worth; new connections
    twice that), and after a
        failed ticket the next from that address waits ``failed_ticket_delay`` seconds, doubling
        per failure up to eight times that. ``link_timeout`` bounds the link stage;
        ``max_client_buffer`` is the bytes one channel connection may have queued for writing
        before its client is dropped; ``max_message`` maps channel names to the largest message
        a client may send on them (main 64 KiB, others 4 KiB by default).
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
        image_compression: str = "auto_glz",
        jpeg_wan_compression: str = "auto",
        streaming_video: str = "filter",
        secure_channels: Iterable[ChannelSpec] = (),
        plaintext_channels: Iterable[ChannelSpec] = (),
        tls_channels: Iterable[ChannelSpec] = (),
        tls_port: int | None = None,
        x509_dir: str | os.PathLike[str] | None = None,
        x509_cert_file: str | os.PathLike[str] | None = None,
        x509_key_file: str | os.PathLike[str] | None = None,
        x509_cacert_file: str | os.PathLike[str] | None = None,
        websocket: bool = True,
        ws_port: int | None = None,
        html5_dir: str | os.PathLike[str] | None = None,
        handshake_timeout: float = 10.0,
        max_http_header: int = 16384,
        max_ws_message: int = 1 << 20,
        ws_allowed_origins: Iterable[str] = (),
        allowed_hosts: Iterable[str] = (),
        max_connections: int | None = None,
        max_connections_per_address: int = 64,
        link_attempts_per_second: float = 20.0,
        failed_ticket_delay: float = 1.0,
        max_client_buffer: int = DEFAULT_MAX_OUTPUT,
        max_message: Mapping[ChannelSpec, int] | None = None,
    ) -> None:
        self.addr = addr
        self.port = port
        self.tls_port = tls_port
        self.ws_port = ws_port
        self.ipv4_only = ipv4_only
        self.ipv6_only = ipv6_only
        if port is None and tls_port is None and ws_port is None:
            raise ValueError("give at least one of port, tls_port and ws_port")
        secure, plain = channel_security([*secure_channels, *tls_channels], plaintext_channels)
        self._tls_context = self._make_tls_context(
            tls_port, x509_dir, x509_cert_file, x509_key_file, x509_cacert_file
        )
        if secure and tls_port is None:
            raise ValueError("TLS-only channels need a tls_port")
        self.websocket = websocket
        self.html5_dir = Path(html5_dir) if html5_dir is not None else None
        if self.html5_dir is not None and not self.html5_dir.is_dir():
            raise ValueError(f"html5_dir {self.html5_dir} is not a directory")
        self._html5_module = find_client_module(self.html5_dir)
        if self.html5_dir is not None and self._html5_module is None:
            log.warning("%s holds no spice-html5 main.js; the page will say so", self.html5_dir)
        self._limits = TransportLimits(
            # No stage before the link may take longer than the link stage itself.
            handshake_timeout=min(handshake_timeout, link_timeout),
            max_header_bytes=max_http_header,
            max_message_bytes=max_ws_message,
            send_timeout=send_timeout,
        )
        self._allowed_origins = frozenset(ws_allowed_origins)
        self._allowed_hosts = served_names(addr, allowed_hosts)
        if image_compression == "auto":
            image_compression = DEFAULT_MODE
        if image_compression not in MODES:
            raise ValueError(
                f"image_compression must be one of {', '.join(MODES)}, not {image_compression!r}"
            )
        if jpeg_wan_compression not in JPEG_WAN:
            raise ValueError(
                f"jpeg_wan_compression must be one of {', '.join(JPEG_WAN)}, "
                f"not {jpeg_wan_compression!r}"
            )
        if streaming_video not in STREAM_MODES:
            raise ValueError(
                f"streaming_video must be one of {', '.join(STREAM_MODES)}, not {streaming_video!r}"
            )
        config = ServerConfig(
            ticket=TicketPolicy(
                password=password, expires_at=password_expires, ticketing=not disable_ticketing
            ),
            name=name,
            uuid=uuid_mod.UUID(str(uuid)) if uuid is not None else None,
            client_mouse=client_mouse,
            link_timeout=link_timeout,
            send_timeout=send_timeout,
            secure_channels=secure,
            plaintext_channels=plain,
            tls_available=tls_port is not None,
            image_compression=image_compression,
            jpeg_wan_compression=jpeg_wan_compression,
            streaming_video=streaming_video,
            limits=Limits(
                max_connections=max_connections or tcp.default_max_connections(),
                max_connections_per_address=max_connections_per_address,
                link_rate=link_attempts_per_second,
                link_burst=max(1, round(3 * link_attempts_per_second)),
                connection_rate=2 * link_attempts_per_second,
                connection_burst=max(1, round(6 * link_attempts_per_second)),
                failed_ticket_delay=failed_ticket_delay,
                max_failed_ticket_delay=8 * failed_ticket_delay,
            ),
            max_message=message_limits(max_message or {}),
            max_output=max_client_buffer,
        )
        self._core = SpiceCore(config)
        self.displays: list[Display] = []
        #: (host, port) pairs actually bound, once serving: plain, TLS and browser-only ports.
        self.addresses: list[tuple[str, int]] = []
        self.tls_addresses: list[tuple[str, int]] = []
        self.ws_addresses: list[tuple[str, int]] = []

    @staticmethod
    def _make_tls_context(
        tls_port: int | None,
        x509_dir: str | os.PathLike[str] | None,
        cert: str | os.PathLike[str] | None,
        key: str | os.PathLike[str] | None,
        cacert: str | os.PathLike[str] | None,
    ) -> ssl.SSLContext | None:
        if tls_port is None:
            if x509_dir or cert or key:
                raise ValueError("certificate options given without a tls_port")
            return None
        if x509_dir is not None:
            files = CertificateFiles.in_dir(x509_dir)
            cert = cert or files.server_cert
            key = key or files.server_key
            if cacert is None and files.ca_cert.exists():
                cacert = files.ca_cert
        if cert is None or key is None:
            raise ValueError("a tls_port needs x509_dir or both x509_cert_file and x509_key_file")
        for path in (cert, key, cacert):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"certificate file {os.fspath(path)} does not exist")
        try:
            return server_context(cert, key, cacert)
        except ssl.SSLError as exc:
            raise ValueError(
                f"cannot use the certificate {os.fspath(cert)} with key {os.fspath(key)}: {exc}"
            ) from exc

    # -- configuration --------------------------------------------------------------------
    def add_display(self, width: int, height: int) -> Display:
        display = Display(self._core.add_display(width, height))
        self.displays.append(display)
        return display

    def set_password(self, password: str | None, expires: float | None = None) -> None:
        """Change the ticket for new connections (like spice_server_set_ticket)."""
        cfg = self._core.config
        cfg.ticket = TicketPolicy(
            password=password, expires_at=expires, ticketing=cfg.ticket.ticketing
        )

    # -- serving ---------------------------------------------------------------------------
    def _page(self) -> bytes:
        cfg = self._core.config
        return render_page(
            title=cfg.name or "trio-spice",
            module=self._html5_module,
            password=cfg.ticket.ticketing,
        )

    def _front_doors(self) -> tuple[FrontDoor, FrontDoor | None, FrontDoor]:
        site = Site(self.html5_dir, self._page if self.html5_dir is not None else None)
        origins = self._allowed_origins or None

        def door(
            *, tls: ssl.SSLContext | None = None, spice: bool = True, web: bool = True
        ) -> FrontDoor:
            return FrontDoor(
                self._core.handle_connection,
                site=site,
                limits=self._limits,
                tls=tls,
                spice=spice,
                http=web,
                websocket=web,
                allowed_origins=origins,
                allowed_hosts=self._allowed_hosts,
                admission=self._core.admission,
            )

        plain = door(web=self.websocket)
        tls = door(tls=self._tls_context) if self._tls_context is not None else None
        return plain, tls, door(spice=False)

    async def _listen(self, port: int | None) -> list[trio.SocketListener]:
        if port is None:
            return []
        return await tcp.open_listeners(
            self.addr, port, ipv4_only=self.ipv4_only, ipv6_only=self.ipv6_only
        )

    async def codecs_ready(self) -> None:
        """Wait until the compiled image codecs (LZ_RGB, QUIC) are loaded. A server serves at
        once; until then its images go as LZ4 or BITMAP. Loading takes milliseconds, except
        on a machine's first run, when numba compiles them (tens of seconds, in a thread)."""
        await self._core.codecs_warm.wait()

    async def serve(
        self, *, task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and serve until cancelled. ``await nursery.start(server.serve)`` returns once
        the sockets are bound (see :attr:`addresses`, :attr:`tls_addresses`,
        :attr:`ws_addresses` and :attr:`urls`)."""
        opened: list[trio.SocketListener] = []
        try:
            listeners = await self._listen(self.port)
            opened += listeners
            tls_listeners = await self._listen(self.tls_port)
            opened += tls_listeners
            ws_listeners = await self._listen(self.ws_port)
            opened += ws_listeners
        except BaseException:
            for listener in opened:
                await listener.aclose()
            raise
        self.addresses = tcp.bound_addresses(listeners)
        self.tls_addresses = tcp.bound_addresses(tls_listeners)
        self.ws_addresses = tcp.bound_addresses(ws_listeners)
        plain, tls, browsers = self._front_doors()
        async with trio.open_nursery() as nursery:
            await nursery.start(self._core.run)
            for group, door, what in (
                (listeners, plain, "SPICE" + (" and browsers" if self.websocket else "")),
                (tls_listeners, tls, "SPICE over TLS and browsers (https)"),
                (ws_listeners, browsers, "browsers"),
            ):
                if group and door is not None:
                    await nursery.start(tcp.serve, group, door.handle)
                    for host, port in tcp.bound_addresses(group):
                        log.info("listening on %s:%d for %s", host, port, what)
            task_status.started(self)

    @property
    def port_bound(self) -> int:
        return self.addresses[0][1]

    @property
    def tls_port_bound(self) -> int:
        return self.tls_addresses[0][1]

    @property
    def ws_port_bound(self) -> int:
        return self.ws_addresses[0][1]

    @property
    def urls(self) -> list[str]:
        """Where a browser opens the HTML5 client (once serving; empty without html5_dir)."""
        if self.html5_dir is None:
            return []
        urls = []
        if self.websocket:
            urls += [f"http://{_url_host(h)}:{p}/" for h, p in self.addresses]
        urls += [f"https://{_url_host(h)}:{p}/" for h, p in self.tls_addresses]
        urls += [f"http://{_url_host(h)}:{p}/" for h, p in self.ws_addresses]
        return list(dict.fromkeys(urls))

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

    async def notify(self, message: str, *, severity: str = "info") -> None:
        """Send a NOTIFY to every client's main channel (clients log it).
        ``severity``: info, warn or error."""
        await self._core.notify(message, NotifySeverity[severity.upper()])

    async def disconnect_all(self) -> None:
        """Send DISCONNECTING to every client and close all their channels."""
        await self._core.disconnect_all()

    async def set_keyboard_leds(self, modifiers: int) -> None:
        """Tell clients the keyboard LEDs: SCROLL_LOCK 1, NUM_LOCK 2, CAPS_LOCK 4."""
        await self._core.set_keyboard_leds(modifiers)

    # -- input ------------------------------------------------------------------------------
    @asynccontextmanager
    async def input_events(
        self, queue: int = 256
    ) -> AsyncIterator[trio.MemoryReceiveChannel[InputEvent]]:
        """``async with server.input_events() as events: async for event in events: ...``.
        The queue is bounded; a consumer that falls behind slows the clients' input down."""
        receive = self._core.subscribe_input(queue)
        async with receive:
            yield receive

    def on_input(self, callback: Callable[[InputEvent], None]) -> None:
        """Call ``callback(event)`` in the server's Trio thread for every input event."""
        self._core.on_input(callback)
