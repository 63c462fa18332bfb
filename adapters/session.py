"""A client session (the C server's RedClient): one nursery that owns every channel connection
of one client. The main channel's task opens it; secondary channels join it by the session id
the client got in MAIN_INIT. When the main channel ends, the nursery is cancelled and every
other channel of the client closes with it.

The session sees the server through :class:`SessionHost` (what it uses of the core), and its
channel runners see the session through :class:`~spice.adapters.channels.context.ChannelContext`;
neither imports the core.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, Protocol

import trio

from spice.adapters.agent import AgentHub, SessionAgent
from spice.adapters.channels import RUNNERS
from spice.adapters.channels.port import PortHub
from spice.adapters.config import ServerConfig
from spice.adapters.connection import ClientGone, Connection, Wakeup, ping_stamp
from spice.adapters.display_worker import DisplayWorker
from spice.adapters.link import Linked
from spice.domain.channel import ChannelClosed
from spice.domain.channels.display import DisplayChannel
from spice.domain.channels.inputs import InputsChannel
from spice.domain.channels.main import MainChannel
from spice.domain.enums import ChannelType, MouseMode, NotifySeverity, NotifyVisibility
from spice.domain.errors import ProtocolError
from spice.domain.framing import DEFAULT_MAX_CLIENT_MESSAGE
from spice.domain.messages import main as mm
from spice.domain.messages.base import Notify

if TYPE_CHECKING:
    from spice.adapters.channels.context import ChannelContext
    from spice.adapters.channels.playback import PlaybackHub
    from spice.adapters.channels.record import RecordHub
    from spice.domain.input_events import InputClient

log = logging.getLogger(__name__)

#: Padding of the network test's second PING (the C server's NET_TEST_BYTES).
NET_TEST_BYTES = 250 * 1024
NET_TEST_TIMEOUT = 10.0
#: Below this a link is slow, and "auto" JPEG applies (the C server's threshold).
LOW_BANDWIDTH_BPS = 10_000_000
#: Video frames are stamped this many ms ahead (plus their transfer time), so jitter does not
#: make spice-gtk drop them as late.
PLAYOUT_MARGIN_MS = 40
MAX_TRANSFER_MS = 400


def new_session_id(taken: set[int] | Any) -> int:
    while True:
        sid = secrets.randbits(32)
        if sid and sid not in taken:
            return sid


Transport = Literal["tcp", "tls", "websocket"]


class SessionHost(Protocol):
    """What a session uses of the server (the core): its options, shared hubs and displays."""

    @property
    def config(self) -> ServerConfig: ...

    @property
    def sessions(self) -> Mapping[int, ClientSession]:
        """The connected sessions by id."""

    @property
    def displays(self) -> Sequence[DisplayWorker]: ...

    @property
    def agent(self) -> AgentHub: ...

    @property
    def playback(self) -> PlaybackHub: ...

    @property
    def record(self) -> RecordHub: ...

    @property
    def ports(self) -> PortHub: ...

    @property
    def keyboard_leds(self) -> int:
        """The guest's keyboard LEDs as the application last set them."""

    @property
    def codecs_warm(self) -> trio.Event:
        """Set once the video encoders are warmed up."""

    def channels_for(self, transport: Transport) -> list[tuple[int, int]]:
        """The (type, id) of the channels a session on ``transport`` is offered."""

    def mm_time(self) -> int:
        """The multimedia clock, in ms."""

    async def deliver_input(self, event: Any) -> None:
        """Hand an input event to the application."""


