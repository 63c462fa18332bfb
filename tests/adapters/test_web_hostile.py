"""Bad input on the browser side of a port (HTTP and WebSocket), against a real server on
127.0.0.1: each bad connection is refused with its HTTP status or WebSocket close code, or
timed out, and logged in exactly one line; meanwhile a well-behaved client (a SPICE session
over WebSocket on the same port, main + display) keeps working, and new clients still link.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import rawclient as rc
import trio
import webclient as wc
from trio_websocket import ConnectionClosed

import spice

TIMEOUT = 1.0  # the server's handshake deadline in these tests
MAX_MESSAGE = 65536
MAX_HEADER = 4096
SECRET = b"top secret, outside the page directory"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A page directory with two files, a secret next to it and a symlink pointing out."""
    root = tmp_path / "site"
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.js").write_text("export const answer = 42;\n")
    (root / "spice.css").write_text("body {}\n")
    (root / ".hidden").write_text("hidden\n")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    return root


@pytest.fixture
async def server(server_factory, site: Path) -> spice.Server:
    return await server_factory(
        html5_dir=site,
        handshake_timeout=TIMEOUT,
        max_ws_message=MAX_MESSAGE,
        max_http_header=MAX_HEADER,
    )


class GoodClient:
    """A SPICE session over WebSocket: main and display channels, primary surface received."""

    def __init__(self, main: rc.Channel, display: rc.Channel) -> None:
        self.main = main
        self.display = display

    async def sees_fill(self, display: spice.Display, color: int) -> None:
        await display.fill(5, 6, 40, 30, color)
        with trio.fail_after(5):
            while True:
                _, body = await self.display.recv_until(rc.MSG_DISPLAY_DRAW_FILL)
                fill = rc.parse_draw_fill(body)
                if fill.color & 0xFFFFFF == color:
                    assert (fill.left, fill.top, fill.right, fill.bottom) == (5, 6, 45, 36)
                    return


@asynccontextmanager
async def undisturbed(server: spice.Server) -> AsyncIterator[GoodClient]:
    """Connect a good client before the block; after it, check the client still receives
    drawing and a new client (native TCP) still links."""
    port = server.port_bound
    async with wc.ws_stream(port) as main_stream, wc.ws_stream(port) as display_stream:
        result = await rc.link(main_stream, channel_type=rc.MAIN)
        assert result.ok, result
        main = result.channel
        _, body = await main.recv_until(rc.MSG_MAIN_INIT)
        session_id = struct.unpack_from("<I", body)[0]
        await main.send_msg(rc.MSGC_MAIN_ATTACH_CHANNELS)
        await main.recv_until(rc.MSG_MAIN_CHANNELS_LIST)
        result = await rc.link(display_stream, channel_type=rc.DISPLAY, connection_id=session_id)
        assert result.ok, result
        display = result.channel
        await display.send_msg(rc.MSGC_DISPLAY_INIT, struct.pack("<BqBi", 1, 1 << 20, 1, 0))
        await display.recv_until(rc.MSG_DISPLAY_MARK)
        good = GoodClient(main, display)
        await good.sees_fill(server.displays[0], 0x102030)
        yield good
        await good.sees_fill(server.displays[0], 0x405060)
        assert server.client_count >= 1
    session = await rc.open_session("127.0.0.1", port)
    await session.aclose()


