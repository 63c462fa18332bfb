"""What every channel connection shares once the link is done (the C server's
RedChannelClient): data-header framing, serials, the ack window and ping/pong.

A channel machine is fed bytes with :meth:`ChannelConnection.receive_data` and yields decoded
client messages from :meth:`next_event`; what it wants written accumulates and is taken with
:meth:`data_to_send`. Base messages (ACK_SYNC, ACK, PONG, DISCONNECTING) are handled here and
subclasses see only their own channel's messages through :meth:`_handle`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from spice.domain.enums import LinkError
from spice.domain.errors import LocalProtocolError, RemoteProtocolError
from spice.domain.framing import DEFAULT_MAX_CLIENT_MESSAGE, MessageReader, MessageWriter
from spice.domain.link import NEED_DATA
from spice.domain.messages import base
from spice.domain.messages.codec import ServerMessage

#: The reference server's ack window for display and cursor channels: the client acks every
#: 20 messages and the server stops sending while more than 40 are unacknowledged.
ACK_WINDOW = 20
#: With a byte window, at most this many windows of messages may be unacknowledged.
MAX_UNACKED_WINDOWS = 10


class ChannelClosed(Exception):
    """The client said DISCONNECTING: it is going away on purpose."""

    def __init__(self, reason: int) -> None:
        super().__init__(f"client disconnecting (reason {reason})")
        self.reason = reason


class ChannelConnection:
    """Framing and flow control of one channel connection, server side."""

    #: Client messages specific to the channel: type number -> class with ``decode``.
    CLIENT_MESSAGES: Mapping[int, Any] = {}

    def __init__(
        self,
        *,
        mini_header: bool,
        ack_window: int | None = None,
        max_message_size: int = DEFAULT_MAX_CLIENT_MESSAGE,
    ) -> None:
        self._reader = MessageReader(mini_header=mini_header, max_size=max_message_size)
        self._writer = MessageWriter(mini_header=mini_header)
        self._out: list[bytes | memoryview] = []
        self._ack_window = ack_window
        self._ack_generation = 0
        self._synced_generation: int | None = None
        self._unacked = 0
        #: Sizes of the messages not acknowledged yet, oldest first, and their sum.
        self._unacked_sizes: deque[int] = deque()
        self._unacked_bytes = 0
        #: With a byte window, many small messages may be out at once: the window then
        #: bounds the bytes not yet acknowledged (and the count by ``MAX_UNACKED_WINDOWS``).
        self.byte_window: int | None = None
        self._pings: dict[int, int] = {}
        self._next_ping_id = 0
        if ack_window:
            self._ack_generation = 1
            self.send(base.SetAck(self._ack_generation, ack_window))
            # SET_ACK itself does not count against the window.
            self._unacked = 0
            self._unacked_sizes.clear()
            self._unacked_bytes = 0

    # -- receiving -----------------------------------------------------------------------
    def receive_data(self, data: bytes | bytearray) -> None:
        self._reader.receive_data(data)

    @property
    def buffered(self) -> int:
        return self._reader.buffered

    def next_event(self) -> Any:
        """The next client message of this channel, or NEED_DATA."""
        while True:
            raw = self._reader.next_message()
            if raw is None:
                return NEED_DATA
            cls = self.CLIENT_MESSAGES.get(raw.type) or base.CLIENT_MESSAGES.get(raw.type)
            if cls is None:
                raise RemoteProtocolError(f"unknown message type {raw.type}")
            msg = cls.decode(raw.body)
            event = self._handle_base(msg)
            if event is not None:
                return event

    def _handle_base(self, msg: Any) -> Any:
        if isinstance(msg, base.AckSync):
            self._synced_generation = msg.generation
            return None
        if isinstance(msg, base.Ack):
            if self._ack_window and self._synced_generation == self._ack_generation:
                self._unacked = max(0, self._unacked - self._ack_window)
                for _ in range(min(self._ack_window, len(self._unacked_sizes))):
                    self._unacked_bytes -= self._unacked_sizes.popleft()
            return None
        if isinstance(msg, base.Pong):
            # Returned so the adapter can take the round trip against its clock; the stamp is
            # the ``now`` the ping was sent with.
            return msg if self._pings.pop(msg.id, None) is not None else None
        if isinstance(msg, base.ClientDisconnecting):
            raise ChannelClosed(msg.reason)
        if isinstance(msg, (base.MigrateFlushMark, base.ClientMigrateData)):
            return None
        return self._handle(msg)

    def _handle(self, msg: Any) -> Any:
        """Turn one channel message into an event (None: consumed)."""
        return msg

    # -- sending -------------------------------------------------------------------------
    def send(self, msg: ServerMessage) -> None:
        parts = getattr(msg, "encode_parts", None)
        if parts is not None:
            # Large images go out without another copy of their pixels.
            self.send_body(msg.MSG_TYPE, *parts())
        else:
            self.send_body(msg.MSG_TYPE, msg.encode())

    def send_body(self, msg_type: int, *parts: bytes | memoryview) -> None:
        size = sum(len(p) for p in parts)
        self._out.append(self._writer.header(msg_type, size))
        self._out.extend(p for p in parts if len(p))
        if self._ack_window:
            self._unacked += 1
            self._unacked_sizes.append(size)
            self._unacked_bytes += size

    @property
    def max_message_size(self) -> int:
        """The largest message the client may send (bigger: a protocol error)."""
        return self._reader.max_size

    @max_message_size.setter
    def max_message_size(self, size: int) -> None:
        self._reader.max_size = size

    def data_to_send(self) -> list[bytes | memoryview]:
        out, self._out = self._out, []
        return out

    @property
    def has_output(self) -> bool:
        """Bytes are queued for writing (:meth:`data_to_send` would return some)."""
        return bool(self._out)

    @property
    def may_send(self) -> bool:
        """False while the client owes acks for more than two windows of messages or, with a
        byte window, for more bytes than that (and for more than ``MAX_UNACKED_WINDOWS``
        windows of messages)."""
        if not self._ack_window or self._unacked <= 2 * self._ack_window:
            return True
        if self.byte_window is None:
            return False
        return (
            self._unacked_bytes <= self.byte_window
            and self._unacked <= MAX_UNACKED_WINDOWS * self._ack_window
        )

    @property
    def unacked_bytes(self) -> int:
        return self._unacked_bytes

    @property
    def unacked(self) -> int:
        return self._unacked

    def ping(self, now: int, padding: int = 0) -> int:
        """Queue a PING stamped with ``now`` (any monotonic integer clock), with ``padding``
        bytes to measure bandwidth; returns its id."""
        if len(self._pings) > 16:
            raise LocalProtocolError("too many unanswered pings")
        self._next_ping_id += 1
        self._pings[self._next_ping_id] = now
        self.send(base.Ping(self._next_ping_id, now, padding))
        return self._next_ping_id

    def on_round_trip(self, rtt: float, now: float) -> None:
        """A PING of ours came back after ``rtt`` seconds (``now``: the clock's seconds).
        Channels that pace themselves (display) listen."""

    @property
    def pings_outstanding(self) -> int:
        return len(self._pings)

    def disconnecting(self, now: int, reason: LinkError = LinkError.OK) -> None:
        self.send(base.Disconnecting(now, reason))
