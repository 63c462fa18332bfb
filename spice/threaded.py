"""Running the server from a plain (non-Trio) program: the server gets its own thread with a
Trio loop, and every call crosses over with ``trio.from_thread``."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

import trio

from spice.display import Display
from spice.domain.input_events import InputEvent
from spice.server import Server


class SyncDisplay:
    """The :class:`Display` methods as blocking calls from another thread."""

    def __init__(self, owner: ServerThread, display: Display) -> None:
        self._owner = owner
        self._display = display

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._display, name)
        if not callable(method):
            return method  # type: ignore[no-any-return]

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._owner.call(method, *args, **kwargs)

        return call

    @property
    def width(self) -> int:
        return self._display.width

    @property
    def height(self) -> int:
        return self._display.height


class ServerThread:
    """``with ServerThread(server) as st: st.displays[0].fill(...); st.events.get()``.

    Input events are put on :attr:`events` (a bounded :class:`queue.Queue`; when it is full
    the oldest events are dropped rather than stalling the server).
    """

    def __init__(self, server: Server, *, events: int = 1024) -> None:
        self.server = server
        self.events: queue.Queue[InputEvent] = queue.Queue(events)
        self._token: trio.lowlevel.TrioToken | None = None
        self._started = threading.Event()
        self._stop: trio.CancelScope | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="trio-spice", daemon=True)
        self.displays = [SyncDisplay(self, d) for d in server.displays]

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
            with trio.CancelScope() as scope:
                self._stop = scope
                async with trio.open_nursery() as nursery:
                    await nursery.start(self.server.serve)
                    self._started.set()

        try:
            trio.run(main)
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
        finally:
            self._started.set()

    def start(self) -> ServerThread:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise RuntimeError("the server failed to start") from self._error
        return self

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` (sync or async) in the server's thread and return its result."""
        assert self._token is not None, "not started"

        async def run() -> Any:
            result = fn(*args, **kwargs)
            if hasattr(result, "__await__"):
                result = await result
            return result

        return trio.from_thread.run(run, trio_token=self._token)

    @property
    def client_count(self) -> int:
        return self.server.client_count

    def set_keyboard_leds(self, modifiers: int) -> None:
        self.call(self.server.set_keyboard_leds, modifiers)

    def disconnect_all(self) -> None:
        self.call(self.server.disconnect_all)

    def stop(self) -> None:
        if self._token is not None and self._stop is not None:
            trio.from_thread.run_sync(self._stop.cancel, trio_token=self._token)
        self._thread.join(10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