async def http(port: int, request: bytes) -> tuple[int, bytes, int]:
    """(status, whole response, our local port) for raw request bytes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    ours = wc.local_port(stream)
    async with stream:
        await stream.send_all(request)
        out = bytearray()
        with trio.fail_after(5):
            while data := await stream.receive_some(65536):
                out += data
    return wc.status_of(bytes(out)), bytes(out), ours


def get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def one_line(caplog: pytest.LogCaptureFixture, port: int, *needles: str) -> str:
    lines = wc.lines_about(caplog, port)
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], lines
    return lines[0]


# ----------------------------------------------------------------------------------- HTTP
async def test_files_and_page_are_served(server: spice.Server, site: Path) -> None:
    port = server.port_bound
    status, response, _ = await http(port, get("/src/main.js"))
    assert status == 200
    head, body = response.split(b"\r\n\r\n", 1)
    assert b"Content-Type: text/javascript; charset=utf-8" in head
    assert body == (site / "src" / "main.js").read_bytes()
    status, response, _ = await http(port, get("/spice.css"))
    assert status == 200 and b"Content-Type: text/css" in response
    status, response, _ = await http(port, get("/"))
    assert status == 200 and b"Content-Type: text/html; charset=utf-8" in response
    assert b"import * as SpiceHtml5 from './src/main.js'" in response
    status, response, _ = await http(port, get("/").replace(b"GET", b"HEAD"))
    assert status == 200 and response.endswith(b"\r\n\r\n")


async def test_keep_alive_serves_several_requests(server: spice.Server) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", server.port_bound)
    async with stream:
        request = b"GET /spice.css HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        await stream.send_all(request * 3)
        data = b""
        with trio.fail_after(5):
            while data.count(b"HTTP/1.1 200 OK") < 3:
                data += await stream.receive_some(65536)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/../secret.txt", 403),
        ("/src/../../secret.txt", 403),
        ("/%2e%2e/secret.txt", 403),
        ("/%2E%2E%2Fsecret.txt", 403),
        ("/src/%2e%2e/%2e%2e/secret.txt", 403),
        ("/..%5csecret.txt", 403),
        ("/%252e%252e/secret.txt", 404),  # double-encoded: a file literally named %2e%2e
        ("/link.txt", 404),  # a symlink out of the directory
        ("/.hidden", 404),
        ("/nothing-here.js", 404),
    ],
)
async def test_paths_outside_the_page_directory_are_refused(
    server: spice.Server, caplog: pytest.LogCaptureFixture, path: str, status: int
) -> None:
    async with undisturbed(server):
        got, response, ours = await http(server.port_bound, get(path))
        assert got == status
        assert SECRET not in response
        one_line(caplog, ours, f"HTTP {status}")


async def test_oversized_header_gets_431(
    server: spice.Server, caplog: pytest.LogCaptureFixture
) -> None:
    async with undisturbed(server):
        status, _, ours = await http(
            server.port_bound, get("/", "X-Big: " + "a" * (MAX_HEADER + 10))
        )
        assert status == 431
        one_line(caplog, ours, "HTTP 431")


async def test_bad_requests(server: spice.Server, caplog: pytest.LogCaptureFixture) -> None:
    async with undisturbed(server):
        status, response, ours = await http(
            server.port_bound, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
        )
        assert status == 405 and b"Allow: GET, HEAD" in response
        one_line(caplog, ours, "HTTP 405")
        status, _, ours = await http(server.port_bound, b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")
        assert status == 400
        one_line(caplog, ours, "HTTP 400")


async def test_half_a_request_that_stalls_is_dropped(
    server: spice.Server, caplog: pytest.LogCaptureFixture
) -> None:
    async with undisturbed(server):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port_bound)
        ours = wc.local_port(stream)
        async with stream:
            await stream.send_all(
                b"GET /websockify HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            )
            start = trio.current_time()
            closed = await rc.read_until_closed(stream, timeout=TIMEOUT + 3)
            assert closed == 0  # no answer, just closed
            assert trio.current_time() - start < TIMEOUT + 2
        one_line(caplog, ours, "within")


async def test_silent_connection_is_dropped(
    server: spice.Server, caplog: pytest.LogCaptureFixture
) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", server.port_bound)
    ours = wc.local_port(stream)
    async with stream:
        await rc.read_until_closed(stream, timeout=TIMEOUT + 3)
    one_line(caplog, ours, "sent nothing")


async def test_unknown_protocol_gets_invalid_magic(
    server: spice.Server, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither SPICE nor HTTP: the link stage answers INVALID_MAGIC, as the C server does."""
    stream = await trio.open_tcp_stream("127.0.0.1", server.port_bound)
    ours = wc.local_port(stream)
    async with stream:
        await stream.send_all(b"SSH-2.0-OpenSSH_9.2\r\n")
        wire = rc.Wire(stream)
        assert (await rc.read_link_reply(wire)).error == rc.INVALID_MAGIC
        await rc.read_until_closed(wire, timeout=3)
    one_line(caplog, ours, "INVALID_MAGIC")


