"""Several monitors on one display: the layout rules and the MONITORS_CONFIG the display
machine sends for them (bytes written out by hand from spice.proto: ``uint16 count;
uint16 max_allowed;`` then per head ``uint32 monitor_id, surface_id, width, height, x, y,
flags``)."""

from __future__ import annotations

import struct

import pytest
from display_peer import display_init

from spice.domain.caps import CapabilitySet
from spice.domain.channels.display import DisplayChannel
from spice.domain.display.monitors import MAX_MONITORS, check_heads, kept_on_resize, side_by_side
from spice.domain.enums import DisplayCap
from spice.domain.geometry import Box

SERVER = CapabilitySet.of(DisplayCap.MONITORS_CONFIG)
TWO = (Box(0, 0, 320, 240), Box(320, 0, 320, 240))


def test_layout_rules() -> None:
    assert check_heads(TWO, 640, 240) == TWO
    assert side_by_side(2, 320, 240) == TWO
    assert check_heads([Box(0, 0, 640, 240), Box(0, 0, 640, 240)], 640, 240)  # mirrored
    for bad in ([], [Box(0, 0, 0, 10)], [Box(-1, 0, 10, 10)], [Box(600, 0, 41, 10)]):
        with pytest.raises(ValueError):
            check_heads(bad, 640, 240)
    with pytest.raises(ValueError):
        check_heads([Box(0, 0, 1, 1)] * (MAX_MONITORS + 1), 640, 240)


def test_a_resize_keeps_a_layout_that_still_fits() -> None:
    assert kept_on_resize(TWO, 800, 300) == TWO
    assert kept_on_resize(TWO, 500, 240) == ()  # back to one monitor, all of the primary
    assert kept_on_resize((), 800, 300) == ()


def machine(client_caps: CapabilitySet) -> DisplayChannel:
    channel = DisplayChannel(mini_header=True, client_caps=client_caps, server_caps=SERVER)
    channel.receive_data(display_init())
    channel.next_event()
    channel.data_to_send()  # SET_ACK
    return channel


def sent(channel: DisplayChannel) -> list[tuple[int, bytes]]:
    data, out = b"".join(bytes(p) for p in channel.data_to_send()), []
    while data:
        msg_type, size = struct.unpack_from("<HI", data)
        out.append((msg_type, data[6 : 6 + size]))
        data = data[6 + size :]
    return out


def test_two_heads_go_out_as_one_monitors_config() -> None:
    channel = machine(CapabilitySet.of(DisplayCap.MONITORS_CONFIG))
    channel.monitors(TWO)
    assert channel.next_job(0.0) is None
    assert sent(channel) == [
        (
            317,
            bytes.fromhex(
                "0200 0200"
                "00000000 00000000 40010000 f0000000 00000000 00000000 00000000"
                "01000000 00000000 40010000 f0000000 40010000 00000000 00000000"
            ),
        )
    ]


def test_a_client_without_the_cap_gets_no_monitors_config() -> None:
    channel = machine(CapabilitySet())
    channel.monitors(TWO)
    assert channel.next_job(0.0) is None
    assert sent(channel) == []
