"""Base messages every channel shares (spice.proto ``channel BaseChannel``): ack flow control,
ping/pong, notify and disconnecting."""

from __future__ import annotations

import struct
from typing import ClassVar

import attrs

from spice.domain.enums import LinkError, Msg, Msgc, NotifySeverity, NotifyVisibility
from spice.domain.messages.codec import Fixed, Layout, registry


@attrs.frozen
class SetAck(Fixed):
    MSG_TYPE: ClassVar[int] = Msg.SET_ACK
    LAYOUT: ClassVar[Layout] = Layout("II", "SET_ACK")
    generation: int
    window: int


#: Zero padding shared by every PING (the network test's is 250 KB).
_ZEROS = bytes(256 * 1024)


@attrs.frozen
class Ping:
    MSG_TYPE: ClassVar[int] = Msg.PING
    id: int
    timestamp: int
    padding: int = 0

    def encode(self) -> bytes:
        return b"".join(self.encode_parts())

    def encode_parts(self) -> tuple[bytes | memoryview, ...]:
        """The fields, then the zero padding as a view of one shared buffer: a network
        test's 250 KB PING per session allocates nothing."""
        head = struct.pack("<IQ", self.id, self.timestamp)
        if self.padding <= len(_ZEROS):
            return head, memoryview(_ZEROS)[: self.padding]
        return head, bytes(self.padding)


@attrs.frozen
class Disconnecting(Fixed):
    MSG_TYPE: ClassVar[int] = Msg.DISCONNECTING
    LAYOUT: ClassVar[Layout] = Layout("QI", "DISCONNECTING")
    time_stamp: int
    reason: LinkError


@attrs.frozen
class Notify:
    MSG_TYPE: ClassVar[int] = Msg.NOTIFY
    time_stamp: int
    severity: NotifySeverity
    visibility: NotifyVisibility
    message: str
    what: int = 0

    def encode(self) -> bytes:
        text = self.message.encode()
        # The reference server appends a NUL that message_len does not count.
        return (
            struct.pack(
                "<QIIII", self.time_stamp, self.severity, self.visibility, self.what, len(text)
            )
            + text
            + b"\0"
        )


@attrs.frozen
class AckSync(Fixed):
    MSG_TYPE: ClassVar[int] = Msgc.ACK_SYNC
    LAYOUT: ClassVar[Layout] = Layout("I", "ACK_SYNC")
    generation: int


@attrs.frozen
class Ack(Fixed):
    MSG_TYPE: ClassVar[int] = Msgc.ACK
    LAYOUT: ClassVar[Layout] = Layout("", "ACK")


@attrs.frozen
class Pong(Fixed):
    MSG_TYPE: ClassVar[int] = Msgc.PONG
    LAYOUT: ClassVar[Layout] = Layout("IQ", "PONG")
    id: int
    timestamp: int


@attrs.frozen
class ClientDisconnecting(Fixed):
    MSG_TYPE: ClassVar[int] = Msgc.DISCONNECTING
    LAYOUT: ClassVar[Layout] = Layout("QI", "DISCONNECTING")
    time_stamp: int
    reason: int


@attrs.frozen
class MigrateFlushMark(Fixed):
    MSG_TYPE: ClassVar[int] = Msgc.MIGRATE_FLUSH_MARK
    LAYOUT: ClassVar[Layout] = Layout("", "MIGRATE_FLUSH_MARK")


@attrs.frozen
class ClientMigrateData(Fixed):
    MSG_TYPE: ClassVar[int] = Msgc.MIGRATE_DATA
    LAYOUT: ClassVar[Layout] = Layout("", "MIGRATE_DATA", tail=True)
    data: bytes


CLIENT_MESSAGES = registry(
    AckSync, Ack, Pong, ClientDisconnecting, MigrateFlushMark, ClientMigrateData
)
