"""Input events as the application sees them, decoded from the inputs channel.

Key events carry PC/XT scan code set 1 make codes (extended keys as ``0xE0xx``), which is what
QEMU's keyboard devices and most emulators consume; see :mod:`domain.scancodes`.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable
from typing import Protocol

import attrs

from spice.domain.scancodes import KeyEvent

__all__ = [
    "InputClient",
    "InputEvent",
    "KeyEvent",
    "KeyboardModifiersEvent",
    "MouseButtonEvent",
    "MouseMotionEvent",
    "MousePositionEvent",
    "MouseWheelEvent",
]


class InputClient(Protocol):
    """Who sent an input event: the server's :class:`spice.Client` for that connection.

    Every event's ``client`` field holds it (None for an event made by hand); it takes no part
    in equality, so ``event == KeyEvent(0x1C, True)`` still compares what happened.
    """

    @property
    def session_id(self) -> int: ...

    @property
    def address(self) -> str: ...

    @property
    def transport(self) -> str: ...

    @property
    def view_only(self) -> bool: ...

    @property
    def connected_at(self) -> datetime.datetime: ...

    def disconnect(self) -> Awaitable[None]: ...


@attrs.frozen
class KeyboardModifiersEvent:
    """The client's lock-key state (SCROLL 1, NUM 2, CAPS 4), sent when it gains focus."""

    modifiers: int
    client: InputClient | None = attrs.field(default=None, eq=False, kw_only=True, repr=False)


@attrs.frozen
class MouseMotionEvent:
    """Relative motion, in server mouse mode. ``buttons`` is the mask after the event."""

    dx: int
    dy: int
    buttons: int
    client: InputClient | None = attrs.field(default=None, eq=False, kw_only=True, repr=False)


@attrs.frozen
class MousePositionEvent:
    """Absolute position on display ``display_id``, in client mouse mode."""

    x: int
    y: int
    buttons: int
    display_id: int = 0
    client: InputClient | None = attrs.field(default=None, eq=False, kw_only=True, repr=False)


@attrs.frozen
class MouseButtonEvent:
    """A button (LEFT 1, MIDDLE 2, RIGHT 3, SIDE 6, EXTRA 7) pressed or released."""

    button: int
    pressed: bool
    buttons: int
    client: InputClient | None = attrs.field(default=None, eq=False, kw_only=True, repr=False)


@attrs.frozen
class MouseWheelEvent:
    """One wheel notch: ``dy`` is -1 for up (away from the user), +1 for down."""

    dy: int
    buttons: int
    client: InputClient | None = attrs.field(default=None, eq=False, kw_only=True, repr=False)


InputEvent = (
    KeyEvent
    | KeyboardModifiersEvent
    | MouseMotionEvent
    | MousePositionEvent
    | MouseButtonEvent
    | MouseWheelEvent
)
