"""Main channel messages (spice.proto ``channel MainChannel``): session setup, the channel
list, mouse modes, the multimedia clock and the agent transport."""

from __future__ import annotations

import struct
import uuid as uuid_mod
from typing import ClassVar, Self

import attrs

from spice.domain.enums import MsgcMain, MsgMain
from spice.domain.messages.codec import registry, unpack_exact


@attrs.frozen
class MainInit:
    MSG_TYPE: ClassVar[int] = MsgMain.INIT
    session_id: int
    display_channels_hint: int
    supported_mouse_modes: int
    current_mouse_mode: int
    agent_connected: bool
    agent_tokens: int
    multi_media_time: int
    ram_hint: int

    def encode(self) -> bytes:
        return struct.pack(
            "<8I",
            self.session_id,
            self.display_channels_hint,
            self.supported_mouse_modes,
            self.current_mouse_mode,
            int(self.agent_connected),
            self.agent_tokens,
            self.multi_media_time & 0xFFFFFFFF,
            self.ram_hint,
        )


@attrs.frozen
class ChannelsList:
    MSG_TYPE: ClassVar[int] = MsgMain.CHANNELS_LIST
    channels: tuple[tuple[int, int], ...]

    def encode(self) -> bytes:
        out = struct.pack("<I", len(self.channels))
        return out + b"".join(struct.pack("<BB", t, i) for t, i in self.channels)


@attrs.frozen
class MainMouseMode:
    MSG_TYPE: ClassVar[int] = MsgMain.MOUSE_MODE
    supported_modes: int
    current_mode: int

    def encode(self) -> bytes:
        return struct.pack("<HH", self.supported_modes, self.current_mode)


@attrs.frozen
class MultiMediaTime:
    MSG_TYPE: ClassVar[int] = MsgMain.MULTI_MEDIA_TIME
    time: int

    def encode(self) -> bytes:
        return struct.pack("<I", self.time & 0xFFFFFFFF)


@attrs.frozen
class AgentConnected:
    MSG_TYPE: ClassVar[int] = MsgMain.AGENT_CONNECTED

    def encode(self) -> bytes:
        return b""


@attrs.frozen
class AgentConnectedTokens:
    MSG_TYPE: ClassVar[int] = MsgMain.AGENT_CONNECTED_TOKENS
    num_tokens: int

    def encode(self) -> bytes:
        return struct.pack("<I", self.num_tokens)


@attrs.frozen
class AgentDisconnected:
    MSG_TYPE: ClassVar[int] = MsgMain.AGENT_DISCONNECTED
    error_code: int = 0

    def encode(self) -> bytes:
        return struct.pack("<I", self.error_code)


@attrs.frozen
class ServerAgentData:
    MSG_TYPE: ClassVar[int] = MsgMain.AGENT_DATA
    data: bytes

    def encode(self) -> bytes:
        return self.data


@attrs.frozen
class ServerAgentToken:
    MSG_TYPE: ClassVar[int] = MsgMain.AGENT_TOKEN
    num_tokens: int

    def encode(self) -> bytes:
        return struct.pack("<I", self.num_tokens)


@attrs.frozen
class MainName:
    MSG_TYPE: ClassVar[int] = MsgMain.NAME
    name: str

    def encode(self) -> bytes:
        raw = self.name.encode() + b"\0"
        return struct.pack("<I", len(raw)) + raw


@attrs.frozen
class MainUuid:
    MSG_TYPE: ClassVar[int] = MsgMain.UUID
    uuid: uuid_mod.UUID

    def encode(self) -> bytes:
        return self.uuid.bytes


@attrs.frozen
class ClientInfo:
    MSG_TYPE: ClassVar[int] = MsgcMain.CLIENT_INFO
    cache_size: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("Q", body, "CLIENT_INFO"))


@attrs.frozen
class AttachChannels:
    MSG_TYPE: ClassVar[int] = MsgcMain.ATTACH_CHANNELS

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls()


@attrs.frozen
class MouseModeRequest:
    MSG_TYPE: ClassVar[int] = MsgcMain.MOUSE_MODE_REQUEST
    mode: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("H", body, "MOUSE_MODE_REQUEST"))


@attrs.frozen
class AgentStart:
    MSG_TYPE: ClassVar[int] = MsgcMain.AGENT_START
    num_tokens: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("I", body, "AGENT_START"))


@attrs.frozen
class ClientAgentData:
    MSG_TYPE: ClassVar[int] = MsgcMain.AGENT_DATA
    data: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(bytes(body))


@attrs.frozen
class ClientAgentToken:
    MSG_TYPE: ClassVar[int] = MsgcMain.AGENT_TOKEN
    num_tokens: int

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(*unpack_exact("I", body, "AGENT_TOKEN"))


@attrs.frozen
class QualityIndicator:
    MSG_TYPE: ClassVar[int] = MsgcMain.QUALITY_INDICATOR
    data: bytes

    @classmethod
    def decode(cls, body: bytes) -> Self:
        return cls(bytes(body))


CLIENT_MESSAGES = registry(
    ClientInfo,
    AttachChannels,
    MouseModeRequest,
    AgentStart,
    ClientAgentData,
    ClientAgentToken,
    QualityIndicator,
)
