"""Running the server from a plain (non-Trio) program: the server gets its own thread with a
Trio loop, and every call crosses over with ``trio.from_thread``.

Errors cross back: a bad argument raises in the calling thread as it would in Trio, a server
that cannot start raises from :meth:`ServerThread.start` (a :class:`spice.ListenError` for a
port in use), and a server that stops on an unexpected error raises
:class:`spice.ServerFailed` (the error as its ``__cause__``) from the next call and from
:meth:`ServerThread.stop`, instead of dying silently.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, overload

import trio

from spice.adapters.session import Client
from spice.adapters.task_errors import single_error
from spice.display import Display, Monitor
from spice.domain.display.surface import Pixels
from spice.domain.input_events import InputClient, InputEvent
from spice.errors import Error, ServerFailed, ServerStateError
from spice.server import Expiry, Server

log = logging.getLogger(__name__)

T = TypeVar("T")


class SyncDisplay:
    """The :class:`Display` methods as blocking calls from another thread."""

    def __init__(self, owner: ServerThread, display: Display) -> None:
        self._owner = owner
        self._display = display

    @property
    def id(self) -> int:
        return self._display.id

    @property
    def width(self) -> int:
        return self._display.width

    @property
    def height(self) -> int:
        return self._display.height

    @property
    def framebuffer(self) -> Pixels:
        """A copy of the current content, (h, w, 4) BGRX."""
        return self._display.framebuffer

    def update(
        self, x: int, y: int, image: Any, width: int | None = None, height: int | None = None
    ) -> None:
        self._owner.call(self._display.update, x, y, image, width, height)

    def fill(self, x: int, y: int, width: int, height: int, color: int) -> None:
        self._owner.call(self._display.fill, x, y, width, height, color)

    def copy_rect(self, src_x: int, src_y: int, x: int, y: int, width: int, height: int) -> None:
        self._owner.call(self._display.copy_rect, src_x, src_y, x, y, width, height)

    def scroll(self, x: int, y: int, width: int, height: int, dy: int, dx: int = 0) -> None:
        self._owner.call(self._display.scroll, x, y, width, height, dy, dx)

    @property
    def monitors(self) -> tuple[Monitor, ...]:
        return self._display.monitors

    def set_monitors(self, monitors: Iterable[Monitor]) -> None:
        self._owner.call(self._display.set_monitors, list(monitors))

    def resize(self, width: int, height: int, *, monitors: Iterable[Monitor] | None = None) -> None:
        self._owner.call(self._display.resize, width, height, monitors=monitors)

    def set_cursor(
        self,
        image: Any,
        hot_x: int = 0,
        hot_y: int = 0,
        *,
        x: int | None = None,
        y: int | None = None,
    ) -> None:
        self._owner.call(self._display.set_cursor, image, hot_x, hot_y, x=x, y=y)

    def move_cursor(self, x: int, y: int) -> None:
        self._owner.call(self._display.move_cursor, x, y)

    def hide_cursor(self) -> None:
        self._owner.call(self._display.hide_cursor)

    def sync(self) -> None:
        self._owner.call(self._display.sync)


class ServerThread:
    """``with ServerThread(server) as st: st.displays[0].fill(...); st.events.get()``.

    Input events are put on :attr:`events` (a bounded :class:`queue.Queue`; when it is full
    the oldest events are dropped rather than stalling the server). A client's first event is
    usually a :class:`spice.KeyboardModifiersEvent` (its lock keys); each event's ``client``
    says who sent it.
    """

    def __init__(self, server: Server, *, events: int = 1024) -> None:
        self.server = server
        self.events: queue.Queue[InputEvent] = queue.Queue(events)
        self._token: trio.lowlevel.TrioToken | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="trio-spice", daemon=True)
        self.displays: list[SyncDisplay] = [SyncDisplay(self, d) for d in server.displays]

    def _on_input(self, event: InputEvent) -> None:
        while True:
            try:
                self.events.put_nowait(event)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self.events.get_nowait()

    def _run(self) -> None:
        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            self.server.on_input(self._on_input)
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(self.server.serve)
                    self._started.set()
            except BaseExceptionGroup as group:
                raise single_error(group) from None

        try:
            trio.run(main)
        except BaseException as exc:  # reported to the calling thread
            self._error = exc
            if self._started.is_set():
                log.error("the server stopped on an error: %r", exc, exc_info=exc)
        finally:
            self._token = None
            self._started.set()

    @property
    def error(self) -> BaseException | None:
        """What stopped the server, if it failed."""
        return self._error

    def start(self) -> ServerThread:
        """Start serving; returns once the sockets are bound. A server that cannot start
        raises its error here (:class:`spice.ListenError`, ...)."""
        if self._thread.is_alive() or self._started.is_set():
            raise ServerStateError("this ServerThread was already started")
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            if isinstance(self._error, (Error, OSError, ValueError, TypeError)):
                raise self._error
            raise ServerFailed(f"the server failed to start: {self._error!r}") from self._error
        return self

    def _failed(self) -> ServerFailed:
        error = ServerFailed(f"the server stopped on an error: {self._error!r}")
        error.__cause__ = self._error
        return error

    @overload
    def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T: ...
    @overload
    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...
    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` (sync or async) in the server's thread and return its result; its
        exceptions are raised here."""
        if self._error is not None:
            raise self._failed()
        token = self._token
        if token is None:
            raise ServerStateError(
                "the server thread has stopped"
                if self._started.is_set()
                else "the server thread is not running (start it first)"
            )

        async def run() -> Any:
            result = fn(*args, **kwargs)
            if hasattr(result, "__await__"):
                result = await result
            return result

        try:
            return trio.from_thread.run(run, trio_token=token)
        except trio.RunFinishedError:
            self._thread.join(5)
            if self._error is not None:
                raise self._failed() from None
            raise ServerStateError("the server thread has stopped") from None

    @property
    def client_count(self) -> int:
        return self.server.client_count

    @property
    def clients(self) -> list[Client]:
        """The connected clients (see :attr:`spice.Server.clients`)."""
        return self.call(lambda: self.server.clients)

    def disconnect(self, client: InputClient) -> None:
        """Send ``client`` DISCONNECTING and close its channels."""
        self.call(client.disconnect)

    def set_keyboard_leds(self, modifiers: int) -> None:
        self.call(self.server.set_keyboard_leds, modifiers)

    def set_password(
        self,
        password: str | None,
        *,
        valid_for: Expiry = None,
        expires_at: datetime.datetime | None = None,
    ) -> None:
        self.call(self.server.set_password, password, valid_for=valid_for, expires_at=expires_at)

    def notify(self, message: str, *, severity: str = "info") -> None:
        self.call(self.server.notify, message, severity=severity)

    def disconnect_all(self) -> None:
        self.call(self.server.disconnect_all)

    def stop(self, timeout: float = 10.0) -> None:
        """Send clients DISCONNECTING, stop the server and wait for its thread. Raises
        :class:`spice.ServerFailed` if the server had stopped on an error."""
        token = self._token
        if token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run(self.server.stop, trio_token=token)
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._error is not None:
            raise self._failed()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self.stop()
        except ServerFailed:
            if exc is None:
                raise
