"""The QEMU source's listener, driven by a stand-in for QEMU on a socket pair: what QEMU 7.2
calls (Scanout, Update, CursorDefine, MouseSet, Disable) and what only later QEMUs call
(ScanoutMap/UpdateMap with a memfd, which Debian's QEMU 7.2 lacks), and calls a broken or
hostile peer makes, which get error replies and one log line while the connection goes on."""

from __future__ import annotations

import logging
import os
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
import trio
from jeepney import DBusAddress, HeaderFields, Message, MessageType, new_method_call
from jeepney.io.trio import DBusConnection, DBusRouter

from spice.adapters.sources.qemu_dbus import (
    LISTENER_PATH,
    MAP_IFACE,
    QemuGone,
    QemuSource,
    _BoundedConnection,
)
from spice.domain.sources import pixman

LISTENER = "org.qemu.Display1.Listener"


class Sink:
    """A display stand-in keeping a framebuffer and a log of cursor calls."""

    def __init__(self, width: int = 8, height: int = 8) -> None:
        self.fb = np.zeros((height, width, 4), np.uint8)
        self.calls: list[tuple[Any, ...]] = []

    @property
    def width(self) -> int:
        return int(self.fb.shape[1])

    @property
    def height(self) -> int:
        return int(self.fb.shape[0])

    async def update(self, x: int, y: int, image: Any) -> None:
        h, w = image.shape[:2]
        self.fb[y : y + h, x : x + w] = image
        self.calls.append(("update", x, y, w, h))

    async def resize(self, width: int, height: int) -> None:
        self.fb = np.zeros((height, width, 4), np.uint8)
        self.calls.append(("resize", width, height))

    async def set_cursor(self, image: Any, hot_x: int = 0, hot_y: int = 0, **kw: Any) -> None:
        self.calls.append(("set_cursor", image.tolist(), hot_x, hot_y))

    async def move_cursor(self, x: int, y: int) -> None:
        self.calls.append(("move_cursor", x, y))

    async def hide_cursor(self) -> None:
        self.calls.append(("hide_cursor",))


class FakeQemu:
    def __init__(self, router: DBusRouter) -> None:
        self.router = router

    async def call(self, member: str, sig: str = "", *body: Any, iface: str = LISTENER) -> Message:
        msg = new_method_call(DBusAddress(LISTENER_PATH, "org.qemu", iface), member, sig, body)
        del msg.header.fields[HeaderFields.destination]  # peer to peer
        with trio.fail_after(5):
            return await self.router.send_and_get_reply(msg)

    async def ok(self, member: str, sig: str = "", *body: Any, iface: str = LISTENER) -> tuple:
        reply = await self.call(member, sig, *body, iface=iface)
        assert reply.header.message_type == MessageType.method_return, reply.body
        return tuple(reply.body)

    async def error(self, member: str, sig: str = "", *body: Any, iface: str = LISTENER) -> str:
        reply = await self.call(member, sig, *body, iface=iface)
        assert reply.header.message_type == MessageType.error
        return str(reply.header.fields[HeaderFields.error_name])


@asynccontextmanager
async def listening(sink: Sink) -> AsyncIterator[tuple[QemuSource, FakeQemu, list[BaseException]]]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    source = QemuSource(sink, qmp_path="/nonexistent")  # the listener alone is driven here
    ended: list[BaseException] = []

    async def serve(conn: DBusConnection) -> None:
        try:
            await source._serve_listener(conn)
        except QemuGone as exc:
            ended.append(exc)

    src_conn = _BoundedConnection(trio.socket.from_stdlib_socket(ours))
    qemu_conn = DBusConnection(trio.socket.from_stdlib_socket(theirs), enable_fds=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, src_conn)
        router = DBusRouter(qemu_conn)
        await router.start(nursery)
        try:
            yield source, FakeQemu(router), ended
        finally:
            await router.aclose()
            await qemu_conn.aclose()
            with trio.fail_after(5):
                while not ended:
                    await trio.sleep(0.01)
            await src_conn.aclose()
            nursery.cancel_scope.cancel()


def xrgb(rows: list[list[int]]) -> bytes:
    """x8r8g8b8 pixels (0xRRGGBB values) as little-endian bytes."""
    return np.array(rows, "<u4").tobytes()


async def test_properties_offer_shared_memory() -> None:
    async with listening(Sink()) as (_, qemu, _ended):
        (props,) = await qemu.ok("GetAll", "s", LISTENER, iface="org.freedesktop.DBus.Properties")
        assert props == {"Interfaces": ("as", [MAP_IFACE])}
        (value,) = await qemu.ok(
            "Get", "ss", LISTENER, "Interfaces", iface="org.freedesktop.DBus.Properties"
        )
        assert value == ("as", [MAP_IFACE])


