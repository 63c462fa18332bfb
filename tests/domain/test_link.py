"""The link stage machine against byte vectors written by hand from the protocol layout
(PROTOCOL.md §1.2-1.5, and the worked example of §1.9), every error path, and a fuzz test in
the manner of h11's: whatever bytes arrive, in whatever chunks, the machine yields events,
NEED_DATA or RemoteProtocolError, never anything else."""

from __future__ import annotations

import itertools
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spice.domain.caps import CapabilitySet
from spice.domain.enums import LinkError
from spice.domain.errors import LocalProtocolError, RemoteProtocolError
from spice.domain.link import NEED_DATA, AuthTicket, LinkRequest, LinkServer, LinkState


def h(text: str) -> bytes:
    return bytes.fromhex(text)


#: §1.9: spice-gtk links display channel 0 of session 0x12345678; its display caps word here
#: is 0x42 (MONITORS_CONFIG = 1, PREF_COMPRESSION = 6).
EXAMPLE_HEADER = h("52454451 02000000 02000000 1a000000")
EXAMPLE_MESS = h("78563412 02 00 01000000 01000000 12000000 09000000 42000000")
EXAMPLE_TICKET = bytes(range(128))
#: A stand-in for the 162-byte DER key (its content does not matter to the machine).
KEY = bytes(range(162))
SERVER_COMMON = CapabilitySet.of(0, 1, 3)  # AUTH_SELECTION, AUTH_SPICE, MINI_HEADER: 0x0b
SERVER_DISPLAY = CapabilitySet.of(1, 6)


