"""Inputs channel message bodies (spice.proto ``channel InputsChannel``): keyboard and mouse
from the client, keyboard LEDs and motion acks from the server.

Key messages carry PC/XT scan code set 1 bytes; :mod:`domain.scancodes` turns them into key
events. Mouse ``buttons`` fields are the button mask after the event (LEFT 1, MIDDLE 2,
RIGHT 4, UP 8, DOWN 16, SIDE 32, EXTRA 64); ``button`` numbers a single button (LEFT 1 ...
EXTRA 7). Numbers from the client stay plain ints: a newer client may send values we do not
know, and that is not a decode error.
"""

from __future__ import annotations

import struct
from typing import ClassVar, Self

import attrs

from spice.domain.enums import MsgcInputs, MsgInputs
from spice.domain.messages.codec import registry, unpack_exact


@attrs.frozen
class InputsInit:
    """The guest's keyboard LEDs (SCROLL_LOCK 1, NUM_LOCK 2, CAPS_LOCK 4), sent on link."""

    MSG_TYPE: ClassVar[int] = MsgInputs.INIT
    modifiers: int

    def encode(self) -> bytes:
        return struct.pack("<H", self.modifiers)


@attrs.frozen
class InputsKeyModifiers:
    """The guest's keyboard LEDs changed."""

    MSG_TYPE: ClassVar[int] = MsgInputs.KEY_MODIFIERS
    modifiers: int

    def encode(self) -> bytes:
        return struct.pack("<H", self.modifiers)


@attrs.frozen
class MouseMotionAck:
    """Due after every SPICE_INPUT_MOTION_ACK_BUNCH motion/position messages."""

    MSG_TYPE: ClassVar[int] = MsgInputs.MOUSE_MOTION_ACK

    def encode(self) -> bytes:
        return b""


@attrs.frozen
class KeyDown:
    """``code``: scan code bytes packed little-endian, read low byte first up to a zero byte."""

    MSG_TYPE: ClassVar[int] = MsgcInputs.KEY_DOWN
    code: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("I", body, "KEY_DOWN"))


@attrs.frozen
class KeyUp:
    """As :class:`KeyDown`; the code is the release (break) code, bit 7 already set."""

    MSG_TYPE: ClassVar[int] = MsgcInputs.KEY_UP
    code: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("I", body, "KEY_UP"))


@attrs.frozen
class ClientKeyModifiers:
    """The client's lock-key state; spice-gtk sends it on link and on focus."""

    MSG_TYPE: ClassVar[int] = MsgcInputs.KEY_MODIFIERS
    modifiers: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("H", body, "KEY_MODIFIERS"))


@attrs.frozen
class KeyScancode:
    """Raw scan code bytes, the whole body (spice-gtk: an atomic press and release)."""

    MSG_TYPE: ClassVar[int] = MsgcInputs.KEY_SCANCODE
    data: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(bytes(body))


@attrs.frozen
class MouseMotion:
    """Relative motion, in server mouse mode."""

    MSG_TYPE: ClassVar[int] = MsgcInputs.MOUSE_MOTION
    dx: int
    dy: int
    buttons: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("iiH", body, "MOUSE_MOTION"))


@attrs.frozen
class MousePosition:
    """Absolute position on display ``display_id``, in client mouse mode."""

    MSG_TYPE: ClassVar[int] = MsgcInputs.MOUSE_POSITION
    x: int
    y: int
    buttons: int
    display_id: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("IIHB", body, "MOUSE_POSITION"))


@attrs.frozen
class MousePress:
    MSG_TYPE: ClassVar[int] = MsgcInputs.MOUSE_PRESS
    button: int
    buttons: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("BH", body, "MOUSE_PRESS"))


@attrs.frozen
class MouseRelease:
    MSG_TYPE: ClassVar[int] = MsgcInputs.MOUSE_RELEASE
    button: int
    buttons: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("BH", body, "MOUSE_RELEASE"))


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
