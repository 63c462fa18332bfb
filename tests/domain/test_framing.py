"""Data headers after the link (PROTOCOL.md §2.1-2.2) against hand-written byte vectors, the
size limit, and fuzz tests in the manner of h11's: arbitrary bytes in arbitrary chunks, fed to
the message reader and to every channel machine, yield messages/events, NEED_DATA or
RemoteProtocolError and nothing else."""

from __future__ import annotations

import contextlib
import itertools
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spice.domain.caps import CapabilitySet
from spice.domain.channel import ChannelClosed, ChannelConnection
from spice.domain.channels.cursor import CursorChannel
from spice.domain.channels.display import DisplayChannel
from spice.domain.channels.inputs import InputsChannel
from spice.domain.channels.main import MainChannel
from spice.domain.errors import RemoteProtocolError
from spice.domain.framing import MessageReader, MessageWriter, RawMessage
from spice.domain.link import NEED_DATA


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def messages(reader: MessageReader) -> list[RawMessage]:
    out = []
    while (msg := reader.next_message()) is not None:
        out.append(msg)
    return out


# -- mini header: uint16 type; uint32 size ---------------------------------------------------------


def test_mini_header_messages() -> None:
    reader = MessageReader(mini_header=True)
    # DISPLAY_INIT-sized body, then an empty ACK, in one read.
    reader.receive_data(h("6500 0e000000 01 0000400100000000 01 00000000") + h("0200 00000000"))
    assert messages(reader) == [
        RawMessage(101, h("01 0000400100000000 01 00000000"), 1),
        RawMessage(2, b"", 2),
    ]
    assert reader.buffered == 0


def test_mini_header_byte_by_byte() -> None:
    data = h("6800 00000000") + h("0300 0c000000 07000000 0102030405060708")
    reader = MessageReader(mini_header=True)
    seen = []
    for byte in data:
        reader.receive_data(bytes([byte]))
        seen += messages(reader)
    assert seen == [RawMessage(104, b"", 1), RawMessage(3, h("07000000 0102030405060708"), 2)]


def test_full_header_carries_its_serial() -> None:
    """SpiceDataHeader: uint64 serial; uint16 type; uint32 size; uint32 sub_list."""
    reader = MessageReader(mini_header=False)
    reader.receive_data(h("0700000000000000 6500 02000000 00000000 abcd"))
    assert messages(reader) == [RawMessage(101, h("abcd"), 7)]


def test_full_header_sub_list_is_refused() -> None:
    reader = MessageReader(mini_header=False)
    reader.receive_data(h("0100000000000000 6500 08000000 02000000") + bytes(8))
    with pytest.raises(RemoteProtocolError):
        reader.next_message()


@pytest.mark.parametrize("mini", [True, False], ids=["mini", "full"])
def test_size_over_the_limit_fails_on_the_header_alone(mini: bool) -> None:
    """A hostile size is refused before any of its body is buffered."""
    reader = MessageReader(mini_header=mini, max_size=1000)
    head = h("6500 e9030000") if mini else h("0100000000000000 6500 e9030000 00000000")  # 1001
    reader.receive_data(head)
    with pytest.raises(RemoteProtocolError, match="1001"):
        reader.next_message()


def test_size_at_the_limit_is_accepted() -> None:
    reader = MessageReader(mini_header=True, max_size=1000)
    reader.receive_data(h("6500 e8030000"))  # 1000
    assert reader.next_message() is None
    reader.receive_data(bytes(1000))
    assert reader.next_message() == RawMessage(101, bytes(1000), 1)


