"""A SPICE client's side of the agent conversation, for driving an AgentMachine in memory.

It behaves as spice-gtk's channel-main.c does: AGENT_START with ~0 tokens, then
ANNOUNCE_CAPABILITIES(request=1); every agent message cut into AGENT_DATA bodies of at most
``chunk`` bytes, one token per body, queued while it has none; clipboard prefixes decided by
the caps the agent announced. Everything the machine writes is checked on the way: bodies of
at most 2048 bytes, never more than the tokens granted, and a stream that reassembles into
messages that decode.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from spice.domain.agent import messages as am
from spice.domain.agent.events import AgentEvent
from spice.domain.agent.machine import AgentMachine
from spice.domain.agent.stream import Complete, Reassembler
from spice.domain.caps import CapabilitySet
from spice.domain.link import NEED_DATA
from spice.domain.messages.main import ServerAgentData, ServerAgentToken

A = am.AgentCap
GTK_CAPS = CapabilitySet.of(
    A.MOUSE_STATE,
    A.MONITORS_CONFIG,
    A.REPLY,
    A.DISPLAY_CONFIG,
    A.CLIPBOARD_BY_DEMAND,
    A.CLIPBOARD_SELECTION,
    A.MONITORS_CONFIG_POSITION,
    A.FILE_XFER_DETAILED_ERRORS,
    A.CLIPBOARD_NO_RELEASE_ON_REGRAB,
    A.CLIPBOARD_GRAB_SERIAL,
)
HTML5_CAPS = CapabilitySet.of(A.MOUSE_STATE, A.MONITORS_CONFIG, A.REPLY)

#: Cuts one encoded message into AGENT_DATA bodies.
Splitter = Callable[[bytes], list[bytes]]


def chunks_of(size: int) -> Splitter:
    def split(data: bytes) -> list[bytes]:
        return [data[i : i + size] for i in range(0, len(data), size)] or [b""]

    return split


class AgentPeer:
    def __init__(
        self,
        machine: AgentMachine,
        *,
        caps: CapabilitySet = GTK_CAPS,
        grant: int = 0xFFFFFFFF,
        chunk: int = 2048,
    ) -> None:
        self.machine = machine
        self.caps = caps
        self.tokens = machine.window  # as MAIN_INIT told the client
        self.granted = grant  # AGENT_DATA bodies the machine may still send us
        self.split: Splitter = chunks_of(chunk)
        self.outbox: deque[bytes] = deque()
        self.agent_caps: CapabilitySet | None = None
        self.received: list[am.AgentMessage] = []
        self.bodies: list[bytes] = []  # every AGENT_DATA body the machine sent, as sent
        self.events: list[AgentEvent] = []
        self._inbound = Reassembler(lambda _type: 1 << 30)

    # what the client sends

    def start(self, announce: bool = True) -> None:
        self.machine.agent_start(self.granted)
        if announce:
            self.send(am.AnnounceCapabilities(request=True, caps=self.caps))
        self.pump()

    @property
    def selection_prefix(self) -> bool:
        # spice-gtk looks at the agent's announcement only (it announces the cap itself)
        agent = self.agent_caps or CapabilitySet()
        return A.CLIPBOARD_SELECTION in agent and A.CLIPBOARD_SELECTION in self.caps

    def send(self, msg: am.AgentMessage, *, pump: bool = True) -> None:
        self.send_raw(am.encode_message(msg, selection_prefix=self.selection_prefix), pump=pump)

    def send_raw(self, stream: bytes, *, pump: bool = True) -> None:
        self.outbox.extend(self.split(stream))
        if pump:
            self.pump()

    def pump(self) -> None:
        """Send what tokens allow and take everything the machine has, until nothing moves."""
        while True:
            self.collect()
            if not (self.outbox and self.tokens > 0):
                return
            self.tokens -= 1
            self.machine.receive_data(self.outbox.popleft())

    # what the client receives

    def collect(self) -> None:
        while (event := self.machine.next_event()) is not NEED_DATA:
            self.events.append(event)  # type: ignore[arg-type]
        for out in self.machine.data_to_send():
            if isinstance(out, ServerAgentToken):
                self.tokens += out.num_tokens
                continue
            assert isinstance(out, ServerAgentData)
            assert len(out.data) <= am.VD_AGENT_MAX_DATA_SIZE
            assert self.granted > 0, "agent data beyond the tokens the client gave"
            self.granted -= 1
            self.bodies.append(out.data)
            for frame in self._inbound.feed(out.data):
                assert isinstance(frame, Complete)
                msg = am.decode_payload(
                    frame.header.type, frame.payload, selection_prefix=self.selection_prefix
                )
                if isinstance(msg, am.AnnounceCapabilities):
                    self.agent_caps = msg.caps
                self.received.append(msg)

    def take(self) -> list[am.AgentMessage]:
        out, self.received = self.received, []
        return out

    def take_events(self) -> list[AgentEvent]:
        out, self.events = self.events, []
        return out
