"""The HTTP stage of a browser's connection: the HTML5 client's files, or a WebSocket upgrade.

After :mod:`adapters.sniff` has seen an HTTP method, this reads one request head at a time
(bounded in size and time), parses it with h11 and either

- hands a WebSocket upgrade on any path that is not a file of the page to the WebSocket stage,
  replaying the request bytes into it (:mod:`adapters.websocket`), or
- answers a GET or HEAD: ``/`` is the page that starts spice-html5 (made by
  :mod:`adapters.html5_page`), any other path a file under the spice-html5 directory, with its
  content type; keep-alive is honoured for up to :attr:`HttpLimits.max_requests` requests, and a
  response not read within :attr:`HttpLimits.send_timeout` closes the connection.

Everything else is refused with its status and one log line: a path that climbs out of the
directory (``..``, also percent-encoded) 403, a missing file 404, another method 405, a head
over the size limit 431, a malformed request 400, a WebSocket upgrade from a page of another
origin 403, a Host that is not a name of this server 403 (DNS rebinding). A head not complete
within the deadline is dropped.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

import attrs
import h11
import trio

from spice.adapters.sniff import ReplayStream

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    # spice-html5's sources are ES modules: browsers insist on a JavaScript MIME type.
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"

REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

_HEAD_END = re.compile(rb"\r?\n\r?\n")

#: Starts the WebSocket stage: (stream replaying the request, peer, chosen subprotocol).
WebSocketHandler = Callable[[trio.abc.Stream, str, "str | None"], Awaitable[None]]
#: Decides the subprotocol from the offered ones; raises ValueError to refuse.
SubprotocolChooser = Callable[[list[str]], "str | None"]


@attrs.frozen
class HttpLimits:
    #: Largest request head (request line and headers) accepted; larger gets 431.
    max_header_bytes: int = 16384
    #: Seconds for a request head to arrive (the first one, and each on a kept-alive connection).
    timeout: float = 10.0
    #: Requests served on one kept-alive connection before it is closed.
    max_requests: int = 100
    #: Seconds a response may take to be written (a client that never reads holds its body
    #: and a file descriptor until then).
    send_timeout: float = 30.0


class HttpRefusal(Exception):
    """A request to answer with an error status (and then close the connection)."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


@attrs.frozen
class Request:
    method: str
    target: str
    headers: dict[str, str]
    http_version: str
    #: The raw head as received (replayed into the WebSocket handshake).
    raw: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.header("connection").split(",")}
        if self.http_version == "1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    @property
    def is_websocket_upgrade(self) -> bool:
        tokens = {t.strip().lower() for t in self.header("connection").split(",")}
        return self.header("upgrade").lower() == "websocket" and "upgrade" in tokens

    @property
    def subprotocols(self) -> list[str]:
        return [p.strip() for p in self.header("sec-websocket-protocol").split(",") if p.strip()]


