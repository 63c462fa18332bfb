"""The library's contract with a new user: bad arguments raise at the call, nothing hangs
before ``serve``, one error comes out as itself, passwords expire when they say, and clients
are objects (address, transport, session id, view-only, ``disconnect()``) that input events
carry. Driven by real sockets and ``tests/rawclient.py``."""

from __future__ import annotations

import datetime
import logging
import socket
import struct
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rawclient as rc
import trio
from webclient import tls_stream, ws_stream

import spice
from spice.certs import write_certificates

HOST = "127.0.0.1"


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


async def next_key_event(events: trio.MemoryReceiveChannel[spice.InputEvent]) -> spice.KeyEvent:
    """The next key event (a client's first event is its lock-key state)."""
    with trio.fail_after(5):
        async for event in events:
            if isinstance(event, spice.KeyEvent):
                return event
    raise AssertionError("the event channel closed")


# -- arguments are checked at the call --------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"port": -1}, ValueError, "port must be 0 to 65535"),
        ({"port": 99999}, ValueError, "port must be 0 to 65535"),
        ({"port": "5900"}, TypeError, "port must be an int"),
        ({"port": True}, TypeError, "port must be an int"),
        ({"tls_port": 70000}, ValueError, "tls_port must be 0 to 65535"),
        ({"ws_port": -2}, ValueError, "ws_port must be 0 to 65535"),
        ({"ipv4_only": True, "ipv6_only": True}, ValueError, "exclude each other"),
        ({"ipv6_only": True}, ValueError, "ipv6_only with the IPv4 address 127.0.0.1"),
        ({"addr": 127001}, TypeError, "addr must be a str"),
        ({"password_valid_for": 0}, ValueError, "positive duration"),
        (
            {"password_valid_for": 5, "password_expires_at": datetime.datetime.now(datetime.UTC)},
            ValueError,
            "not both",
        ),
        (
            {"password_expires_at": datetime.datetime(2030, 1, 1)},
            ValueError,
            "timezone-aware",
        ),
        ({"password": "same", "view_only_password": "same"}, ValueError, "must differ"),
    ],
)
def test_bad_server_options_raise_at_the_call(
    options: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words) as caught:
        spice.Server(**{"addr": HOST, "port": 0, **options})
    if error is ValueError:
        assert isinstance(caught.value, spice.Error)


@pytest.mark.parametrize("size", [(0, 0), (-1, 100), (100000, 100000), (10, 0)])
def test_add_display_checks_its_size(size: tuple[int, int]) -> None:
    server = spice.Server(addr=HOST, port=0, disable_ticketing=True)
    with pytest.raises(spice.ConfigError, match="1 to 8192 pixels a side"):
        server.add_display(*size)
    with pytest.raises(TypeError, match="width must be an int"):
        server.add_display(1.5, 10)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [(0, 0), (-1, 100), (100000, 100000)])
async def test_a_bad_resize_raises_and_the_server_keeps_serving(
    server_factory: Any, size: tuple[int, int]
) -> None:
    server = await server_factory()
    display = server.displays[0]
    with pytest.raises(ValueError, match="1 to 8192 pixels a side"):
        await display.resize(*size)
    with pytest.raises(TypeError, match="x must be an int"):
        await display.fill("0", 0, 1, 1, 0)
    with pytest.raises(ValueError, match="width must not be negative"):
        await display.fill(0, 0, -5, 1, 0)
    with pytest.raises(TypeError, match="x must be an int"):
        await display.move_cursor(None, 1)
    with pytest.raises(ValueError, match="int16"):
        await display.move_cursor(0, 10**5)
    with pytest.raises(ValueError, match="int16"):
        await display.set_cursor(np.zeros((4, 4, 4), np.uint8), x=-40000)
    with pytest.raises(ValueError, match="uint16"):
        await display.set_cursor(np.zeros((4, 4, 4), np.uint8), hot_x=-1)
    with pytest.raises(ValueError, match="severity must be one of info, warn, error"):
        await server.notify("hello", severity="fatal")
    with pytest.raises(ValueError, match="mask of 1, 2 and 4"):
        await server.set_keyboard_leds(99)
    # Still serving: a client links and gets the display, and a good resize goes through.
    await display.resize(200, 100)
    await display.sync()
    session = await rc.open_session(HOST, server.port_bound)
    try:
        await session.open_display()
    finally:
        await session.aclose()
    assert (display.width, display.height) == (200, 100)


# -- before serve, after stop, and serving twice ---------------------------------------------


