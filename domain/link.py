"""The link stage of one SPICE connection, as a pure state machine.

Every channel connection starts here. The client speaks first: a SpiceLinkHeader and a
SpiceLinkMess with its capabilities (:class:`LinkRequest`). The server answers with a
SpiceLinkReply (its public key and capabilities) or a reply carrying a link error. The client
then sends the auth mechanism (only if it announced PROTOCOL_AUTH_SELECTION) and a 128-byte
RSA-encrypted ticket (:class:`AuthTicket`); the server writes a bare uint32 link result. After
an OK result the connection hands over to a channel machine with :meth:`LinkServer.trailing_data`.

With SASL (``LinkServer(sasl=True)``, the C server's ``spice_server_set_sasl``) the client picks
mechanism AUTH_SASL instead of sending a ticket, and the exchange of red-stream's
``red_sasl_*`` follows, all integers little-endian uint32: the server sends the mechanism list
(length, then the names between commas, no NUL: ``,SCRAM-SHA-256,PLAIN,``); the client sends
the name it chose (length 1..100, then the name) and its first data (:class:`SaslStart`); each
answer of the server is a length, the data, and one ``complete`` byte (0 more steps, 1 done),
and each further client message is a length and data (:class:`SaslResponse`). Lengths of data
count a trailing NUL both ways (0 means no data at all, which SASL tells apart from empty
data). After the ``complete`` byte the server writes a uint32 0 (red-stream's "auth
accepted", read by spice-gtk's SASL code) and then, as after a ticket, the link result (read
by its link code): two words. A refused client is simply closed.

Feed bytes with :meth:`receive_data`, pull events with :meth:`next_event`, and call the
``send_*`` methods for the bytes to write. A peer's violation raises
:class:`~domain.errors.RemoteProtocolError` whose ``link_error`` says what to answer;
:meth:`LinkServer.fail` gives the bytes for that answer at the current stage.
"""

from __future__ import annotations

import enum
import struct

import attrs

from spice.domain.caps import CapabilitySet
from spice.domain.enums import (
    SPICE_MAGIC,
    SPICE_TICKET_PUBKEY_BYTES,
    SPICE_VERSION_MAJOR,
    SPICE_VERSION_MINOR,
    CommonCap,
    LinkError,
)
from spice.domain.errors import LocalProtocolError, RemoteProtocolError

LINK_HEADER = struct.Struct("<4sIII")
LINK_MESS = struct.Struct("<IBBIII")
REPLY_FIXED = struct.Struct(f"<I{SPICE_TICKET_PUBKEY_BYTES}sIII")
#: The reference server's limits on the link message and on each capability array.
MAX_LINK_SIZE = 4096
MAX_CAPS_WORDS = 1024
#: RSA_size() of the 1024-bit ticket key.
ENCRYPTED_TICKET_BYTES = 128
#: The reference server's limits on a SASL mechanism name and on one SASL data message.
SASL_MAX_MECHNAME = 100
SASL_MAX_DATA = 1024 * 1024
U32 = struct.Struct("<I")


class NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return self.value


NEED_DATA = NeedData.NEED_DATA


@attrs.frozen
class LinkRequest:
    """A parsed SpiceLinkHeader + SpiceLinkMess."""

    major_version: int
    minor_version: int
    connection_id: int
    channel_type: int
    channel_id: int
    common_caps: CapabilitySet
    channel_caps: CapabilitySet


@attrs.frozen
class AuthTicket:
    """The auth mechanism the client chose and its encrypted ticket."""

    mechanism: int
    encrypted: bytes


@attrs.frozen
class SaslRequested:
    """The client chose SASL: the server owes it the mechanism list
    (:meth:`LinkServer.send_sasl_mechanisms`)."""


@attrs.frozen
class SaslStart:
    """The client's chosen mechanism and its initial response (None: it sent none)."""

    mechanism: str
    data: bytes | None


@attrs.frozen
class SaslResponse:
    """The client's answer to a SASL challenge (None: no data)."""

    data: bytes | None


SaslEvent = SaslRequested | SaslStart | SaslResponse


