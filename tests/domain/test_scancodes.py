"""Set-1 scan codes from the inputs channel into key events, and back."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spice.domain.errors import MessageDecodeError
from spice.domain.scancodes import (
    PAUSE,
    KeyEvent,
    ScancodeDecoder,
    bytes_for,
    code_for,
    key_events_from_bytes,
    key_events_from_code,
)

A, UP, RCTRL = 0x1E, 0xE048, 0xE01D


def down(sc: int) -> KeyEvent:
    return KeyEvent(sc, True)


def up(sc: int) -> KeyEvent:
    return KeyEvent(sc, False)


@pytest.mark.parametrize(
    ("code", "events"),
    [
        (0x1E, [down(A)]),
        (0x9E, [up(A)]),
        (0x48E0, [down(UP)]),
        (0xC8E0, [up(UP)]),
        (0x1DE0, [down(RCTRL)]),
        (0x9DE0, [up(RCTRL)]),
        (0x451DE1, [down(PAUSE)]),
        (0xC59DE1, [up(PAUSE)]),
        (0x9E1E, [down(A), up(A)]),
        (0xC8E048E0, [down(UP), up(UP)]),
        (0, []),
        (0x1E001E, [down(A)]),  # stops at the first zero byte
    ],
)
def test_from_code(code: int, events: list[KeyEvent]) -> None:
    assert key_events_from_code(code) == events


@pytest.mark.parametrize(
    ("data", "events"),
    [
        ("1e 9e", [down(A), up(A)]),
        ("e0 48 e0 c8", [down(UP), up(UP)]),
        ("e1 1d 45 e1 9d c5", [down(PAUSE), up(PAUSE)]),
        ("2a 1e 9e aa", [down(0x2A), down(A), up(A), up(0x2A)]),
        ("e0 2a e0 37", [down(0xE02A), down(0xE037)]),  # Print Screen with its fake shift
        ("", []),
    ],
)
def test_from_bytes(data: str, events: list[KeyEvent]) -> None:
    assert key_events_from_bytes(bytes.fromhex(data)) == events


@pytest.mark.parametrize(
    "data",
    [
        "e0",  # lone E0 at the end
        "1e e0",
        "b5 e0",  # what spice-html5 sends when its Meta state drifts (0xE0B5 as a code)
        "e0 e0 48",
        "e0 e1",
        "e0 00",
        "e0 80",
        "00",
        "80",
        "e1",
        "e1 1d",  # half a Pause: complete sequences only here
        "e1 1d c5",
        "e1 9d 45",
        "e1 1e 45",
        "60",
    ],
)
def test_malformed_bytes(data: str) -> None:
    with pytest.raises(MessageDecodeError):
        key_events_from_bytes(bytes.fromhex(data))


def test_malformed_code() -> None:
    with pytest.raises(MessageDecodeError):
        key_events_from_code(0xE0)
    with pytest.raises(MessageDecodeError):
        key_events_from_code(0x1DE1)  # half a Pause


def test_code_out_of_range_is_our_error() -> None:
    with pytest.raises(ValueError):
        key_events_from_code(1 << 32)


def test_decoder_joins_spice_gtk_pause() -> None:
    # spice-gtk: KEY_DOWN 0x1DE1, KEY_DOWN 0x45 on press; KEY_UP 0x9DE1, KEY_UP 0xC5 on release.
    decoder = ScancodeDecoder()
    assert decoder.feed_code(0x1DE1) == []
    assert decoder.held == b"\xe1\x1d"
    assert decoder.feed_code(0x45) == [down(PAUSE)]
    assert decoder.feed_code(0x9DE1) == []
    assert decoder.feed_code(0xC5) == [up(PAUSE)]
    assert decoder.held == b""


def test_decoder_pause_byte_by_byte() -> None:
    decoder = ScancodeDecoder()
    out = [e for b in bytes.fromhex("1e e1 1d 45 e1 9d c5 9e") for e in decoder.feed(bytes((b,)))]
    assert out == [down(A), down(PAUSE), up(PAUSE), up(A)]


def test_decoder_does_not_hold_e0() -> None:
    decoder = ScancodeDecoder()
    with pytest.raises(MessageDecodeError):
        decoder.feed_code(0xE0)
    assert decoder.feed_code(0x1E) == [down(A)]


def test_decoder_recovers_after_a_broken_pause() -> None:
    decoder = ScancodeDecoder()
    assert decoder.feed_code(0x1DE1) == []
    with pytest.raises(MessageDecodeError):
        decoder.feed_code(0x1E)
    assert decoder.held == b""
    assert decoder.feed_code(0x1E) == [down(A)]


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (down(A), 0x1E),
        (up(A), 0x9E),
        (down(UP), 0x48E0),
        (up(RCTRL), 0x9DE0),
        (down(PAUSE), 0x451DE1),
    ],
)
def test_code_for(event: KeyEvent, code: int) -> None:
    assert code_for(event) == code


@pytest.mark.parametrize("scancode", [0, 0x80, 0x60, 0xE060, 0xE080, 0xE100, 0x1E1E, -1, 0xE11D46])
def test_key_event_rejects_non_keys(scancode: int) -> None:
    with pytest.raises(ValueError):
        KeyEvent(scancode, True)


# -- properties ----------------------------------------------------------------------------------

keys = st.one_of(
    st.integers(1, 0x7F),
    st.integers(1, 0x7F).map(lambda sc: 0xE000 | sc),
    st.just(PAUSE),
).filter(lambda sc: sc & 0xFF not in (0x60, 0x61) or sc == PAUSE)
events = st.builds(KeyEvent, keys, st.booleans())


@given(st.lists(events, max_size=20))
def test_bytes_round_trip(evs: list[KeyEvent]) -> None:
    assert key_events_from_bytes(b"".join(bytes_for(e) for e in evs)) == evs


@given(events)
def test_code_round_trip(event: KeyEvent) -> None:
    assert key_events_from_code(code_for(event)) == [event]


@given(st.binary(max_size=32))
def test_from_bytes_never_fails_otherwise(data: bytes) -> None:
    with contextlib.suppress(MessageDecodeError):
        key_events_from_bytes(data)


@given(st.integers(0, 0xFFFFFFFF))
def test_from_code_never_fails_otherwise(code: int) -> None:
    with contextlib.suppress(MessageDecodeError):
        key_events_from_code(code)


@given(st.lists(st.one_of(st.binary(max_size=8), st.integers(0, 0xFFFFFFFF)), max_size=20))
def test_decoder_never_fails_otherwise(feeds: list[bytes | int]) -> None:
    decoder = ScancodeDecoder()
    for item in feeds:
        try:
            if isinstance(item, int):
                decoder.feed_code(item)
            else:
                decoder.feed(item)
        except MessageDecodeError:
            assert decoder.held == b""
        assert len(decoder.held) <= 2


@given(st.lists(events, max_size=12), st.data())
def test_decoder_joins_pause_split_anywhere(evs: list[KeyEvent], data: st.DataObject) -> None:
    # Messages may end between keys or inside a Pause sequence (never inside an E0 pair).
    allowed, pos = [0], 0
    for e in evs:
        chunk = bytes_for(e)
        if e.scancode == PAUSE:
            allowed += [pos + 1, pos + 2]
        pos += len(chunk)
        allowed.append(pos)
    stream = b"".join(bytes_for(e) for e in evs)
    cuts = sorted(data.draw(st.lists(st.sampled_from(allowed), max_size=6)))
    decoder = ScancodeDecoder()
    out: list[KeyEvent] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out.extend(decoder.feed(stream[a:b]))
    assert out == evs
    assert decoder.held == b""
