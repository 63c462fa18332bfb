"""The agent over Trio: each client's :class:`AgentMachine` on its main channel, and the one
place (:class:`AgentHub`) where the application's clipboard, resize handler and received files
meet every client.

:class:`SessionAgent` follows the contract in :mod:`spice.domain.agent.machine`'s docstring: the
main channel's reader hands it AGENT_START / AGENT_DATA / AGENT_TOKEN, it drains the machine's
events and queues the machine's output on the main channel; an
:class:`~spice.domain.agent.errors.AgentProtocolError` propagates to the main channel's reader,
which logs it in one line and closes that client (others are untouched). Received files go to a
temporary ``.NAME.XXXXXX.part`` beside their final place and are renamed only when complete,
so no partial file ever carries the final name; open transfers' temporary files are deleted
when the client goes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import IO

import attrs
import trio

from spice.adapters.connection import ClientGone, Connection, Wakeup, ping_stamp
from spice.domain.agent import events as ev
from spice.domain.agent.app_events import (
    AgentAppEvent,
    ClipboardCleared,
    ClipboardOffered,
    DisplayResizeRequested,
    FileReceived,
    FileTransferAborted,
    FileTransferProgress,
)
from spice.domain.agent.machine import AgentConfig, AgentMachine
from spice.domain.agent.messages import FileXferStatus
from spice.domain.link import NEED_DATA
from spice.domain.messages.main import AgentStart, ClientAgentData, ClientAgentToken

log = logging.getLogger(__name__)

#: Sizes a resize request may ask for (as the command's --size).
MIN_SIZE, MAX_SIZE = 16, 8192
#: Events kept for an application that reads ``agent_events`` slowly; later ones are dropped.
EVENT_QUEUE = 64
#: Progress is reported each time this many more bytes have arrived.
PROGRESS_STEP = 1 << 20
#: How long the application waits for a client's clipboard contents.
CLIPBOARD_TIMEOUT = 10.0
#: How long the application's resize handler may take.
RESIZE_TIMEOUT = 10.0
#: A file transfer whose client has sent nothing for this long (s) gets one PING on the main
#: channel (see :meth:`SessionAgent.wake_quiet_transfers`).
WAKE_QUIET_AFTER = 0.25

#: (display id, width, height) -> whether the display now has that size.
ResizeHandler = Callable[[int, int, int], Awaitable[bool]]
AgentMessage = AgentStart | ClientAgentData | ClientAgentToken


class AgentHub:
    """The application's side of every client's agent (one per server)."""

    def __init__(
        self,
        config: AgentConfig,
        file_dir: Path | None,
        resize: ResizeHandler,
    ) -> None:
        self.config = config
        self.file_dir = file_dir
        self.resize_handler = resize
        self.agents: list[SessionAgent] = []
        #: What the application put on each selection, by ClipboardType.
        self.clipboard: dict[int, dict[int, bytes]] = {}
        #: The client that owns each selection, when a client does.
        self.owners: dict[int, SessionAgent] = {}
        self._subscribers: list[trio.MemorySendChannel[AgentAppEvent]] = []
        self._read_lock = trio.Lock()
        self.dropped_events = 0

    # -- events to the application ----------------------------------------------------------
    def subscribe(self, size: int = EVENT_QUEUE) -> trio.MemoryReceiveChannel[AgentAppEvent]:
        send, receive = trio.open_memory_channel[AgentAppEvent](size)
        self._subscribers.append(send)
        return receive

    def publish(self, event: AgentAppEvent) -> None:
        """Never waits: an application that does not read loses events, clients lose nothing."""
        for send in list(self._subscribers):
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                self.dropped_events += 1
                if self.dropped_events == 1:
                    log.warning("agent events dropped: the application does not read them")
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(send)

    def close(self) -> None:
        for send in self._subscribers:
            send.close()
        self._subscribers.clear()

    # -- the application's clipboard ----------------------------------------------------------
    async def set_clipboard(self, contents: Mapping[int, bytes], selection: int) -> None:
        if not self.config.copy_paste:
            return
        # Validate once, before any client hears of it.
        AgentMachine(self.config).set_clipboard(contents, selection)
        self.clipboard[selection] = {int(t): bytes(d) for t, d in contents.items()}
        self.owners.pop(selection, None)
        for agent in list(self.agents):
            agent.machine.set_clipboard(contents, selection)
            await agent.push()

    async def release_clipboard(self, selection: int) -> None:
        if self.clipboard.pop(selection, None) is None:
            return
        for agent in list(self.agents):
            agent.machine.release_clipboard(selection)
            await agent.push()

    def offered(self, selection: int) -> tuple[int, ...]:
        """What the client owning ``selection`` offers (empty when no client does)."""
        owner = self.owners.get(selection)
        return owner.offers.get(selection, ()) if owner is not None else ()

    async def read_clipboard(
        self, selection: int, type_: int, timeout: float = CLIPBOARD_TIMEOUT
    ) -> bytes | None:
        """Ask the client that owns ``selection`` for ``type_``; None when no client offers
        it, it answered with nothing, or it did not answer in time."""
        async with self._read_lock:
            owner = self.owners.get(selection)
            if owner is None:
                return None
            return await owner.read_clipboard(selection, type_, timeout)

    def client_grabbed(self, agent: SessionAgent, selection: int) -> None:
        """A client copied: the application's content on that selection is gone, for every
        client (each machine forgets it on its own client's grab; tell the others)."""
        self.owners[selection] = agent
        if self.clipboard.pop(selection, None) is not None:
            for other in self.agents:
                if other is not agent:
                    other.machine.release_clipboard(selection)
                    other.queue()


@attrs.define
class _Incoming:
    name: str
    size: int
    temp: Path
    file: IO[bytes]
    reported: int = 0


class SessionAgent:
    """One client's agent, run by its main channel's reader."""

    def __init__(
        self, hub: AgentHub, conn: Connection, label: str, *, view_only: bool = False
    ) -> None:
        self.hub = hub
        self.conn = conn
        self.label = label
        #: A view-only client sees, and nothing more: no clipboard, files or resizing.
        self.view_only = view_only
        config = hub.config
        if hub.file_dir is None and config.file_transfer:
            config = attrs.evolve(config, file_transfer=False)
        if view_only:
            config = attrs.evolve(config, copy_paste=False, file_transfer=False)
        self.machine = AgentMachine(config)
        #: What this client offers per selection.
        self.offers: dict[int, tuple[int, ...]] = {}
        self._answers: dict[int, trio.MemorySendChannel[bytes | None]] = {}
        self._files: dict[int, _Incoming] = {}
        #: When the client last sent agent data, and the time of that data a PING followed.
        self._heard = 0.0
        self._woken_for: float | None = None
        self._file_opened = Wakeup()
        for selection, contents in hub.clipboard.items():
            self.machine.set_clipboard(contents, selection)

    # -- wiring ---------------------------------------------------------------------------
    def queue(self) -> None:
        """Move what the machine has to say onto the main channel's send queue."""
        for msg in self.machine.data_to_send():
            self.conn.machine.send(msg)

    async def push(self) -> None:
        """Queue and write now (from a task other than the main channel's reader: an
        application's call). A client that has gone is the main channel's reader's to notice
        and log; the application's call goes on as if that client had not answered."""
        self.queue()
        with contextlib.suppress(ClientGone):
            await self.conn.flush()

    async def handle(self, msg: AgentMessage) -> None:
        """A client agent message, from the main channel's reader (which writes what this
        queues when it returns). AgentProtocolError propagates: the reader closes the client."""
        if isinstance(msg, ClientAgentData):
            self._heard = trio.current_time()
        self.machine.handle(msg)
        while (event := self.machine.next_event()) is not NEED_DATA:
            await self._on_event(event)
        self.queue()

    async def wake_quiet_transfers(self) -> None:
        """spice-gtk queues a cancelled transfer's CANCELLED status without waking its main
        channel (channel-main.c wakes it before it completes the task), so the status leaves
        only with the channel's next wake-up: the next message we send it. The tokens for its
        last data went back as soon as that message ended, and the next keepalive PING may be
        seconds away. So while a transfer is open and the client has sent nothing for
        ``WAKE_QUIET_AFTER``, one PING wakes it: it answers, and sends what it had queued."""
        while True:
            await self._file_opened.wait()
            while self._files:
                quiet = trio.current_time() - self._heard
                if quiet < WAKE_QUIET_AFTER:
                    await trio.sleep(WAKE_QUIET_AFTER - quiet)
                    continue
                if self._woken_for != self._heard:  # once per silence
                    self._woken_for = self._heard
                    self.conn.machine.ping(ping_stamp())
                    with contextlib.suppress(ClientGone):
                        await self.conn.flush()
                await trio.sleep(WAKE_QUIET_AFTER)

    async def close(self) -> None:
        """The client is gone: answer waiting readers, delete every unfinished file."""
        for send in self._answers.values():
            send.close()
        self._answers.clear()
        for selection, owner in list(self.hub.owners.items()):
            if owner is self:
                del self.hub.owners[selection]
        for xfer_id in list(self._files):
            await self._discard(xfer_id)

    # -- events ---------------------------------------------------------------------------
    async def _on_event(self, event: ev.AgentEvent) -> None:
        if isinstance(event, ev.ClipboardGrabbed):
            self.offers[event.selection] = event.types
            self._answer(event.selection, None)
            self.hub.client_grabbed(self, event.selection)
            self.hub.publish(ClipboardOffered(event.selection, event.types))
        elif isinstance(event, ev.ClipboardReleased):
            self.offers.pop(event.selection, None)
            self._answer(event.selection, None)
            if self.hub.owners.get(event.selection) is self:
                del self.hub.owners[event.selection]
                self.hub.publish(ClipboardCleared(event.selection))
        elif isinstance(event, ev.ClipboardData):
            self._answer(event.selection, event.data if event.type else None)
        elif isinstance(event, ev.ClipboardRefused):
            log.warning("%s: clipboard refused: %s", self.label, event.reason)
            if event.selection is None:
                for selection in list(self._answers):
                    self._answer(selection, None)
        elif isinstance(event, ev.ClipboardRequested):
            # Only set_clipboard is used, so the machine answers pastes itself; anything
            # else gets an empty answer rather than a client left waiting.
            self.machine.send_clipboard(event.selection, 0, b"")
        elif isinstance(event, ev.ResizeRequest):
            await self._on_resize(event)
        elif isinstance(event, ev.FileTransferStarted):
            await self._on_file_start(event)
        elif isinstance(event, ev.FileTransferData):
            await self._on_file_data(event)
        elif isinstance(event, ev.FileTransferCompleted):
            await self._on_file_complete(event)
        elif isinstance(event, ev.FileTransferFailed):
            await self._abort(event.id, event.reason, logging.WARNING)
        elif isinstance(event, ev.FileTransferCancelled):
            await self._abort(event.id, "cancelled by the client", logging.INFO)

    # -- clipboard ------------------------------------------------------------------------
    def _answer(self, selection: int, data: bytes | None) -> None:
        send = self._answers.pop(selection, None)
        if send is not None:
            send.send_nowait(data)
            send.close()

    async def read_clipboard(self, selection: int, type_: int, timeout: float) -> bytes | None:
        send, receive = trio.open_memory_channel[bytes | None](1)
        if not self.machine.request_clipboard(selection, type_):
            return None
        self._answer(selection, None)
        self._answers[selection] = send
        await self.push()
        with trio.move_on_after(timeout):
            try:
                return await receive.receive()
            except trio.EndOfChannel:
                return None
        self._answers.pop(selection, None)
        log.info("%s: no clipboard answer in %.0f s", self.label, timeout)
        return None

    # -- resize ---------------------------------------------------------------------------
    async def _on_resize(self, event: ev.ResizeRequest) -> None:
        if self.view_only:
            log.info("%s: resize refused to a view-only client", self.label)
            self.machine.refuse_resize(event.request_id)
            return
        accepted = bool(event.monitors)
        for display_id, mon in enumerate(event.monitors):
            if not (MIN_SIZE <= mon.width <= MAX_SIZE and MIN_SIZE <= mon.height <= MAX_SIZE):
                log.info("%s: resize to %dx%d refused", self.label, mon.width, mon.height)
                accepted = False
                self.hub.publish(DisplayResizeRequested(display_id, mon.width, mon.height, False))
                continue
            ok = False
            with trio.move_on_after(RESIZE_TIMEOUT):
                try:
                    ok = await self.hub.resize_handler(display_id, mon.width, mon.height)
                except Exception:
                    log.exception("%s: the resize handler failed", self.label)
            accepted = accepted and ok
            self.hub.publish(DisplayResizeRequested(display_id, mon.width, mon.height, ok))
        if accepted:
            self.machine.accept_resize(event.request_id)
        else:
            self.machine.refuse_resize(event.request_id)

    # -- file transfer --------------------------------------------------------------------
    async def _on_file_start(self, event: ev.FileTransferStarted) -> None:
        directory = self.hub.file_dir
        assert directory is not None  # file transfer is announced disabled without one
        try:
            free = (await trio.to_thread.run_sync(shutil.disk_usage, directory)).free
            if event.size > free:
                log.info("%s: file %r of %d bytes: no room", self.label, event.name, event.size)
                self.machine.refuse_transfer(
                    event.id, FileXferStatus.NOT_ENOUGH_SPACE, free_space=free
                )
                return
            fd, temp = await trio.to_thread.run_sync(
                lambda: tempfile.mkstemp(prefix=f".{event.name}.", suffix=".part", dir=directory)
            )
        except OSError as exc:
            log.warning("%s: cannot receive %r: %s", self.label, event.name, exc)
            self.machine.refuse_transfer(event.id)
            return
        self._files[event.id] = _Incoming(event.name, event.size, Path(temp), os.fdopen(fd, "wb"))
        log.info("%s: receiving %r (%d bytes)", self.label, event.name, event.size)
        self.machine.accept_transfer(event.id)
        self._file_opened.set()

    async def _on_file_data(self, event: ev.FileTransferData) -> None:
        incoming = self._files.get(event.id)
        if incoming is None:
            return
        try:
            await trio.to_thread.run_sync(incoming.file.write, event.data)
        except OSError as exc:
            self.machine.cancel_transfer(event.id)  # a FileTransferFailed follows
            log.warning("%s: writing %r failed: %s", self.label, incoming.name, exc)
            return
        if event.received - incoming.reported >= PROGRESS_STEP or event.received == event.size:
            incoming.reported = event.received
            self.hub.publish(FileTransferProgress(incoming.name, event.received, event.size))

    async def _on_file_complete(self, event: ev.FileTransferCompleted) -> None:
        incoming = self._files.pop(event.id, None)
        if incoming is None:
            self.machine.finish_transfer(event.id, ok=False)
            return
        try:
            final = await trio.to_thread.run_sync(_place, incoming)
        except OSError as exc:
            log.warning("%s: cannot place %r: %s", self.label, incoming.name, exc)
            await trio.to_thread.run_sync(_delete, incoming)
            self.machine.finish_transfer(event.id, ok=False)
            self.hub.publish(FileTransferAborted(incoming.name, str(exc)))
            return
        log.info("%s: received %s (%d bytes)", self.label, final, incoming.size)
        self.machine.finish_transfer(event.id, ok=True)
        self.hub.publish(FileReceived(final.name, str(final), incoming.size))

    async def _abort(self, xfer_id: int, reason: str, level: int) -> None:
        incoming = self._files.get(xfer_id)
        if incoming is None:
            return
        log.log(
            level, "%s: transfer of %r ended without a file: %s", self.label, incoming.name, reason
        )
        await self._discard(xfer_id)
        self.hub.publish(FileTransferAborted(incoming.name, reason))

    async def _discard(self, xfer_id: int) -> None:
        incoming = self._files.pop(xfer_id, None)
        if incoming is not None:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_delete, incoming)


def _place(incoming: _Incoming) -> Path:
    """Close the temporary file and give it its final name without replacing anything: the
    name itself if free, else ``stem (1).ext``... (a hard link fails if the name is taken)."""
    incoming.file.flush()
    os.fsync(incoming.file.fileno())
    incoming.file.close()
    directory = incoming.temp.parent
    stem, suffix = os.path.splitext(incoming.name)
    for n in range(1000):
        final = directory / (incoming.name if n == 0 else f"{stem} ({n}){suffix}")
        try:
            os.link(incoming.temp, final)
        except FileExistsError:
            continue
        os.unlink(incoming.temp)
        return final
    raise OSError(f"no free name for {incoming.name}")


def _delete(incoming: _Incoming) -> None:
    incoming.file.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(incoming.temp)