def test_writer_headers() -> None:
    mini = MessageWriter(mini_header=True)
    assert mini.header(302, 0x1234) == h("2e01 34120000")
    full = MessageWriter(mini_header=False)
    assert full.header(3, 8) == h("0100000000000000 0300 08000000 00000000")
    assert full.header(4, 0) == h("0200000000000000 0400 00000000 00000000")
    assert full.last_serial == 2


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=200, deadline=None)
@given(
    msgs=st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=64)), max_size=8),
    mini=st.booleans(),
    cuts=st.lists(st.integers(0, 2000)),
)
def test_round_trip_in_any_chunks(
    msgs: list[tuple[int, bytes]], mini: bool, cuts: list[int]
) -> None:
    writer = MessageWriter(mini_header=mini)
    data = b"".join(writer.header(t, len(body)) + body for t, body in msgs)
    reader = MessageReader(mini_header=mini)
    seen = []
    for chunk in chunked(data, cuts):
        reader.receive_data(chunk)
        seen += messages(reader)
    assert [(m.type, m.body) for m in seen] == msgs
    assert [m.serial for m in seen] == list(range(1, len(msgs) + 1))


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400), mini=st.booleans(), cuts=st.lists(st.integers(0, 500)))
def test_fuzz_message_reader(data: bytes, mini: bool, cuts: list[int]) -> None:
    limit = 64
    reader = MessageReader(mini_header=mini, max_size=limit)
    try:
        for chunk in chunked(data, cuts):
            reader.receive_data(chunk)
            for msg in messages(reader):
                assert isinstance(msg, RawMessage) and len(msg.body) <= limit
            # Never more than one message's worth is held waiting for the rest.
            assert reader.buffered < 18 + limit
    except RemoteProtocolError:
        pass


# -- channel machines ------------------------------------------------------------------------------

CHANNELS: dict[str, Callable[[], ChannelConnection]] = {
    "main": lambda: MainChannel(mini_header=True, client_caps=CapabilitySet.of(1)),
    "display": lambda: DisplayChannel(
        mini_header=True, client_caps=CapabilitySet.of(1), server_caps=CapabilitySet.of(1, 6)
    ),
    "inputs": lambda: InputsChannel(mini_header=True),
    "cursor": lambda: CursorChannel(mini_header=True),
}

#: The base client messages every channel takes (ACK_SYNC .. DISCONNECTING).
BASE_TYPES = list(range(1, 7))


@st.composite
def client_bytes(draw: st.DrawFn, types: list[int]) -> bytes:
    """Mini-header messages, mostly of the channel's own types with bodies of any length (too
    short, exact, too long); now and then an unknown type, a lying size or plain garbage."""
    out = b""
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.integers(0, 19))
        if kind == 0:
            out += draw(st.binary(max_size=16))
            continue
        msg_type = draw(st.sampled_from(types)) if kind > 1 else draw(st.integers(0, 0xFFFF))
        # Mostly long enough for the fixed layouts (the longest, STREAM_REPORT, is 32 bytes).
        body = draw(st.binary(min_size=draw(st.sampled_from([0, 32, 32, 32])), max_size=40))
        size = len(body) if kind > 2 else draw(st.integers(0, 0xFFFFFFFF))
        out += struct.pack("<HI", msg_type, size) + body
    return out


def feed_channel(machine: ChannelConnection, chunks: list[bytes]) -> list[Any]:
    seen = []
    for chunk in chunks:
        machine.receive_data(chunk)
        while (event := machine.next_event()) is not NEED_DATA:
            assert event is not None
            seen.append(event)
        machine.data_to_send()  # automatic answers (motion acks) must always encode
    return seen


@pytest.mark.parametrize("name", list(CHANNELS))
@settings(max_examples=150, deadline=None)
@given(data=st.data(), cuts=st.lists(st.integers(0, 1000)))
def test_fuzz_channel(name: str, data: st.DataObject, cuts: list[int]) -> None:
    """A channel machine given anything yields events or NEED_DATA, and otherwise raises only
    RemoteProtocolError (or ChannelClosed: the client said DISCONNECTING)."""
    machine = CHANNELS[name]()
    machine.data_to_send()
    types = sorted({*BASE_TYPES, *machine.CLIENT_MESSAGES})
    wire = data.draw(st.one_of(client_bytes(types), st.binary(max_size=300)))
    with contextlib.suppress(RemoteProtocolError, ChannelClosed):
        feed_channel(machine, chunked(wire, cuts))
