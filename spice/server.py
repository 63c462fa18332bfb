"""The public server object: configure, add displays, serve, receive input."""

from __future__ import annotations

import datetime
import functools
import ipaddress
import logging
import os
import socket
import ssl
import time
import uuid as uuid_mod
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio

from spice.adapters import tcp
from spice.adapters.config import DEFAULT_MAX_MESSAGE, DEFAULT_MAX_OUTPUT, ServerConfig
from spice.adapters.core import SpiceCore
from spice.adapters.front_door import FrontDoor, TransportLimits
from spice.adapters.html5_page import find_client_module, render_page
from spice.adapters.http_static import Site
from spice.adapters.session import Client
from spice.adapters.task_errors import single_error
from spice.adapters.tls import server_context
from spice.audio import Playback, Record
from spice.certs import CertificateFiles
from spice.clipboard import Clipboard
from spice.display import Display, Monitor, check_monitors, check_size
from spice.domain.admission import Limits
from spice.domain.agent.app_events import AgentAppEvent
from spice.domain.agent.machine import AgentConfig
from spice.domain.audio_events import RecordEvent
from spice.domain.codecs.select import DEFAULT_MODE, JPEG_WAN, MODES
from spice.domain.codecs.video import parse_video_codecs
from spice.domain.display.streams import MODES as STREAM_MODES
from spice.domain.enums import ChannelType, NotifySeverity
from spice.domain.input_events import InputEvent
from spice.domain.sasl import PLAIN, SCRAM_MECHANISMS, SaslUser
from spice.domain.ticket import TicketPolicy
from spice.errors import ConfigError, ListenError, ServerStateError
from spice.port import Port, check_port_name
from spice.sasl import UsersFileError, load_users

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


_F = TypeVar("_F", bound=Callable[..., Any])


def _config_errors(fn: _F) -> _F:
    """Any ValueError from checking the arguments comes out as a :class:`ConfigError` (still a
    ValueError), whichever layer found it."""

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError:
            raise
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    return checked  # type: ignore[return-value]


