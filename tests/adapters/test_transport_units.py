"""The transport pieces in memory: sniffing and replay, the WebSocket byte stream, request
parsing and path checks, the page. Real sockets are in test_web_hostile.py and test_tls.py."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from trio_websocket import ConnectionClosed, wrap_client_stream

from spice.adapters.html5_page import find_client_module, render_page
from spice.adapters.http_static import HttpRefusal, Site, parse_head, url_path_segments
from spice.adapters.sniff import Protocol, ReplayStream, SniffFailed, classify, sniff
from spice.adapters.websocket import RefusedSubprotocols, choose_subprotocol, serve_websocket

# ------------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", None),
        (b"R", None),
        (b"RED", None),
        (b"REDQ", Protocol.SPICE),
        (b"REDQ\x02\x00", Protocol.SPICE),
        (b"G", None),
        (b"GET", None),
        (b"GET /", Protocol.HTTP),
        (b"HEAD / HTTP/1.1", Protocol.HTTP),
        (b"POST", Protocol.HTTP),
        (b"\x16", None),
        (b"\x16\x03\x01\x02\x00", Protocol.TLS),
        (b"\x16\x99", Protocol.UNKNOWN),
        (b"SSH-2.0", Protocol.UNKNOWN),
        (b"X", Protocol.UNKNOWN),
        (b"REDX", Protocol.UNKNOWN),
        (b"GETX", Protocol.UNKNOWN),
    ],
)
def test_classify(data: bytes, kind: Protocol | None) -> None:
    assert classify(data) is kind


@given(st.binary(max_size=12), st.binary(max_size=12))
def test_classify_decides_once(head: bytes, more: bytes) -> None:
    """Never raises; once decided, more bytes never change the decision; at most 4 bytes
    are needed."""
    kind = classify(head)
    if kind is not None:
        assert classify(head + more) is kind
    if len(head) >= 4:
        assert kind is not None


async def test_sniff_reads_split_bytes_and_replays_them() -> None:
    client, server = trio.testing.memory_stream_pair()

    async def send() -> None:
        for piece in (b"R", b"ED", b"Q\x02\x00\x00\x00", b"rest"):
            await client.send_all(piece)
            await trio.testing.wait_all_tasks_blocked()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        kind, replay = await sniff(server, timeout=5)
        assert kind is Protocol.SPICE
        got = b""
        while len(got) < 12:
            got += await replay.receive_some(3)
        assert got == b"REDQ\x02\x00\x00\x00rest"


async def test_sniff_eof_and_deadline(autojump_clock: trio.abc.Clock) -> None:
    client, server = trio.testing.memory_stream_pair()
    await client.send_all(b"RE")
    await client.aclose()
    with pytest.raises(SniffFailed, match="closed after 2 bytes"):
        await sniff(server, timeout=5)
    client, server = trio.testing.memory_stream_pair()
    with pytest.raises(SniffFailed, match="sent nothing within 3 s"):
        await sniff(server, timeout=3)


async def test_replay_stream_passes_writes_and_close_through() -> None:
    client, server = trio.testing.memory_stream_pair()
    replay = ReplayStream(server, b"abc")
    assert await replay.receive_some(2) == b"ab"
    assert replay.pending == b"c"
    await replay.send_all(b"out")
    assert await client.receive_some() == b"out"
    await replay.aclose()
    assert await client.receive_some() == b""


# -------------------------------------------------------------------------------- WebSocket


def test_choose_subprotocol() -> None:
    assert choose_subprotocol(["binary"]) == "binary"
    assert choose_subprotocol(["base64", "binary"]) == "binary"
    assert choose_subprotocol([]) is None
    with pytest.raises(RefusedSubprotocols):
        choose_subprotocol(["base64"])


async def _ws_pair(nursery: trio.Nursery, handler, **limits: object):
    """A client WebSocket connected in memory to serve_websocket(handler)."""
    client_stream, server_stream = trio.testing.memory_stream_pair()

    async def run_server() -> None:
        await serve_websocket(
            server_stream,
            "peer",
            handler,
            subprotocol="binary",
            max_message_bytes=limits.get("max_message_bytes", 1024),
            timeout=5,  # type: ignore[arg-type]
        )

    nursery.start_soon(run_server)
    return await wrap_client_stream(
        nursery, client_stream, "host", "/websockify", subprotocols=["binary"]
    )


async def test_websocket_stream_reassembles_and_echoes() -> None:
    received: list[bytes] = []
    done = trio.Event()

    async def handler(stream: trio.abc.Stream, peer: str) -> None:
        data = b""
        while len(data) < 10:
            chunk = await stream.receive_some(4)
            assert 0 < len(chunk) <= 4
            data += chunk
        received.append(data)
        await stream.send_all(memoryview(b"pong" * 3))
        assert await stream.receive_some() == b""  # the client's close: end of file
        await stream.aclose()
        done.set()

    async with trio.open_nursery() as nursery:
        ws = await _ws_pair(nursery, handler)
        assert ws.subprotocol == "binary"
        for part in (b"REDQ", b"", b"12", b"3456"):  # an empty message is not EOF
            await ws.send_message(part)
        got = b""
        while len(got) < 12:
            got += await ws.get_message()  # type: ignore[operator]
        assert got == b"pong" * 3
        await ws.aclose()
        with trio.fail_after(5):
            await done.wait()
    assert received == [b"REDQ123456"]


@pytest.mark.parametrize(
    ("message", "code", "error"),
    [("text", 1003, "text message"), (b"x" * 2000, 1009, "over 1024 bytes")],
)
async def test_websocket_refusals(message: str | bytes, code: int, error: str) -> None:
    errors: list[str] = []

    async def handler(stream: trio.abc.Stream, peer: str) -> None:
        try:
            await stream.receive_some()
        except trio.BrokenResourceError as exc:
            errors.append(str(exc))
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        ws = await _ws_pair(nursery, handler)
        await ws.send_message(message)
        with pytest.raises(ConnectionClosed) as info:
            with trio.fail_after(5):
                await ws.get_message()
        assert info.value.reason is not None and info.value.reason.code == code
    assert len(errors) == 1 and error in errors[0] and str(code) in errors[0]


# ------------------------------------------------------------------------------------- HTTP


@pytest.mark.parametrize(
    ("target", "segments"),
    [
        ("/", []),
        ("/src/main.js", ["src", "main.js"]),
        ("/src//main.js?x=1#y", ["src", "main.js"]),
        ("/a%20b.js", ["a b.js"]),
        ("http://host:1/x.js", ["x.js"]),
    ],
)
def test_url_path_segments(target: str, segments: list[str]) -> None:
    assert url_path_segments(target) == segments


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/..", 403),
        ("/a/../../b", 403),
        ("/%2e%2e/b", 403),
        ("/%2E%2e%2fb", 403),
        ("/a/%2e/b", 403),
        ("/a%00b", 403),
        ("/a%5cb", 403),
        ("/.git/config", 404),
        ("/%ff", 400),
        ("*", 400),
    ],
)
def test_url_path_segments_refusals(target: str, status: int) -> None:
    with pytest.raises(HttpRefusal) as info:
        url_path_segments(target)
    assert info.value.status == status


@given(st.text(max_size=40))
def test_no_decoded_segment_climbs(path: str) -> None:
    try:
        segments = url_path_segments("/" + path)
    except HttpRefusal:
        return
    assert all(s not in ("", ".", "..") and "/" not in s and "\\" not in s for s in segments)


def test_parse_head() -> None:
    request = parse_head(
        b"GET /websockify?x HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\n"
        b"Connection: keep-alive, Upgrade\r\n"
        b"Sec-WebSocket-Protocol: base64\r\nSec-WebSocket-Protocol: binary\r\n\r\n",
        4096,
    )
    assert (request.method, request.target) == ("GET", "/websockify?x")
    assert request.is_websocket_upgrade and request.keep_alive
    assert request.subprotocols == ["base64", "binary"]
    assert not parse_head(b"GET / HTTP/1.0\r\n\r\n", 4096).keep_alive
    with pytest.raises(HttpRefusal) as info:
        parse_head(b"GET / HTTP/1.1\r\n\r\n", 4096)  # HTTP/1.1 needs Host
    assert info.value.status == 400


def test_site_files(tmp_path: Path) -> None:
    (tmp_path / "root" / "src").mkdir(parents=True)
    (tmp_path / "root" / "src" / "main.js").write_text("x")
    (tmp_path / "outside.txt").write_text("secret")
    (tmp_path / "root" / "out").symlink_to(tmp_path / "outside.txt")
    (tmp_path / "root" / "in").symlink_to(tmp_path / "root" / "src" / "main.js")
    site = Site(tmp_path / "root", None)
    assert site.file_for(["src", "main.js"]) == (tmp_path / "root" / "src" / "main.js").resolve()
    assert site.file_for(["in"]) is not None
    assert site.file_for(["out"]) is None
    assert site.file_for(["src"]) is None  # a directory
    assert site.file_for(["missing"]) is None
    assert Site(None, None).file_for(["src", "main.js"]) is None


# ------------------------------------------------------------------------------------- page


def test_page(tmp_path: Path) -> None:
    page = render_page(title="<b>demo</b> & co", module="src/main.js", password=True).decode()
    assert "<title>&lt;b&gt;demo&lt;/b&gt; &amp; co</title>" in page
    assert "import * as SpiceHtml5 from './src/main.js';" in page
    config = re.search(r'id="trio-spice-config">(.*?)</script>', page).group(1)  # type: ignore[union-attr]
    assert json.loads(config) == {"path": "/websockify", "password": True}
    assert 'type="password"' in page
    missing = render_page(title="t", module=None, password=False).decode()
    assert "import" not in missing and html.escape("--html5-dir") in missing

    assert find_client_module(tmp_path) is None
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.js").write_text("")
    assert find_client_module(tmp_path) == "src/main.js"
    (tmp_path / "main.js").write_text("")
    assert find_client_module(tmp_path) == "main.js"


# -------------------------------------------------------------------------------- front door


async def test_front_door_contains_internal_errors(caplog: pytest.LogCaptureFixture) -> None:
    """A bug in a transport stage is logged and ends that connection only."""
    from spice.adapters.front_door import FrontDoor

    def broken_page() -> bytes:
        raise RuntimeError("page generator bug")

    async def core(stream: trio.abc.Stream, peer: str, secure: bool) -> None:
        raise AssertionError("not reached")

    door = FrontDoor(core, site=Site(None, broken_page))
    client, server = trio.testing.memory_stream_pair()
    await client.send_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await door.handle(server, "peer")  # does not raise
    assert await client.receive_some() == b""  # closed
    assert any("internal error" in r.getMessage() for r in caplog.records)
