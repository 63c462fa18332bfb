"""The main channel: the first connection of every client session.

Right after the link the server sends MAIN_INIT (and NAME/UUID to clients that announced
NAME_AND_UUID); the client answers with ATTACH_CHANNELS, after which, and only after which, the
server may send CHANNELS_LIST. Mouse-mode requests and the agent's messages (AGENT_START,
AGENT_DATA, AGENT_TOKEN, for :class:`~spice.domain.agent.machine.AgentMachine`) come out as
events for the session to decide.
"""

from __future__ import annotations

import uuid as uuid_mod
from typing import Any

from spice.domain.agent.stream import AGENT_WINDOW
from spice.domain.caps import CapabilitySet
from spice.domain.channel import ChannelConnection
from spice.domain.enums import MainCap
from spice.domain.errors import LocalProtocolError
from spice.domain.messages import main as m


class MainChannel(ChannelConnection):
    CLIENT_MESSAGES = m.CLIENT_MESSAGES

    def __init__(self, *, mini_header: bool, client_caps: CapabilitySet) -> None:
        super().__init__(mini_header=mini_header)
        self.client_caps = client_caps
        self.attached = False

    def start(
        self,
        *,
        session_id: int,
        display_channels: int,
        supported_mouse_modes: int,
        current_mouse_mode: int,
        multi_media_time: int,
        name: str | None = None,
        uuid: uuid_mod.UUID | None = None,
        agent_connected: bool = False,
        agent_tokens: int = AGENT_WINDOW,
    ) -> None:
        """MAIN_INIT: ``agent_tokens`` is how many AGENT_DATA messages the client may send
        before it needs a token (the agent machine's window)."""
        self.send(
            m.MainInit(
                session_id=session_id,
                display_channels_hint=display_channels,
                supported_mouse_modes=supported_mouse_modes,
                current_mouse_mode=current_mouse_mode,
                agent_connected=agent_connected,
                agent_tokens=agent_tokens,
                multi_media_time=multi_media_time,
                ram_hint=0,
            )
        )
        if MainCap.NAME_AND_UUID in self.client_caps:
            if name is not None:
                self.send(m.MainName(name))
            if uuid is not None:
                self.send(m.MainUuid(uuid))

    def _handle(self, msg: Any) -> Any:
        if isinstance(msg, m.AttachChannels):
            self.attached = True
        return msg

    def send_channels_list(self, channels: list[tuple[int, int]]) -> None:
        if not self.attached:
            raise LocalProtocolError("CHANNELS_LIST before ATTACH_CHANNELS")
        self.send(m.ChannelsList(tuple(channels)))

    def send_mouse_mode(self, supported: int, current: int) -> None:
        self.send(m.MainMouseMode(supported, current))
