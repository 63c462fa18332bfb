"""The registry's inputs and cursor kinds: the caps the link announces and the machines built."""

from __future__ import annotations

from spice.domain.caps import CapabilitySet
from spice.domain.channels.cursor import CursorChannel
from spice.domain.channels.display import DisplayChannel
from spice.domain.channels.inputs import InputsChannel
from spice.domain.channels.registry import KINDS, ChannelSetup, server_caps
from spice.domain.enums import ChannelType, MouseMode


def test_inputs_kind() -> None:
    # spice.proto: inputs channel cap KEY_SCANCODE is 0, so the one caps word is 1.
    caps = server_caps(ChannelType.INPUTS)
    assert caps is not None
    assert caps.encode() == bytes.fromhex("01000000")
    kind = KINDS[ChannelType.INPUTS]
    setup = ChannelSetup(True, CapabilitySet(), kind.caps, mouse_mode=MouseMode.CLIENT)
    machine = kind.make(setup)
    assert isinstance(machine, InputsChannel)
    assert machine.mouse_mode == MouseMode.CLIENT
    assert isinstance(kind.make(ChannelSetup(True, CapabilitySet(), kind.caps)), InputsChannel)


def test_cursor_kind() -> None:
    kind = KINDS[ChannelType.CURSOR]
    assert server_caps(ChannelType.CURSOR) == CapabilitySet()
    assert kind.caps.encode() == b""
    assert isinstance(kind.make(ChannelSetup(False, CapabilitySet(), kind.caps)), CursorChannel)


def test_display_kind() -> None:
    # spice.proto display caps: MONITORS_CONFIG 1, STREAM_REPORT 4, PREF_COMPRESSION 6,
    # PREF_VIDEO_CODEC_TYPE 12: 0x1052, little-endian.
    kind = KINDS[ChannelType.DISPLAY]
    assert kind.caps.encode() == bytes.fromhex("52100000")
    setup = ChannelSetup(
        True, CapabilitySet(), kind.caps, image_compression="quic", low_bandwidth=True
    )
    machine = kind.make(setup)
    assert isinstance(machine, DisplayChannel)
    assert machine.low_bandwidth


def test_main_is_not_registered() -> None:
    assert server_caps(ChannelType.MAIN) is None
