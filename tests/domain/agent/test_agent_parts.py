"""The agent's parts on their own: the START key file and name rule, the agent mouse, the
stream reassembler and token models, and garbage fed to the whole machine."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spice.domain.agent import messages as am
from spice.domain.agent.errors import AgentProtocolError
from spice.domain.agent.file_xfer import BadStart, check_name, parse_start
from spice.domain.agent.machine import AgentMachine
from spice.domain.agent.mouse import AgentMouse
from spice.domain.agent.stream import ClientTokens, Complete, Reassembler, Sender, Skipped
from spice.domain.enums import MouseButton, MouseButtonMask
from spice.domain.input_events import MouseButtonEvent, MousePositionEvent, MouseWheelEvent
from spice.domain.link import NEED_DATA

# ---- the START key file ---------------------------------------------------------------------


def test_parse_start_as_gtk_and_html5_write_it() -> None:
    gtk = b"[vdagent-file-xfer]\nname=report.pdf\nsize=1234\n\0"
    assert parse_start(gtk) == ("report.pdf", 1234)
    html5 = b"[vdagent-file-xfer]\nname=a b.txt\nsize=0\n\0"
    assert parse_start(html5) == ("a b.txt", 0)


def test_parse_start_reads_glib_key_files() -> None:
    # comments, blank lines and other groups are skipped; blanks around "=" are not part of it
    text = b"# comment\n[other]\nname=evil/../x\n\n[vdagent-file-xfer]\nsize = 5\nname=ok\n"
    assert parse_start(text) == ("ok", 5)
    # GLib unescapes \t to a tab: a control character, refused as an invalid name
    with pytest.raises(BadStart) as info:
        parse_start(b"[vdagent-file-xfer]\nsize=5\nname=a\\tb\n")
    assert info.value.invalid_name


def test_a_backslash_from_an_escape_is_still_refused() -> None:
    # "\\\\" unescapes to one backslash: a Windows path separator, refused like "/"
    with pytest.raises(BadStart):
        parse_start(b"[vdagent-file-xfer]\nname=..\\\\x\nsize=5\n")
    assert parse_start(b"[vdagent-file-xfer]\nname=\\sx\nsize=5\n") == (" x", 5)


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"[vdagent-file-xfer]\nname=a\n",  # no size
        b"[vdagent-file-xfer]\nsize=3\n",  # no name
        b"[other]\nname=a\nsize=3\n",  # wrong group
        b"[vdagent-file-xfer]\nname=a\nsize=-3\n",
        b"[vdagent-file-xfer]\nname=a\nsize=0x10\n",
        b"[vdagent-file-xfer]\nname=a\nsize=18446744073709551616\n",  # 2**64
        b"[vdagent-file-xfer]\nname=a\\q\nsize=3\n",  # not a GLib escape
        b"[vdagent-file-xfer]\nname=a\nsize=3\nno equals sign\n",
    ],
)
def test_parse_start_refuses(text: bytes) -> None:
    with pytest.raises(BadStart):
        parse_start(text)


@pytest.mark.parametrize(
    "name", ["", ".", "..", "../a", "a/..", "/abs", "\\\\server\\share", "D:\\x", "a\nb", "a\x7f"]
)
def test_check_name_refuses(name: str) -> None:
    with pytest.raises(BadStart) as info:
        check_name(name)
    assert info.value.invalid_name


@pytest.mark.parametrize("name", ["a", ".hidden", "...", "naïve résumé.txt", "x" * 255, "a:b"])
def test_check_name_accepts(name: str) -> None:
    check_name(name)


@given(st.binary(max_size=200))
def test_parse_start_raises_only_bad_start(data: bytes) -> None:
    try:
        name, size = parse_start(b"[vdagent-file-xfer]\n" + data)
    except BadStart:
        return
    assert "/" not in name and "\\" not in name and name not in ("", ".", "..")
    assert 0 <= size < 1 << 64


# ---- the agent mouse ------------------------------------------------------------------------


def test_mouse_state_to_input_events() -> None:
    mouse = AgentMouse()
    L, R, U = am.AgentButtonMask.LBUTTON, am.AgentButtonMask.RBUTTON, am.AgentButtonMask.UBUTTON
    assert mouse.feed(am.MouseState(10, 20, 0)) == [MousePositionEvent(10, 20, 0, 0)]
    assert mouse.feed(am.MouseState(10, 20, L)) == [
        MouseButtonEvent(MouseButton.LEFT, True, MouseButtonMask.LEFT)
    ]
    assert mouse.feed(am.MouseState(11, 20, L | R, 1)) == [
        MousePositionEvent(11, 20, MouseButtonMask.LEFT, 1),
        MouseButtonEvent(MouseButton.RIGHT, True, MouseButtonMask.LEFT | MouseButtonMask.RIGHT),
    ]
    assert mouse.feed(am.MouseState(11, 20, U, 1)) == [
        MouseButtonEvent(MouseButton.LEFT, False, MouseButtonMask.UP),
        MouseButtonEvent(MouseButton.RIGHT, False, MouseButtonMask.UP),
        MouseWheelEvent(-1, MouseButtonMask.UP),
    ]
    assert mouse.feed(am.MouseState(11, 20, 0, 1)) == []  # the wheel's release says nothing
    assert mouse.feed(am.MouseState(11, 20, 0x1, 1)) == []  # bit 0 means nothing


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 0xFFFFFFFF)), max_size=30))
def test_mouse_button_events_track_the_mask(states: list[tuple[int, int]]) -> None:
    mouse = AgentMouse()
    pressed: set[int] = set()
    for x, buttons in states:
        for event in mouse.feed(am.MouseState(x, 0, buttons)):
            if isinstance(event, MouseButtonEvent):
                assert (event.button in pressed) != event.pressed
                (pressed.add if event.pressed else pressed.discard)(event.button)
    expected = {
        b
        for bit, b in [(2, 1), (4, 2), (8, 3), (64, 6), (128, 7)]
        if states and states[-1][1] & bit
    }
    assert pressed == expected


# ---- stream pieces --------------------------------------------------------------------------


def header(type_: int, size: int, protocol: int = 1) -> bytes:
    return struct.pack("<IIQI", protocol, type_, 0, size)


def test_reassembler_skips_unwanted_and_oversized_without_buffering() -> None:
    limits = {3: 10, 4: 100}
    r = Reassembler(limits.get)
    frames = r.feed(header(3, 11) + b"x" * 11 + header(4, 2) + b"ok" + header(9, 1000))
    assert frames == [
        Skipped(am.AgentMessageHeader(3, 11), oversized=True),
        Complete(am.AgentMessageHeader(4, 2), b"ok"),
        Skipped(am.AgentMessageHeader(9, 1000), oversized=False),
    ]
    assert r.buffered == 0 and not r.idle
    r.feed(b"y" * 1000)
    assert r.idle
    assert r.feed(header(4, 0)) == [Complete(am.AgentMessageHeader(4, 0), b"")]


def test_reassembler_errors() -> None:
    with pytest.raises(AgentProtocolError, match="2048"):
        Reassembler(lambda t: 10).feed(b"\0" * 2049)
    with pytest.raises(AgentProtocolError, match="protocol"):
        Reassembler(lambda t: 10).feed(header(3, 0, protocol=2))


@given(st.binary(max_size=400), st.lists(st.integers(1, 64), max_size=10))
def test_reassembler_raises_only_protocol_errors(data: bytes, cuts: list[int]) -> None:
    r = Reassembler(lambda t: 64 if t < 8 else None)
    at = 0
    try:
        for size in [*cuts, len(data)]:
            r.feed(data[at : at + size])
            at += size
    except AgentProtocolError:
        pass
    assert r.buffered <= 20 + 64


def test_client_tokens_and_sender() -> None:
    tokens = ClientTokens(window=10, batch=5)
    for _ in range(4):
        tokens.spend()
    assert tokens.grant() == 0
    tokens.spend()
    assert tokens.grant() == 5 and tokens.available == 10
    sender = Sender()
    sender.queue(b"a" * 5000)
    assert sender.backlog == 5000 and sender.take() == []
    sender.set_tokens(2)
    assert [len(b) for b in sender.take()] == [2048, 2048]
    sender.add_tokens(0xFFFFFFFF * 2)
    assert sender.tokens == 0xFFFFFFFF
    assert [len(b) for b in sender.take()] == [904] and sender.backlog == 0


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=2100), max_size=12))
def test_machine_raises_only_agent_protocol_errors_on_garbage(bodies: list[bytes]) -> None:
    machine = AgentMachine()
    machine.agent_start(0xFFFFFFFF)
    try:
        for body in bodies:
            machine.receive_data(body)
            machine.data_to_send()
            while machine.next_event() is not NEED_DATA:
                pass
    except AgentProtocolError:
        assert machine.failed is not None
