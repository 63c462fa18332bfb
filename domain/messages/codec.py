"""Small helpers shared by the message modules: a bounds-checked reader for client message
bodies, the declarative :class:`Fixed` base for fixed-size layouts and the registry type that
maps a message number to its class."""

from __future__ import annotations

import operator
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


@attrs.frozen
class Layout:
    """A message's fixed little-endian layout: ``fmt`` (struct codes, no byte-order prefix)
    packs the attrs fields in declaration order; with ``tail`` the last field is ``bytes`` and
    holds the rest of the body. ``name`` is the protocol name used in decode errors."""

    fmt: str
    name: str
    tail: bool = False
    packer: struct.Struct = attrs.field(init=False)

    @packer.default
    def _compile(self) -> struct.Struct:
        return struct.Struct("<" + self.fmt)


class Fixed:
    """Base for attrs messages whose body is exactly their :class:`Layout` (plus an optional
    bytes tail): ``decode`` and ``encode`` are derived from ``LAYOUT`` and the fields, in order.

    ``decode`` accepts trailing bytes (newer peers may append fields) but never fewer than the
    layout needs, as :func:`unpack_exact`.
    """

    __slots__ = ()
    LAYOUT: ClassVar[Layout]

    @classmethod
    def decode(cls, body: bytes) -> Self:
        layout = cls.LAYOUT
        st = layout.packer
        if len(body) < st.size:
            raise MessageDecodeError(f"{layout.name}: body of {len(body)} bytes, need {st.size}")
        fields = st.unpack_from(body)
        if layout.tail:
            fields = (*fields, bytes(body[st.size :]))
        return cls(*fields)

    def encode(self) -> bytes:
        layout = self.LAYOUT
        values = _field_values(type(self))(self)
        if layout.tail:
            tail: bytes = values[-1]
            return layout.packer.pack(*values[:-1]) + tail
        packed: bytes = layout.packer.pack(*values)
        return packed


_VALUES: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _field_values(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    """A fast reader of an attrs class's field values, in order (made once per class)."""
    getter = _VALUES.get(cls)
    if getter is None:
        names = [f.name for f in attrs.fields(cls)]
        if len(names) > 1:
            getter = operator.attrgetter(*names)
        elif names:
            one = operator.attrgetter(names[0])
            getter = lambda obj: (one(obj),)  # noqa: E731
        else:
            getter = lambda obj: ()  # noqa: E731
        _VALUES[cls] = getter
    return getter


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
