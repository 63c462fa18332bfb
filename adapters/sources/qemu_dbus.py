"""A QEMU virtual machine's display as a display source, through QEMU's D-Bus display
(``-display dbus``; QEMU's docs/interop/dbus-display.rst).

The source reaches QEMU either on a message bus (``-display dbus`` on the session bus, or
``addr=`` a private bus: QEMU owns the name ``org.qemu``) or peer to peer (``-display
dbus,p2p=yes``: the source hands QEMU one end of a socket pair over QMP, ``getfd`` then
``add_client protocol=@dbus-display``). Either way it then calls
``org.qemu.Display1.Console.RegisterListener`` with one end of a second socket pair, and QEMU
(which authenticates as the D-Bus server there) calls ``org.qemu.Display1.Listener`` on it:
``Scanout``/``Update`` (pixels in the message), ``ScanoutMap``/``UpdateMap`` (a shared-memory
fd, QEMU 9.0 on: the listener advertises ``org.qemu.Display1.Listener.Unix.Map``),
``CursorDefine``, ``MouseSet``, ``Disable``. They become calls on a :class:`DisplaySink`
(:class:`spice.Display`), the same API an application draws with. Clients' input goes back as
``org.qemu.Display1.Keyboard`` and ``.Mouse`` calls.

Messages are handled one at a time and each waits for the display to take its pixels, so a
slow display slows QEMU's socket down instead of growing a queue here.

When QEMU goes away, the source logs one line, shows clients a screen that says so and looks
for QEMU again every ``retry`` seconds; the SPICE server keeps serving.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import trio
from jeepney import DBusAddress, HeaderFields, Message, MessageType, new_method_call
from jeepney.auth import AuthenticationError, Authenticator
from jeepney.bus import get_bus
from jeepney.bus_messages import MatchRule, message_bus
from jeepney.fds import FileDescriptor, fds_buf_size
from jeepney.io.trio import DBusConnection, DBusRouter
from jeepney.low_level import MessageFlag, calc_msg_size
from jeepney.wrappers import DBusErrorResponse, new_error, new_method_return

from spice.adapters.sources.notice import DisplaySink, message_screen
from spice.domain.input_events import (
    InputEvent,
    KeyboardModifiersEvent,
    KeyEvent,
    MouseButtonEvent,
    MouseMotionEvent,
    MousePositionEvent,
    MouseWheelEvent,
)
from spice.domain.sources.pixman import (
    FORMAT_NAMES,
    Layout,
    PixelFormatError,
    check_layout,
    cursor_to_bgra,
    to_bgrx,
)
from spice.domain.sources.qemu_keys import lock_keys_to_tap, qnum_for

log = logging.getLogger(__name__)

#: Seconds between attempts to reach a lost QEMU again.
RETRY = 2.0
#: Seconds to wait for QEMU to answer a call before counting it as gone.
CALL_TIMEOUT = 10.0
#: Images larger than this many pixels are converted in a worker thread.
THREAD_PIXELS = 64 * 1024
#: The D-Bus specification's largest message; a peer announcing more is cut off.
MAX_MESSAGE = 128 * 1024 * 1024
#: Bytes read from a D-Bus socket at a time.
READ_CHUNK = 1024 * 1024
#: Longest QMP line read (QEMU's replies here are a few hundred bytes).
QMP_MAX_LINE = 64 * 1024

BUS_NAME = "org.qemu"
ROOT = "/org/qemu/Display1"
LISTENER_PATH = ROOT + "/Listener"
LISTENER_IFACE = "org.qemu.Display1.Listener"
MAP_IFACE = "org.qemu.Display1.Listener.Unix.Map"
PROPS_IFACE = "org.freedesktop.DBus.Properties"

#: SPICE mouse buttons (LEFT 1, MIDDLE 2, RIGHT 3, SIDE 6, EXTRA 7) to QEMU's D-Bus values.
_BUTTONS = {1: 0, 2: 1, 3: 2, 6: 5, 7: 6}
_WHEEL_UP, _WHEEL_DOWN = 3, 4

_INTROSPECTION = f"""<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
  <interface name="{LISTENER_IFACE}">
    <method name="Scanout"><arg type="u"/><arg type="u"/><arg type="u"/><arg type="u"/>
      <arg type="ay"/></method>
    <method name="Update"><arg type="i"/><arg type="i"/><arg type="i"/><arg type="i"/>
      <arg type="u"/><arg type="u"/><arg type="ay"/></method>
    <method name="Disable"/>
    <method name="MouseSet"><arg type="i"/><arg type="i"/><arg type="i"/></method>
    <method name="CursorDefine"><arg type="i"/><arg type="i"/><arg type="i"/><arg type="i"/>
      <arg type="ay"/></method>
    <property name="Interfaces" type="as" access="read"/>
  </interface>
  <interface name="{MAP_IFACE}">
    <method name="ScanoutMap"><arg type="h"/><arg type="u"/><arg type="u"/><arg type="u"/>
      <arg type="u"/><arg type="u"/></method>
    <method name="UpdateMap"><arg type="i"/><arg type="i"/><arg type="i"/><arg type="i"/>
    </method>
  </interface>
