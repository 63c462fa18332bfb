"""Small helpers shared by the message modules: a bounds-checked reader for client message
bodies and the registry type that maps a message number to its class."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, Self

import attrs

from spice.domain.errors import MessageDecodeError


class ServerMessage(Protocol):
    MSG_TYPE: ClassVar[int]

    def encode(self) -> bytes: ...


class ClientMessage(Protocol):
    MSG_TYPE: ClassVar[int]

    @classmethod
    def decode(cls, body: bytes) -> Self: ...


def unpack_exact(fmt: str, body: bytes, name: str) -> tuple[Any, ...]:
    """Unpack a fixed-size little-endian body, allowing trailing bytes (newer peers may append
    fields) but never fewer than the layout needs."""
    st = struct.Struct("<" + fmt)
    if len(body) < st.size:
        raise MessageDecodeError(f"{name}: body of {len(body)} bytes, need {st.size}")
    return st.unpack_from(body)


def uint_check(bits: int) -> Callable[[Any, attrs.Attribute[Any], int], None]:
    """An attrs validator: the value fits in an unsigned integer of ``bits`` bits."""
    limit = 1 << bits

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
        if not 0 <= value < limit:
            raise ValueError(f"{attribute.name}={value!r} does not fit in uint{bits}")

    return check


def int_check(bits: int) -> Callable[[Any, attrs.Attribute[Any], int], None]:
    """An attrs validator: the value fits in a signed integer of ``bits`` bits."""
    limit = 1 << (bits - 1)

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
        if not -limit <= value < limit:
            raise ValueError(f"{attribute.name}={value!r} does not fit in int{bits}")

    return check


def registry(*classes: type[ClientMessage]) -> dict[int, type[ClientMessage]]:
    return {cls.MSG_TYPE: cls for cls in classes}