async def test_200_idle_connections_at_once(
    server_factory, site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # All from 127.0.0.1: above the default per-address limits, which are tested elsewhere.
    server = await server_factory(
        html5_dir=site,
        handshake_timeout=TIMEOUT,
        max_connections_per_address=300,
        link_attempts_per_second=100,
    )
    async with undisturbed(server) as good:
        streams = []
        start = trio.current_time()
        for _ in range(200):
            streams.append(await trio.open_tcp_stream("127.0.0.1", server.port_bound))
        ports = [wc.local_port(s) for s in streams]
        # Meanwhile the good client is served as usual.
        await good.sees_fill(server.displays[0], 0x0A0B0C)

        async def wait_closed(stream: trio.SocketStream) -> None:
            async with stream:
                await rc.read_until_closed(stream, timeout=TIMEOUT + 5)

        async with trio.open_nursery() as nursery:
            for stream in streams:
                nursery.start_soon(wait_closed, stream)
        assert trio.current_time() - start < TIMEOUT + 5
    for port in ports:
        one_line(caplog, port, "sent nothing")


# ----------------------------------------------------------------------------- WebSocket
async def test_text_frame_closes_with_1003(
    server: spice.Server, caplog: pytest.LogCaptureFixture
) -> None:
    async with undisturbed(server), wc.ws_connection(server.port_bound) as (ws, raw):
        ours = wc.local_port(raw)
        await ws.send_message("REDQ as text")
        with pytest.raises(ConnectionClosed) as info:
            with trio.fail_after(5):
                await ws.get_message()
        assert info.value.reason.code == 1003
    one_line(caplog, ours, "text message", "1003")


async def test_oversized_message_closes_with_1009(
    server: spice.Server, caplog: pytest.LogCaptureFixture
) -> None:
    async with undisturbed(server), wc.ws_connection(server.port_bound) as (ws, raw):
        ours = wc.local_port(raw)
        await ws.send_message(b"REDQ" + bytes(MAX_MESSAGE))
        with pytest.raises(ConnectionClosed) as info:
            with trio.fail_after(5):
                await ws.get_message()
        assert info.value.reason.code == 1009
    one_line(caplog, ours, "1009")


async def test_oversized_frame_header_closes_with_1009(
    server: spice.Server, caplog: pytest.LogCaptureFixture
) -> None:
    """A frame announcing 2**40 bytes: closed once the limit is passed, not buffered."""
    async with undisturbed(server), wc.ws_connection(server.port_bound) as (ws, raw):
        ours = wc.local_port(raw)
        header = bytes([0x82, 0x80 | 127]) + struct.pack(">Q", 1 << 40) + b"\0\0\0\0"  # mask 0
        await raw.send_all(header)
        with trio.move_on_after(5):
            for _ in range(MAX_MESSAGE // 8192 + 2):
                await raw.send_all(bytes(8192))
        with pytest.raises(ConnectionClosed) as info:
            with trio.fail_after(5):
                await ws.get_message()
        assert info.value.reason.code == 1009
    one_line(caplog, ours, "1009")


async def test_unmasked_frame_is_a_protocol_error(
    server: spice.Server, caplog: pytest.LogCaptureFixture
) -> None:
    async with undisturbed(server), wc.ws_connection(server.port_bound) as (ws, raw):
        ours = wc.local_port(raw)
        await raw.send_all(bytes([0x82, 4]) + b"REDQ")  # clients must mask
        with pytest.raises(ConnectionClosed) as info:
            with trio.fail_after(5):
                await ws.get_message()
        # trio-websocket drops the TCP connection on a frame wsproto rejects (no close frame).
        assert info.value.reason.code in (1002, 1006)
    one_line(caplog, ours, "1002", "unmasked")


async def test_subprotocols_and_origins(
    server: spice.Server, caplog: pytest.LogCaptureFixture
) -> None:
    port = server.port_bound
    upgrade = [
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ]
    async with undisturbed(server):
        status, _, ours = await http(
            port, get("/websockify", *upgrade, "Sec-WebSocket-Protocol: base64")
        )
        assert status == 400
        one_line(caplog, ours, "HTTP 400", "base64")
        status, _, ours = await http(
            port, get("/websockify", *upgrade, "Origin: http://evil.example")
        )
        assert status == 403
        one_line(caplog, ours, "HTTP 403", "origin")
        # The page's own origin, and any path that is not a file of the page, are accepted.
        host = f"127.0.0.1:{port}"
        request = get(
            "/anything", *upgrade, f"Origin: http://{host}", "Sec-WebSocket-Protocol: binary"
        )
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(request.replace(b"Host: 127.0.0.1", f"Host: {host}".encode()))
            with trio.fail_after(5):
                response = await stream.receive_some(4096)
            assert response.startswith(b"HTTP/1.1 101 ")
            assert b"sec-websocket-protocol: binary" in response.lower()


# ------------------------------------------------------------- frame floods (issue 10)
def masked_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One client frame (RFC 6455 5.2), masked with a zero key (payload unchanged)."""
    assert len(payload) < 126
    return bytes([(0x80 if fin else 0) | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


UPGRADE = (
    "GET /websockify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: binary\r\n\r\n"
)


async def upgraded(port: int) -> tuple[trio.SocketStream, bytes]:
    """A raw TCP stream after a WebSocket upgrade, and bytes read past the 101 answer."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(UPGRADE.format(port=port).encode())
    data = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(4096)
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return stream, rest


async def flood_until_closed(port: int, continuation: bool, ports: list[int]) -> bytes:
    """A frame without FIN, then continuation frames without end; returns what the server sent
    back once it closed (its close frame). Fails if the server never closes."""
    stream, first = await upgraded(port)
    ports.append(wc.local_port(stream))
    if continuation:
        # One byte a frame, of a valid link header then its message (so the SPICE stage waits).
        spice = rc.link_header(4000) + bytes(9000)
        tail = b"".join(masked_frame(0x0, spice[i : i + 1], fin=False) for i in range(1, 9000))
    else:
        tail = masked_frame(0x0, b"", fin=False) * 9000
    batch = masked_frame(0x2, b"R", fin=False) + tail
    got = bytearray(first)
    async with stream, trio.open_nursery() as nursery:

        async def send_forever() -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.send_all(batch)
                filler = masked_frame(0x0, b"\0" if continuation else b"", fin=False) * 9000
                while True:
                    await stream.send_all(filler)

        nursery.start_soon(send_forever)
        with trio.fail_after(20):
            while True:
                try:
                    data = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    break
                if not data:
                    break
                got += data
        nursery.cancel_scope.cancel()
    return bytes(got)


@pytest.mark.parametrize("continuation", [True, False], ids=["1-byte", "empty"])
async def test_tiny_frame_flood_is_closed_and_others_are_served(
    server: spice.Server, caplog: pytest.LogCaptureFixture, continuation: bool
) -> None:
    """Issue 10: about 200 connections of endless 1-byte (or empty) continuation frames made
    the whole server serve nobody for a minute. Each must be closed with 1008 (one log line),
    while a good client keeps being served promptly."""
    ports: list[int] = []
    async with undisturbed(server) as good:
        async with trio.open_nursery() as nursery:
            answers: list[bytes] = []

            async def flooder() -> None:
                answers.append(await flood_until_closed(server.port_bound, continuation, ports))

            for _ in range(20):
                nursery.start_soon(flooder)
            await trio.sleep(0.3)
            start = trio.current_time()
            await good.sees_fill(server.displays[0], 0x0B0C0D)
            assert trio.current_time() - start < 2.0
        assert len(answers) == 20
        for answer in answers:
            assert answer[:1] == b"\x88", answer[:16]  # a close frame...
            assert struct.unpack("!H", answer[2:4])[0] == 1008  # ...with Policy Violation
    for port in ports:
        one_line(caplog, port, "1008")


async def test_pings_after_the_close_began_are_ignored(
    server: spice.Server, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 10: a bad SPICE magic then a burst of pings in the same write made wsproto raise
    LocalProtocolError (an internal error with a traceback) every time."""
    async with undisturbed(server):
        stream, _ = await upgraded(server.port_bound)
        ours = wc.local_port(stream)
        async with stream:
            await stream.send_all(
                masked_frame(0x2, b"XXXX" + bytes(12)) + masked_frame(0x9, b"") * 50
            )
            await rc.read_until_closed(stream, timeout=5)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    one_line(caplog, ours, "INVALID_MAGIC")


# ---------------------------------------------------------- unread responses (issue 10)
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_pipelined_responses_never_read_are_dropped(
    server_factory, site: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, tls: bool
) -> None:
    """Issue 10: a client with a small receive buffer pipelines four GETs of a large file and
    never reads; it held ~3.3 MB and a descriptor for ever, with no log line. The response
    must have a write deadline: closed after it, with one line."""
    from spice.certs import write_certificates

    big = os.urandom(4 << 20)
    (site / "big.bin").write_bytes(big)
    options: dict[str, object] = {"html5_dir": site, "send_timeout": 1.0}
    if tls:
        write_certificates(tmp_path / "x509")
        options.update(tls_port=0, x509_dir=tmp_path / "x509")
    server = await server_factory(**options)
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", server.tls_port_bound if tls else server.port_bound))
    raw = trio.SocketStream(sock)
    ours = wc.local_port(raw)
    stream: trio.abc.Stream = raw
    if tls:
        context = wc.client_tls_context(str(tmp_path / "x509" / "ca-cert.pem"))
        stream = trio.SSLStream(raw, context, server_hostname="127.0.0.1")
    async with stream:
        request = b"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        await stream.send_all(request * 4)
        await trio.sleep(3)  # never read, for three times the deadline
        # What is left is only what the kernel had buffered, not the four responses.
        received = 0
        with trio.fail_after(5):
            while True:
                try:
                    data = await stream.receive_some(1 << 20)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                if not data:
                    break
                received += len(data)
        assert received < 3 * len(big)
    one_line(caplog, ours, "not read within")


# ------------------------------------------------------------- DNS rebinding (issue 10)
def as_host(request: bytes, host: str) -> bytes:
    return request.replace(b"Host: 127.0.0.1", f"Host: {host}".encode())


async def test_a_host_that_is_not_ours_is_refused(
    server: spice.Server, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 10: ``Host: evil.example:P`` with ``Origin: http://evil.example:P`` passed the
    Origin check, so a rebound page could watch and drive the desktop."""
    port = server.port_bound
    upgrade = [
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Protocol: binary",
    ]
    async with undisturbed(server):
        for path, extra in (("/websockify", upgrade), ("/", [])):
            evil = f"evil.example:{port}"
            status, body, ours = await http(
                port, as_host(get(path, *extra, f"Origin: http://{evil}"), evil)
            )
            assert status == 403, body[:200]
            one_line(caplog, ours, "HTTP 403", "evil.example")


async def test_the_names_a_server_answers_to(server_factory, site: Path) -> None:
    """IP addresses, localhost names, the machine's name and configured names."""
    server = await server_factory(html5_dir=site, allowed_hosts=["spice.lan"])
    port = server.port_bound
    hosts = [f"127.0.0.1:{port}", f"localhost:{port}", f"spice.lan:{port}", "[::1]", "a.localhost"]
    for host in [*hosts, socket.gethostname()]:
        status, _, _ = await http(port, as_host(get("/"), host))
        assert status == 200, host
    status, _, _ = await http(port, as_host(get("/"), "other.lan"))
    assert status == 403
