"""Main channel messages (spice.proto ``channel MainChannel``): session setup, the channel
list, mouse modes, the multimedia clock and the agent transport."""

from __future__ import annotations

import struct
import uuid as uuid_mod
from typing import ClassVar

import attrs

from spice.domain.enums import MsgcMain, MsgMain
from spice.domain.messages.codec import Fixed, Layout, registry


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
class MainMouseMode(Fixed):
    MSG_TYPE: ClassVar[int] = MsgMain.MOUSE_MODE
    LAYOUT: ClassVar[Layout] = Layout("HH", "MOUSE_MODE")
    supported_modes: int
    current_mode: int


@attrs.frozen
class MultiMediaTime:
    MSG_TYPE: ClassVar[int] = MsgMain.MULTI_MEDIA_TIME
    time: int

    def encode(self) -> bytes:
        return struct.pack("<I", self.time & 0xFFFFFFFF)


@attrs.frozen
class AgentConnected(Fixed):
    MSG_TYPE: ClassVar[int] = MsgMain.AGENT_CONNECTED
    LAYOUT: ClassVar[Layout] = Layout("", "AGENT_CONNECTED")


@attrs.frozen
class AgentConnectedTokens(Fixed):
    MSG_TYPE: ClassVar[int] = MsgMain.AGENT_CONNECTED_TOKENS
    LAYOUT: ClassVar[Layout] = Layout("I", "AGENT_CONNECTED_TOKENS")
    num_tokens: int


@attrs.frozen
class AgentDisconnected(Fixed):
    MSG_TYPE: ClassVar[int] = MsgMain.AGENT_DISCONNECTED
    LAYOUT: ClassVar[Layout] = Layout("I", "AGENT_DISCONNECTED")
    error_code: int = 0


@attrs.frozen
class ServerAgentData:
    MSG_TYPE: ClassVar[int] = MsgMain.AGENT_DATA
    data: bytes

    def encode(self) -> bytes:
        return self.data


@attrs.frozen
class ServerAgentToken(Fixed):
    MSG_TYPE: ClassVar[int] = MsgMain.AGENT_TOKEN
    LAYOUT: ClassVar[Layout] = Layout("I", "AGENT_TOKEN")
    num_tokens: int


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
class ClientInfo(Fixed):
    MSG_TYPE: ClassVar[int] = MsgcMain.CLIENT_INFO
    LAYOUT: ClassVar[Layout] = Layout("Q", "CLIENT_INFO")
    cache_size: int


@attrs.frozen
class AttachChannels(Fixed):
    MSG_TYPE: ClassVar[int] = MsgcMain.ATTACH_CHANNELS
    LAYOUT: ClassVar[Layout] = Layout("", "ATTACH_CHANNELS")


@attrs.frozen
class MouseModeRequest(Fixed):
    MSG_TYPE: ClassVar[int] = MsgcMain.MOUSE_MODE_REQUEST
    LAYOUT: ClassVar[Layout] = Layout("H", "MOUSE_MODE_REQUEST")
    mode: int


@attrs.frozen
class AgentStart(Fixed):
    MSG_TYPE: ClassVar[int] = MsgcMain.AGENT_START
    LAYOUT: ClassVar[Layout] = Layout("I", "AGENT_START")
    num_tokens: int


@attrs.frozen
class ClientAgentData(Fixed):
    MSG_TYPE: ClassVar[int] = MsgcMain.AGENT_DATA
    LAYOUT: ClassVar[Layout] = Layout("", "AGENT_DATA", tail=True)
    data: bytes


@attrs.frozen
class ClientAgentToken(Fixed):
    MSG_TYPE: ClassVar[int] = MsgcMain.AGENT_TOKEN
    LAYOUT: ClassVar[Layout] = Layout("I", "AGENT_TOKEN")
    num_tokens: int


@attrs.frozen
class QualityIndicator(Fixed):
    MSG_TYPE: ClassVar[int] = MsgcMain.QUALITY_INDICATOR
    LAYOUT: ClassVar[Layout] = Layout("", "QUALITY_INDICATOR", tail=True)
    data: bytes


CLIENT_MESSAGES = registry(
    ClientInfo,
    AttachChannels,
    MouseModeRequest,
    AgentStart,
    ClientAgentData,
    ClientAgentToken,
    QualityIndicator,
)
