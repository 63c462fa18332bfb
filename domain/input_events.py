"""Input events as the application sees them, decoded from the inputs channel.

Key events carry PC/XT scan code set 1 make codes (extended keys as ``0xE0xx``), which is what
QEMU's keyboard devices and most emulators consume; see :mod:`domain.scancodes`.
"""

from __future__ import annotations

import attrs

from spice.domain.scancodes import KeyEvent

__all__ = [
    "InputEvent",
    "KeyEvent",
    "KeyboardModifiersEvent",
    "MouseButtonEvent",
    "MouseMotionEvent",
    "MousePositionEvent",
    "MouseWheelEvent",
]


@attrs.frozen
class KeyboardModifiersEvent:
    """The client's lock-key state (SCROLL 1, NUM 2, CAPS 4), sent when it gains focus."""

    modifiers: int


@attrs.frozen
class MouseMotionEvent:
    """Relative motion, in server mouse mode. ``buttons`` is the mask after the event."""

    dx: int
    dy: int
    buttons: int


@attrs.frozen
class MousePositionEvent:
    """Absolute position on display ``display_id``, in client mouse mode."""

    x: int
    y: int
    buttons: int
    display_id: int = 0


@attrs.frozen
class MouseButtonEvent:
    """A button (LEFT 1, MIDDLE 2, RIGHT 3, SIDE 6, EXTRA 7) pressed or released."""

    button: int
    pressed: bool
    buttons: int


@attrs.frozen
class MouseWheelEvent:
    """One wheel notch: ``dy`` is -1 for up (away from the user), +1 for down."""

    dy: int
    buttons: int


InputEvent = (
    KeyEvent
    | KeyboardModifiersEvent
    | MouseMotionEvent
    | MousePositionEvent
    | MouseButtonEvent
    | MouseWheelEvent
)
