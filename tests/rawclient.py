"""A small SPICE client on Trio for tests, written from the protocol layout (PROTOCOL.md §1-2).

It builds and parses every byte itself with :mod:`struct` and never calls the server's own
encoders or parsers, so a test that uses it checks the server against the spec rather than
against itself. It speaks only what tests need: the link stage (with the RSA ticket), mini
headers, SET_ACK/ACK and PING/PONG housekeeping, and a session of main + secondary channels.

Pieces are exposed separately (:func:`link_header`, :func:`link_mess`, :func:`read_link_reply`,
:func:`read_until_closed`) so that hostile-client tests can send malformed bytes by hand and
read what the server answers.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

import trio
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_der_public_key

# -- constants, from spice-protocol's enums.h / protocol.h --------------------------------------

MAGIC = b"REDQ"
VERSION_MAJOR = 2
VERSION_MINOR = 2

# Common capability numbers (bit numbers, not masks).
AUTH_SELECTION = 0
AUTH_SPICE = 1
AUTH_SASL = 2
MINI_HEADER = 3

# Channel types.
MAIN, DISPLAY, INPUTS, CURSOR = 1, 2, 3, 4
PORT = 10

# Link errors.
OK = 0
ERROR = 1
INVALID_MAGIC = 2
INVALID_DATA = 3
VERSION_MISMATCH = 4
NEED_SECURED = 5
NEED_UNSECURED = 6
PERMISSION_DENIED = 7
BAD_CONNECTION_ID = 8
CHANNEL_NOT_AVAILABLE = 9

# Base messages, server -> client and client -> server.
MSG_SET_ACK = 3
MSG_PING = 4
MSG_DISCONNECTING = 6
MSGC_ACK_SYNC = 1
MSGC_ACK = 2
MSGC_PONG = 3
MSGC_DISCONNECTING = 6

# Main channel.
MSG_MAIN_INIT = 103
MSG_MAIN_CHANNELS_LIST = 104
MSGC_MAIN_ATTACH_CHANNELS = 104

# Display channel.
MSG_DISPLAY_MARK = 102
MSG_DISPLAY_COPY_BITS = 104
MSG_DISPLAY_DRAW_FILL = 302
MSG_DISPLAY_DRAW_COPY = 304
MSG_DISPLAY_SURFACE_CREATE = 314
MSG_DISPLAY_SURFACE_DESTROY = 315
MSG_DISPLAY_MONITORS_CONFIG = 317
MSGC_DISPLAY_INIT = 101

# Port channel (spicevmc messages plus its own).
MSG_SPICEVMC_DATA = 101
MSGC_SPICEVMC_DATA = 101
MSGC_SPICEVMC_COMPRESSED_DATA = 102
MSG_PORT_INIT = 201
MSG_PORT_EVENT = 202
MSGC_PORT_EVENT = 201

# Inputs channel, client to server: KEY_DOWN and KEY_UP carry a uint32 scan code.
MSGC_INPUTS_KEY_DOWN = 101
MSGC_INPUTS_KEY_UP = 102

#: SpiceLinkReply: error, 162-byte DER key, num_common_caps, num_channel_caps, caps_offset.
REPLY_FIXED = struct.Struct("<I162sIII")
LINK_HEADER = struct.Struct("<4sIII")
LINK_MESS = struct.Struct("<IBBIII")
MINI = struct.Struct("<HI")

_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


class Closed(Exception):
    """The server closed the connection (EOF or reset) before the expected bytes arrived."""


# -- bytes on the wire ------------------------------------------------------------------------


def caps_words(caps: Iterable[int]) -> list[int]:
    """Capability numbers as uint32 words (capability n is bit n % 32 of word n // 32)."""
    caps = list(caps)
    if not caps:
        return []
    words = [0] * (max(caps) // 32 + 1)
    for cap in caps:
        words[cap // 32] |= 1 << (cap % 32)
    return words


def caps_from_words(words: Iterable[int]) -> frozenset[int]:
    return frozenset(i * 32 + b for i, w in enumerate(words) for b in range(32) if w >> b & 1)


def link_header(
    size: int, *, magic: bytes = MAGIC, major: int = VERSION_MAJOR, minor: int = VERSION_MINOR
) -> bytes:
    return LINK_HEADER.pack(magic, major, minor, size)


def link_mess(
    *,
    channel_type: int,
    channel_id: int = 0,
    connection_id: int = 0,
    common_caps: Iterable[int] = (MINI_HEADER, AUTH_SELECTION),
    channel_caps: Iterable[int] = (),
) -> bytes:
    """SpiceLinkMess with its caps, as a client sends it (caps_offset 18)."""
    common, channel = caps_words(common_caps), caps_words(channel_caps)
    words = common + channel
    return LINK_MESS.pack(
        connection_id, channel_type, channel_id, len(common), len(channel), LINK_MESS.size
    ) + struct.pack(f"<{len(words)}I", *words)


def link_packet(**mess: object) -> bytes:
    """Header + SpiceLinkMess in one piece, as spice-gtk writes it."""
    body = link_mess(**mess)  # type: ignore[arg-type]
    return link_header(len(body)) + body


def encrypt_ticket(pub_key_der: bytes, password: bytes) -> bytes:
    """The 128-byte SpiceLinkEncryptedTicket: RSA-OAEP(SHA-1) of the password plus its NUL."""
    key = load_der_public_key(pub_key_der)
    return key.encrypt(password + b"\0", _OAEP)  # type: ignore[union-attr]


# -- a buffered reader over a stream -----------------------------------------------------------


class Wire:
    """A stream with a read buffer: the server's link result and first messages may arrive in
    one segment, so bytes read past what the caller asked for are kept. Reads give up after
    ``timeout`` seconds (``trio.TooSlowError``) so a silent server fails a test instead of
    hanging it; a cancelled read leaves the buffer intact."""

    def __init__(self, stream: trio.abc.Stream, *, timeout: float = 10.0) -> None:
        self.stream = stream
        self.timeout = timeout
        self._buf = bytearray()
        self._send_lock = trio.Lock()

    async def send(self, data: bytes) -> None:
        async with self._send_lock:
            await self.stream.send_all(data)

    async def _fill(self, n: int) -> None:
        with trio.fail_after(self.timeout):
            while len(self._buf) < n:
                try:
                    data = await self.stream.receive_some(max(65536, n - len(self._buf)))
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    raise Closed(
                        f"reset or closed with {len(self._buf)} of {n} bytes read"
                    ) from exc
                if not data:
                    raise Closed(f"EOF with {len(self._buf)} of {n} bytes read")
                self._buf += data

    async def peek(self, n: int) -> bytes:
        """The next ``n`` bytes, left in the buffer."""
        await self._fill(n)
        return bytes(self._buf[:n])

    async def read_exactly(self, n: int) -> bytes:
        await self._fill(n)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def socket_name(self) -> str:
        """``host:port`` of our end: what the server logs as the peer."""
        host, port = self.stream.socket.getsockname()[:2]  # type: ignore[attr-defined]
        return f"{host}:{port}"

    async def aclose(self) -> None:
        await self.stream.aclose()


async def read_until_closed(wire: Wire | trio.abc.Stream, timeout: float = 5.0) -> int:
    """Read and discard until the server closes (EOF or reset); returns the bytes discarded.
    Fails the test (``trio.TooSlowError``) if the connection is still open after ``timeout``."""
    stream = wire.stream if isinstance(wire, Wire) else wire
    discarded = len(wire._buf) if isinstance(wire, Wire) else 0
    with trio.fail_after(timeout):
        while True:
            try:
                data = await stream.receive_some(1 << 20)
            except trio.BrokenResourceError:
                return discarded
            if not data:
                return discarded
            discarded += len(data)


# -- the link stage --------------------------------------------------------------------------


@dataclass
class LinkReply:
    error: int
    pub_key: bytes
    common_caps: frozenset[int]
    channel_caps: frozenset[int]


async def read_link_reply(wire: Wire) -> LinkReply:
    """SpiceLinkHeader + SpiceLinkReply, checked as spice-gtk checks it."""
    magic, major, _minor, size = LINK_HEADER.unpack(await wire.read_exactly(LINK_HEADER.size))
    assert magic == MAGIC, magic
    assert major == VERSION_MAJOR, major
    assert REPLY_FIXED.size <= size <= 4096, size
    body = await wire.read_exactly(size)
    error, pub_key, n_common, n_channel, caps_offset = REPLY_FIXED.unpack_from(body)
    assert caps_offset <= size
    assert caps_offset + 4 * (n_common + n_channel) <= size
    words = struct.unpack_from(f"<{n_common + n_channel}I", body, caps_offset)
    return LinkReply(
        error, pub_key, caps_from_words(words[:n_common]), caps_from_words(words[n_common:])
    )


@dataclass
class LinkResult:
    """What the link stage ended with. ``result`` is the 4-byte link result, None when the
    SpiceLinkReply itself carried an error (then nothing more was exchanged)."""

    reply: LinkReply
    result: int | None
    channel: Channel

    @property
    def error(self) -> int:
        return self.reply.error if self.reply.error != OK else (self.result or OK)

    @property
    def ok(self) -> bool:
        return self.reply.error == OK and self.result == OK


async def link(
    stream: trio.abc.Stream,
    *,
    channel_type: int,
    channel_id: int = 0,
    connection_id: int = 0,
    password: bytes = b"",
    common_caps: Iterable[int] = (MINI_HEADER, AUTH_SELECTION),
    channel_caps: Iterable[int] = (),
    mechanism: int = AUTH_SPICE,
) -> LinkResult:
    """Run a client's link stage on ``stream``: link message, reply, mechanism (when we
    announced AUTH_SELECTION), encrypted ticket, 4-byte result."""
    common_caps = tuple(common_caps)
    wire = Wire(stream)
    await wire.send(
        link_packet(
            channel_type=channel_type,
            channel_id=channel_id,
            connection_id=connection_id,
            common_caps=common_caps,
            channel_caps=channel_caps,
        )
    )
    reply = await read_link_reply(wire)
    channel = Channel(wire, mini_header=MINI_HEADER in common_caps)
    if reply.error != OK:
        return LinkResult(reply, None, channel)
    ticket = encrypt_ticket(reply.pub_key, password)
    head = struct.pack("<I", mechanism) if AUTH_SELECTION in common_caps else b""
    await wire.send(head + ticket)
    (result,) = struct.unpack("<I", await wire.read_exactly(4))
    return LinkResult(reply, result, channel)


async def connect(host: str, port: int) -> Wire:
    return Wire(await trio.open_tcp_stream(host, port))


# -- framed messages ---------------------------------------------------------------------------


@dataclass
class Channel:
    """One linked channel using mini headers. With ``auto_ack`` (the default) it answers
    SET_ACK with ACK_SYNC, acks every ``window`` messages and answers PING with PONG, as real
    clients do; the messages are still returned to the caller."""

    wire: Wire
    mini_header: bool = True
    auto_ack: bool = True
    received: int = 0
    _window: int = 0
    _since_ack: int = 0
    #: Body sizes of the PINGs received (the server's network test pads one to 250 KiB).
    ping_sizes: list[int] = field(default_factory=list)

    async def send_msg(self, msg_type: int, body: bytes = b"") -> None:
        assert self.mini_header, "this client speaks mini headers only"
        await self.wire.send(MINI.pack(msg_type, len(body)) + body)

    async def recv_msg(self) -> tuple[int, bytes]:
        # Peek, then consume: a read cancelled half-way leaves the stream in sync.
        msg_type, size = MINI.unpack(await self.wire.peek(MINI.size))
        body = (await self.wire.read_exactly(MINI.size + size))[MINI.size :]
        self.received += 1
        if self.auto_ack:
            await self._housekeeping(msg_type, body)
        return msg_type, body

    async def _housekeeping(self, msg_type: int, body: bytes) -> None:
        if msg_type == MSG_PING:
            self.ping_sizes.append(len(body))
        if msg_type == MSG_SET_ACK:
            generation, window = struct.unpack_from("<II", body)
            self._window, self._since_ack = window, 0
            await self.send_msg(MSGC_ACK_SYNC, struct.pack("<I", generation))
            return
        if msg_type == MSG_PING:
            ping_id, timestamp = struct.unpack_from("<IQ", body)
            await self.send_msg(MSGC_PONG, struct.pack("<IQ", ping_id, timestamp))
        if self._window:
            self._since_ack += 1
            if self._since_ack >= self._window:
                self._since_ack = 0
                await self.send_msg(MSGC_ACK)

    async def recv_until(self, *types: int, timeout: float = 5.0) -> tuple[int, bytes]:
        """Skip messages until one of ``types`` arrives; return it."""
        with trio.fail_after(timeout):
            while True:
                msg = await self.recv_msg()
                if msg[0] in types:
                    return msg

    async def aclose(self) -> None:
        await self.wire.aclose()


# -- sessions ----------------------------------------------------------------------------------


@dataclass
class Session:
    host: str
    port: int
    password: bytes
    session_id: int
    main: Channel
    channels: list[tuple[int, int]]
    #: Every channel this session opened, closed by :meth:`aclose`.
    opened: list[Channel] = field(default_factory=list)

    async def open_channel(
        self, channel_type: int, channel_id: int = 0, *, channel_caps: Iterable[int] = ()
    ) -> LinkResult:
        stream = await trio.open_tcp_stream(self.host, self.port)
        result = await link(
            stream,
            channel_type=channel_type,
            channel_id=channel_id,
            connection_id=self.session_id,
            password=self.password,
            channel_caps=channel_caps,
        )
        self.opened.append(result.channel)
        return result

    async def open_display(self, channel_id: int = 0, *, wait_mark: bool = True) -> Channel:
        """Link a display channel and send DISPLAY_INIT (as both real clients do at once);
        with ``wait_mark``, read up to the first MARK (primary created and drawn)."""
        result = await self.open_channel(DISPLAY, channel_id)
        assert result.ok, result
        display = result.channel
        # DISPLAY_INIT: pixmap_cache_id u8, pixmap_cache_size i64, glz_dictionary_id u8,
        # glz_dictionary_window_size i32.
        await display.send_msg(MSGC_DISPLAY_INIT, struct.pack("<BqBi", 1, 20 * 1024 * 1024, 1, 0))
        if wait_mark:
            wanted = (MSG_DISPLAY_SURFACE_CREATE, MSG_DISPLAY_DRAW_COPY, MSG_DISPLAY_MARK)
            seen: list[int] = []
            while not seen or seen[-1] != MSG_DISPLAY_MARK:
                seen.append((await display.recv_until(*wanted))[0])
            assert seen[0] == MSG_DISPLAY_SURFACE_CREATE, seen
            assert MSG_DISPLAY_DRAW_COPY in seen, seen
        return display

    async def open_port(self, channel_id: int = 0) -> tuple[Channel, bytes, bool]:
        """Link a port channel and read its PORT_INIT: the channel, the name, opened."""
        result = await self.open_channel(PORT, channel_id)
        assert result.ok, result
        _, body = await result.channel.recv_until(MSG_PORT_INIT)
        # PORT_INIT: uint32 name_size, uint32 name offset, uint8 opened; the name (with its
        # NUL) at that offset.
        size, offset, opened = struct.unpack_from("<IIB", body)
        name = body[offset : offset + size]
        assert name.endswith(b"\0"), name
        return result.channel, name[:-1], bool(opened)

    async def aclose(self) -> None:
        for channel in [*self.opened, self.main]:
            with trio.CancelScope(shield=True):
                await channel.aclose()


async def open_session(host: str, port: int, password: bytes | str | None = None) -> Session:
    """Link main, read MAIN_INIT (the session id), send ATTACH_CHANNELS, read CHANNELS_LIST."""
    if isinstance(password, str):
        password = password.encode()
    password = password or b""
    stream = await trio.open_tcp_stream(host, port)
    result = await link(stream, channel_type=MAIN, password=password)
    assert result.ok, f"main channel link failed: error {result.error}"
    main = result.channel
    _, body = await main.recv_until(MSG_MAIN_INIT)
    # MAIN_INIT: session_id, display_channels_hint, supported_mouse_modes, current_mouse_mode,
    # agent_connected, agent_tokens, multi_media_time, ram_hint (all uint32).
    session_id = struct.unpack_from("<8I", body)[0]
    assert session_id != 0
    await main.send_msg(MSGC_MAIN_ATTACH_CHANNELS)
    _, body = await main.recv_until(MSG_MAIN_CHANNELS_LIST)
    (count,) = struct.unpack_from("<I", body)
    channels = [struct.unpack_from("<BB", body, 4 + 2 * i) for i in range(count)]
    # The server measures the link at once with a PING padded to 250 KiB; read it, as clients
    # do, so a test that then leaves main unread does not look like a stalled client.
    with trio.fail_after(10):
        while not any(size > 1024 for size in main.ping_sizes):
            await main.recv_msg()
    return Session(host, port, password, session_id, main, channels)


# -- display message bodies --------------------------------------------------------------------


@dataclass
class DrawFill:
    surface_id: int
    top: int
    left: int
    bottom: int
    right: int
    color: int


def parse_draw_fill(body: bytes) -> DrawFill:
    """DRAW_FILL without clip: DisplayBase (surface_id, Rect box, clip type NONE) then Fill
    (Brush type SOLID + color, rop descriptor, QMask)."""
    surface_id, top, left, bottom, right, clip_type = struct.unpack_from("<I4iB", body)
    assert clip_type == 0, "clip rects not expected"
    brush_type, color = struct.unpack_from("<BI", body, 21)
    assert brush_type == 1, "solid brush expected"
    return DrawFill(surface_id, top, left, bottom, right, color)