class Client:
    """One connected client as the application sees it: in ``server.clients`` while it is
    connected, and as the ``client`` of every input event it sends. Read-only, except
    :meth:`disconnect`."""

    def __init__(self, session: ClientSession) -> None:
        self._session = session

    @property
    def session_id(self) -> int:
        """The id the client got in MAIN_INIT (its channels join the session by it)."""
        return self._session.id

    @property
    def address(self) -> str:
        """The peer's ``host:port`` (``[host]:port`` for IPv6)."""
        return self._session.address

    @property
    def transport(self) -> Transport:
        """How its main channel arrived: "tcp", "tls" or "websocket" (see :attr:`secure`)."""
        return self._session.transport

    @property
    def secure(self) -> bool:
        """Whether its main channel came over TLS (a ``wss://`` WebSocket included)."""
        return self._session.secure

    @property
    def view_only(self) -> bool:
        """Whether it logged in with the view-only password: its input never reaches the
        application."""
        return self._session.view_only

    @property
    def user(self) -> str | None:
        """The SASL user it logged in as; None when it used the ticket."""
        return self._session.user

    @property
    def connected_at(self) -> datetime.datetime:
        """When its main channel linked (UTC)."""
        return self._session.connected_at

    @property
    def connected(self) -> bool:
        return self._session.core.sessions.get(self._session.id) is self._session

    async def disconnect(self) -> None:
        """Send it DISCONNECTING and close all its channels (nothing if already gone)."""
        await self._session.disconnect("disconnected by the application")

    def __repr__(self) -> str:
        kind = self.transport + ("+tls" if self.secure and self.transport != "tls" else "")
        role = ", view-only" if self.view_only else ""
        user = f" user={self.user}" if self.user is not None else ""
        return f"<spice.Client {self.session_id:08x} {self.address} {kind}{user}{role}>"


if TYPE_CHECKING:

    def _client_is_what_events_carry(client: Client) -> InputClient:
        return client  # mypy checks that Client satisfies the events' protocol

    def _session_is_a_channel_context(session: ClientSession) -> ChannelContext:
        return session  # mypy checks that the session offers what runners use


