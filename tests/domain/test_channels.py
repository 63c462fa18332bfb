"""Channel machines with hand-written wire bytes: main-channel setup, inputs decoding and
motion acks, the ack window, and what unknown or oversized messages do."""

from __future__ import annotations

import struct
import uuid

import pytest

from spice.domain.caps import CapabilitySet
from spice.domain.channel import ChannelClosed
from spice.domain.channels.cursor import CursorChannel
from spice.domain.channels.inputs import InputsChannel
from spice.domain.channels.main import MainChannel
from spice.domain.enums import MainCap, MouseMode
from spice.domain.errors import RemoteProtocolError
from spice.domain.input_events import (
    KeyEvent,
    MouseButtonEvent,
    MouseMotionEvent,
    MousePositionEvent,
    MouseWheelEvent,
)
from spice.domain.link import NEED_DATA
from spice.domain.messages import main as mm


def mini(msg_type: int, body: bytes = b"") -> bytes:
    return struct.pack("<HI", msg_type, len(body)) + body


def drain(machine: object) -> list[object]:
    out = []
    while (event := machine.next_event()) is not NEED_DATA:  # type: ignore[attr-defined]
        out.append(event)
    return out


def sent(machine: object) -> bytes:
    return b"".join(bytes(p) for p in machine.data_to_send())  # type: ignore[attr-defined]


def test_capability_words_round_trip() -> None:
    caps = CapabilitySet.of(0, 3, 33)
    assert caps.words() == (0b1001, 0b10)
    assert caps.encode() == bytes.fromhex("0900000002000000")
    assert CapabilitySet.from_words([0x9, 0x2]) == caps
    assert 33 in caps and 1 not in caps
    assert CapabilitySet().encode() == b""


def test_main_init_name_uuid_and_channels_list() -> None:
    main = MainChannel(mini_header=True, client_caps=CapabilitySet.of(MainCap.NAME_AND_UUID))
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    main.start(
        session_id=0xCAFEBABE,
        display_channels=1,
        supported_mouse_modes=3,
        current_mouse_mode=2,
        multi_media_time=1000,
        name="vm",
        uuid=u,
    )
    out = sent(main)
    init_body = struct.pack("<8I", 0xCAFEBABE, 1, 3, 2, 0, 10, 1000, 0)
    name_body = struct.pack("<I", 3) + b"vm\0"
    assert out == mini(103, init_body) + mini(113, name_body) + mini(114, u.bytes)

    main.receive_data(mini(104) + mini(105, struct.pack("<H", 1)))
    events = drain(main)
    assert events == [mm.AttachChannels(), mm.MouseModeRequest(1)]
    main.send_channels_list([(2, 0), (3, 0), (4, 0)])
    assert sent(main) == mini(104, bytes.fromhex("03000000020003000400"))


def test_main_without_name_cap_sends_only_init() -> None:
    main = MainChannel(mini_header=True, client_caps=CapabilitySet())
    main.start(
        session_id=1,
        display_channels=1,
        supported_mouse_modes=1,
        current_mouse_mode=1,
        multi_media_time=0,
        name="x",
        uuid=uuid.uuid4(),
    )
    assert sent(main) == mini(103, struct.pack("<8I", 1, 1, 1, 1, 0, 10, 0, 0))


def test_inputs_keys_buttons_wheel_and_motion_acks() -> None:
    inputs = InputsChannel(mini_header=True, mouse_mode=MouseMode.CLIENT)
    inputs.start(4)
    assert sent(inputs) == mini(101, struct.pack("<H", 4))
    data = (
        mini(101, struct.pack("<I", 0x1E))  # KEY_DOWN A
        + mini(102, struct.pack("<I", 0x9E))  # KEY_UP A
        + mini(101, struct.pack("<I", 0x48E0))  # Up
        + mini(104, bytes([0xE0, 0x1D, 0xE0, 0x9D]))  # KEY_SCANCODE RCtrl press+release
        + mini(113, struct.pack("<BH", 4, 8))  # wheel up press
        + mini(114, struct.pack("<BH", 4, 0))
        + mini(113, struct.pack("<BH", 1, 1))
        + mini(114, struct.pack("<BH", 1, 0))
    )
    for i in range(8):
        data += mini(112, struct.pack("<IIHB", i, 2 * i, 0, 0))
    inputs.receive_data(data)
    events = drain(inputs)
    assert events[:9] == [
        KeyEvent(0x1E, True),
        KeyEvent(0x1E, False),
        KeyEvent(0xE048, True),
        KeyEvent(0xE01D, True),
        KeyEvent(0xE01D, False),
        MouseWheelEvent(-1, 8),
        MouseButtonEvent(1, True, 1),
        MouseButtonEvent(1, False, 0),
        MousePositionEvent(0, 0, 0, 0),
    ]
    assert len(events) == 16
    # MOUSE_MOTION_ACK (111, empty) after every 4 motion/position messages.
    assert sent(inputs) == mini(111) * 2