def check_port(name: str, value: object, *, optional: bool = True) -> int | None:
    """A TCP port number (0 picks a free one), checked at the call."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= 65535:
        raise ConfigError(f"{name} must be 0 to 65535, not {value}")
    return value


Expiry = float | datetime.timedelta | None


def expiry_time(
    valid_for: Expiry = None, expires_at: datetime.datetime | None = None, *, now: float
) -> float | None:
    """Seconds since the epoch at which a password stops working, from a duration
    (seconds, or a timedelta, from ``now``) or an aware datetime; None: never."""
    if valid_for is not None and expires_at is not None:
        raise ConfigError("give the password's validity as valid_for or expires_at, not both")
    if valid_for is not None:
        seconds = (
            valid_for.total_seconds()
            if isinstance(valid_for, datetime.timedelta)
            else float(valid_for)
        )
        if not seconds > 0:
            raise ConfigError(f"valid_for must be a positive duration, not {valid_for!r}")
        return now + seconds
    if expires_at is not None:
        if not isinstance(expires_at, datetime.datetime):
            raise TypeError("expires_at must be a datetime.datetime (use valid_for for seconds)")
        if expires_at.tzinfo is None:
            raise ConfigError("expires_at must be timezone-aware (e.g. datetime.UTC)")
        return expires_at.timestamp()
    return None


def _deprecated_expiry(name: str, epoch: float, now: float) -> float:
    warnings.warn(
        f"{name} (seconds since the epoch) is deprecated: give valid_for= (seconds from now) "
        "or expires_at= (a datetime)",
        DeprecationWarning,
        stacklevel=4,  # the caller, past the method and its argument check
    )
    if epoch <= now:
        raise ConfigError(
            f"{name}={epoch!r} is a time in the past (seconds since the epoch), so nobody could "
            f"log in; for a duration use valid_for={epoch!r}"
        )
    return float(epoch)


def _check_family(addr: str | None, ipv4_only: bool, ipv6_only: bool) -> None:
    if ipv4_only and ipv6_only:
        raise ConfigError("ipv4_only and ipv6_only exclude each other")
    if not addr or not (ipv4_only or ipv6_only):
        return
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return  # a host name: resolved when serving
    if ipv6_only and ip.version == 4:
        raise ConfigError(f"ipv6_only with the IPv4 address {addr}")
    if ipv4_only and ip.version == 6:
        raise ConfigError(f"ipv4_only with the IPv6 address {addr}")


def _load_sasl_users(path: Path) -> dict[str, SaslUser]:
    try:
        return load_users(path)
    except OSError as exc:
        raise ConfigError(f"cannot read the SASL users file: {exc}") from None
    except UsersFileError as exc:
        raise ConfigError(f"bad SASL users file: {exc}") from None


class Server:
    """A SPICE server.

        >>> server = Server(port=5900, disable_ticketing=True)
        >>> display = server.add_display(1024, 768)
        >>> # in a Trio task:  await nursery.start(server.serve); await display.fill(...)

    ``password`` turns on ticketing (an empty one is no password); it stops working after
    ``password_valid_for`` (seconds or a timedelta from now) or at ``password_expires_at`` (an
    aware datetime). ``view_only_password`` is a second password whose holders see the
    displays but whose keys and clicks never reach the application. ``disable_ticketing`` lets
    anyone in. With neither a password nor that, nobody can log in (as QEMU) and each refusal
    is logged as such. (``password_expires``, seconds since the epoch, is deprecated.)
    ``sasl_users`` (a users file, see :mod:`spice.sasl` and ``trio-spice adduser``) turns on
    SASL instead of the ticket, as spice_server_set_sasl: SCRAM-SHA-256 and SCRAM-SHA-1 on
    every port, PLAIN too over TLS; a view-only user's input never reaches the application, and
    ``event.client.user`` names the user. :meth:`reload_sasl_users` rereads the file;
    ``sasl_mechanisms`` narrows what is offered (e.g. ``["SCRAM-SHA-256"]``).
    ``client_mouse`` offers the absolute (client) mouse mode, as a tablet would;
    ``agent_mouse`` offers it through the agent even when ``client_mouse`` is False (QEMU's
    agent-mouse): the positions reach the application as :class:`MousePositionEvent`.
    ``image_compression`` (QEMU's option): "auto_glz" (the default) and "auto_lz" send
    photographic areas as QUIC and the rest as LZ; "quic", "lz" and "lz4" (LZ4 to clients that
    decode it, else LZ) force one codec; "glz" is taken as "lz" (no GLZ dictionary); "off"
    sends uncompressed bitmaps; "auto" is "auto_glz". ``jpeg_wan_compression``: "auto" sends
    photographic areas as JPEG to clients on a slow link (under 10 Mbit/s), "always" to every
    client, "never" keeps every image lossless. ``streaming_video``: areas that change at
    video rates go as MJPEG streams: "filter" (the default, as QEMU's) only for photographic
    content, or for any content a viewer's measured link cannot carry losslessly at video
    rates, "all" for any, "off" never; when the motion stops clients get the area lossless.
    ``video_codecs`` (QEMU's video-codecs; "mjpeg,vp8,h264" or "spice:mjpeg;gstreamer:h264"):
    the codecs streams may use. With all three (the default) spice-html5 gets VP8, which its
    browser scales to the area, and spice-gtk MJPEG, which it scales itself and which costs
    less CPU, but H.264 on a slow link (when its GStreamer decodes H.264); a client's
    preferred codec comes first.

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

    The agent (what vdagent does in a guest) is built in: :attr:`clipboard` is shared with
    the clients unless ``copy_paste`` is False (QEMU's ``disable-copy-paste``), up to
    ``clipboard_limit`` bytes each way (a larger copy is refused, the session goes on); a client's
    window resize asks for a new display size, which :meth:`on_resize` decides (by default
    the display takes it); files a client sends are stored in ``file_transfer_dir`` (as a
    temporary ``.NAME.*.part`` file, renamed when complete; no directory, or
    ``file_transfer=False`` as QEMU's ``disable-agent-file-xfer``, refuses them).
    :meth:`agent_events` tells what happens.

    ``allowed_hosts`` lists names (besides IP addresses, localhost names and the machine's host
    name) that browsers may use for this server; other Host headers get 403 (DNS rebinding).

    Limits (a connection over one is closed with one log line): ``max_connections`` open at
    once (default 1000, fewer under a low descriptor limit), ``max_connections_per_address``,
    ``link_attempts_per_second`` per address (bursts of three seconds' worth; new connections
    twice that), and after a failed ticket the next from that address waits
    ``failed_ticket_delay`` seconds, doubling per failure up to eight times that.
    ``link_timeout`` bounds the link stage; ``max_client_buffer`` is the bytes one channel
    connection may have queued for writing before its client is dropped; ``max_message`` maps
    channel names to the largest message a client may send on them (main 64 KiB, others 4 KiB
    by default).
    """

    @_config_errors
    def __init__(
        self,
        *,
        addr: str | None = "127.0.0.1",
        port: int | None = 5900,
        password: str | None = None,
        password_expires: float | None = None,
        password_valid_for: Expiry = None,
        password_expires_at: datetime.datetime | None = None,
        view_only_password: str | None = None,
        disable_ticketing: bool = False,
        name: str | None = None,
        uuid: uuid_mod.UUID | str | None = None,
        ipv4_only: bool = False,
        ipv6_only: bool = False,
        client_mouse: bool = True,
        agent_mouse: bool = False,
        link_timeout: float = 30.0,
        send_timeout: float = 30.0,
        image_compression: str = "auto_glz",
        jpeg_wan_compression: str = "auto",
        streaming_video: str = "filter",
        video_codecs: str | Iterable[str] = ("mjpeg", "vp8", "h264"),
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
        copy_paste: bool = True,
        clipboard_limit: int = 16 << 20,
        file_transfer: bool = True,
        file_transfer_dir: str | os.PathLike[str] | None = None,
        audio: bool = True,
        playback_compression: bool = True,
        allowed_hosts: Iterable[str] = (),
        max_connections: int | None = None,
        max_connections_per_address: int = 64,
        link_attempts_per_second: float = 20.0,
        failed_ticket_delay: float = 1.0,
        max_client_buffer: int = DEFAULT_MAX_OUTPUT,
        max_message: Mapping[ChannelSpec, int] | None = None,
        sasl_users: str | os.PathLike[str] | None = None,
        sasl_mechanisms: Iterable[str] | None = None,
    ) -> None:
        port = check_port("port", port)
        tls_port = check_port("tls_port", tls_port)
        ws_port = check_port("ws_port", ws_port)
        if addr is not None and not isinstance(addr, str):
            raise TypeError(f"addr must be a str or None, not {type(addr).__name__}")
        _check_family(addr, ipv4_only, ipv6_only)
        now = time.time()
        expires_at = expiry_time(password_valid_for, password_expires_at, now=now)
        if password_expires is not None:
            if expires_at is not None:
                raise ConfigError("password_expires is the deprecated form of password_valid_for")
            expires_at = _deprecated_expiry("password_expires", password_expires, now)
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
        codecs = parse_video_codecs(
            video_codecs if isinstance(video_codecs, str) else ",".join(video_codecs)
        )
        transfer_dir = Path(file_transfer_dir) if file_transfer_dir is not None else None
        if transfer_dir is not None and not transfer_dir.is_dir():
            raise ValueError(f"file_transfer_dir {transfer_dir} is not a directory")
        config = ServerConfig(
            ticket=TicketPolicy(
                password=password,
                expires_at=expires_at,
                ticketing=not disable_ticketing,
                view_only_password=view_only_password,
            ),
            name=name,
            uuid=uuid_mod.UUID(str(uuid)) if uuid is not None else None,
            client_mouse=client_mouse,
            agent_mouse=agent_mouse,
            link_timeout=link_timeout,
            send_timeout=send_timeout,
            secure_channels=secure,
            plaintext_channels=plain,
            tls_available=tls_port is not None,
            image_compression=image_compression,
            jpeg_wan_compression=jpeg_wan_compression,
            streaming_video=streaming_video,
            video_codecs=codecs,
            agent=AgentConfig(
                copy_paste=copy_paste,
                file_transfer=file_transfer,
                clipboard_limit=clipboard_limit,
            ),
            file_transfer_dir=transfer_dir,
            audio=audio,
            playback_compression=playback_compression,
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
        self._sasl_users = Path(sasl_users) if sasl_users is not None else None
        if self._sasl_users is not None:
            config.sasl_users = _load_sasl_users(self._sasl_users)
        if sasl_mechanisms is not None:
            config.sasl_mechanisms = frozenset(sasl_mechanisms)
            unknown = config.sasl_mechanisms - {*SCRAM_MECHANISMS, PLAIN}
            if unknown:
                raise ConfigError(f"unknown SASL mechanisms: {', '.join(sorted(unknown))}")
        self._core = SpiceCore(config)
        #: "new", "serving" or "stopped": a Server serves once.
        self._state = "new"
        self._scope: trio.CancelScope | None = None
        self._started = False
        self.displays: list[Display] = []
        #: The clipboard shared with the clients (see :class:`~spice.clipboard.Clipboard`).
        self.clipboard = Clipboard(self._core.agent)
        self._core.agent.resize_handler = self._resize
        #: The sound every client plays, and the clients' microphones (:mod:`spice.audio`).
        self.playback = Playback(self._core.playback)
        self.record = Record(self._core.record)
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
    @_config_errors
    def reload_sasl_users(self) -> None:
        """Reread the SASL users file; the next logins use it (logged-in clients stay)."""
        if self._sasl_users is None:
            raise ConfigError("this server was not given sasl_users")
        self._core.config.sasl_users = _load_sasl_users(self._sasl_users)

    def add_display(
        self, width: int, height: int, *, monitors: Iterable[Monitor] | None = None
    ) -> Display:
        """A new display of 1 to 8192 pixels a side (before or while serving). ``monitors``
        lists its monitors as (x, y, width, height) rectangles of it (1 to 16): spice-gtk
        shows each in a window of its own; by default there is one, showing all of it."""
        width, height = check_size(width, height)
        heads = () if monitors is None else check_monitors(monitors, width, height)
        display = Display(self._core.add_display(width, height, heads), self._worker_running)
        self.displays.append(display)
        return display

    def _worker_running(self) -> bool:
        return self._state == "serving" and self._core.running

    _KEEP: str = "\0keep"

    @_config_errors
    def set_password(
        self,
        password: str | None,
        expires: float | None = None,
        *,
        valid_for: Expiry = None,
        expires_at: datetime.datetime | None = None,
        view_only_password: str | None = _KEEP,
    ) -> None:
        """Change the password for new connections (like spice_server_set_ticket); None or ""
        is no password. It stops working after ``valid_for`` (seconds or a timedelta from now)
        or at ``expires_at`` (an aware datetime); neither: never. ``view_only_password``
        changes the view-only one too (by default it is kept). ``expires``, seconds since the
        epoch, is deprecated."""
        now = time.time()
        when = expiry_time(valid_for, expires_at, now=now)
        if expires is not None:
            if when is not None:
                raise ConfigError("expires is the deprecated form of valid_for")
            when = _deprecated_expiry("expires", expires, now)
        cfg = self._core.config
        cfg.ticket = TicketPolicy(
            password=password,
            expires_at=when,
            ticketing=cfg.ticket.ticketing,
            view_only_password=(
                cfg.ticket.view_only_password
                if view_only_password is self._KEEP
                else view_only_password
            ),
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
        """Listen and serve until cancelled or :meth:`stop` is called. ``await
        nursery.start(server.serve)`` returns once the sockets are bound (see
        :attr:`addresses`, :attr:`tls_addresses`, :attr:`ws_addresses` and :attr:`urls`).

        A socket that cannot be opened raises :class:`spice.ListenError` (one line naming the
        address and why). A Server serves once: serving it again, or twice at a time, raises
        :class:`spice.ServerStateError`. Whatever single error stops it is raised as itself,
        never inside an ExceptionGroup."""
        if self._state != "new":
            raise ServerStateError(
                "this server is already serving"
                if self._state == "serving"
                else "this server has been stopped and cannot serve again: make a new Server"
            )
        self._state = "serving"
        self._started = False
        try:
            with trio.CancelScope() as self._scope:
                await self._serve(task_status)
            if not self._started:
                # stop() came before the sockets were up: started, and stopped at once.
                task_status.started(self)
        except BaseExceptionGroup as group:
            raise single_error(group) from None
        finally:
            self._state = "stopped" if self._core.ran else "new"
            self._scope = None

    async def stop(self, *, grace: float = 1.0) -> int:
        """Send every client DISCONNECTING (waiting at most ``grace`` seconds), then stop
        serving: :meth:`serve` returns. Returns how many clients were connected."""
        if self._state != "serving" or self._scope is None:
            return 0
        count = len(self._core.sessions)
        try:
            with trio.move_on_after(grace):
                await self._core.disconnect_all("server stopping")
        except BaseExceptionGroup as group:
            raise single_error(group) from None
        if self._scope is not None:
            self._scope.cancel()
        return count

    async def _open_listeners(self, port: int | None) -> list[trio.SocketListener]:
        try:
            return await self._listen(port)
        except OSError as exc:
            where = f"[{self.addr}]" if self.addr and ":" in self.addr else (self.addr or "*")
            why = exc.strerror or str(exc)
            if self.ipv6_only or self.ipv4_only:
                why = str(exc) if "no IPv" in str(exc) else why
            error = ListenError(f"cannot listen on {where}:{port}: {why}")
            error.errno = exc.errno
            raise error from exc

    async def _serve(self, task_status: trio.TaskStatus[Server]) -> None:
        opened: list[trio.SocketListener] = []
        try:
            listeners = await self._open_listeners(self.port)
            opened += listeners
            tls_listeners = await self._open_listeners(self.tls_port)
            opened += tls_listeners
            ws_listeners = await self._open_listeners(self.ws_port)
            opened += ws_listeners
        except BaseException:
            for listener in opened:
                await listener.aclose()
            raise
        ticket = self._core.config.ticket
        if self._core.config.sasl_users is not None:
            if not self._core.config.sasl_users:
                log.warning("the SASL users file holds no user: every client will be refused")
        elif ticket.ticketing and ticket.password is None and ticket.view_only_password is None:
            log.warning(
                "no password is set and ticketing is on: every client will be refused "
                "(give password= or disable_ticketing=True)"
            )
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
            self._started = True
            task_status.started(self)

    @property
    def serving(self) -> bool:
        return self._state == "serving"

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
    def clients(self) -> list[Client]:
        """The connected clients (a snapshot), oldest first: each with its ``address``,
        ``transport``, ``session_id``, ``connected_at``, ``view_only`` and ``disconnect()``."""
        return self._core.clients

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
        if not isinstance(message, str):
            raise TypeError(f"message must be a str, not {type(message).__name__}")
        names = [s.name.lower() for s in NotifySeverity]
        if not isinstance(severity, str) or severity.lower() not in names:
            raise ConfigError(f"severity must be one of {', '.join(names)}, not {severity!r}")
        await self._core.notify(message, NotifySeverity[severity.upper()])

    async def disconnect_all(self) -> None:
        """Send DISCONNECTING to every client and close all their channels."""
        try:
            await self._core.disconnect_all()
        except BaseExceptionGroup as group:
            raise single_error(group) from None

    async def set_keyboard_leds(self, modifiers: int) -> None:
        """Tell clients the keyboard LEDs: SCROLL_LOCK 1, NUM_LOCK 2, CAPS_LOCK 4."""
        if isinstance(modifiers, bool) or not isinstance(modifiers, int):
            raise TypeError(f"modifiers must be an int, not {type(modifiers).__name__}")
        if not 0 <= modifiers <= 7:
            raise ConfigError(f"modifiers is a mask of 1, 2 and 4, not {modifiers}")
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

    # -- audio ---------------------------------------------------------------------------------
    @asynccontextmanager
    async def record_events(
        self, queue: int = 256
    ) -> AsyncIterator[trio.MemoryReceiveChannel[RecordEvent]]:
        """``async with server.record_events() as events: async for event in events: ...``:
        :class:`~spice.domain.audio_events.RecordStarted`, ``RecordData`` (PCM, ``samples``,
        ``level``) and ``RecordStopped`` from every client. Bounded; frames beyond ``queue``
        unread are dropped, so a slow reader never holds a client up."""
        receive = self._core.record.subscribe(queue)
        async with receive:
            yield receive

    # -- agent: resize and events --------------------------------------------------------------
    def on_resize(self, handler: Callable[[Display, int, int], Awaitable[bool]] | None) -> None:
        """Decide a client's resize requests: ``await handler(display, width, height)`` returns
        whether the display now has that size (it calls ``display.resize`` and redraws, or
        keeps its size and returns False). None restores the default: resize, nothing else."""
        self._resize_handler = handler

    _resize_handler: Callable[[Display, int, int], Awaitable[bool]] | None = None

    async def _resize(self, display_id: int, width: int, height: int) -> bool:
        if display_id >= len(self.displays):
            return False
        display = self.displays[display_id]
        if self._resize_handler is None:
            await display.resize(width, height)
            return True
        return bool(await self._resize_handler(display, width, height))

    def open_port(self, name: str) -> Port:
        """Open the named port ``name`` (such as "org.example.echo"; 1 to 255 UTF-8 bytes) as
        a Trio byte stream to the client that opens it, with events (see :class:`Port`).
        Clients that connect from now on see it; opening a closed port's name again reopens
        it; an open one's raises ConfigError."""
        name = check_port_name(name)
        try:
            return Port(self._core.ports.open(name))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @asynccontextmanager
    async def agent_events(
        self, queue: int = 64
    ) -> AsyncIterator[trio.MemoryReceiveChannel[AgentAppEvent]]:
        """``async with server.agent_events() as events: async for event in events: ...``:
        clipboard offers and clears, resize requests and files received (see
        :mod:`spice.domain.agent.app_events`). Bounded; events beyond ``queue`` unread are
        dropped, so a slow reader never holds a client up."""
        receive = self._core.agent.subscribe(queue)
        async with receive:
            yield receive
