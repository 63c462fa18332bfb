"""What the application hears of a port: a client opened it, closed it, or sent an event.

The port channel's connection is the client's side of the pipe being open; its start and end
and the client's PORT_EVENTs reach the application through ``Port.events()``, with the
:class:`~spice.Client` that caused them (as input events carry theirs).
"""

from __future__ import annotations

import attrs

from spice.domain.enums import PortEvent
from spice.domain.input_events import InputClient

__all__ = ["PortAppEvent", "PortClosed", "PortEventReceived", "PortOpened"]


@attrs.frozen
class PortOpened:
    """A client connected to the port: bytes now flow both ways."""

    name: str
    client: InputClient | None = attrs.field(default=None, eq=False, kw_only=True, repr=False)


@attrs.frozen
class PortClosed:
    """The client's port connection ended (it closed it, or went away)."""

    name: str
    client: InputClient | None = attrs.field(default=None, eq=False, kw_only=True, repr=False)


@attrs.frozen
class PortEventReceived:
    """The client sent PORT_EVENT ``event`` (BREAK 2, or a number a newer client uses)."""

    name: str
    event: int
    client: InputClient | None = attrs.field(default=None, eq=False, kw_only=True, repr=False)

    @property
    def is_break(self) -> bool:
        return self.event == PortEvent.BREAK


PortAppEvent = PortOpened | PortClosed | PortEventReceived