async def test_drawing_before_serve_never_hangs(server_factory: Any) -> None:
    server = spice.Server(addr=HOST, port=0, disable_ticketing=True)
    display = server.add_display(64, 48)
    with trio.fail_after(10):
        for i in range(40):  # the worker's queue holds 16
            await display.fill(i, 0, 1, 48, 0x00FF00)
        await display.update(50, 10, np.full((4, 4, 3), 255, np.uint8))
        await display.sync()
    shown = display.framebuffer
    assert tuple(shown[0, 39, :3]) == (0, 255, 0)  # B, G, R
    assert tuple(shown[0, 45, :3]) == (0, 0, 0)
    assert tuple(shown[11, 51, :3]) == (255, 255, 255)


async def test_updates_while_serving_keep_their_order_and_never_alias(
    server_factory: Any,
) -> None:
    """An update with nothing queued goes into the surface straight from the caller's array
    (no owned copy); one made while other commands wait is queued behind them. Either way the
    caller may reuse its array at once, and commands land in the order they were made."""
    server = await server_factory(displays=[(256, 256)])
    display = server.displays[0]
    frame = np.full((256, 256, 4), 7, np.uint8)
    with trio.fail_after(10):
        await display.update(0, 0, frame)  # nothing queued: applied at once
        frame[...] = 200
        assert display.framebuffer[100, 100, 0] == 7
        # A fill is being applied (held up on the surface lock) when the update is made: the
        # update is queued behind it (applied at once, it would wait on the fill: a hang).
        async with trio.open_nursery() as nursery, display._worker.surface_lock:
            nursery.start_soon(display.fill, 0, 0, 256, 256, 0x0000FF)
            await trio.testing.wait_all_tasks_blocked()
            await display.update(0, 0, frame)
            frame[...] = 1
        await display.sync()
    assert display.framebuffer[100, 100, 0] == 200
    assert display.framebuffer[0, 0, 0] == 200


async def test_served_twice_says_it_cannot(nursery: trio.Nursery) -> None:
    server = spice.Server(addr=HOST, port=0, disable_ticketing=True)
    display = server.add_display(32, 32)
    with trio.CancelScope() as scope:
        await nursery.start(server.serve)
        assert server.serving
        with pytest.raises(spice.ServerStateError, match="already serving"):
            await server.serve()
        await server.stop()
        scope.cancel()
    await wait_until(lambda: not server.serving)
    with pytest.raises(spice.ServerStateError, match="cannot serve again: make a new Server"):
        await server.serve()
    # Drawing on a stopped server's display neither hangs nor fails.
    with trio.fail_after(5):
        for _ in range(40):
            await display.fill(0, 0, 4, 4, 0xFF0000)
        await display.sync()


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind((HOST, 0))
        s.listen()
        yield int(s.getsockname()[1])


async def test_a_port_in_use_is_a_listen_error_not_a_group(busy_port: int) -> None:
    server = spice.Server(addr=HOST, port=busy_port, disable_ticketing=True)
    with pytest.raises(spice.ListenError) as caught:
        await server.serve()
    assert str(caught.value) == f"cannot listen on {HOST}:{busy_port}: Address already in use"
    assert isinstance(caught.value, OSError)
    # It never served, so it may try again.
    assert not server.serving


async def test_a_failure_inside_the_server_comes_out_as_itself() -> None:
    server = spice.Server(addr=HOST, port=0, disable_ticketing=True)
    display = server.add_display(32, 32)
    worker = server._core.displays[0]

    async def broken(cmd: object) -> None:
        raise RuntimeError("boom")

    worker.apply = broken  # type: ignore[method-assign]
    raised: list[BaseException] = []

    async def serve(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await server.serve(task_status=task_status)
        except BaseException as exc:
            raised.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve)
            await display.fill(0, 0, 1, 1, 0)
    assert len(raised) == 1
    assert type(raised[0]) is RuntimeError and str(raised[0]) == "boom"


# -- ServerThread: errors reach the calling thread ------------------------------------------


def test_server_thread_raises_the_servers_failure_in_the_caller() -> None:
    server = spice.Server(addr=HOST, port=0, disable_ticketing=True)
    server.add_display(32, 32)
    st = spice.ServerThread(server).start()
    display = st.displays[0]
    with pytest.raises(ValueError, match="1 to 8192 pixels a side"):
        display.resize(0, 0)
    display.fill(0, 0, 4, 4, 0x0000FF)  # still serving after a refused call
    display.sync()
    assert tuple(display.framebuffer[0, 0, :3]) == (255, 0, 0)

    async def broken(cmd: object) -> None:
        raise RuntimeError("boom")

    server._core.displays[0].apply = broken  # type: ignore[method-assign]
    display.fill(0, 0, 1, 1, 0)  # queued; the worker fails on it and takes the server down
    deadline = time.monotonic() + 5
    while st.error is None:
        assert time.monotonic() < deadline, "the server did not stop"
        time.sleep(0.01)
    with pytest.raises(spice.ServerFailed) as caught:
        display.fill(0, 0, 1, 1, 0)
    assert isinstance(caught.value.__cause__, RuntimeError)
    with pytest.raises(spice.ServerFailed):
        st.stop()
    assert isinstance(st.error, RuntimeError)


