"""Port channel message bodies (spice.proto ``channel PortChannel : SpicevmcChannel``): a named
byte pipe between the application and the client.

Both directions carry the bytes as spicevmc DATA (101: the whole body) or COMPRESSED_DATA
(102: ``uint8 type``, ``uint32 uncompressed_size`` unless the type is NONE, then the bytes).
The server opens with PORT_INIT (201: ``uint32 name_size; uint32 name_offset; uint8 opened``
and the NUL-terminated name at that offset, right after the fixed part) and says when the
application opens or closes the port with PORT_EVENT (202: ``uint8 event``); the client's
PORT_EVENT (201) carries events such as BREAK. Event numbers from the client stay plain ints:
the C server passes unknown ones on to the device too.
"""

from __future__ import annotations

import struct
from typing import ClassVar, Self

import attrs

from spice.domain.enums import DataCompressionType, MsgcPort, MsgcSpicevmc, MsgPort, MsgSpicevmc
from spice.domain.errors import MessageDecodeError
from spice.domain.messages.codec import Fixed, Layout, registry, uint_check, unpack_exact

_INIT = struct.Struct("<IIB")
#: Longest port name we announce (QEMU's are short, such as ``org.qemu.guest_agent.0``).
MAX_PORT_NAME = 255
_U8 = uint_check(8)


def _name(_inst: object, _attribute: object, value: bytes) -> None:
    if not 1 <= len(value) <= MAX_PORT_NAME or b"\0" in value:
        raise ValueError(f"a port name is 1 to {MAX_PORT_NAME} bytes without NUL, not {value!r}")


@attrs.frozen
class PortInit:
    """The port's name and whether the application has it open, sent on link."""

    MSG_TYPE: ClassVar[int] = MsgPort.INIT
    name: bytes = attrs.field(validator=_name)
    opened: bool

    def encode(self) -> bytes:
        name = self.name + b"\0"
        return _INIT.pack(len(name), _INIT.size, int(self.opened)) + name


@attrs.frozen
class PortEventMsg(Fixed):
    """Server PORT_EVENT: the application opened (OPENED) or closed (CLOSED) the port."""

    MSG_TYPE: ClassVar[int] = MsgPort.EVENT
    LAYOUT: ClassVar[Layout] = Layout("B", "EVENT")
    event: int = attrs.field(validator=_U8)


@attrs.frozen
class SpicevmcData:
    """Server DATA: bytes from the application, the whole body."""

    MSG_TYPE: ClassVar[int] = MsgSpicevmc.DATA
    data: bytes

    def encode(self) -> bytes:
        return self.data


@attrs.frozen
class ClientSpicevmcData(Fixed):
    """Client DATA: bytes for the application, the whole body."""

    MSG_TYPE: ClassVar[int] = MsgcSpicevmc.DATA
    LAYOUT: ClassVar[Layout] = Layout("", "DATA", tail=True)
    data: bytes


@attrs.frozen
class ClientSpicevmcCompressedData:
    """Client COMPRESSED_DATA. We never advertise the LZ4 cap, so only NONE may come; its
    bytes are taken as DATA."""

    MSG_TYPE: ClassVar[int] = MsgcSpicevmc.COMPRESSED_DATA
    type: int
    uncompressed_size: int
    data: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        (kind,) = unpack_exact("B", body, "SPICEVMC_COMPRESSED_DATA")
        if kind == DataCompressionType.NONE:
            return cls(kind, len(body) - 1, bytes(body[1:]))
        if kind == DataCompressionType.LZ4:
            raise MessageDecodeError(
                "SPICEVMC_COMPRESSED_DATA: LZ4, but the server did not advertise it"
            )
        raise MessageDecodeError(f"SPICEVMC_COMPRESSED_DATA: unknown compression {kind}")


@attrs.frozen
class ClientPortEvent(Fixed):
    """Client PORT_EVENT: ``event`` as sent (BREAK 2; spice-gtk sends only values above
    CLOSED)."""

    MSG_TYPE: ClassVar[int] = MsgcPort.EVENT
    LAYOUT: ClassVar[Layout] = Layout("B", "PORT_EVENT")
    event: int


CLIENT_MESSAGES = registry(ClientSpicevmcData, ClientSpicevmcCompressedData, ClientPortEvent)