def events(link: LinkServer) -> list[object]:
    """Pull events until NEED_DATA."""
    out: list[object] = []
    while (event := link.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def header(size: int, *, magic: bytes = b"REDQ", major: int = 2, minor: int = 2) -> bytes:
    return magic + struct.pack("<III", major, minor, size)


def mess(
    *,
    connection_id: int = 0,
    channel_type: int = 1,
    channel_id: int = 0,
    n_common: int = 1,
    n_channel: int = 0,
    caps_offset: int = 18,
    words: tuple[int, ...] = (0x9,),
) -> bytes:
    fixed = struct.pack(
        "<IBBIII", connection_id, channel_type, channel_id, n_common, n_channel, caps_offset
    )
    return fixed + struct.pack(f"<{len(words)}I", *words)


def packet(**fields: Any) -> bytes:
    body = mess(**fields)
    return header(len(body)) + body


# -- the worked example ---------------------------------------------------------------------


def test_worked_example_request() -> None:
    link = LinkServer()
    link.receive_data(EXAMPLE_HEADER + EXAMPLE_MESS)
    assert link.next_event() == LinkRequest(
        major_version=2,
        minor_version=2,
        connection_id=0x12345678,
        channel_type=2,
        channel_id=0,
        common_caps=CapabilitySet.of(0, 3),
        channel_caps=CapabilitySet.of(1, 6),
    )
    assert link.state is LinkState.AWAIT_REPLY
    # Nothing more until the server has answered.
    assert link.next_event() is NEED_DATA


def test_worked_example_reply_bytes() -> None:
    link = LinkServer()
    link.receive_data(EXAMPLE_HEADER + EXAMPLE_MESS)
    link.next_event()
    reply = link.send_reply(KEY, SERVER_COMMON, SERVER_DISPLAY)
    # size = 178 + 4 * (1 + 1) = 186 = 0xba
    assert reply[:16] == h("52454451 02000000 02000000 ba000000")
    assert reply[16:20] == h("00000000")  # error OK
    assert reply[20:182] == KEY
    assert reply[182:194] == h("01000000 01000000 b2000000")  # 1 common, 1 channel, offset 178
    assert reply[194:] == h("0b000000 42000000")
    assert len(reply) == 16 + 186


def test_worked_example_ticket_and_result() -> None:
    link = LinkServer()
    link.receive_data(EXAMPLE_HEADER + EXAMPLE_MESS)
    link.next_event()
    link.send_reply(KEY, SERVER_COMMON, SERVER_DISPLAY)
    assert link.state is LinkState.READ_MECHANISM
    # Mechanism AUTH_SPICE (1), the ticket, and the first framed message in the same write.
    first_message = h("6500 04000000 01020304")
    link.receive_data(h("01000000") + EXAMPLE_TICKET + first_message)
    assert link.next_event() == AuthTicket(1, EXAMPLE_TICKET)
    assert link.state is LinkState.AWAIT_RESULT
    assert link.send_result(LinkError.OK) == h("00000000")
    assert link.state is LinkState.DONE
    assert link.trailing_data() == first_message


def test_one_byte_at_a_time_gives_the_same_events() -> None:
    link = LinkServer()
    seen: list[object] = []
    for byte in EXAMPLE_HEADER + EXAMPLE_MESS:
        link.receive_data(bytes([byte]))
        seen += events(link)
    assert [type(e) for e in seen] == [LinkRequest]
    link.send_reply(KEY, SERVER_COMMON, SERVER_DISPLAY)
    for byte in h("01000000") + EXAMPLE_TICKET:
        link.receive_data(bytes([byte]))
        seen += events(link)
    assert seen[1:] == [AuthTicket(1, EXAMPLE_TICKET)]


def test_without_auth_selection_the_bare_ticket_follows() -> None:
    """A client that did not announce PROTOCOL_AUTH_SELECTION sends no mechanism word."""
    link = LinkServer()
    link.receive_data(packet(words=(0x8,)))  # MINI_HEADER only
    request = link.next_event()
    assert isinstance(request, LinkRequest) and 0 not in request.common_caps
    link.send_reply(KEY, SERVER_COMMON, CapabilitySet())
    assert link.state is LinkState.READ_TICKET
    link.receive_data(EXAMPLE_TICKET)
    assert link.next_event() == AuthTicket(1, EXAMPLE_TICKET)


def test_no_caps_and_caps_after_a_gap() -> None:
    """Zero capability words is legal; caps_offset may leave a gap after the fixed part."""
    link = LinkServer()
    link.receive_data(packet(n_common=0, words=()))
    request = link.next_event()
    assert isinstance(request, LinkRequest)
    assert request.common_caps == request.channel_caps == CapabilitySet()

    link = LinkServer()
    body = mess(caps_offset=22, words=(0xDEAD, 0x9))  # 4 bytes of padding, then the word
    link.receive_data(header(len(body)) + body)
    request = link.next_event()
    assert isinstance(request, LinkRequest) and request.common_caps == CapabilitySet.of(0, 3)


def test_largest_link_message_is_accepted() -> None:
    body = mess(n_common=1, n_channel=1017, words=(0x9,) + (0,) * 1017)
    assert len(body) == 4090
    body += bytes(6)  # up to the 4096-byte limit
    link = LinkServer()
    link.receive_data(header(4096) + body)
    assert isinstance(link.next_event(), LinkRequest)


def test_refused_result() -> None:
    link = LinkServer()
    link.receive_data(packet())
    link.next_event()
    link.send_reply(KEY, SERVER_COMMON, CapabilitySet())
    link.receive_data(h("01000000") + EXAMPLE_TICKET)
    link.next_event()
    assert link.send_result(LinkError.PERMISSION_DENIED) == h("07000000")
    assert link.state is LinkState.FAILED


# -- error paths ------------------------------------------------------------------------------

BAD_LINK_MESSAGES = {
    "magic": (header(18, magic=b"QDER") + mess(), LinkError.INVALID_MAGIC),
    "magic-of-an-http-request": (b"GET / HTTP/1.1\r\n\r\n", LinkError.INVALID_MAGIC),
    "major-1": (header(22, major=1) + mess(), LinkError.VERSION_MISMATCH),
    "major-3": (header(22, major=3) + mess(), LinkError.VERSION_MISMATCH),
    "major-0-no-answer": (header(22, major=0) + mess(), None),
    "size-17": (header(17) + mess()[:17], LinkError.INVALID_DATA),
    "size-0": (header(0), LinkError.INVALID_DATA),
    "size-4097": (header(4097), LinkError.INVALID_DATA),
    "size-max": (header(0xFFFFFFFF), LinkError.INVALID_DATA),
    "common-caps-over-1024": (packet(n_common=1025), LinkError.INVALID_DATA),
    "channel-caps-over-1024": (packet(n_channel=1025), LinkError.INVALID_DATA),
    "caps-overrun-size": (packet(n_common=2), LinkError.INVALID_DATA),
    "caps-count-that-wraps-in-32-bits": (packet(n_common=0x40000000), LinkError.INVALID_DATA),
    "caps-offset-past-end": (packet(caps_offset=23), LinkError.INVALID_DATA),
    "caps-offset-inside-fixed-part": (packet(caps_offset=14), LinkError.INVALID_DATA),
}


@pytest.mark.parametrize("data, error", BAD_LINK_MESSAGES.values(), ids=list(BAD_LINK_MESSAGES))
def test_bad_link_message(data: bytes, error: LinkError | None) -> None:
    link = LinkServer()
    link.receive_data(data)
    with pytest.raises(RemoteProtocolError) as info:
        events(link)
    assert info.value.link_error == error
    assert link.state is LinkState.FAILED
    answer = link.fail(info.value.link_error)
    if error is None:
        assert answer == b""
    else:
        # SpiceLinkHeader (size 178) + SpiceLinkReply with the error, a zeroed key, no caps.
        assert answer == header(178) + struct.pack("<I", error) + bytes(162) + h(
            "00000000 00000000 b2000000"
        )


def test_bad_magic_fails_on_the_first_four_bytes() -> None:
    link = LinkServer()
    link.receive_data(b"RED")
    assert link.next_event() is NEED_DATA
    link.receive_data(b"X")
    with pytest.raises(RemoteProtocolError) as info:
        link.next_event()
    assert info.value.link_error == LinkError.INVALID_MAGIC


def test_oversized_header_fails_before_its_body_arrives() -> None:
    link = LinkServer()
    link.receive_data(header(100_000))
    with pytest.raises(RemoteProtocolError):
        link.next_event()


def test_unknown_auth_mechanism_is_answered_with_a_bare_result() -> None:
    link = LinkServer()
    link.receive_data(packet())
    link.next_event()
    link.send_reply(KEY, SERVER_COMMON, CapabilitySet())
    link.receive_data(h("02000000"))  # SASL, not offered
    with pytest.raises(RemoteProtocolError) as info:
        link.next_event()
    assert info.value.link_error == LinkError.INVALID_DATA
    # The reply has gone out already: the failure is a 4-byte link result.
    assert link.fail(LinkError.INVALID_DATA) == h("03000000")


def test_failed_machine_refuses_more_data() -> None:
    link = LinkServer()
    link.receive_data(b"XXXX")
    with pytest.raises(RemoteProtocolError):
        link.next_event()
    with pytest.raises(LocalProtocolError):
        link.receive_data(b"more")
    with pytest.raises(LocalProtocolError):
        link.next_event()


@pytest.mark.parametrize("call", ["send_reply", "send_result", "trailing_data"])
def test_local_misuse(call: str) -> None:
    link = LinkServer()
    with pytest.raises(LocalProtocolError):
        if call == "send_reply":
            link.send_reply(KEY, SERVER_COMMON, CapabilitySet())
        elif call == "send_result":
            link.send_result(LinkError.OK)
        else:
            link.trailing_data()


def test_reply_needs_a_162_byte_key() -> None:
    link = LinkServer()
    link.receive_data(packet())
    link.next_event()
    with pytest.raises(LocalProtocolError):
        link.send_reply(KEY[:-1], SERVER_COMMON, CapabilitySet())


# -- fuzz ------------------------------------------------------------------------------------


def drive(link: LinkServer, chunks: list[bytes]) -> list[object]:
    """Feed chunks as an adapter would: answer a request with a reply and a ticket with OK.
    Returns the events; stops at the first RemoteProtocolError (re-raised) or at DONE."""
    seen: list[object] = []
    for chunk in chunks:
        link.receive_data(chunk)
        while True:
            event = link.next_event()
            if event is NEED_DATA:
                break
            seen.append(event)
            if isinstance(event, LinkRequest):
                link.send_reply(KEY, SERVER_COMMON, CapabilitySet())
            elif isinstance(event, AuthTicket):
                link.send_result(LinkError.OK)
                return seen
            else:
                pytest.fail(f"not an event: {event!r}")
    return seen


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


u32_edges = st.one_of(
    st.sampled_from([0, 1, 2, 17, 18, 22, 1024, 1025, 4096, 4097, 0x7FFFFFFF, 0xFFFFFFFF]),
    st.integers(0, 0xFFFFFFFF),
)


@st.composite
def link_bytes(draw: st.DrawFn) -> bytes:
    """Link packets that are mostly valid, each field pushed to an edge now and then, followed
    by a mechanism and ticket or any bytes: so the fuzz reaches every state of the machine,
    not only the magic check."""

    def mostly(valid: object, other: st.SearchStrategy[object]) -> object:
        return valid if draw(st.integers(0, 9)) < 8 else draw(other)

    words = draw(st.lists(st.integers(0, 0xFFFFFFFF), max_size=6))
    split = draw(st.integers(0, len(words)))
    body = struct.pack(
        "<IBBIII",
        draw(st.integers(0, 0xFFFFFFFF)),
        draw(st.integers(0, 255)),
        draw(st.integers(0, 255)),
        mostly(split, u32_edges),
        mostly(len(words) - split, u32_edges),
        mostly(18, u32_edges),
    ) + struct.pack(f"<{len(words)}I", *words)
    size = mostly(len(body), u32_edges)
    magic = mostly(b"REDQ", st.sampled_from([b"QDER", b"GET ", b"\0\0\0\0"]))
    major = mostly(2, st.sampled_from([0, 1, 3, 0xFFFFFFFF]))
    tail = draw(
        st.one_of(
            st.tuples(st.sampled_from([1, 1, 2, 0]), st.binary(min_size=128, max_size=140)).map(
                lambda t: struct.pack("<I", t[0]) + t[1]
            ),
            st.binary(max_size=300),
        )
    )
    return header(size, magic=magic, major=major) + body + tail  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=600), link_bytes()), cuts=st.lists(st.integers(0, 1000)))
def test_fuzz_link_server(data: bytes, cuts: list[int]) -> None:
    link = LinkServer()
    try:
        drive(link, chunked(data, cuts))
    except RemoteProtocolError as exc:
        assert link.state is LinkState.FAILED
        assert exc.link_error is None or isinstance(exc.link_error, LinkError)
        link.fail(exc.link_error)  # the answer can always be built
    else:
        assert link.state in (
            LinkState.READ_HEADER,
            LinkState.READ_MESS,
            LinkState.READ_MECHANISM,
            LinkState.READ_TICKET,
            LinkState.DONE,
        )