class LinkState(enum.Enum):
    READ_HEADER = "READ_HEADER"
    READ_MESS = "READ_MESS"
    AWAIT_REPLY = "AWAIT_REPLY"
    READ_MECHANISM = "READ_MECHANISM"
    READ_TICKET = "READ_TICKET"
    AWAIT_SASL_MECHANISMS = "AWAIT_SASL_MECHANISMS"
    READ_SASL_MECHNAME = "READ_SASL_MECHNAME"
    READ_SASL_DATA = "READ_SASL_DATA"
    AWAIT_SASL_CHALLENGE = "AWAIT_SASL_CHALLENGE"
    AWAIT_RESULT = "AWAIT_RESULT"
    DONE = "DONE"
    FAILED = "FAILED"

    def __repr__(self) -> str:
        return self.value


def encode_link_header(size: int) -> bytes:
    return LINK_HEADER.pack(SPICE_MAGIC, SPICE_VERSION_MAJOR, SPICE_VERSION_MINOR, size)


def encode_link_reply(
    error: LinkError,
    pub_key: bytes,
    common_caps: CapabilitySet,
    channel_caps: CapabilitySet,
) -> bytes:
    """SpiceLinkHeader + SpiceLinkReply. On error the key is zeroed and no caps are sent."""
    if error != LinkError.OK:
        pub_key = bytes(SPICE_TICKET_PUBKEY_BYTES)
        common_caps = channel_caps = CapabilitySet()
    if len(pub_key) != SPICE_TICKET_PUBKEY_BYTES:
        raise LocalProtocolError(f"public key must be {SPICE_TICKET_PUBKEY_BYTES} bytes")
    common, channel = common_caps.words(), channel_caps.words()
    body = REPLY_FIXED.pack(error, pub_key, len(common), len(channel), REPLY_FIXED.size)
    body += common_caps.encode() + channel_caps.encode()
    return encode_link_header(len(body)) + body


def encode_link_result(error: LinkError) -> bytes:
    return struct.pack("<I", error)


def encode_sasl_mechanisms(names: list[str]) -> bytes:
    """The mechanism list as red-stream writes it: a length, then ``,NAME,NAME,``."""
    if not names:
        raise LocalProtocolError("a SASL mechanism list cannot be empty")
    for name in names:
        if not name or "," in name or len(name) > SASL_MAX_MECHNAME or not name.isascii():
            raise LocalProtocolError(f"bad SASL mechanism name {name!r}")
    body = ("," + ",".join(names) + ",").encode("ascii")
    return U32.pack(len(body)) + body


def encode_sasl_challenge(data: bytes | None, complete: bool) -> bytes:
    """One server step: a length counting a trailing NUL (0: no data), the data, the NUL, and
    the ``complete`` byte."""
    if data is None or not data:
        # red-stream sends a zero length for empty server data too.
        return U32.pack(0) + bytes([complete])
    if len(data) >= SASL_MAX_DATA:
        raise LocalProtocolError("SASL server data too long")
    return U32.pack(len(data) + 1) + data + b"\0" + bytes([complete])


def parse_link_mess(major: int, minor: int, mess: bytes) -> LinkRequest:
    """Parse a SpiceLinkMess of exactly the size the header announced."""
    if len(mess) < LINK_MESS.size:
        raise RemoteProtocolError("link message too short", LinkError.INVALID_DATA)
    conn_id, ch_type, ch_id, n_common, n_channel, caps_offset = LINK_MESS.unpack_from(mess)
    if n_common > MAX_CAPS_WORDS or n_channel > MAX_CAPS_WORDS:
        raise RemoteProtocolError("too many capability words", LinkError.INVALID_DATA)
    if caps_offset < LINK_MESS.size or caps_offset + 4 * (n_common + n_channel) > len(mess):
        raise RemoteProtocolError("capabilities overrun the link message", LinkError.INVALID_DATA)
    words = struct.unpack_from(f"<{n_common + n_channel}I", mess, caps_offset)
    return LinkRequest(
        major_version=major,
        minor_version=minor,
        connection_id=conn_id,
        channel_type=ch_type,
        channel_id=ch_id,
        common_caps=CapabilitySet.from_words(words[:n_common]),
        channel_caps=CapabilitySet.from_words(words[n_common:]),
    )


