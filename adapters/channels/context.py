"""What a channel runner may use of its session and server: the narrow waist between
``adapters/channels/*`` and the session (instead of the whole core)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import trio

from spice.adapters.connection import Connection
from spice.domain.enums import ChannelType

if TYPE_CHECKING:
    from spice.adapters.channels.playback import PlaybackHub
    from spice.adapters.channels.port import PortHub
    from spice.adapters.channels.record import RecordHub
    from spice.adapters.session import Client


class ChannelContext(Protocol):
    @property
    def label(self) -> str:
        """``peer session id``, the prefix of every log line."""

    @property
    def handle(self) -> Client:
        """The application's handle on this client (what its events carry)."""

    @property
    def send_timeout(self) -> float: ...

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

    async def run_pair(
        self,
        conn: Connection,
        on_event: Callable[[Any], Awaitable[None]],
        writer: Callable[[], Awaitable[None]],
    ) -> None:
        """A reader and a writer on ``conn``; either ending ends both, logged in one line."""
