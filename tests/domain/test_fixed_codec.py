"""The declarative fixed-size codec (``codec.Fixed``) that most message classes derive from,
checked on real messages with layouts written by hand from spice.proto."""

from __future__ import annotations

import pytest

from spice.domain.errors import MessageDecodeError
from spice.domain.messages import audio, base, inputs, main


def test_decode_reads_fields_in_order_and_ignores_appended_bytes() -> None:
    # MousePosition: uint32 x, uint32 y, uint16 buttons_state, uint8 display_id.
    body = bytes.fromhex("0a000000 14000000 0300 01 ff".replace(" ", ""))
    assert inputs.MousePosition.decode(body) == inputs.MousePosition(10, 20, 3, 1)


def test_short_body_is_a_decode_error_naming_the_message() -> None:
    with pytest.raises(MessageDecodeError, match=r"PONG: body of 11 bytes, need 12"):
        base.Pong.decode(bytes(11))


def test_tail_takes_the_rest_of_the_body() -> None:
    # RecordMode: uint32 time, uint16 mode, then the data to the end.
    body = bytes.fromhex("01000000 0300 aabb".replace(" ", ""))
    assert audio.RecordMode.decode(body) == audio.RecordMode(1, 3, b"\xaa\xbb")
    assert main.ClientAgentData.decode(b"xyz") == main.ClientAgentData(b"xyz")
    with pytest.raises(MessageDecodeError, match="RECORD_DATA"):
        audio.RecordData.decode(b"\x00\x00\x00")


def test_empty_layouts() -> None:
    assert base.Ack.decode(b"") == base.Ack()
    assert inputs.MouseMotionAck().encode() == b""


def test_encode_packs_fields_in_order() -> None:
    # SET_ACK: uint32 generation, uint32 window.
    assert base.SetAck(1, 20).encode() == bytes.fromhex("0100000014000000")
    # MOUSE_MODE: uint16 supported_modes, uint16 current_mode.
    assert main.MainMouseMode(3, 2).encode() == bytes.fromhex("03000200")