class LinkServer:
    """The server side of one connection's link stage."""

    def __init__(self, *, sasl: bool = False) -> None:
        #: Whether the server authenticates with SASL instead of the ticket.
        self.sasl = sasl
        self._sasl_mechanisms: list[str] = []
        self._sasl_mechanism: str | None = None
        self._buf = bytearray()
        self.state = LinkState.READ_HEADER
        self._major = self._minor = self._size = 0
        self.request: LinkRequest | None = None
        self._mechanism = CommonCap.AUTH_SPICE.value
        self._replied = False

    def receive_data(self, data: bytes | bytearray) -> None:
        if self.state in (LinkState.DONE, LinkState.FAILED):
            raise LocalProtocolError(f"receive_data in state {self.state!r}")
        self._buf += data

    def trailing_data(self) -> bytes:
        """Bytes received after the ticket: the first framed messages of the channel."""
        if self.state is not LinkState.DONE:
            raise LocalProtocolError("the link is not done")
        return bytes(self._buf)

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _take(self, n: int) -> bytes | None:
        if len(self._buf) < n:
            return None
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def next_event(self) -> LinkRequest | AuthTicket | SaslEvent | NeedData:
        if self.state in (LinkState.DONE, LinkState.FAILED):
            raise LocalProtocolError(f"next_event in state {self.state!r}")
        try:
            return self._next_event()
        except RemoteProtocolError:
            self.state = LinkState.FAILED
            raise

    def _next_event(self) -> LinkRequest | AuthTicket | SaslEvent | NeedData:
        if self.state is LinkState.READ_HEADER:
            # Check the magic as soon as it arrives, so that garbage fails at once.
            if len(self._buf) >= 4 and bytes(self._buf[:4]) != SPICE_MAGIC:
                raise RemoteProtocolError("bad magic", LinkError.INVALID_MAGIC)
            raw = self._take(LINK_HEADER.size)
            if raw is None:
                return NEED_DATA
            _, self._major, self._minor, self._size = LINK_HEADER.unpack(raw)
            if self._major != SPICE_VERSION_MAJOR:
                # The reference server closes silently on major 0 (old protocol).
                err = LinkError.VERSION_MISMATCH if self._major else None
                raise RemoteProtocolError(f"protocol major version {self._major}", err)
            if self._size < LINK_MESS.size or self._size > MAX_LINK_SIZE:
                raise RemoteProtocolError(
                    f"link message size {self._size} out of range", LinkError.INVALID_DATA
                )
            self.state = LinkState.READ_MESS
        if self.state is LinkState.READ_MESS:
            mess = self._take(self._size)
            if mess is None:
                return NEED_DATA
            self.request = parse_link_mess(self._major, self._minor, mess)
            if self.sasl and CommonCap.PROTOCOL_AUTH_SELECTION not in self.request.common_caps:
                # reds' answer to a client that cannot select SASL.
                raise RemoteProtocolError(
                    "SASL is required but the client cannot select it", LinkError.VERSION_MISMATCH
                )
            self.state = LinkState.AWAIT_REPLY
            return self.request
        if self.state is LinkState.READ_MECHANISM:
            raw = self._take(4)
            if raw is None:
                return NEED_DATA
            (self._mechanism,) = struct.unpack("<I", raw)
            wanted = CommonCap.AUTH_SASL if self.sasl else CommonCap.AUTH_SPICE
            if self._mechanism != wanted:
                raise RemoteProtocolError(
                    f"unsupported auth mechanism {self._mechanism}", LinkError.INVALID_DATA
                )
            if self.sasl:
                self.state = LinkState.AWAIT_SASL_MECHANISMS
                return SaslRequested()
            self.state = LinkState.READ_TICKET
        if self.state is LinkState.READ_TICKET:
            ticket = self._take(ENCRYPTED_TICKET_BYTES)
            if ticket is None:
                return NEED_DATA
            self.state = LinkState.AWAIT_RESULT
            return AuthTicket(self._mechanism, ticket)
        if self.state is LinkState.READ_SASL_MECHNAME:
            return self._read_sasl_mechname()
        if self.state is LinkState.READ_SASL_DATA:
            return self._read_sasl_data()
        return NEED_DATA

    def _read_sasl_mechname(self) -> SaslStart | SaslResponse | NeedData:
        if len(self._buf) < 4:
            return NEED_DATA
        (n,) = U32.unpack_from(self._buf)
        if not 1 <= n <= SASL_MAX_MECHNAME:
            # red-stream closes without an answer here.
            raise RemoteProtocolError(f"SASL mechanism name length {n}", None)
        if len(self._buf) < 4 + n:
            return NEED_DATA
        raw = bytes(self._buf[4 : 4 + n])
        name = raw.decode("ascii", "replace")
        if "," in name or name not in self._sasl_mechanisms:
            raise RemoteProtocolError(
                f"SASL mechanism {raw[:40]!r} was not offered", LinkError.INVALID_DATA
            )
        del self._buf[: 4 + n]
        self._sasl_mechanism = name
        self.state = LinkState.READ_SASL_DATA
        return self._read_sasl_data()

    def _read_sasl_data(self) -> SaslStart | SaslResponse | NeedData:
        if len(self._buf) < 4:
            return NEED_DATA
        (n,) = U32.unpack_from(self._buf)
        if n > SASL_MAX_DATA:
            start = self._sasl_mechanism is not None
            raise RemoteProtocolError(
                f"SASL data of {n} bytes", LinkError.INVALID_DATA if start else None
            )
        if len(self._buf) < 4 + n:
            return NEED_DATA
        # The length counts a trailing NUL that red-stream overwrites rather than checks.
        data = bytes(self._buf[4 : 4 + n - 1]) if n else None
        del self._buf[: 4 + n]
        self.state = LinkState.AWAIT_SASL_CHALLENGE
        if self._sasl_mechanism is not None:
            name, self._sasl_mechanism = self._sasl_mechanism, None
            return SaslStart(name, data)
        return SaslResponse(data)

    def send_reply(
        self, pub_key: bytes, common_caps: CapabilitySet, channel_caps: CapabilitySet
    ) -> bytes:
        if self.state is not LinkState.AWAIT_REPLY or self.request is None:
            raise LocalProtocolError(f"send_reply in state {self.state!r}")
        self._replied = True
        selects = CommonCap.PROTOCOL_AUTH_SELECTION in self.request.common_caps
        self.state = LinkState.READ_MECHANISM if selects else LinkState.READ_TICKET
        return encode_link_reply(LinkError.OK, pub_key, common_caps, channel_caps)

    def send_sasl_mechanisms(self, names: list[str]) -> bytes:
        """The mechanism list this link offers (after :class:`SaslRequested`)."""
        if self.state is not LinkState.AWAIT_SASL_MECHANISMS:
            raise LocalProtocolError(f"send_sasl_mechanisms in state {self.state!r}")
        out = encode_sasl_mechanisms(names)
        self._sasl_mechanisms = list(names)
        self.state = LinkState.READ_SASL_MECHNAME
        return out

    def send_sasl_challenge(self, data: bytes | None, *, complete: bool) -> bytes:
        """The server's answer to :class:`SaslStart` or :class:`SaslResponse`; a complete one
        ends with the "accepted" word, and the link result follows (:meth:`send_result`)."""
        if self.state is not LinkState.AWAIT_SASL_CHALLENGE:
            raise LocalProtocolError(f"send_sasl_challenge in state {self.state!r}")
        out = encode_sasl_challenge(data, complete)
        if complete:
            # The SASL layer's own "accepted" word, before the link result.
            out += encode_link_result(LinkError.OK)
        self.state = LinkState.AWAIT_RESULT if complete else LinkState.READ_SASL_DATA
        return out

    def send_result(self, error: LinkError) -> bytes:
        if self.state is not LinkState.AWAIT_RESULT:
            raise LocalProtocolError(f"send_result in state {self.state!r}")
        self.state = LinkState.DONE if error == LinkError.OK else LinkState.FAILED
        return encode_link_result(error)

    def fail(self, error: LinkError | None) -> bytes:
        """The bytes that tell the client the link failed with ``error`` at this stage: a
        SpiceLinkReply before the reply was sent, a bare link result after it. The machine is
        terminal afterwards."""
        self.state = LinkState.FAILED
        if error is None:
            return b""
        if self._replied:
            return encode_link_result(error)
        self._replied = True
        return encode_link_reply(error, b"", CapabilitySet(), CapabilitySet())