</node>
"""


class QemuGone(Exception):
    """QEMU cannot be reached, or its connection ended."""


class QemuUnsupported(Exception):
    """QEMU answers but lacks what the source needs (no such console, not graphic)."""


#: What ends a connection to QEMU: the source then shows the notice and retries.
LOST = (
    QemuGone,
    OSError,
    EOFError,
    trio.EndOfChannel,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    AuthenticationError,
    DBusErrorResponse,
    ValueError,
)

Notify = Callable[[str], Awaitable[None]]


def _member(msg: Message) -> str:
    return str(msg.header.fields.get(HeaderFields.member, ""))


async def _reply_or_raise(router: DBusRouter, msg: Message) -> tuple[Any, ...]:
    with trio.fail_after(CALL_TIMEOUT):
        reply = await router.send_and_get_reply(msg)
    if reply.header.message_type == MessageType.error:
        raise DBusErrorResponse(reply)
    return tuple(reply.body)


class _BoundedConnection(DBusConnection):  # type: ignore[misc]
    """jeepney's connection with fd passing, refusing messages over :data:`MAX_MESSAGE`
    and reading at most :data:`READ_CHUNK` at a time (jeepney would size one read to a
    message's announced length, up to 4 GiB)."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        super().__init__(sock, enable_fds=True)

    async def _read_data(self) -> tuple[bytes, list[FileDescriptor]]:
        buffered = self.parser.buf
        if buffered.bytes_buffered >= 16:
            size = calc_msg_size(buffered.peek(16))
            if size > MAX_MESSAGE:
                raise QemuGone(f"a D-Bus message of {size} bytes (the limit is {MAX_MESSAGE})")
        want = min(self.parser.bytes_desired(), READ_CHUNK)
        data, ancdata, flags, _ = await self.socket.recvmsg(want, fds_buf_size())
        if flags & getattr(socket, "MSG_CTRUNC", 0):
            raise QemuGone("file descriptors sent with a D-Bus message were lost")
        return data, FileDescriptor.from_ancdata(ancdata)


async def _client_auth(stream: trio.SocketStream) -> None:
    """The client side of D-Bus authentication (EXTERNAL, fd passing) on ``stream``."""
    auth = Authenticator(enable_fds=True, inc_null_byte=False)
    await stream.send_all(b"\0")
    for request in auth:
        await stream.send_all(request)
        data = await stream.receive_some(4096)
        if not data:
            raise QemuGone("QEMU closed the D-Bus connection during authentication")
        auth.feed(data)
    await stream.send_all(b"BEGIN\r\n")


class _Qmp:
    """Just enough QMP to hand QEMU a D-Bus connection (``-display dbus,p2p=yes``)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _line(self) -> dict[str, Any]:
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                value = json.loads(line)
                if not isinstance(value, dict):
                    raise QemuGone(f"QMP sent {line[:80]!r}")
                return value
            if len(self.buffer) > QMP_MAX_LINE:
                raise QemuGone(f"a QMP line longer than {QMP_MAX_LINE} bytes")
            data = await self.stream.receive_some(4096)
            if not data:
                raise QemuGone("QMP connection closed")
            self.buffer += data

    async def greeting(self) -> None:
        hello = await self._line()
        if "QMP" not in hello:
            raise QemuGone(f"not a QMP greeting: {str(hello)[:80]}")
        await self.execute("qmp_capabilities")

    async def execute(
        self, command: str, arguments: dict[str, Any] | None = None, fd: int | None = None
    ) -> Any:
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        data = json.dumps(request).encode() + b"\n"
        if fd is None:
            await self.stream.send_all(data)
        else:
            sock = self.stream.socket
            await sock.sendmsg(
                [data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, np.array([fd], np.int32).tobytes())]
            )
        while True:
            answer = await self._line()
            if "event" in answer:
                continue
            if "error" in answer:
                error = answer["error"]
                raise QemuUnsupported(f"QMP {command}: {error.get('desc', error)}")
            return answer.get("return")


class QemuSource:
    """Show QEMU's console ``console`` in ``sink``.

    Give ``dbus_address`` (a D-Bus address where QEMU owns ``org.qemu``; ``"SESSION"`` for the
    session bus) or ``qmp_path`` (QEMU's QMP Unix socket, for ``-display dbus,p2p=yes``).
    ``events`` (the server's input events) are played into the guest unless None (view only);
    ``notify`` tells the clients a message.
    """

    def __init__(
        self,
        sink: DisplaySink,
        *,
        dbus_address: str | None = None,
        qmp_path: str | os.PathLike[str] | None = None,
        console: int = 0,
        events: trio.abc.ReceiveChannel[InputEvent] | None = None,
        notify: Notify | None = None,
        retry: float = RETRY,
        shared_memory: bool = True,
    ) -> None:
        if (dbus_address is None) == (qmp_path is None):
            raise ValueError("give exactly one of dbus_address and qmp_path")
        self.sink = sink
        self.dbus_address = dbus_address
        self.qmp_path = None if qmp_path is None else os.fspath(qmp_path)
        self.console = console
        self.events = events
        self.notify = notify
        self.retry = retry
        self.shared_memory = shared_memory
        self.console_path = f"{ROOT}/Console_{console}"
        #: Counters for tests and benchmarks.
        self.scanouts = 0
        self.updates = 0
        self.map_scanouts = 0
        self.connected = trio.Event()
        self._router: DBusRouter | None = None
        self._bus = False
        self._absolute = False
        self._position: tuple[int, int] | None = None
        self._held_keys: set[int] = set()
        self._held_buttons: set[int] = set()
        self._cursor: tuple[np.ndarray, int, int] | None = None
        self._cursor_visible = True
        self._map: mmap.mmap | None = None
        self._map_layout: Layout | None = None
        self._complained: set[str] = set()
        #: The last size QEMU took through SetUIInfo (for tests).
        self.ui_info: tuple[int, int] | None = None

    @property
    def shown_name(self) -> str:
        if self.qmp_path is not None:
            return f"QEMU (QMP {self.qmp_path})"
        return f"QEMU (D-Bus {self.dbus_address})"

    # -- connection ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; ``task_status.started()`` once the first connection is up
        (the first attempt raises :data:`LOST` or :class:`QemuUnsupported` if it fails)."""
        try:
            await self._run(task_status)
        except BaseExceptionGroup as group:
            raise _lone_loss(group) from None

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as nursery:
            if self.events is not None:
                nursery.start_soon(self._play_input, self.events)
            first = True
            while True:
                try:
                    try:
                        async with trio.open_nursery() as inner:
                            await inner.start(self._session)
                            if first:
                                task_status.started()
                                first = False
                            else:
                                log.info("%s is back", self.shown_name)
                    except BaseExceptionGroup as group:
                        raise _lone_loss(group) from None
                except (*LOST, QemuUnsupported) as exc:
                    if first:
                        raise
                    if self.connected.is_set():
                        log.warning(
                            "%s went away (%s); showing clients a notice and looking for it "
                            "every %g s",
                            self.shown_name,
                            _why(exc),
                            self.retry,
                        )
                        await self._lost()
                    else:
                        log.debug("%s still unreachable: %s", self.shown_name, _why(exc))
                finally:
                    self._reset()
                await trio.sleep(self.retry)

    def _reset(self) -> None:
        self._router = None
        self.connected = trio.Event()
        if self._map is not None:
            self._map.close()
        self._map = None
        self._map_layout = None
        self._held_keys.clear()
        self._held_buttons.clear()

    async def _session(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """One connection to QEMU: open it, register the listener, serve until it ends."""
        async with contextlib.AsyncExitStack() as stack:
            conn = await self._open()
            stack.push_async_callback(conn.aclose)
            async with trio.open_nursery() as nursery:
                router = DBusRouter(conn)
                await router.start(nursery)
                console = await self._check_console(router)
                listener = await self._register(router)
                stack.push_async_callback(listener.aclose)
                # QEMU reads the listener's properties (blocking its main loop) before it
                # answers anything else: serve the listener first.
                nursery.start_soon(self._serve_listener, listener)
                self._router = router
                await self._watch_mouse_mode(router, nursery)
                log.info("%s: console %d %s, listening", self.shown_name, self.console, console)
                self.connected.set()
                task_status.started()

    async def _open(self) -> DBusConnection:
        if self.dbus_address is not None:
            self._bus = True
            with trio.fail_after(CALL_TIMEOUT):
                stream = await trio.open_unix_socket(get_bus(self.dbus_address))
                try:
                    await _client_auth(stream)
                    conn = _BoundedConnection(stream.socket)
                    async with conn.router() as router:
                        await _reply_or_raise(router, message_bus.Hello())
                except BaseException:
                    await stream.aclose()
                    raise
                return conn
        self._bus = False
        assert self.qmp_path is not None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with trio.fail_after(CALL_TIMEOUT):
                qmp_stream = await trio.open_unix_socket(self.qmp_path)
                async with qmp_stream:
                    qmp = _Qmp(qmp_stream)
                    await qmp.greeting()
                    await qmp.execute("getfd", {"fdname": "trio-spice-dbus"}, fd=theirs.fileno())
                    await qmp.execute(
                        "add_client", {"protocol": "@dbus-display", "fdname": "trio-spice-dbus"}
                    )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
        with trio.fail_after(CALL_TIMEOUT):
            await _client_auth(stream)
        return _BoundedConnection(stream.socket)

    def _method(
        self, path: str, iface: str, method: str, sig: str, body: tuple[Any, ...]
    ) -> Message:
        msg = new_method_call(DBusAddress(path, BUS_NAME, iface), method, sig, body)
        if not self._bus:  # peer to peer: no destination
            del msg.header.fields[HeaderFields.destination]
        return msg

    async def _get_property(self, router: DBusRouter, path: str, iface: str, name: str) -> Any:
        msg = self._method(path, PROPS_IFACE, "Get", "ss", (iface, name))
        (value,) = await _reply_or_raise(router, msg)
        return value[1]

    async def _check_console(self, router: DBusRouter) -> str:
        ids = await self._get_property(router, ROOT + "/VM", "org.qemu.Display1.VM", "ConsoleIDs")
        if self.console not in ids:
            raise QemuUnsupported(f"QEMU has no console {self.console} (it has {list(ids)})")
        iface = "org.qemu.Display1.Console"
        kind = await self._get_property(router, self.console_path, iface, "Type")
        if kind != "Graphic":
            raise QemuUnsupported(f"QEMU console {self.console} is {kind}, not Graphic")
        label = await self._get_property(router, self.console_path, iface, "Label")
        return str(label)

    async def _register(self, router: DBusRouter) -> DBusConnection:
        # QEMU replies first, then plays the D-Bus server on the new connection.
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            msg = self._method(
                self.console_path, "org.qemu.Display1.Console", "RegisterListener", "h", (theirs,)
            )
            await _reply_or_raise(router, msg)
            theirs.close()
            stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
            with trio.fail_after(CALL_TIMEOUT):
                await _client_auth(stream)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return _BoundedConnection(stream.socket)

    async def _watch_mouse_mode(self, router: DBusRouter, nursery: trio.Nursery) -> None:
        iface = "org.qemu.Display1.Mouse"
        self._absolute = bool(
            await self._get_property(router, self.console_path, iface, "IsAbsolute")
        )
        rule = MatchRule(
            type="signal", interface=PROPS_IFACE, member="PropertiesChanged", path=self.console_path
        )
        if self._bus:
            await _reply_or_raise(router, message_bus.AddMatch(rule))

        # The filter stays registered until the router stops (which closes its channel):
        # removing it while the router's receiver shuts down trips jeepney.
        send, changes = trio.open_memory_channel[Message](16)
        router.filter(rule, channel=send)

        async def follow() -> None:
            async for signal in changes:
                changed_iface, changed, _ = signal.body
                if changed_iface == iface and "IsAbsolute" in changed:
                    self._absolute = bool(changed["IsAbsolute"][1])
                    log.debug("%s: mouse absolute %s", self.shown_name, self._absolute)

        nursery.start_soon(follow)

    # -- the listener: QEMU's calls ----------------------------------------------------------

    async def _serve_listener(self, conn: DBusConnection) -> None:
        while True:
            try:
                msg = await conn.receive()
            except trio.EndOfChannel:
                raise QemuGone("QEMU closed the listener connection") from None
            if msg.header.message_type != MessageType.method_call:
                continue
            try:
                reply = await self._handle(msg)
            except (PixelFormatError, ValueError, TypeError) as exc:
                member = _member(msg)
                self._complain_once(member, f"{member} rejected: {exc}")
                reply = new_error(msg, "org.qemu.Display1.Error.Invalid", "s", (str(exc),))
            if reply is not None and not msg.header.flags & MessageFlag.no_reply_expected:
                await conn.send(reply)

    async def _handle(self, msg: Message) -> Message | None:
        iface = msg.header.fields.get(HeaderFields.interface)
        member = _member(msg)
        body = msg.body
        if iface == PROPS_IFACE:
            return self._properties(msg, member, body)
        if iface == "org.freedesktop.DBus.Introspectable" and member == "Introspect":
            return new_method_return(msg, "s", (_INTROSPECTION,))
        if iface == "org.freedesktop.DBus.Peer" and member == "Ping":
            return new_method_return(msg)
        handler = _HANDLERS.get(member)
        if handler is None or (member.endswith("Map") and not self.shared_memory):
            return new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (member,))
        signature = str(msg.header.fields.get(HeaderFields.signature, ""))
        if signature != handler[0]:
            raise ValueError(f"signature {signature!r}, expected {handler[0]!r}")
        await handler[1](self, *body)
        return new_method_return(msg)

    def _properties(self, msg: Message, member: str, body: tuple[Any, ...]) -> Message:
        interfaces = [MAP_IFACE] if self.shared_memory else []
        if member == "GetAll" and body[:1] == (LISTENER_IFACE,):
            return new_method_return(msg, "a{sv}", ({"Interfaces": ("as", interfaces)},))
        if member == "GetAll":
            return new_method_return(msg, "a{sv}", ({},))
        if member == "Get" and tuple(body) == (LISTENER_IFACE, "Interfaces"):
            return new_method_return(msg, "v", (("as", interfaces),))
        return new_error(msg, "org.freedesktop.DBus.Error.UnknownProperty", "s", (str(body),))

    async def _scanout(self, width: int, height: int, stride: int, fmt: int, data: bytes) -> None:
        layout = Layout(width, height, stride, fmt)
        check_layout(layout, len(data))
        self._drop_map()
        await self._show_scanout(data, layout)
        self.scanouts += 1

    async def _update(
        self, x: int, y: int, width: int, height: int, stride: int, fmt: int, data: bytes
    ) -> None:
        layout = Layout(width, height, stride, fmt)
        check_layout(layout, len(data))
        await self._put(data, layout, x, y, 0, 0, width, height)
        self.updates += 1

    async def _scanout_map(
        self, fd: Any, offset: int, width: int, height: int, stride: int, fmt: int
    ) -> None:
        layout = Layout(width, height, stride, fmt, offset)
        with fd:
            raw = fd.fileno()
            size = os.fstat(raw).st_size
            check_layout(layout, size)
            self._drop_map()
            self._map = mmap.mmap(raw, size, mmap.MAP_SHARED, mmap.PROT_READ)
        self._map_layout = layout
        await self._show_scanout(self._map, layout)
        self.map_scanouts += 1

    async def _update_map(self, x: int, y: int, width: int, height: int) -> None:
        if self._map is None or self._map_layout is None:
            raise ValueError("UpdateMap before ScanoutMap")
        layout = self._map_layout
        await self._put(self._map, layout, x, y, x, y, width, height)
        self.updates += 1

    async def _disable(self) -> None:
        self._drop_map()
        text = "The virtual machine's display is off."
        await self.sink.update(0, 0, message_screen(self.sink.width, self.sink.height, text))

    async def _mouse_set(self, x: int, y: int, on: int) -> None:
        if not on:
            self._cursor_visible = False
            await self.sink.hide_cursor()
            return
        if not self._cursor_visible and self._cursor is not None:
            await self.sink.set_cursor(*self._cursor)
        self._cursor_visible = True
        await self.sink.move_cursor(max(0, x), max(0, y))

    async def _cursor_define(
        self, width: int, height: int, hot_x: int, hot_y: int, data: bytes
    ) -> None:
        if not (0 < width <= 512 and 0 < height <= 512):
            raise ValueError(f"cursor {width}x{height}")
        bgra = cursor_to_bgra(data, width, height)
        hot_x, hot_y = min(max(hot_x, 0), width - 1), min(max(hot_y, 0), height - 1)
        self._cursor = (bgra, hot_x, hot_y)
        if self._cursor_visible:
            await self.sink.set_cursor(bgra, hot_x, hot_y)

    async def _show_scanout(self, data: Any, layout: Layout) -> None:
        if (layout.width, layout.height) != (self.sink.width, self.sink.height):
            if layout.width == 0 or layout.height == 0:
                return
            await self.sink.resize(layout.width, layout.height)
            log.info(
                "%s: scanout %dx%d %s",
                self.shown_name,
                layout.width,
                layout.height,
                FORMAT_NAMES.get(layout.fmt, hex(layout.fmt)),
            )
        await self._put(data, layout, 0, 0, 0, 0, layout.width, layout.height)

    async def _put(
        self, data: Any, layout: Layout, dx: int, dy: int, sx: int, sy: int, w: int, h: int
    ) -> None:
        """Draw the part (sx, sy, w, h) of the image in ``data`` at (dx, dy), clipped to
        the display."""
        if dx < 0:
            sx, w = sx - dx, w + dx
            dx = 0
        if dy < 0:
            sy, h = sy - dy, h + dy
            dy = 0
        w = min(w, self.sink.width - dx, layout.width - sx)
        h = min(h, self.sink.height - dy, layout.height - sy)
        if w <= 0 or h <= 0:
            return
        if w * h > THREAD_PIXELS:
            pixels = await trio.to_thread.run_sync(
                lambda: to_bgrx(data, layout, x=sx, y=sy, width=w, height=h)
            )
        else:
            pixels = to_bgrx(data, layout, x=sx, y=sy, width=w, height=h)
        await self.sink.update(dx, dy, pixels)

    def _drop_map(self) -> None:
        if self._map is not None:
            self._map.close()
        self._map = None
        self._map_layout = None

    async def _lost(self) -> None:
        text = "The virtual machine's display (QEMU) has closed. Waiting for it to come back..."
        await self.sink.hide_cursor()
        await self.sink.update(0, 0, message_screen(self.sink.width, self.sink.height, text))
        if self.notify is not None:
            await self.notify(text)

    def _complain_once(self, key: str, text: str) -> None:
        if key not in self._complained:
            self._complained.add(key)
            log.warning("%s: %s", self.shown_name, text)

    # -- input ---------------------------------------------------------------------------

    async def _play_input(self, events: trio.abc.ReceiveChannel[InputEvent]) -> None:
        with contextlib.suppress(trio.ClosedResourceError, trio.EndOfChannel):
            async for event in events:
                router = self._router
                if router is None:
                    continue  # no QEMU: the input has nowhere to go
                try:
                    await self._play(router, event)
                except LOST as exc:
                    log.debug("%s: input not delivered: %s", self.shown_name, _why(exc))

    async def _call(
        self, router: DBusRouter, iface: str, method: str, sig: str, *args: Any
    ) -> None:
        msg = self._method(self.console_path, iface, method, sig, args)
        msg.header.flags |= MessageFlag.no_reply_expected
        await router.send(msg)

    async def _key(self, router: DBusRouter, scancode: int, pressed: bool) -> None:
        qnum = qnum_for(scancode)
        if qnum is None:
            return
        if pressed:
            self._held_keys.add(scancode)
        else:
            self._held_keys.discard(scancode)
        method = "Press" if pressed else "Release"
        await self._call(router, "org.qemu.Display1.Keyboard", method, "u", qnum)

    async def _button(self, router: DBusRouter, button: int, pressed: bool) -> None:
        if pressed:
            self._held_buttons.add(button)
        else:
            self._held_buttons.discard(button)
        method = "Press" if pressed else "Release"
        await self._call(router, "org.qemu.Display1.Mouse", method, "u", button)

    async def _move_to(self, router: DBusRouter, x: int, y: int) -> None:
        x = min(max(x, 0), max(self.sink.width - 1, 0))
        y = min(max(y, 0), max(self.sink.height - 1, 0))
        if self._absolute:
            await self._call(router, "org.qemu.Display1.Mouse", "SetAbsPosition", "uu", x, y)
        elif self._position is not None and (x, y) != self._position:
            dx, dy = x - self._position[0], y - self._position[1]
            await self._call(router, "org.qemu.Display1.Mouse", "RelMotion", "ii", dx, dy)
        self._position = (x, y)

    async def _play(self, router: DBusRouter, event: InputEvent) -> None:
        mouse = "org.qemu.Display1.Mouse"
        if isinstance(event, KeyEvent):
            await self._key(router, event.scancode, event.pressed)
        elif isinstance(event, MousePositionEvent):
            await self._move_to(router, event.x, event.y)
        elif isinstance(event, MouseMotionEvent):
            if self._absolute:
                x, y = self._position or (self.sink.width // 2, self.sink.height // 2)
                await self._move_to(router, x + event.dx, y + event.dy)
            else:
                await self._call(router, mouse, "RelMotion", "ii", event.dx, event.dy)
        elif isinstance(event, MouseButtonEvent):
            button = _BUTTONS.get(event.button)
            if button is not None:
                await self._button(router, button, event.pressed)
        elif isinstance(event, MouseWheelEvent):
            button = _WHEEL_UP if event.dy < 0 else _WHEEL_DOWN
            for _ in range(min(abs(event.dy), 10) or 1):
                await self._call(router, mouse, "Press", "u", button)
                await self._call(router, mouse, "Release", "u", button)
        elif isinstance(event, KeyboardModifiersEvent):
            guest = await self._get_property(
                router, self.console_path, "org.qemu.Display1.Keyboard", "Modifiers"
            )
            for key in lock_keys_to_tap(int(guest), event.modifiers):
                await self._key(router, key, True)
                await self._key(router, key, False)

    # -- resize --------------------------------------------------------------------------

    async def request_size(self, width: int, height: int) -> bool:
        """Pass a client's window size to QEMU (``Console.SetUIInfo``, what a display
        window's size change does in QEMU's own UIs): True when QEMU took it. The guest's
        display driver may follow (virtio-gpu, QXL with an agent) or not; the console's
        next scanout drives the display either way. False with no QEMU, or when QEMU refuses
        (a device without UI info, such as the std VGA: the size stays)."""
        router = self._router
        if router is None:
            return False
        width_mm, height_mm = (round(v * 25.4 / 96) for v in (width, height))  # at 96 dpi
        msg = self._method(
            self.console_path,
            "org.qemu.Display1.Console",
            "SetUIInfo",
            "qqiiuu",
            (width_mm, height_mm, 0, 0, width, height),
        )
        try:
            await _reply_or_raise(router, msg)
        except DBusErrorResponse as exc:
            log.info("%s: SetUIInfo %dx%d refused: %s", self.shown_name, width, height, _why(exc))
            return False
        except (*LOST, trio.TooSlowError) as exc:
            log.info("%s: SetUIInfo %dx%d failed: %s", self.shown_name, width, height, _why(exc))
            return False
        self.ui_info = (width, height)
        log.info("%s: asked the guest for %dx%d (SetUIInfo)", self.shown_name, width, height)
        return True

    async def release_input(self) -> None:
        """Release keys and buttons held down by clients (call when the last one leaves)."""
        router = self._router
        if router is None:
            return
        with contextlib.suppress(*LOST):
            for scancode in sorted(self._held_keys):
                await self._key(router, scancode, False)
            for button in sorted(self._held_buttons):
                await self._button(router, button, False)


_Handler = Callable[..., Awaitable[None]]
#: Listener method name to (D-Bus signature, handler).
_HANDLERS: dict[str, tuple[str, _Handler]] = {
    "Scanout": ("uuuuay", QemuSource._scanout),
    "Update": ("iiiiuuay", QemuSource._update),
    "ScanoutMap": ("huuuuu", QemuSource._scanout_map),
    "UpdateMap": ("iiii", QemuSource._update_map),
    "Disable": ("", QemuSource._disable),
    "MouseSet": ("iii", QemuSource._mouse_set),
    "CursorDefine": ("iiiiay", QemuSource._cursor_define),
}


def _lone_loss(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first of the losses in ``group`` when it holds nothing else (else ``group``): a
    connection ending ends the other tasks of its session too."""
    lost, rest = group.split((*LOST, QemuUnsupported))
    if rest is not None or lost is None:
        return group
    first: BaseException = lost
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


def _why(exc: BaseException) -> str:
    if isinstance(exc, DBusErrorResponse):
        return f"{exc.name}: {exc.data[0] if exc.data else ''}"
    return str(exc) or type(exc).__name__


__all__ = ["LOST", "QemuGone", "QemuSource", "QemuUnsupported"]