class ClientSession:
    def __init__(
        self,
        core: SessionHost,
        session_id: int,
        peer: str,
        *,
        transport: Transport = "tcp",
        secure: bool = False,
        view_only: bool = False,
        user: str | None = None,
    ) -> None:
        self.core = core
        self.id = session_id
        self.peer = peer
        #: ``host:port`` without the transport tag the label carries.
        self.address = peer.split(" ", 1)[0]
        self.transport: Transport = transport
        self.secure = secure
        self.view_only = view_only
        self.user = user
        self.connected_at = datetime.datetime.now(datetime.UTC)
        self._started = time.monotonic()
        #: Why the client went away, for the one line its disconnect is logged in.
        self.end_reason: str | None = None
        #: What the application holds for this client (``server.clients``, ``event.client``).
        self.handle = Client(self)
        self.nursery: trio.Nursery | None = None
        self.mouse_mode = MouseMode.CLIENT if core.config.client_mouse else MouseMode.SERVER
        self.main: Connection | None = None
        self.inputs: list[Connection] = []
        #: (channel type, id) of the secondary channels linked or linking (one of each).
        self.claimed: set[tuple[int, int]] = set()
        self.displays: list[DisplayChannel] = []
        #: Whether the main channel's network test found a slow link (JPEG in "auto").
        self.low_bandwidth = False
        #: Bits per second measured by the network test, once it is done.
        self.bandwidth: float | None = None

    @property
    def loopback(self) -> bool:
        host = self.peer.rsplit(":", 1)[0].strip("[]")
        return host in ("::1", "localhost") or host.startswith("127.")

    @property
    def label(self) -> str:
        return f"{self.peer} session {self.id:08x}"

    @property
    def supported_mouse_modes(self) -> int:
        config = self.core.config
        # The built-in agent is always connected, so agent-mouse always has its agent.
        client = config.client_mouse or config.agent_mouse
        return MouseMode.SERVER | (MouseMode.CLIENT if client else 0)

    def connection(
        self, stream: trio.abc.Stream, machine: Any, label: str, kind: ChannelType
    ) -> Connection:
        """A channel connection with the server's limits: write deadline, bytes queued for
        writing, largest client message on this channel."""
        config = self.core.config
        machine.max_message_size = config.max_message.get(kind, DEFAULT_MAX_CLIENT_MESSAGE)
        return Connection(
            stream,
            machine,
            label=label,
            send_timeout=config.send_timeout,
            max_output=config.max_output,
        )

    # -- main ------------------------------------------------------------------------------
    async def run_main(self, stream: trio.abc.Stream, linked: Linked) -> None:
        machine = MainChannel(
            mini_header=linked.mini_header, client_caps=linked.request.channel_caps
        )
        conn = self.connection(stream, machine, f"{self.label} main", ChannelType.MAIN)
        self.main = conn
        agent = SessionAgent(self.core.agent, conn, f"{self.label} agent", view_only=self.view_only)
        machine.receive_data(linked.trailing)
        machine.start(
            session_id=self.id,
            display_channels=len(self.core.displays),
            supported_mouse_modes=self.supported_mouse_modes,
            current_mouse_mode=self.mouse_mode,
            multi_media_time=self.core.mm_time(),
            name=self.core.config.name,
            uuid=self.core.config.uuid,
            agent_connected=True,
            agent_tokens=agent.machine.window,
        )
        log.info(
            "%s: client connected (%s%s%s)",
            self.label,
            self.transport,
            "+tls" if self.secure and self.transport != "tls" else "",
            ", view-only" if self.view_only else "",
        )

        async def on_event(event: Any) -> None:
            if isinstance(event, mm.AttachChannels):
                machine.send_channels_list(self.core.channels_for(self.transport))
            elif isinstance(event, mm.MouseModeRequest):
                if event.mode & self.supported_mouse_modes and event.mode in (
                    MouseMode.SERVER,
                    MouseMode.CLIENT,
                ):
                    self.mouse_mode = MouseMode(event.mode)
                    for inputs in self.inputs:
                        assert isinstance(inputs.machine, InputsChannel)
                        inputs.machine.mouse_mode = self.mouse_mode
                machine.send_mouse_mode(self.supported_mouse_modes, self.mouse_mode)
            elif isinstance(event, (mm.AgentStart, mm.ClientAgentData, mm.ClientAgentToken)):
                # An AgentProtocolError goes up to _serve: one line, this client closed.
                await agent.handle(event)

        def opened(nursery: trio.Nursery) -> None:
            self.nursery = nursery
            nursery.start_soon(agent.wake_quiet_transfers)

        self.core.agent.agents.append(agent)
        try:
            await self._run_pair(conn, on_event, partial(self._keepalive, conn), opened=opened)
        finally:
            self.nursery = None
            self.core.agent.agents.remove(agent)
            await agent.close()
            await conn.aclose()
            # The one line a disconnect is logged in, whichever channel noticed it first.
            log.info(
                "%s: client disconnected (%s) after %.0f s",
                self.label,
                self.end_reason or "connection ended",
                time.monotonic() - self._started,
            )

    async def _await_acks(self, conn: Connection, wake: Wakeup) -> None:
        """Wait for the client to acknowledge what it was sent; one that owes acks for longer
        than the send timeout while we have more to send is dropped like one that stopped
        reading (its socket may still drain, so no write would ever time out)."""
        with trio.move_on_after(self.core.config.send_timeout):
            while not conn.machine.may_send:
                await wake.wait()
            return
        raise ClientGone(f"{conn.label}: no ACK for {conn.machine.unacked} messages")

    async def _keepalive(self, conn: Connection) -> None:
        """Measure the link (the C server's network test: a PING and one with 250 KiB of
        padding, back to back), then PING the main channel every ``ping_interval``; a client
        that leaves two unanswered is dropped."""
        interval = self.core.config.ping_interval
        self.nursery_start(self._net_test, conn)
        await trio.sleep(interval)
        while True:
            if conn.machine.pings_outstanding >= 2:
                raise ClientGone(f"{conn.label}: no answer to PING for {interval:.0f} s")
            conn.machine.ping(ping_stamp())
            await conn.flush()
            await trio.sleep(interval)

    def playout_delay(self, frame_bytes: int) -> int:
        """Milliseconds after which a video frame sent now is due on the client: its transfer
        time on the measured link plus a margin. spice-gtk drops MJPEG frames that arrive
        after their time, and shows early ones only when due."""
        transfer = frame_bytes * 8 / self.bandwidth if self.bandwidth else 0.0
        return int(PLAYOUT_MARGIN_MS + min(transfer * 1000, MAX_TRANSFER_MS))

    def nursery_start(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        if self.nursery is not None:
            self.nursery.start_soon(fn, *args)

    async def _net_test(self, conn: Connection) -> None:
        machine = conn.machine
        now = ping_stamp()
        small = machine.ping(now)
        big = machine.ping(now, padding=NET_TEST_BYTES)
        await conn.flush()
        with trio.move_on_after(NET_TEST_TIMEOUT):
            while small not in conn.pongs or big not in conn.pongs:
                await conn.pong_arrived.wait()
            extra = max(conn.pongs[big] - conn.pongs[small], 1e-6)
            self.bandwidth = NET_TEST_BYTES * 8 / extra
            # A loopback peer is never on a slow link, whatever a busy machine measured.
            self.low_bandwidth = self.bandwidth < LOW_BANDWIDTH_BPS and not self.loopback
            for display in self.displays:
                display.low_bandwidth = self.low_bandwidth
                display.link_bandwidth = self.bandwidth
            log.info(
                "%s: network test: %.1f Mbit/s, round trip %.1f ms%s",
                self.label,
                self.bandwidth / 1e6,
                conn.pongs[small] * 1000,
                " (slow link: JPEG allowed)" if self.low_bandwidth else "",
            )

    def _gone(self, conn: Connection, exc: ClientGone) -> None:
        """Log a connection the client closed, or the server dropped, in at most one line. A
        client quitting closes all its channels at once: those closes are the session's one
        disconnect line, not a line per channel. Logged as text: a log record keeps its
        arguments, and an exception's traceback would pin the frames (and the image) that
        were being written when the client went."""
        if conn is self.main:
            # The session's end line says it (run_main).
            reason = "client closed the connection" if exc.by_peer else str(exc)
            self._ended(reason.removeprefix(f"{conn.label}: "))
            log.debug("%s", str(exc))
        elif exc.by_peer:
            log.debug("%s", str(exc))
        else:
            log.info("%s", str(exc))

    def _ended(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason

    async def _serve(self, conn: Connection, on_event: Callable[[Any], Awaitable[None]]) -> None:
        """Run a connection's reader until it ends; log why in at most one line."""
        try:
            await conn.read_loop(on_event)
        except ClientGone as exc:
            self._gone(conn, exc)
        except ChannelClosed:
            if conn is self.main:
                self._ended("client said DISCONNECTING")
            log.debug("%s: client disconnecting", conn.label)
        except ProtocolError as exc:
            if conn is self.main:
                self._ended(f"protocol error: {exc}")
            log.warning("%s: protocol error: %s; closing", conn.label, str(exc))

    async def _run_pair(
        self,
        conn: Connection,
        on_event: Callable[[Any], Awaitable[None]],
        writer: Callable[[], Awaitable[None]],
        *,
        opened: Callable[[trio.Nursery], None] | None = None,
    ) -> None:
        """A reader and a writer task on one connection; either ending ends both. ``opened``
        is told the nursery (the main channel's is the session's)."""
        try:
            await conn.flush()
        except ClientGone as exc:
            self._gone(conn, exc)
            return
        async with trio.open_nursery() as nursery:

            async def guarded_writer() -> None:
                try:
                    await writer()
                except ClientGone as exc:
                    self._gone(conn, exc)
                finally:
                    nursery.cancel_scope.cancel()

            if opened is not None:
                opened(nursery)
            nursery.start_soon(guarded_writer)
            await self._serve(conn, on_event)
            nursery.cancel_scope.cancel()

    # -- secondary channels -------------------------------------------------------------------
    def attach(self, stream: trio.abc.Stream, linked: Linked) -> trio.Event | None:
        """Hand a linked secondary connection to this session's nursery; the event is set
        when the channel has ended (None: the session is already over)."""
        if self.nursery is None:
            return None
        finished = trio.Event()
        self.nursery.start_soon(self._run_secondary, stream, linked, finished)
        return finished

    async def _run_secondary(
        self, stream: trio.abc.Stream, linked: Linked, finished: trio.Event
    ) -> None:
        req = linked.request
        kind = ChannelType(req.channel_type)
        label = f"{self.label} {kind.name.lower()}:{req.channel_id}"
        try:
            await RUNNERS[kind](self, stream, linked, label)
        finally:
            finished.set()

    # -- the narrow context channel runners get (adapters/channels/context.py) -----------------
    @property
    def send_timeout(self) -> float:
        return self.core.config.send_timeout

    @property
    def config(self) -> ServerConfig:
        return self.core.config

    @property
    def keyboard_leds(self) -> int:
        return self.core.keyboard_leds

    @property
    def codecs_warm(self) -> bool:
        return self.core.codecs_warm.is_set()

    def display_worker(self, channel_id: int) -> DisplayWorker:
        return self.core.displays[channel_id]

    async def deliver_input(self, event: Any) -> None:
        await self.core.deliver_input(event)

    async def serve(self, conn: Connection, on_event: Callable[[Any], Awaitable[None]]) -> None:
        await self._serve(conn, on_event)

    def gone(self, conn: Connection, exc: ClientGone) -> None:
        self._gone(conn, exc)

    async def await_acks(self, conn: Connection, wake: Wakeup) -> None:
        await self._await_acks(conn, wake)

    @property
    def playback(self) -> PlaybackHub:
        return self.core.playback

    @property
    def record(self) -> RecordHub:
        return self.core.record

    def mm_time(self) -> int:
        return self.core.mm_time()

    @property
    def ports(self) -> PortHub:
        return self.core.ports

    async def run_pair(
        self,
        conn: Connection,
        on_event: Callable[[Any], Awaitable[None]],
        writer: Callable[[], Awaitable[None]],
    ) -> None:
        await self._run_pair(conn, on_event, writer)

    def push_mm_time(self, mm_time: int) -> None:
        """MULTI_MEDIA_TIME on main (written with the main channel's next flush)."""
        if self.main is not None and self.main.machine is not None:
            self.main.machine.send(mm.MultiMediaTime(mm_time))
            self.nursery_start(self._flush_main)

    async def _flush_main(self) -> None:
        if self.main is not None:
            try:
                await self.main.flush()
            except ClientGone as exc:
                self._gone(self.main, exc)

    # -- server-wide actions -----------------------------------------------------------------
    async def notify(self, message: str, severity: NotifySeverity) -> None:
        """A NOTIFY on this client's main channel."""
        if self.main is None:
            return
        self.main.machine.send(
            Notify(time.time_ns() // 1000, severity, NotifyVisibility.MEDIUM, message)
        )
        try:
            await self.main.flush()
        except ClientGone as exc:
            self._gone(self.main, exc)

    async def set_keyboard_leds(self, modifiers: int) -> None:
        for conn in list(self.inputs):
            assert isinstance(conn.machine, InputsChannel)
            conn.machine.set_modifiers(modifiers)
            try:
                await conn.flush()
            except ClientGone as exc:
                self._gone(conn, exc)

    async def disconnect(self, reason: str = "disconnected by the server") -> None:
        """Tell the client (DISCONNECTING on main) and close all its channels; ``reason``
        goes in the one line its disconnect is logged in."""
        if self.main is not None and self.nursery is not None:
            self._ended(reason)
            self.main.machine.disconnecting(time.time_ns() // 1000)
            with trio.move_on_after(1):
                with contextlib.suppress(ClientGone):
                    await self.main.flush()
        if self.nursery is not None:
            self.nursery.cancel_scope.cancel()