def test_inputs_motion_only_in_server_mode_but_always_acked() -> None:
    inputs = InputsChannel(mini_header=True, mouse_mode=MouseMode.SERVER)
    inputs.receive_data(
        mini(111, struct.pack("<iiH", -3, 4, 2)) + mini(112, struct.pack("<IIHB", 1, 1, 0, 0)) * 3
    )
    assert drain(inputs) == [MouseMotionEvent(-3, 4, 2)]
    assert sent(inputs) == mini(111)


def test_a_bad_scancode_is_dropped_not_fatal() -> None:
    inputs = InputsChannel(mini_header=True)
    inputs.receive_data(mini(101, struct.pack("<I", 0xE0B5)) + mini(101, struct.pack("<I", 0x1E)))
    assert drain(inputs) == [KeyEvent(0x1E, True)]
    assert inputs.bad_keys == 1


def test_ack_window_blocks_after_two_windows_until_acked() -> None:
    cursor = CursorChannel(mini_header=True)
    assert sent(cursor) == mini(3, struct.pack("<II", 1, 20))  # SET_ACK generation 1, window 20
    cursor.receive_data(mini(1, struct.pack("<I", 1)))  # ACK_SYNC
    assert drain(cursor) == []
    for _ in range(40):
        cursor.move(1, 1)
    assert cursor.may_send
    cursor.move(1, 1)
    assert not cursor.may_send
    cursor.receive_data(mini(2))  # ACK
    drain(cursor)
    assert cursor.may_send and cursor.unacked == 21


def test_acks_of_a_stale_generation_are_ignored() -> None:
    cursor = CursorChannel(mini_header=True)
    cursor.receive_data(mini(1, struct.pack("<I", 99)))
    for _ in range(41):
        cursor.move(0, 0)
    cursor.receive_data(mini(2))
    drain(cursor)
    assert not cursor.may_send


def test_unknown_message_type_is_a_remote_error() -> None:
    inputs = InputsChannel(mini_header=True)
    inputs.receive_data(mini(199, b"xx"))
    with pytest.raises(RemoteProtocolError, match="unknown message type 199"):
        drain(inputs)


def test_oversized_message_is_refused_before_its_body_arrives() -> None:
    inputs = InputsChannel(mini_header=True)
    inputs.receive_data(struct.pack("<HI", 101, 100_000_000))
    with pytest.raises(RemoteProtocolError, match="over the limit"):
        drain(inputs)


def test_short_body_is_a_decode_error() -> None:
    inputs = InputsChannel(mini_header=True)
    inputs.receive_data(mini(111, b"\x01\x02"))
    with pytest.raises(RemoteProtocolError):
        drain(inputs)


def test_client_disconnecting_ends_the_channel() -> None:
    main = MainChannel(mini_header=True, client_caps=CapabilitySet())
    main.receive_data(mini(6, struct.pack("<QI", 0, 0)))
    with pytest.raises(ChannelClosed):
        drain(main)


def test_full_header_serials_count_from_one() -> None:
    cursor = CursorChannel(mini_header=False)
    cursor.move(3, 4)
    out = sent(cursor)
    assert out[:18] == struct.pack("<QHII", 1, 3, 8, 0)
    assert out[26:44] == struct.pack("<QHII", 2, 104, 4, 0)


def test_a_byte_window_lets_many_small_messages_out_and_bounds_big_ones() -> None:
    from spice.domain.channel import ACK_WINDOW, MAX_UNACKED_WINDOWS, ChannelConnection

    small = ChannelConnection(mini_header=True, ack_window=ACK_WINDOW)
    small.byte_window = 100_000
    for _ in range(5 * ACK_WINDOW):
        assert small.may_send
        small.send_body(1, b"x" * 100)
    assert small.may_send  # 100 small messages, 10 KB: still fine
    for _ in range(MAX_UNACKED_WINDOWS * ACK_WINDOW):
        small.send_body(1, b"x")
    assert not small.may_send  # but not without end
    big = ChannelConnection(mini_header=True, ack_window=ACK_WINDOW)
    big.byte_window = 100_000
    for _ in range(2 * ACK_WINDOW + 1):
        big.send_body(1, b"x" * 10_000)
    assert not big.may_send
    assert big.unacked_bytes == (2 * ACK_WINDOW + 1) * 10_000
