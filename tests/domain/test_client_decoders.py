"""Every client-to-server ``decode()`` in ``domain/messages/*.py``, against spice.proto.

For each client message the layout below is written from spice.proto (``channel BaseChannel``,
``MainChannel``, ``DisplayChannel``, ``InputsChannel``, ``RecordChannel``; client side): the
fixed fields as a :mod:`struct` format and what follows them. For any body Hypothesis makes,
``decode`` either returns the fields that layout gives, or, when the body is too short for it,
raises :class:`MessageDecodeError`, and nothing else. A decoder added to a registry without a
layout here fails :func:`test_every_client_decoder_has_a_layout`.
"""

from __future__ import annotations

import struct
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spice.domain.errors import MessageDecodeError
from spice.domain.messages import audio, base, display, inputs, main

REGISTRIES: dict[str, dict[int, Any]] = {
    "base": base.CLIENT_MESSAGES,
    "main": main.CLIENT_MESSAGES,
    "display": display.CLIENT_MESSAGES,
    "inputs": inputs.CLIENT_MESSAGES,
    "record": audio.CLIENT_MESSAGES,
    "playback": audio.PLAYBACK_CLIENT_MESSAGES,
}

#: (registry, type) -> (fixed little-endian fields, what follows: None (ignored), "rest" (all
#: of it, as bytes), "counted" (a uint8 count in the fixed part, then that many uint8s)).
LAYOUTS: dict[tuple[str, int], tuple[str, str | None]] = {
    # SpiceMsgcAckSync {uint32 generation}; ack {}; SpiceMsgPing {uint32 id; uint64 timestamp};
    # SpiceMsgDisconnect {uint64 time_stamp; link_err reason}; migrate_flush_mark {};
    # SpiceMsgcMigrateData {uint8 data[] @end}.
    ("base", 1): ("I", None),
    ("base", 2): ("", None),
    ("base", 3): ("IQ", None),
    ("base", 4): ("", None),
    ("base", 5): ("", "rest"),
    ("base", 6): ("QI", None),
    # SpiceMsgcClientInfo {uint64 cache_size}; attach_channels {};
    # SpiceMsgcMainMouseModeRequest {uint16 mode}; SpiceMsgcMainAgentStart {uint32 num_tokens};
    # agent_data {uint8 data[]}; SpiceMsgcMainAgentTokens {uint32}; quality_indicator {data[]}.
    ("main", 101): ("Q", None),
    ("main", 104): ("", None),
    ("main", 105): ("H", None),
    ("main", 106): ("I", None),
    ("main", 107): ("", "rest"),
    ("main", 108): ("I", None),
    ("main", 112): ("", "rest"),
    # SpiceMsgcDisplayInit {uint8 pixmap_cache_id; int64 pixmap_cache_size;
    #   uint8 glz_dictionary_id; int32 glz_dictionary_window_size} (packed);
    # SpiceMsgcDisplayStreamReport {uint32 stream_id, unique_id, start_frame_mm_time,
    #   end_frame_mm_time, num_frames, num_drops; int32 last_frame_delay; uint32 audio_delay};
    # SpiceMsgcDisplayPreferredCompression {uint8}; gl_draw_done {};
    # SpiceMsgcDisplayPreferredVideoCodecType {uint8 num_of_codecs; uint8 codecs[num]}.
    ("display", 101): ("BqBi", None),
    ("display", 102): ("6IiI", None),
    ("display", 103): ("B", None),
    ("display", 104): ("", None),
    ("display", 105): ("B", "counted"),
    # SpiceMsgcKeyDown/Up {uint32 code}; SpiceMsgcKeyModifiers {uint16}; key_scancode
    # {uint8 data[]}; SpiceMsgcMouseMotion {int32 dx, dy; uint16 buttons_state};
    # SpiceMsgcMousePosition {uint32 x, y; uint16 buttons_state; uint8 display_id};
    # SpiceMsgcMousePress/Release {uint8 button; uint16 buttons_state}.
    ("inputs", 101): ("I", None),
    ("inputs", 102): ("I", None),
    ("inputs", 103): ("H", None),
    ("inputs", 104): ("", "rest"),
    ("inputs", 111): ("iiH", None),
    ("inputs", 112): ("IIHB", None),
    ("inputs", 113): ("BH", None),
    ("inputs", 114): ("BH", None),
    # SpiceMsgcRecordPacket {uint32 time; uint8 data[]}; SpiceMsgcRecordMode {uint32 time;
    # audio_data_mode mode (uint16); uint8 data[]}; SpiceMsgcRecordStartMark {uint32 time}.
    ("record", 101): ("I", "rest"),
    ("record", 102): ("IH", "rest"),
    ("record", 103): ("I", None),
}

ALL = [(name, t, cls) for name, reg in REGISTRIES.items() for t, cls in sorted(reg.items())]


def test_every_client_decoder_has_a_layout() -> None:
    assert {(name, t) for name, t, _ in ALL} == set(LAYOUTS)
    for _name, msg_type, cls in ALL:
        assert cls.MSG_TYPE == msg_type


def expected_fields(name: str, msg_type: int, body: bytes) -> tuple[Any, ...] | None:
    fmt, tail = LAYOUTS[(name, msg_type)]
    fixed = struct.Struct("<" + fmt)
    if len(body) < fixed.size:
        return None
    values = fixed.unpack_from(body)
    if tail == "rest":
        return (*values, body[fixed.size :])
    if tail == "counted":
        (count,) = values
        if len(body) < fixed.size + count:
            return None
        return (tuple(body[fixed.size : fixed.size + count]),)
    return values


@pytest.mark.parametrize(("name", "msg_type", "cls"), ALL, ids=[f"{n}-{t}" for n, t, _ in ALL])
@settings(max_examples=150, deadline=None)
@given(body=st.one_of(st.binary(max_size=48), st.binary(min_size=30, max_size=300)))
def test_decode_gives_the_layout_or_its_decode_error(
    name: str, msg_type: int, cls: Any, body: bytes
) -> None:
    expected = expected_fields(name, msg_type, body)
    if expected is None:
        with pytest.raises(MessageDecodeError):
            cls.decode(body)
        return
    msg = cls.decode(body)
    assert type(msg) is cls
    got = attrs.astuple(msg, recurse=False)
    # Record MODE keeps its data with a default; everything else is exactly the layout.
    assert got == expected


@pytest.mark.parametrize(("name", "msg_type", "cls"), ALL, ids=[f"{n}-{t}" for n, t, _ in ALL])
def test_decode_accepts_memoryview_and_bytearray(name: str, msg_type: int, cls: Any) -> None:
    """Adapters hand bodies over as bytes, but a decoder must not keep a view of a buffer
    that is reused: the result is equal whatever the body's type, and holds no view."""
    body = bytes(range(1, 61))
    fixed = cls.decode(body)
    for other in (bytearray(body), memoryview(body)):
        msg = cls.decode(other)
        assert msg == fixed
        for value in attrs.astuple(msg, recurse=False):
            assert not isinstance(value, (bytearray, memoryview))
