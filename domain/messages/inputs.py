"""Inputs channel message bodies (spice.proto ``channel InputsChannel``): keyboard and mouse
from the client, keyboard LEDs and motion acks from the server.

Key messages carry PC/XT scan code set 1 bytes; :mod:`domain.scancodes` turns them into key
events. Mouse ``buttons`` fields are the button mask after the event (LEFT 1, MIDDLE 2,
RIGHT 4, UP 8, DOWN 16, SIDE 32, EXTRA 64); ``button`` numbers a single button (LEFT 1 ...
EXTRA 7). Numbers from the client stay plain ints: a newer client may send values we do not
know, and that is not a decode error.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from spice.domain.enums import MsgcInputs, MsgInputs
from spice.domain.messages.codec import Fixed, Layout, registry


@attrs.frozen
class InputsInit(Fixed):
    """The guest's keyboard LEDs (SCROLL_LOCK 1, NUM_LOCK 2, CAPS_LOCK 4), sent on link."""

    MSG_TYPE: ClassVar[int] = MsgInputs.INIT
    LAYOUT: ClassVar[Layout] = Layout("H", "INIT")
    modifiers: int


@attrs.frozen
class InputsKeyModifiers(Fixed):
    """The guest's keyboard LEDs changed."""

    MSG_TYPE: ClassVar[int] = MsgInputs.KEY_MODIFIERS
    LAYOUT: ClassVar[Layout] = Layout("H", "KEY_MODIFIERS")
    modifiers: int


@attrs.frozen
class MouseMotionAck(Fixed):
    """Due after every SPICE_INPUT_MOTION_ACK_BUNCH motion/position messages."""

    MSG_TYPE: ClassVar[int] = MsgInputs.MOUSE_MOTION_ACK
    LAYOUT: ClassVar[Layout] = Layout("", "MOUSE_MOTION_ACK")


@attrs.frozen
class KeyDown(Fixed):
    """``code``: scan code bytes packed little-endian, read low byte first up to a zero byte."""

    MSG_TYPE: ClassVar[int] = MsgcInputs.KEY_DOWN
    LAYOUT: ClassVar[Layout] = Layout("I", "KEY_DOWN")
    code: int


@attrs.frozen
class KeyUp(Fixed):
    """As :class:`KeyDown`; the code is the release (break) code, bit 7 already set."""

    MSG_TYPE: ClassVar[int] = MsgcInputs.KEY_UP
    LAYOUT: ClassVar[Layout] = Layout("I", "KEY_UP")
    code: int


@attrs.frozen
class ClientKeyModifiers(Fixed):
    """The client's lock-key state; spice-gtk sends it on link and on focus."""

    MSG_TYPE: ClassVar[int] = MsgcInputs.KEY_MODIFIERS
    LAYOUT: ClassVar[Layout] = Layout("H", "KEY_MODIFIERS")
    modifiers: int


@attrs.frozen
class KeyScancode(Fixed):
    """Raw scan code bytes, the whole body (spice-gtk: an atomic press and release)."""

    MSG_TYPE: ClassVar[int] = MsgcInputs.KEY_SCANCODE
    LAYOUT: ClassVar[Layout] = Layout("", "KEY_SCANCODE", tail=True)
    data: bytes


@attrs.frozen
class MouseMotion(Fixed):
    """Relative motion, in server mouse mode."""

    MSG_TYPE: ClassVar[int] = MsgcInputs.MOUSE_MOTION
    LAYOUT: ClassVar[Layout] = Layout("iiH", "MOUSE_MOTION")
    dx: int
    dy: int
    buttons: int


@attrs.frozen
class MousePosition(Fixed):
    """Absolute position on display ``display_id``, in client mouse mode."""

    MSG_TYPE: ClassVar[int] = MsgcInputs.MOUSE_POSITION
    LAYOUT: ClassVar[Layout] = Layout("IIHB", "MOUSE_POSITION")
    x: int
    y: int
    buttons: int
    display_id: int


@attrs.frozen
class MousePress(Fixed):
    MSG_TYPE: ClassVar[int] = MsgcInputs.MOUSE_PRESS
    LAYOUT: ClassVar[Layout] = Layout("BH", "MOUSE_PRESS")
    button: int
    buttons: int


@attrs.frozen
class MouseRelease(Fixed):
    MSG_TYPE: ClassVar[int] = MsgcInputs.MOUSE_RELEASE
    LAYOUT: ClassVar[Layout] = Layout("BH", "MOUSE_RELEASE")
    button: int
    buttons: int


CLIENT_MESSAGES = registry(
    KeyDown,
    KeyUp,
    ClientKeyModifiers,
    KeyScancode,
    MouseMotion,
    MousePosition,
    MousePress,
    MouseRelease,
)
