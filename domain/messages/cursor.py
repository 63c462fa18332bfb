"""Cursor channel message bodies (spice.proto ``channel CursorChannel``): the pointer's shape,
position and visibility, all from the server; the client sends only the base messages.

A shape travels as a SpiceCursor: ``uint16 flags``, then, unless the flags say NONE (no
cursor), a 17-byte header and the shape data up to the end of the message. Use ALPHA shapes:
spice-html5 draws nothing else.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

import attrs

from spice.domain.enums import CursorFlags, CursorType, MsgCursor
from spice.domain.messages.codec import Fixed, Layout, registry, uint_check

#: Largest cursor side we send (the reference server's and spice-gtk's practical limit).
MAX_CURSOR_SIDE = 512

_HEADER = struct.Struct("<QBHHHH")  # unique, type, width, height, hot_spot_x, hot_spot_y


def _i16(_inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not -0x8000 <= value < 0x8000:
        raise ValueError(f"{attribute.name}={value!r} does not fit in int16")


def _side(_inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 0 <= value <= MAX_CURSOR_SIDE:
        raise ValueError(f"cursor {attribute.name} {value!r} not in 0..{MAX_CURSOR_SIDE}")


_U16, _U64 = uint_check(16), uint_check(64)


@attrs.frozen
class CursorShape:
    """A cursor image. ALPHA pixels are ``width * height`` little-endian ARGB words (bytes B, G,
    R, A), top row first. ``flags`` may hold CACHE_ME (the client keeps it under ``unique``) or
    FROM_CACHE (header only: ``pixels`` must be empty); "no cursor" is ``None``, not a flag."""

    unique: int = attrs.field(validator=_U64)
    width: int = attrs.field(validator=_side)
    height: int = attrs.field(validator=_side)
    hot_x: int = attrs.field(validator=_U16)
    hot_y: int = attrs.field(validator=_U16)
    pixels: bytes
    type: CursorType = CursorType.ALPHA
    flags: int = attrs.field(default=0, validator=_U16)

    def __attrs_post_init__(self) -> None:
        if self.flags & CursorFlags.NONE:
            raise ValueError("flag NONE on a shape: pass shape=None for no cursor")
        if self.flags & CursorFlags.FROM_CACHE:
            if self.pixels:
                raise ValueError("a FROM_CACHE cursor carries no pixels")
        elif self.type == CursorType.ALPHA and len(self.pixels) != self.width * self.height * 4:
            raise ValueError(
                f"ALPHA cursor {self.width}x{self.height} needs {self.width * self.height * 4} "
                f"bytes, got {len(self.pixels)}"
            )

    def encode(self) -> bytes:
        """The SpiceCursor of this shape."""
        header = _HEADER.pack(
            self.unique, self.type, self.width, self.height, self.hot_x, self.hot_y
        )
        return struct.pack("<H", self.flags) + header + self.pixels


def encode_cursor(shape: CursorShape | None) -> bytes:
    """SpiceCursor: the shape, or just the flag NONE."""
    if shape is None:
        return struct.pack("<H", CursorFlags.NONE)
    return shape.encode()


@attrs.frozen
class CursorInit:
    """The first cursor message; spice-gtk ignores SET/MOVE/TRAIL before it."""

    MSG_TYPE: ClassVar[int] = MsgCursor.INIT
    x: int = attrs.field(validator=_i16)
    y: int = attrs.field(validator=_i16)
    visible: bool
    shape: CursorShape | None
    trail_length: int = attrs.field(default=0, validator=_U16)
    trail_frequency: int = attrs.field(default=0, validator=_U16)

    def encode(self) -> bytes:
        return struct.pack(
            "<hhHHB", self.x, self.y, self.trail_length, self.trail_frequency, self.visible
        ) + encode_cursor(self.shape)


@attrs.frozen
class CursorSet:
    MSG_TYPE: ClassVar[int] = MsgCursor.SET
    x: int = attrs.field(validator=_i16)
    y: int = attrs.field(validator=_i16)
    visible: bool
    shape: CursorShape | None

    def encode(self) -> bytes:
        return struct.pack("<hhB", self.x, self.y, self.visible) + encode_cursor(self.shape)


@attrs.frozen
class CursorMove(Fixed):
    """Only meaningful in server mouse mode; spice-html5 ignores it."""

    MSG_TYPE: ClassVar[int] = MsgCursor.MOVE
    LAYOUT: ClassVar[Layout] = Layout("hh", "MOVE")
    x: int = attrs.field(validator=_i16)
    y: int = attrs.field(validator=_i16)


@attrs.frozen
class CursorHide(Fixed):
    MSG_TYPE: ClassVar[int] = MsgCursor.HIDE
    LAYOUT: ClassVar[Layout] = Layout("", "HIDE")


@attrs.frozen
class CursorReset(Fixed):
    """The client forgets cursor state and cache; a CURSOR_INIT must follow."""

    MSG_TYPE: ClassVar[int] = MsgCursor.RESET
    LAYOUT: ClassVar[Layout] = Layout("", "RESET")


@attrs.frozen
class CursorTrail(Fixed):
    MSG_TYPE: ClassVar[int] = MsgCursor.TRAIL
    LAYOUT: ClassVar[Layout] = Layout("HH", "TRAIL")
    length: int = attrs.field(validator=_U16)
    frequency: int = attrs.field(validator=_U16)


@attrs.frozen
class CursorInvalOne(Fixed):
    MSG_TYPE: ClassVar[int] = MsgCursor.INVAL_ONE
    LAYOUT: ClassVar[Layout] = Layout("Q", "INVAL_ONE")
    id: int = attrs.field(validator=_U64)


@attrs.frozen
class CursorInvalAll(Fixed):
    MSG_TYPE: ClassVar[int] = MsgCursor.INVAL_ALL
    LAYOUT: ClassVar[Layout] = Layout("", "INVAL_ALL")


#: The client sends nothing cursor-specific.
CLIENT_MESSAGES = registry()
