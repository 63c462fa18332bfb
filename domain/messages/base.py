"""Base messages every channel shares (spice.proto ``channel BaseChannel``): ack flow control,
ping/pong, notify and disconnecting."""

from __future__ import annotations

import struct
from typing import ClassVar, Self

import attrs

from spice.domain.enums import LinkError, Msg, Msgc, NotifySeverity, NotifyVisibility
from spice.domain.messages.codec import registry, unpack_exact


@attrs.frozen
class SetAck:
    MSG_TYPE: ClassVar[int] = Msg.SET_ACK
    generation: int
    window: int

    def encode(self) -> bytes:
        return struct.pack("<II", self.generation, self.window)


@attrs.frozen
class Ping:
    MSG_TYPE: ClassVar[int] = Msg.PING
    id: int
    timestamp: int
    padding: int = 0

    def encode(self) -> bytes:
        return struct.pack("<IQ", self.id, self.timestamp) + bytes(self.padding)


@attrs.frozen
class Disconnecting:
    MSG_TYPE: ClassVar[int] = Msg.DISCONNECTING
    time_stamp: int
    reason: LinkError

    def encode(self) -> bytes:
        return struct.pack("<QI", self.time_stamp, self.reason)


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
class AckSync:
    MSG_TYPE: ClassVar[int] = Msgc.ACK_SYNC
    generation: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("I", body, "ACK_SYNC"))


@attrs.frozen
class Ack:
    MSG_TYPE: ClassVar[int] = Msgc.ACK

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls()


@attrs.frozen
class Pong:
    MSG_TYPE: ClassVar[int] = Msgc.PONG
    id: int
    timestamp: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("IQ", body, "PONG"))


@attrs.frozen
class ClientDisconnecting:
    MSG_TYPE: ClassVar[int] = Msgc.DISCONNECTING
    time_stamp: int
    reason: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("QI", body, "DISCONNECTING"))


@attrs.frozen
class MigrateFlushMark:
    MSG_TYPE: ClassVar[int] = Msgc.MIGRATE_FLUSH_MARK

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls()


@attrs.frozen
class ClientMigrateData:
    MSG_TYPE: ClassVar[int] = Msgc.MIGRATE_DATA
    data: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(bytes(body))


CLIENT_MESSAGES = registry(
    AckSync, Ack, Pong, ClientDisconnecting, MigrateFlushMark, ClientMigrateData
)