async def test_scanout_update_cursor_and_end() -> None:
    sink = Sink()
    async with listening(sink) as (source, qemu, ended):
        pixels = [[0x112233, 0x445566, 0x778899], [0xAABBCC, 0xDDEEFF, 0x010203]]
        await qemu.ok("Scanout", "uuuuay", 3, 2, 12, pixman.X8R8G8B8, xrgb(pixels))
        assert sink.calls[:2] == [("resize", 3, 2), ("update", 0, 0, 3, 2)]
        assert sink.fb[0, 0].tolist() == [0x33, 0x22, 0x11, 0]
        assert sink.fb[1, 2].tolist() == [0x03, 0x02, 0x01, 0]
        # An update with its own stride (8 bytes for one pixel) at (1, 1).
        await qemu.ok("Update", "iiiiuuay", 1, 1, 1, 1, 8, pixman.X8R8G8B8, xrgb([[0xFF0000, 0]]))
        assert sink.fb[1, 1].tolist() == [0, 0, 0xFF, 0]
        # An update reaching past the surface is clipped to it.
        await qemu.ok("Update", "iiiiuuay", 2, 1, 2, 1, 8, pixman.X8R8G8B8, xrgb([[0xFF, 0xFF]]))
        assert sink.calls[-1] == ("update", 2, 1, 1, 1)
        # The cursor: ARGB, shown; hidden; shown again (its shape sent again) and moved.
        await qemu.ok("CursorDefine", "iiiiay", 1, 1, 0, 0, xrgb([[0x80102030]]))
        assert sink.calls[-1] == ("set_cursor", [[[0x30, 0x20, 0x10, 0x80]]], 0, 0)
        await qemu.ok("MouseSet", "iii", 1, 1, 0)
        assert sink.calls[-1] == ("hide_cursor",)
        await qemu.ok("MouseSet", "iii", 2, 1, 1)
        assert sink.calls[-2:] == [
            ("set_cursor", [[[0x30, 0x20, 0x10, 0x80]]], 0, 0),
            ("move_cursor", 2, 1),
        ]
        assert (source.scanouts, source.updates) == (1, 2)
    assert len(ended) == 1  # the peer closing ends the listener with QemuGone


async def test_shared_memory_scanout() -> None:
    """ScanoutMap/UpdateMap (QEMU 9.0 on): the frame lives in a memfd QEMU keeps drawing in."""
    sink = Sink()
    fd = os.memfd_create("scanout")
    try:
        frame = np.zeros((2, 4), "<u4")  # 2 rows of 4 pixels, 16 bytes a row, at offset 32
        frame[0, 0], frame[1, 3] = 0x0000FF, 0x00FF00
        os.pwrite(fd, bytes(32) + frame.tobytes(), 0)
        async with listening(sink) as (source, qemu, _ended):
            await qemu.ok(
                "ScanoutMap", "huuuuu", fd, 32, 4, 2, 16, pixman.X8R8G8B8, iface=MAP_IFACE
            )
            assert sink.calls[:2] == [("resize", 4, 2), ("update", 0, 0, 4, 2)]
            assert sink.fb[0, 0].tolist() == [0xFF, 0, 0, 0]
            assert sink.fb[1, 3].tolist() == [0, 0xFF, 0, 0]
            # QEMU draws into the memory and says where.
            os.pwrite(fd, np.array([0xFF0000], "<u4").tobytes(), 32 + 16 + 4)
            await qemu.ok("UpdateMap", "iiii", 1, 1, 1, 1, iface=MAP_IFACE)
            assert sink.calls[-1] == ("update", 1, 1, 1, 1)
            assert sink.fb[1, 1].tolist() == [0, 0, 0xFF, 0]
            assert source.map_scanouts == 1
            # A map the memfd is too small for is refused.
            name = await qemu.error(
                "ScanoutMap", "huuuuu", fd, 32, 4, 3, 16, pixman.X8R8G8B8, iface=MAP_IFACE
            )
            assert name == "org.qemu.Display1.Error.Invalid"
    finally:
        os.close(fd)


