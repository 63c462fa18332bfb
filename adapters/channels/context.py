"""What a channel runner may use of its session and server: the narrow waist between
``adapters/channels/*`` and the session (instead of the whole core)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import trio

from spice.adapters.config import ServerConfig
from spice.adapters.connection import ClientGone, Connection, Wakeup
from spice.domain.enums import ChannelType, MouseMode, NotifySeverity
from spice.domain.input_events import InputClient

if TYPE_CHECKING:
    from spice.adapters.channels.playback import PlaybackHub
    from spice.adapters.channels.port import PortHub
    from spice.adapters.channels.record import RecordHub
    from spice.adapters.display_worker import DisplayWorker
    from spice.domain.channels.display import DisplayChannel


class ChannelContext(Protocol):
    @property
    def label(self) -> str:
        """``peer session id``, the prefix of every log line."""

    @property
    def handle(self) -> InputClient:
        """The application's handle on this client (what its events carry)."""

    @property
    def config(self) -> ServerConfig:
        """The server's options (read-only)."""

    @property
    def send_timeout(self) -> float: ...

    @property
    def view_only(self) -> bool:
        """Whether the client logged in with the view-only password."""

    @property
    def mouse_mode(self) -> MouseMode: ...

    @property
    def keyboard_leds(self) -> int:
        """The guest's keyboard LEDs as the application last set them."""

    @property
    def inputs(self) -> list[Connection]:
        """The client's inputs connections (LED and mouse-mode changes go to each)."""

    @property
    def displays(self) -> list[DisplayChannel]:
        """The client's display machines (the network test's result goes to each)."""

    @property
    def low_bandwidth(self) -> bool:
        """Whether the main channel's network test found a slow link."""

    @property
    def bandwidth(self) -> float | None:
        """Bits per second the network test measured (None: not done yet)."""

    @property
    def codecs_warm(self) -> bool:
        """Whether the video encoders are warmed up."""

    def playout_delay(self, frame_bytes: int) -> int:
        """How many ms ahead a video frame of ``frame_bytes`` is stamped."""

    def display_worker(self, channel_id: int) -> DisplayWorker:
        """The worker of display ``channel_id`` (the link checked that it exists)."""

    async def deliver_input(self, event: Any) -> None:
        """Hand an input event to the application."""

    async def notify(self, message: str, severity: NotifySeverity) -> None:
        """A NOTIFY on the client's main channel."""

    @property
    def playback(self) -> PlaybackHub: ...

    @property
    def record(self) -> RecordHub: ...

    @property
    def ports(self) -> PortHub: ...

    def mm_time(self) -> int: ...

    def connection(
        self, stream: trio.abc.Stream, machine: Any, label: str, kind: ChannelType
    ) -> Connection:
        """A channel connection with the server's limits (write deadline, output bound,
        largest client message on this channel kind)."""

    async def serve(self, conn: Connection, on_event: Callable[[Any], Awaitable[None]]) -> None:
        """Run ``conn``'s reader until it ends; why is logged in at most one line."""

    def gone(self, conn: Connection, exc: ClientGone) -> None:
        """Log a connection that ended (the client's close, or the server dropping it)."""

    async def await_acks(self, conn: Connection, wake: Wakeup) -> None:
        """Wait until the client has acknowledged enough to send more; raise ClientGone when it
        owes acks for longer than the send timeout."""

    async def run_pair(
        self,
        conn: Connection,
        on_event: Callable[[Any], Awaitable[None]],
        writer: Callable[[], Awaitable[None]],
    ) -> None:
        """A reader and a writer on ``conn``; either ending ends both, logged in one line."""