def test_server_thread_start_raises_a_listen_error(busy_port: int) -> None:
    server = spice.Server(addr=HOST, port=busy_port, disable_ticketing=True)
    with pytest.raises(spice.ListenError, match="Address already in use"):
        spice.ServerThread(server).start()


def test_server_thread_calls_before_start_say_so() -> None:
    server = spice.Server(addr=HOST, port=0, disable_ticketing=True)
    server.add_display(32, 32)
    st = spice.ServerThread(server)
    with pytest.raises(spice.ServerStateError, match="not running"):
        st.displays[0].fill(0, 0, 1, 1, 0)


# -- passwords: expiry by duration or datetime, and distinct refusals -------------------------


async def link_error(server: spice.Server, password: str) -> int:
    stream = await trio.open_tcp_stream(HOST, server.port_bound)
    async with stream:
        result = await rc.link(stream, channel_type=rc.MAIN, password=password.encode())
    return result.error


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]


async def test_password_expiry_by_duration_and_datetime(
    server_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await server_factory(password="secret", password_valid_for=60)
    assert await link_error(server, "secret") == rc.OK
    server.set_password("secret", valid_for=datetime.timedelta(minutes=1))
    assert await link_error(server, "secret") == rc.OK
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    server.set_password("secret", expires_at=past)
    assert await link_error(server, "secret") == rc.PERMISSION_DENIED
    assert await link_error(server, "wrong") == rc.PERMISSION_DENIED
    lines = refusals(caplog)
    assert "the password has expired" in lines[-2]
    assert "wrong password" in lines[-1]


async def test_the_old_epoch_keyword_warns_and_refuses_a_time_in_the_past(
    server_factory: Any,
) -> None:
    server = await server_factory(password="secret")
    with pytest.warns(DeprecationWarning, match="valid_for"):
        with pytest.raises(spice.ConfigError, match="for a duration use valid_for=60"):
            server.set_password("secret", 60)
    with pytest.warns(DeprecationWarning):
        server.set_password("secret", time.time() + 60)
    assert await link_error(server, "secret") == rc.OK
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        server.set_password("secret", valid_for=60)  # the new form does not warn


async def test_no_password_says_why_everyone_is_refused(
    server_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await server_factory(disable_ticketing=False)
    assert any("every client will be refused" in r.getMessage() for r in caplog.records)
    assert await link_error(server, "") == rc.PERMISSION_DENIED
    assert "no password is set on the server" in refusals(caplog)[-1]
    # An empty password is no password, not a password everyone knows.
    server.set_password("")
    assert await link_error(server, "") == rc.PERMISSION_DENIED


# -- clients as objects -------------------------------------------------------------------------


async def test_clients_are_objects_and_can_be_disconnected(server_factory: Any) -> None:
    server = await server_factory()
    before = datetime.datetime.now(datetime.UTC)
    session = await rc.open_session(HOST, server.port_bound)
    try:
        (client,) = server.clients
        assert client.session_id == session.session_id
        assert client.address == session.main.wire.socket_name()
        assert client.transport == "tcp" and not client.secure and not client.view_only
        assert before <= client.connected_at <= datetime.datetime.now(datetime.UTC)
        assert client.connected
        assert f"{session.session_id:08x}" in repr(client)
        await client.disconnect()
        msg_type, _ = await session.main.recv_until(rc.MSG_DISCONNECTING)
        assert msg_type == rc.MSG_DISCONNECTING
        await rc.read_until_closed(session.main.wire)
        await wait_until(lambda: not server.clients)
        assert not client.connected
        await client.disconnect()  # already gone: nothing happens
    finally:
        await session.aclose()


async def test_client_transport_websocket_and_tls(server_factory: Any, tmp_path: Path) -> None:
    write_certificates(tmp_path)
    server = await server_factory(tls_port=0, x509_dir=tmp_path, html5_dir=None)
    async with ws_stream(server.port_bound) as stream:
        result = await rc.link(stream, channel_type=rc.MAIN)
        assert result.ok
        await wait_until(lambda: len(server.clients) == 1)
        assert server.clients[0].transport == "websocket"
        assert not server.clients[0].secure
    await wait_until(lambda: not server.clients)
    stream = await tls_stream(server.tls_port_bound, str(tmp_path / "ca-cert.pem"))
    async with stream:
        result = await rc.link(stream, channel_type=rc.MAIN)
        assert result.ok
        await wait_until(lambda: len(server.clients) == 1)
        assert server.clients[0].transport == "tls" and server.clients[0].secure


async def open_inputs(session: rc.Session) -> rc.Channel:
    linked = await session.open_channel(rc.INPUTS)
    assert linked.ok, linked
    return linked.channel


async def press(inputs: rc.Channel, scancode: int) -> None:
    await inputs.send_msg(rc.MSGC_INPUTS_KEY_DOWN, struct.pack("<I", scancode))


async def test_input_events_carry_their_client_and_viewers_cannot_type(
    server_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await server_factory(password="full", view_only_password="view")
    async with server.input_events() as events:
        viewer = await rc.open_session(HOST, server.port_bound, "view")
        full = await rc.open_session(HOST, server.port_bound, "full")
        try:
            by_id = {c.session_id: c for c in server.clients}
            assert by_id[viewer.session_id].view_only
            assert not by_id[full.session_id].view_only
            viewer_inputs = await open_inputs(viewer)
            full_inputs = await open_inputs(full)
            await press(viewer_inputs, 0x1E)  # A, from the viewer: dropped
            await press(full_inputs, 0x30)  # B, from the full client
            await press(viewer_inputs, 0x1F)  # S, from the viewer: dropped
            await press(full_inputs, 0x2E)  # C
            first = await next_key_event(events)
            second = await next_key_event(events)
            assert (first.scancode, second.scancode) == (0x30, 0x2E)
            assert first == spice.KeyEvent(0x30, True)  # the client is not part of equality
            assert first.client is by_id[full.session_id]
            assert first.client is not None and first.client.address == full.main.wire.socket_name()
            with trio.move_on_after(0.3):
                extra = await next_key_event(events)
                pytest.fail(f"a viewer's key reached the application: {extra}")
            said = [r for r in caplog.records if "its input is ignored" in r.getMessage()]
            assert len(said) == 1
        finally:
            await viewer.aclose()
            await full.aclose()


# -- logging: one line per disconnect, all under the "spice" logger ---------------------------


async def test_a_client_leaving_is_one_line_under_the_spice_logger(server_factory: Any) -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep(logging.DEBUG)
    root = logging.getLogger("spice")
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        server = await server_factory()
        session = await rc.open_session(HOST, server.port_bound)
        await session.open_display()
        await session.open_channel(rc.INPUTS)
        await session.open_channel(rc.CURSOR)
        sid = f"{session.session_id:08x}"
        with trio.fail_after(5):  # the network test's line comes before
            while not any("network test" in r.getMessage() for r in seen):
                await trio.sleep(0.01)
        before = len(seen)
        await session.aclose()  # every channel closed at once, as a client quitting does
        await wait_until(lambda: not server.clients)
        await trio.sleep(0.2)  # let every channel's reader notice
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    about = [r for r in seen[before:] if sid in r.getMessage() and r.levelno >= logging.INFO]
    assert all(r.name.startswith("spice.") for r in seen)
    assert any(r.name.startswith("spice.adapters.") for r in seen)
    assert any("client connected" in r.getMessage() for r in seen[:before])
    assert len(about) == 1, [r.getMessage() for r in about]
    assert "client disconnected (client closed the connection)" in about[0].getMessage()


def test_server_thread_after_stop_says_so() -> None:
    server = spice.Server(addr=HOST, port=0, disable_ticketing=True)
    server.add_display(32, 32)
    with spice.ServerThread(server) as st:
        st.displays[0].fill(0, 0, 1, 1, 0)
        assert st.clients == []
    with pytest.raises(spice.ServerStateError, match="has stopped"):
        st.displays[0].fill(0, 0, 1, 1, 0)
    assert st.error is None


async def test_stop_before_the_sockets_are_up_ends_serve_cleanly() -> None:
    server = spice.Server(addr=HOST, port=0, disable_ticketing=True)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def stop_soon() -> None:
                await server.stop()

            original = server._open_listeners

            async def slow_listeners(port: int | None) -> list[trio.SocketListener]:
                nursery.start_soon(stop_soon)
                await trio.sleep(0)
                return await original(port)

            server._open_listeners = slow_listeners  # type: ignore[method-assign]
            await nursery.start(server.serve)
    assert not server.serving