def parse_head(raw: bytes, max_header_bytes: int) -> Request:
    """Parse one request head (ending with its blank line) with h11; errors as refusals."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_header_bytes)
    conn.receive_data(raw)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError as exc:
        raise HttpRefusal(exc.error_status_hint or 400, f"malformed request: {exc}") from None
    if not isinstance(event, h11.Request):
        raise HttpRefusal(400, "malformed request head")
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return Request(
        method=event.method.decode("ascii", "replace"),
        target=event.target.decode("latin-1"),
        headers=headers,
        http_version=event.http_version.decode("ascii", "replace"),
        raw=raw,
    )


def url_path_segments(target: str) -> list[str]:
    """The decoded path segments of a request target; refuses anything that could name a file
    outside the served directory, however it is encoded."""
    if target.startswith(("http://", "https://")):
        target = urlsplit(target).path or "/"
    if not target.startswith("/"):
        raise HttpRefusal(400, f"request target {target[:80]!r} is not a path")
    path = target.split("?", 1)[0].split("#", 1)[0]
    try:
        decoded = unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise HttpRefusal(400, "path is not UTF-8") from None
    if "\0" in decoded or "\\" in decoded:
        raise HttpRefusal(403, f"path {target[:80]!r} has a NUL or a backslash")
    segments = [s for s in decoded.split("/") if s]
    for segment in segments:
        if segment in (".", ".."):
            raise HttpRefusal(403, f"path {target[:80]!r} climbs out of the page directory")
        if segment.startswith("."):
            raise HttpRefusal(404, f"path {target[:80]!r} names a hidden file")
    return segments


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), DEFAULT_CONTENT_TYPE)


class Site:
    """What GET serves: the page at ``/`` and the files under ``root`` (if any)."""

    def __init__(self, root: Path | None, page: Callable[[], bytes] | None) -> None:
        self.root = root.resolve() if root is not None else None
        self.page = page

    def file_for(self, segments: list[str]) -> Path | None:
        """The regular file the segments name inside the root, or None. Symbolic links may
        point anywhere inside the root, not out of it."""
        if self.root is None or not segments:
            return None
        candidate = self.root.joinpath(*segments)
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not real.is_relative_to(self.root) or not real.is_file():
            return None
        return real

    def is_page_file(self, segments: list[str]) -> bool:
        return self.file_for(segments) is not None


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_COMMON_HEADERS = [
    ("Server", "trio-spice"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-cache"),
    ("Referrer-Policy", "no-referrer"),
]


async def _send_response(
    stream: trio.abc.Stream,
    status: int,
    body: bytes,
    ctype: str,
    *,
    keep_alive: bool,
    head_only: bool = False,
    extra: list[tuple[str, str]] | None = None,
) -> None:
    headers = [
        ("Content-Type", ctype),
        ("Content-Length", str(len(body))),
        *_COMMON_HEADERS,
        ("Connection", "keep-alive" if keep_alive else "close"),
        *(extra or []),
    ]
    await stream.send_all(response_head(status, headers) + (b"" if head_only else body))


async def refuse(stream: trio.abc.Stream, peer: str, status: int, why: str) -> None:
    """Answer ``status`` with a short text body, log one line; the caller closes."""
    log.warning("%s: HTTP %d: %s", peer, status, why)
    body = f"{status} {REASONS.get(status, '')}\n".encode()
    extra = [("Allow", "GET, HEAD")] if status == 405 else None
    try:
        with trio.move_on_after(2):
            await _send_response(
                stream, status, body, "text/plain; charset=utf-8", keep_alive=False, extra=extra
            )
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def read_head(stream: trio.abc.Stream, buffer: bytearray, limits: HttpLimits) -> bytes | None:
    """Move one request head out of ``buffer`` (reading more as needed); None on a clean EOF
    before any byte of a new request."""
    while True:
        match = _HEAD_END.search(buffer, 0, limits.max_header_bytes + 4)
        if match is not None:
            head = bytes(buffer[: match.end()])
            del buffer[: match.end()]
            return head
        if len(buffer) > limits.max_header_bytes:
            raise HttpRefusal(431, f"request head over {limits.max_header_bytes} bytes")
        data = await stream.receive_some(65536)
        if not data:
            if buffer:
                raise EOFError(f"closed after {len(buffer)} bytes of a request head")
            return None
        buffer += data


def host_name(host: str) -> str:
    """The name in a Host header, without its port, brackets or trailing dot, lowercased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(request: Request, names: frozenset[str]) -> bool:
    """Whether the Host the client asked is one this server answers to. A page of another
    site can make its own name point at this server (DNS rebinding) and then passes the Origin
    check, so the Host must be an IP address (which no site can rebind), a localhost name, or
    one of ``names`` (the machine's host name and configured names; ``*`` for any). Clients
    that send no Host (HTTP/1.0 tools, not browsers) are not affected."""
    host = request.header("host")
    if not host or "*" in names:
        return True
    name = host_name(host)
    return (
        is_ip_literal(name) or name == "localhost" or name.endswith(".localhost") or name in names
    )


def origin_allowed(request: Request, allowed: frozenset[str] | None, secure: bool) -> bool:
    """A browser's WebSocket from another site's page could drive this display: by default
    only the page's own origin (the Host it asked) may connect. Clients that send no Origin
    (not browsers) are not affected; ``allowed`` lists further origins, ``*`` any."""
    origin = request.header("origin")
    if not origin or (allowed is not None and ("*" in allowed or origin in allowed)):
        return True
    host = request.header("host")
    return bool(host) and origin.lower() in {f"http://{host}".lower(), f"https://{host}".lower()}


