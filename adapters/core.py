"""The server core (the C server's ``reds``): displays, the ring of client sessions, input
fan-out to the application and the handling of every accepted connection.

Transports hand each accepted stream to :meth:`SpiceCore.handle_connection`, which runs the
link stage and then either opens a client session (main channel) or joins an existing one.
Whatever a single client does, its failure is logged and contained: the listener keeps going.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import trio

from spice.adapters.agent import AgentHub
from spice.adapters.channels.playback import PlaybackHub
from spice.adapters.channels.port import PortHub
from spice.adapters.channels.record import RecordHub
from spice.adapters.config import ServerConfig
from spice.adapters.display_worker import DisplayWorker, ResizeCmd
from spice.adapters.link import LinkPolicy, run_link
from spice.adapters.session import Client, ClientSession, Transport, new_session_id
from spice.adapters.tcp import log_refusal, peer_address
from spice.adapters.ticket_keys import KeyPool
from spice.adapters.websocket import WebSocketStream
from spice.domain.admission import Admission
from spice.domain.codecs.select import warm_up as warm_up_codecs
from spice.domain.enums import ChannelType, LinkError, NotifySeverity
from spice.domain.geometry import Box
from spice.domain.input_events import InputEvent
from spice.domain.link import LinkRequest
from spice.domain.sasl import SaslUser
from spice.domain.ticket import TicketVerdict

log = logging.getLogger(__name__)

INPUT_QUEUE = 256


class SpiceCore:
    def __init__(self, config: ServerConfig | None = None, keys: KeyPool | None = None) -> None:
        self.config = config or ServerConfig()
        #: Fresh ticket keys, one per link.
        self.keys = keys or KeyPool()
        #: Connection counts and link pacing per address (the front doors count connections).
        self.admission = Admission(self.config.limits)
        #: One ticket check at a time per address, so that parallel guesses wait their turn.
        self._ticket_locks: dict[str, trio.Lock] = {}
        self.displays: list[DisplayWorker] = []
        self.sessions: dict[int, ClientSession] = {}
        self.keyboard_leds = 0
        self._subscribers: list[trio.MemorySendChannel[InputEvent]] = []
        self._callbacks: list[Callable[[InputEvent], None]] = []
        self._nursery: trio.Nursery | None = None
        #: Whether :meth:`run` has started (its display workers' queues are then closed for
        #: good once it ends).
        self.ran = False
        self._sessions_changed = trio.Event()
        self._epoch = time.monotonic()
        #: Set once the compiled codecs are loaded; until then images go as LZ4 or BITMAP.
        self.codecs_warm = trio.Event()
        #: The application's side of every client's agent (clipboard, resize, files).
        self.agent = AgentHub(self.config.agent, self.config.file_transfer_dir, self.resize_display)
        #: The application's side of every playback and record client.
        self.playback = PlaybackHub(self.mm_time, self.config.playback_compression)
        self.playback.on_start = self._mm_time_to_clients
        self.record = RecordHub()
        #: The named ports the application opened (port channels, by channel id).
        self.ports = PortHub()

    # -- displays ----------------------------------------------------------------------------
    def add_display(self, width: int, height: int, heads: tuple[Box, ...] = ()) -> DisplayWorker:
        """A display of that size; ``heads``: its monitors, checked (empty: one, all of it)."""
        worker = DisplayWorker(
            len(self.displays), width, height, streaming_video=self.config.streaming_video
        )
        worker.heads = heads
        self.displays.append(worker)
        if self._nursery is not None:
            self._nursery.start_soon(worker.run)
        return worker

    @property
    def running(self) -> bool:
        """Whether :meth:`run` is running (its display workers take commands)."""
        return self._nursery is not None

    async def resize_display(self, display_id: int, width: int, height: int) -> bool:
        """The default answer to a client's resize request: give the display that size."""
        if display_id >= len(self.displays):
            return False
        if len(self.displays[display_id].heads) > 1:
            # The client's windows each ask for a size; a layout of several monitors on one
            # primary is the application's to change (Display.resize with monitors).
            log.info("display %d has several monitors: a client's resize is refused", display_id)
            return False
        await self.displays[display_id].submit(ResizeCmd(width, height))
        return True

    def channel_list(self) -> list[tuple[int, int]]:
        channels = [(ChannelType.DISPLAY.value, d.display_id) for d in self.displays]
        channels.append((ChannelType.INPUTS.value, 0))
        channels += [(ChannelType.CURSOR.value, d.display_id) for d in self.displays]
        if self.config.audio:
            channels += [(ChannelType.PLAYBACK.value, 0), (ChannelType.RECORD.value, 0)]
        channels += [(ChannelType.PORT.value, i) for i in self.ports.channel_ids()]
        return channels

    def channels_for(self, transport: Transport) -> list[tuple[int, int]]:
        """The channels a session on that transport is offered (and may link). A WebSocket
        session is spice-html5's, which has no record channel: it reports a listed one as an
        error on its page (and opens a connection to it that does nothing), so it is not
        offered there."""
        channels = self.channel_list()
        if transport == "websocket":
            channels = [c for c in channels if c[0] != ChannelType.RECORD.value]
        return channels

    def mm_time(self) -> int:
        """The multimedia clock in ms, sent 400 ms behind as the reference server does."""
        return int((time.monotonic() - self._epoch) * 1000 + 100_000 - 400) & 0xFFFFFFFF

    def _mm_time_to_clients(self, mm_time: int) -> None:
        """Keep each client's multimedia clock in step with the audio stamps: the
        MULTI_MEDIA_TIME the reference server sends when its clock is adjusted."""
        for session in self.sessions.values():
            session.push_mm_time(mm_time)

    # -- running -----------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the display workers; connections are handled in this nursery too."""
        self.ran = True
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.keys.run)
            for worker in self.displays:
                nursery.start_soon(worker.run)
            nursery.start_soon(self._warm_codecs)
            task_status.started()
            try:
                await trio.sleep(math.inf)
            finally:
                self._nursery = None
                for send in self._subscribers:
                    send.close()
                self.agent.close()
                self.record.close()

    async def _warm_codecs(self) -> None:
        """Load the numba codecs in a thread (compiling them takes tens of seconds the first
        time on a machine; numba's cache makes later starts take milliseconds); clients are
        served meanwhile, with LZ4 or BITMAP images."""
        if not self.codecs_warm.is_set():
            started = time.monotonic()
            # Abandoned if the server stops first: it only loads code, and a stop (Ctrl-C)
            # must not wait for a first-run compile.
            await trio.to_thread.run_sync(warm_up_codecs, abandon_on_cancel=True)
            self.codecs_warm.set()
            log.info("image codecs ready in %.1f s", time.monotonic() - started)
        for session in self.sessions.values():
            for machine in session.displays:
                machine.codecs_warm = True

    def add_client(self, stream: trio.abc.Stream, peer: str, *, secure: bool = False) -> None:
        """Serve an already-accepted connection (like spice_server_add_client)."""
        if self._nursery is None:
            raise RuntimeError("the server is not running")
        self._nursery.start_soon(self.handle_connection, stream, peer, secure)

    async def handle_connection(
        self, stream: trio.abc.Stream, peer: str, secure: bool = False
    ) -> None:
        try:
            await self._handle_connection(stream, peer, secure)
        except Exception:
            log.exception("%s: internal error while serving this client; closing it", peer)
        finally:
            # Close here whatever happened: trio's serve_listeners would close a TCP stream
            # anyway, but a stream from add_client (TLS, WebSocket, embedding) has no other owner.
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await stream.aclose()

    async def _handle_connection(self, stream: trio.abc.Stream, peer: str, secure: bool) -> None:
        """Link and serve; returns when the connection's channel (if any) has ended."""
        address = peer_address(peer)
        verdict = self.admission.link_attempt(address, trio.current_time())
        if verdict is not None:
            log_refusal(log, peer, verdict)
            return
        claimed: list[tuple[ClientSession, tuple[int, int]]] = []
        policy = LinkPolicy(
            key=self.keys.take,
            ticket=self.config.ticket,
            secure=secure,
            admit=partial(self._admit, claimed=claimed),
            security=self._security,
            timeout=self.config.link_timeout,
            check_ticket=partial(self._check_ticket, address),
            sasl_users=self._sasl_users if self.config.sasl_users is not None else None,
            sasl_mechanisms=self.config.sasl_mechanisms,
        )
        try:
            await self._link_and_serve(stream, peer, policy)
        finally:
            for session, channel in claimed:
                session.claimed.discard(channel)

    async def _link_and_serve(self, stream: trio.abc.Stream, peer: str, policy: LinkPolicy) -> None:
        linked = await run_link(stream, policy, peer)
        if linked is None:
            return
        request = linked.request
        secure = policy.secure
        if request.channel_type == ChannelType.MAIN:
            transport: Transport = (
                "websocket" if isinstance(stream, WebSocketStream) else "tls" if secure else "tcp"
            )
            session = ClientSession(
                self,
                new_session_id(self.sessions),
                peer,
                transport=transport,
                secure=secure,
                view_only=linked.view_only,
                user=linked.user,
            )
            self.sessions[session.id] = session
            self._notify_sessions()
            try:
                await session.run_main(stream, linked)
            finally:
                del self.sessions[session.id]
                self._notify_sessions()
            return
        joined = self.sessions.get(request.connection_id)
        finished = joined.attach(stream, linked) if joined is not None else None
        if finished is None:
            log.info(
                "%s: session %08x ended before its channel linked", peer, request.connection_id
            )
            return
        # The session's nursery runs the channel; this task (which closes the stream when it
        # returns) waits for it, so cancelling the session ends both.
        await finished.wait()

    def _sasl_users(self) -> dict[str, SaslUser]:
        # Read at each link, so that a reloaded users file applies to the next login.
        return self.config.sasl_users or {}

    async def _check_ticket(
        self, address: str, check: Callable[[], TicketVerdict]
    ) -> TicketVerdict:
        """Run a ticket check for ``address``, after the delay its failed ones earned; one
        at a time per address, so that parallel connections do not guess faster."""
        lock = self._ticket_locks.setdefault(address, trio.Lock())
        try:
            async with lock:
                delay = self.admission.ticket_delay(address, trio.current_time())
                if delay:
                    await trio.sleep(delay)
                verdict = check()
                self.admission.ticket_checked(
                    address, verdict.error != LinkError.PERMISSION_DENIED, trio.current_time()
                )
                return verdict
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                self._ticket_locks.pop(address, None)

    def _admit(
        self,
        request: LinkRequest,
        user: str | None,
        *,
        claimed: list[tuple[ClientSession, tuple[int, int]]],
    ) -> LinkError:
        kind = request.channel_type
        if kind == ChannelType.MAIN:
            return LinkError.OK
        session = self.sessions.get(request.connection_id)
        if session is None:
            return LinkError.BAD_CONNECTION_ID
        if session.user != user:
            # Every channel of a session logs in as the user its main channel did.
            log.warning(
                "%s: %s channel logged in as %r, not as the session's user",
                session.label,
                _kind_name(kind),
                user,
            )
            return LinkError.PERMISSION_DENIED
        channel = (kind, request.channel_id)
        if channel not in self.channels_for(session.transport):
            return LinkError.CHANNEL_NOT_AVAILABLE
        if channel in session.claimed:
            # As the C server: one connection per channel type and id per client (each
            # display connection costs megabytes).
            log.warning(
                "%s: a second %s:%d channel refused", session.label, _kind_name(kind), channel[1]
            )
            return LinkError.CHANNEL_NOT_AVAILABLE
        session.claimed.add(channel)
        claimed.append((session, channel))
        return LinkError.OK

    def _security(self, request: LinkRequest, secure: bool) -> LinkError:
        try:
            kind = ChannelType(request.channel_type)
        except ValueError:
            return LinkError.OK
        if kind in self.config.secure_channels and not secure:
            return LinkError.NEED_SECURED
        if kind in self.config.plaintext_channels and secure:
            return LinkError.NEED_UNSECURED
        return LinkError.OK

    # -- sessions ----------------------------------------------------------------------------
    def _notify_sessions(self) -> None:
        self._sessions_changed.set()
        self._sessions_changed = trio.Event()

    async def wait_sessions_changed(self) -> None:
        await self._sessions_changed.wait()

    @property
    def clients(self) -> list[Client]:
        """The connected clients, in the order they connected."""
        return [session.handle for session in self.sessions.values()]

    async def disconnect_all(self, reason: str = "disconnected by the server") -> int:
        """DISCONNECTING to every client at once (each bounded to a second); returns how many
        clients there were."""
        sessions = list(self.sessions.values())
        async with trio.open_nursery() as nursery:
            for session in sessions:
                nursery.start_soon(session.disconnect, reason)
        return len(sessions)

    async def notify(self, message: str, severity: NotifySeverity) -> None:
        for session in list(self.sessions.values()):
            await session.notify(message, severity)

    async def set_keyboard_leds(self, modifiers: int) -> None:
        self.keyboard_leds = modifiers
        for session in list(self.sessions.values()):
            await session.set_keyboard_leds(modifiers)

    # -- input -------------------------------------------------------------------------------
    def subscribe_input(self, size: int = INPUT_QUEUE) -> trio.MemoryReceiveChannel[InputEvent]:
        send, receive = trio.open_memory_channel[InputEvent](size)
        self._subscribers.append(send)
        return receive

    def on_input(self, callback: Callable[[InputEvent], None]) -> None:
        self._callbacks.append(callback)

    async def deliver_input(self, event: Any) -> None:
        for callback in self._callbacks:
            try:
                callback(event)
            except Exception:
                log.exception("input callback failed")
        for send in list(self._subscribers):
            try:
                # Bounded: a slow consumer slows this client's inputs channel down.
                await send.send(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(send)


def _kind_name(kind: int) -> str:
    try:
        return ChannelType(kind).name.lower()
    except ValueError:
        return str(kind)
