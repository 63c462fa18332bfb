"""An X display as a display source: a Trio task that mirrors the X server's root window
into a display and plays the clients' input back into the X server.

It speaks to the display through the same calls an application uses (:class:`DisplaySink`:
``update``, ``resize``, cursor calls), so the server has no special path for it. Every X call
runs in a worker thread (:class:`~adapters.sources.x11_screen.XScreen` blocks); the task
waits on the X connection's socket between reads, and reads at most ``max_fps`` times a
second, so a busy screen costs a bounded amount of work and a still one costs nothing.

When the X server goes away, the source logs one line, shows clients a screen that says so
and tries to connect again every ``retry`` seconds; the SPICE server keeps serving.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable

import trio

from spice.adapters.sources.notice import DisplaySink, message_screen
from spice.adapters.sources.x11_screen import LOST, Changes, XScreen, XUnsupported
from spice.domain.input_events import InputEvent

log = logging.getLogger(__name__)

#: Reads of the screen per second, at most. The cap only bites on a screen that changes
#: faster; at 30 (the rate of the animation in benchmarks/x11.py) reads and drawing beat
#: against each other: 21 ms median latency and 1 frame in 7 lost, against 5 ms and 1 in 25
#: at 60, for the same CPU.
MAX_FPS = 60.0
#: Pointer position polled this often while nothing else happens (XFixes has no motion event).
POINTER_POLL = 0.1
#: Seconds between attempts to reach a lost X server again.
RETRY = 2.0
#: Seconds a size asked of RandR may take to reach the display.
RESIZE_WAIT = 5.0


Notify = Callable[[str], Awaitable[None]]


class X11Source:
    """Mirror X display ``display_name`` (None: $DISPLAY) into ``sink``.

    ``events`` (the server's input events) are played into the X server unless it is None
    (view only). ``notify`` tells the clients a message (their main channel's NOTIFY).
    ``xauthority`` is the Xauthority file to use (else $XAUTHORITY's).
    ``size`` asks RandR to switch the X screen to that size, where the server lists it.
    """

    def __init__(
        self,
        display_name: str | None,
        sink: DisplaySink,
        *,
        xauthority: str | os.PathLike[str] | None = None,
        events: trio.abc.ReceiveChannel[InputEvent] | None = None,
        notify: Notify | None = None,
        size: tuple[int, int] | None = None,
        max_fps: float = MAX_FPS,
        retry: float = RETRY,
        use_shm: bool = True,
        use_damage: bool = True,
    ) -> None:
        self.display_name = display_name
        self.xauthority = xauthority
        self.sink = sink
        self.events = events
        self.notify = notify
        self.size = size
        self.min_interval = 1.0 / max_fps
        self.retry = retry
        self.use_shm = use_shm
        self.use_damage = use_damage
        self.screen: XScreen | None = None
        #: Pixels handed to the display, and reads, since start (for tests and benchmarks).
        self.pixels_sent = 0
        self.updates = 0
        self.connected = trio.Event()
        self._limiter = trio.CapacityLimiter(1)
        self._shown = (0, 0)  # the size last given to the display

    @property
    def shown_name(self) -> str:
        return self.display_name or "$DISPLAY"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; ``task_status.started()`` after the first connection attempt
        (which raises if the X server cannot be shown at all)."""
        async with trio.open_nursery() as nursery:
            if self.events is not None:
                nursery.start_soon(self._play_input, self.events)
            first = True
            while True:
                try:
                    screen = await self._connect()
                except LOST as exc:
                    if first:
                        raise
                    log.debug("X display %s still unreachable: %s", self.shown_name, exc)
                    await trio.sleep(self.retry)
                    continue
                if first:
                    task_status.started()
                    first = False
                else:
                    log.info("X display %s is back", self.shown_name)
                try:
                    await self._mirror(screen)
                except LOST as exc:
                    log.warning(
                        "X display %s went away (%s); showing clients a notice and "
                        "retrying every %g s",
                        self.shown_name,
                        exc or type(exc).__name__,
                        self.retry,
                    )
                    await self._lost()
                finally:
                    self.screen = None
                    self.connected = trio.Event()
                    await trio.to_thread.run_sync(screen.close, limiter=self._limiter)
                await trio.sleep(self.retry)

    async def _connect(self) -> XScreen:
        screen = await trio.to_thread.run_sync(
            lambda: XScreen(
                self.display_name,
                xauthority=self.xauthority,
                use_shm=self.use_shm,
                use_damage=self.use_damage,
            ),
            limiter=self._limiter,
        )
        how = ", ".join(
            f"{name} {'yes' if on else 'no'}"
            for name, on in (
                ("MIT-SHM", screen.shm),
                ("DAMAGE", screen.damage),
                ("XFIXES", screen.xfixes),
                ("XTEST", screen.xtest),
                ("RANDR", screen.randr),
            )
        )
        log.info("X display %s: %dx%d (%s)", self.shown_name, screen.width, screen.height, how)
        if self.size is not None and self.size != (screen.width, screen.height):
            done = await trio.to_thread.run_sync(screen.set_size, *self.size, limiter=self._limiter)
            if not done:
                log.info(
                    "X display %s does not offer %dx%d through RandR; keeping %dx%d",
                    self.shown_name,
                    *self.size,
                    screen.width,
                    screen.height,
                )
        return screen

    async def _mirror(self, screen: XScreen) -> None:
        if (self.sink.width, self.sink.height) != (screen.width, screen.height):
            await self.sink.resize(screen.width, screen.height)
        self._shown = (screen.width, screen.height)
        self.screen = screen
        self.connected.set()
        fd = screen.fileno()
        last = -1e9
        x_errors = 0
        while True:
            wait = max(0.0, last + self.min_interval - trio.current_time())
            if wait:
                await trio.sleep(wait)
            if not screen.pending():
                poll = POINTER_POLL if screen.damage else self.min_interval * 3
                with trio.move_on_after(poll):
                    await trio.lowlevel.wait_readable(fd)
            last = trio.current_time()
            try:
                changes = await trio.to_thread.run_sync(screen.collect, limiter=self._limiter)
            except LOST as exc:
                if not await trio.to_thread.run_sync(screen.alive, limiter=self._limiter):
                    raise
                # An error reply (a read racing a resize, say): the connection is fine.
                if not x_errors:
                    log.info(
                        "X display %s: %r; reading the whole screen again", self.shown_name, exc
                    )
                x_errors += 1
                screen.full_refresh()
                if self._shown != (screen.width, screen.height):  # a resize read, then lost
                    self._shown = (screen.width, screen.height)
                    await self.sink.resize(*self._shown)
                continue
            await self._apply(changes)

    async def _apply(self, changes: Changes) -> None:
        sink = self.sink
        if changes.size is not None:
            self._shown = changes.size
            await sink.resize(*changes.size)
        for box, pixels in changes.tiles:
            await sink.update(box.x, box.y, pixels)
            self.pixels_sent += box.area
            self.updates += 1
        if changes.cursor is not None:
            cur = changes.cursor
            await sink.set_cursor(cur.bgra, cur.hot_x, cur.hot_y)
        if changes.pointer is not None:
            await sink.move_cursor(*changes.pointer)

    async def _lost(self) -> None:
        text = f"The X display {self.shown_name} has closed. Waiting for it to come back..."
        await self.sink.hide_cursor()
        await self.sink.update(0, 0, message_screen(self.sink.width, self.sink.height, text))
        if self.notify is not None:
            await self.notify(text)

    async def _play_input(self, events: trio.abc.ReceiveChannel[InputEvent]) -> None:
        complained: set[str] = set()
        with contextlib.suppress(trio.ClosedResourceError):
            await self._play(events, complained)

    async def _play(
        self, events: trio.abc.ReceiveChannel[InputEvent], complained: set[str]
    ) -> None:
        async for event in events:
            screen = self.screen
            if screen is None:
                continue  # no X server: the input has nowhere to go
            try:
                complaint = await trio.to_thread.run_sync(
                    screen.inject, event, limiter=self._limiter
                )
            except LOST:
                continue  # the capture loop notices and says so
            if complaint is not None and complaint not in complained:
                complained.add(complaint)
                log.info("X display %s: %s", self.shown_name, complaint)

    async def request_size(self, width: int, height: int) -> bool:
        """Ask the X server for a screen of ``width`` x ``height`` (a client's resize):
        True once the display has that size, False when RandR refuses or there is no X
        server (the size stays)."""
        screen = self.screen
        if screen is None:
            return False
        try:
            done = await trio.to_thread.run_sync(
                screen.set_size, width, height, limiter=self._limiter
            )
        except LOST as exc:
            log.info(
                "X display %s: resize to %dx%d failed: %r", self.shown_name, width, height, exc
            )
            return False
        if not done:
            log.info("X display %s: %dx%d refused", self.shown_name, width, height)
            return False
        # The display takes the new size when the capture loop applies it (the loop notices
        # it at its next read); its width and height follow a moment later.
        with trio.move_on_after(RESIZE_WAIT):
            while (self.sink.width, self.sink.height) != (width, height):
                await trio.sleep(0.02)
            return True
        return False

    async def release_input(self) -> None:
        """Release keys and buttons held down by clients (call when the last one leaves)."""
        screen = self.screen
        if screen is not None:
            with contextlib.suppress(*LOST):
                await trio.to_thread.run_sync(screen.release_all, limiter=self._limiter)


__all__ = ["DisplaySink", "X11Source", "XUnsupported", "message_screen"]
