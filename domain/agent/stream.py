"""The agent stream on the main channel: reassembly, chunking and tokens in both directions.

Client to server, AGENT_DATA bodies are consecutive slices of a byte stream of VDAgentMessages
(spice-gtk cuts at 2048 bytes, spice-html5 at 2042; neither mixes two messages in one body, but
a split anywhere is accepted here, including inside a header). :class:`Reassembler` keeps at
most one message in memory, and only up to a limit its owner gives per type; a message over its
limit, or of a type the owner does not want, is skipped as it streams past without being
buffered. A body over ``VD_AGENT_MAX_DATA_SIZE`` or a header whose protocol is not 1 is an
:class:`~.errors.AgentProtocolError`, as in libspice-server's agent message filter.

Each client AGENT_DATA spends one of the client's tokens; :class:`ClientTokens` models that
count (the window MAIN_INIT or AGENT_CONNECTED_TOKENS gave, 10 in the reference server) and
returns consumed tokens in batches of 5 (``REDS_TOKENS_TO_SEND``). A body arriving when the
model says the client has none is a token overrun.

Server to client, :class:`Sender` cuts every message into bodies of at most 2048 bytes, each
message starting a new body (spice-html5 reads every AGENT_DATA as one whole message, so small
messages must travel whole), and releases them only while the client's tokens (AGENT_START, then
AGENT_TOKEN) last.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import attrs

from spice.domain.agent.errors import AgentProtocolError
from spice.domain.agent.messages import (
    VD_AGENT_MAX_DATA_SIZE,
    VD_AGENT_PROTOCOL,
    AgentMessageHeader,
)

#: Tokens a client gets at MAIN_INIT / AGENT_CONNECTED_TOKENS (``REDS_AGENT_WINDOW_SIZE``).
AGENT_WINDOW = 10
#: Consumed tokens are returned in batches of this many (``REDS_TOKENS_TO_SEND``).
TOKENS_TO_SEND = 5
#: A token count is a uint32 on the wire; both clients grant ``~0`` and never more.
MAX_TOKENS = 0xFFFFFFFF


@attrs.frozen
class Complete:
    """A whole message whose payload was kept."""

    header: AgentMessageHeader
    payload: bytes


@attrs.frozen
class Skipped:
    """A message whose payload is being dropped unread; ``oversized`` when its size went over
    the limit for its type (rather than the type being unwanted). Reported at its header."""

    header: AgentMessageHeader
    oversized: bool


Frame = Complete | Skipped

#: Per message type: the largest payload to keep, or ``None`` to skip the type unread.
LimitFor = Callable[[int], int | None]


class Reassembler:
    """AGENT_DATA bodies in, whole messages (or notices of skipped ones) out."""

    def __init__(self, limit_for: LimitFor) -> None:
        self._limit_for = limit_for
        self._head = bytearray()
        self._header: AgentMessageHeader | None = None
        self._payload = bytearray()
        self._skip = 0  # payload bytes still to drop, when skipping

    @property
    def idle(self) -> bool:
        """Between messages: nothing of a partial message is held."""
        return self._header is None and not self._head

    @property
    def buffered(self) -> int:
        """Bytes held for the message in progress."""
        return len(self._head) + len(self._payload)

    def feed(self, body: bytes) -> list[Frame]:
        if len(body) > VD_AGENT_MAX_DATA_SIZE:
            raise AgentProtocolError(
                f"AGENT_DATA of {len(body)} bytes, more than {VD_AGENT_MAX_DATA_SIZE}"
            )
        frames: list[Frame] = []
        view = memoryview(body)
        while view:
            if self._header is None:
                need = AgentMessageHeader.SIZE - len(self._head)
                self._head += view[:need]
                view = view[need:]
                if len(self._head) == AgentMessageHeader.SIZE:
                    self._start(frames)
                continue
            if self._skip:
                n = min(self._skip, len(view))
                self._skip -= n
                view = view[n:]
                if not self._skip:
                    self._header = None
                continue
            need = self._header.size - len(self._payload)
            self._payload += view[:need]
            view = view[need:]
            if len(self._payload) == self._header.size:
                self._finish(frames)
        return frames

    def _start(self, frames: list[Frame]) -> None:
        header = AgentMessageHeader.decode(bytes(self._head))
        self._head.clear()
        if header.protocol != VD_AGENT_PROTOCOL:
            raise AgentProtocolError(f"agent message with protocol {header.protocol}, not 1")
        self._header = header
        limit = self._limit_for(header.type)
        if limit is None or header.size > limit:
            frames.append(Skipped(header, oversized=limit is not None))
            self._skip = header.size
            if not self._skip:
                self._header = None
        elif header.size == 0:
            self._finish(frames)

    def _finish(self, frames: list[Frame]) -> None:
        assert self._header is not None
        frames.append(Complete(self._header, bytes(self._payload)))
        self._payload.clear()
        self._header = None


class ClientTokens:
    """Our model of how many AGENT_DATA messages the client may still send."""

    def __init__(self, window: int = AGENT_WINDOW, batch: int = TOKENS_TO_SEND) -> None:
        self.available = window
        self.owed = 0
        self.batch = batch

    def spend(self) -> None:
        if self.available <= 0:
            raise AgentProtocolError("AGENT_DATA without a token (token overrun)")
        self.available -= 1
        self.owed += 1

    def grant(self, *, now: bool = False) -> int:
        """Tokens to return now in an AGENT_TOKEN (0 for none yet): a batch, or whatever is
        owed when ``now`` (a client message just ended: spice-gtk sends a message it queued
        after its last one, such as the CANCELLED status of a file transfer, only when the
        main channel next wakes, and a token is what wakes it)."""
        if self.owed == 0 or (self.owed < self.batch and not now):
            return 0
        n, self.owed = self.owed, 0
        self.available += n
        return n


class Sender:
    """Outgoing agent messages as AGENT_DATA bodies, released against the client's tokens."""

    def __init__(self) -> None:
        self.tokens = 0
        self._bodies: deque[bytes] = deque()
        self.backlog = 0  # bytes queued, not yet released

    def set_tokens(self, n: int) -> None:
        self.tokens = min(n, MAX_TOKENS)

    def add_tokens(self, n: int) -> None:
        self.tokens = min(self.tokens + n, MAX_TOKENS)

    def queue(self, message: bytes) -> None:
        for at in range(0, len(message), VD_AGENT_MAX_DATA_SIZE):
            body = message[at : at + VD_AGENT_MAX_DATA_SIZE]
            self._bodies.append(body)
            self.backlog += len(body)

    def take(self) -> list[bytes]:
        out: list[bytes] = []
        while self._bodies and self.tokens > 0:
            body = self._bodies.popleft()
            self.backlog -= len(body)
            self.tokens -= 1
            out.append(body)
        return out

    def clear(self) -> None:
        self._bodies.clear()
        self.backlog = 0