async def serve_http(
    stream: ReplayStream | trio.abc.Stream,
    peer: str,
    *,
    site: Site,
    websocket: WebSocketHandler | None,
    choose_subprotocol: SubprotocolChooser,
    limits: HttpLimits,
    secure: bool = False,
    allowed_origins: frozenset[str] | None = None,
    allowed_hosts: frozenset[str] = frozenset(),
) -> None:
    """Serve requests on ``stream`` until it should close; the caller closes it afterwards
    (except after a WebSocket hand-over, whose stage closes it)."""
    buffer = bytearray()
    for count in range(limits.max_requests):
        try:
            with trio.fail_after(limits.timeout):
                head = await read_head(stream, buffer, limits)
            if head is None:
                return
            request = parse_head(head, limits.max_header_bytes)
            if not host_allowed(request, allowed_hosts):
                raise HttpRefusal(
                    403, f"Host {request.header('host')[:80]!r} is not a name of this server"
                )
            if request.method not in ("GET", "HEAD"):
                raise HttpRefusal(405, f"method {request.method} not served")
            segments = url_path_segments(request.target)
            if request.header("content-length") not in ("", "0") or request.header(
                "transfer-encoding"
            ):
                raise HttpRefusal(400, "a GET with a body")
            if request.is_websocket_upgrade and not site.is_page_file(segments):
                if websocket is None:
                    raise HttpRefusal(404, "WebSocket connections are not taken on this port")
                if (
                    request.method != "GET"
                    or request.header("sec-websocket-version") != "13"
                    or not request.header("sec-websocket-key")
                ):
                    raise HttpRefusal(400, "WebSocket upgrade without GET, version 13 and a key")
                if not origin_allowed(request, allowed_origins, secure):
                    origin = request.header("origin")[:80]
                    raise HttpRefusal(403, f"WebSocket from a page of another origin ({origin})")
                try:
                    subprotocol = choose_subprotocol(request.subprotocols)
                except ValueError as exc:
                    raise HttpRefusal(400, str(exc)) from None
                log.debug("%s: WebSocket upgrade on %s", peer, request.target[:80])
                replay = ReplayStream(stream, head + bytes(buffer))
                await websocket(replay, peer, subprotocol)
                return
            keep_alive = request.keep_alive and count + 1 < limits.max_requests
            with trio.move_on_after(limits.send_timeout) as deadline:
                await _serve_get(stream, peer, site, request, segments, keep_alive)
            if deadline.cancelled_caught:
                log.warning(
                    "%s: HTTP: response to %s not read within %g s, closing",
                    peer,
                    request.target[:80],
                    limits.send_timeout,
                )
                return
            if not keep_alive:
                return
        except HttpRefusal as refusal:
            await refuse(stream, peer, refusal.status, str(refusal))
            return
        except trio.TooSlowError:
            if count and not buffer:
                # A browser keeping its connection open after the page loaded: not an error.
                log.debug(
                    "%s: HTTP: kept-alive connection idle for %g s, closing", peer, limits.timeout
                )
                return
            what = f"{len(buffer)} bytes of a request head" if buffer else "no request"
            log.warning("%s: HTTP: %s within %g s, closing", peer, what, limits.timeout)
            return
        except EOFError as exc:
            log.info("%s: HTTP: %s", peer, str(exc))
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log.info("%s: HTTP: connection lost (%s)", peer, exc or "reset")
            return


async def _serve_get(
    stream: trio.abc.Stream,
    peer: str,
    site: Site,
    request: Request,
    segments: list[str],
    keep_alive: bool,
) -> None:
    head_only = request.method == "HEAD"
    if not segments or (segments == ["index.html"] and site.page is not None):
        if site.page is None:
            raise HttpRefusal(404, "no page is served here")
        body = site.page()
        extra = [("Content-Security-Policy", "frame-ancestors 'none'")]
        await _send_response(
            stream,
            200,
            body,
            CONTENT_TYPES[".html"],
            keep_alive=keep_alive,
            head_only=head_only,
            extra=extra,
        )
        log.debug("%s: HTTP 200 %s", peer, request.target[:80])
        return
    path = await trio.to_thread.run_sync(site.file_for, segments)
    if path is None:
        raise HttpRefusal(404, f"no file {request.target[:80]!r}")
    try:
        body = await trio.to_thread.run_sync(path.read_bytes)
    except OSError as exc:
        raise HttpRefusal(
            404, f"cannot read {request.target[:80]!r}: {os.strerror(exc.errno or 0)}"
        ) from None
    await _send_response(
        stream, 200, body, content_type(path), keep_alive=keep_alive, head_only=head_only
    )
    log.debug("%s: HTTP 200 %s (%d bytes)", peer, request.target[:80], len(body))