async def test_hostile_calls_get_errors_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    async with listening(sink) as (_, qemu, ended):
        with caplog.at_level(logging.INFO, logger="spice.adapters.sources.qemu_dbus"):
            for _ in range(3):  # data shorter than the image it claims to be
                name = await qemu.error("Scanout", "uuuuay", 64, 64, 256, pixman.X8R8G8B8, b"x")
                assert name == "org.qemu.Display1.Error.Invalid"
            # A format nobody knows, a stride that overlaps rows, arguments of the wrong type.
            assert await qemu.error("Scanout", "uuuuay", 1, 1, 4, 0xDEAD, bytes(4))
            assert await qemu.error("Scanout", "uuuuay", 4, 2, 1, pixman.X8R8G8B8, bytes(64))
            assert await qemu.error("Scanout", "ssss", "a", "b", "c", "d")
            assert await qemu.error("UpdateMap", "iiii", 0, 0, 1, 1, iface=MAP_IFACE)
            assert await qemu.error("CursorDefine", "iiiiay", 100000, 1, 0, 0, b"")
            unknown = await qemu.error("ScanoutDMABUF", "s", "x")
            assert unknown == "org.freedesktop.DBus.Error.UnknownMethod"
        scanout_lines = [r for r in caplog.records if "Scanout rejected" in r.getMessage()]
        assert len(scanout_lines) == 1, [r.getMessage() for r in caplog.records]
        assert sink.calls == []
        # The connection is still good.
        await qemu.ok("Scanout", "uuuuay", 1, 1, 4, pixman.X8R8G8B8, xrgb([[0x010203]]))
        assert sink.fb[0, 0].tolist() == [3, 2, 1, 0]
        assert not ended


async def test_oversized_message_ends_the_connection_at_once() -> None:
    """A peer announcing a 2 GiB message is cut off after its 16-byte preamble, before any
    buffer of that size exists."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    source = QemuSource(Sink(), qmp_path="/nonexistent")
    conn = _BoundedConnection(trio.socket.from_stdlib_socket(ours))
    with theirs:
        theirs.sendall(b"l\x01\x00\x01" + struct.pack("<III", 0x7FFFFFF0, 1, 16))
        with trio.fail_after(5), pytest.raises(QemuGone, match="2147483"):
            await source._serve_listener(conn)
    await conn.aclose()


class RecordingRouter:
    """Takes the source's input calls (sent without waiting for replies)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, tuple[Any, ...]]] = []

    async def send(self, msg: Message) -> None:
        fields = msg.header.fields
        assert HeaderFields.destination not in fields  # peer to peer
        assert msg.header.flags & 1  # NO_REPLY_EXPECTED
        assert fields[HeaderFields.path] == "/org/qemu/Display1/Console_0"
        iface = str(fields[HeaderFields.interface]).rsplit(".", 1)[1]
        self.sent.append((iface, str(fields[HeaderFields.member]), tuple(msg.body)))


async def test_input_becomes_keyboard_and_mouse_calls() -> None:
    from spice.domain.input_events import (
        KeyEvent,
        MouseButtonEvent,
        MouseMotionEvent,
        MousePositionEvent,
        MouseWheelEvent,
    )

    source = QemuSource(Sink(100, 50), qmp_path="/nonexistent")
    router = RecordingRouter()
    play = source._play
    await play(router, KeyEvent(0x1E, True))  # A down
    await play(router, KeyEvent(0xE048, True))  # Up down
    await play(router, KeyEvent(0xE048, False))
    await play(router, MouseButtonEvent(3, True, 4))  # right button
    await play(router, MouseWheelEvent(-1, 0))
    # A relative guest mouse (PS/2): positions become motion from the last one.
    await play(router, MousePositionEvent(10, 10, 0))
    await play(router, MousePositionEvent(15, 8, 0))
    await play(router, MouseMotionEvent(-3, 2, 0))
    # An absolute one (a tablet): positions, clamped to the display.
    source._absolute = True
    await play(router, MousePositionEvent(500, 20, 0))
    assert router.sent == [
        ("Keyboard", "Press", (0x1E,)),
        ("Keyboard", "Press", (0xC8,)),
        ("Keyboard", "Release", (0xC8,)),
        ("Mouse", "Press", (2,)),
        ("Mouse", "Press", (3,)),
        ("Mouse", "Release", (3,)),
        ("Mouse", "RelMotion", (5, -2)),
        ("Mouse", "RelMotion", (-3, 2)),
        ("Mouse", "SetAbsPosition", (99, 20)),
    ]
    # The last client leaving: what is still held goes up.
    router.sent.clear()
    source._router = router  # type: ignore[assignment]
    await source.release_input()
    assert router.sent == [("Keyboard", "Release", (0x1E,)), ("Mouse", "Release", (2,))]
