"""The port channel: its bodies against layouts written out by hand from spice.proto
(``channel PortChannel : SpicevmcChannel``) and its machine, fed bytes as a client sends them."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spice.domain.caps import CapabilitySet
from spice.domain.channel import ChannelClosed
from spice.domain.channels.port import DATA_CHUNK, MAX_PORT_MESSAGE, PortChannel, PortData
from spice.domain.channels.registry import KINDS, ChannelSetup
from spice.domain.enums import ChannelType, PortEvent
from spice.domain.errors import LocalProtocolError, MessageDecodeError, RemoteProtocolError
from spice.domain.link import NEED_DATA
from spice.domain.messages import port as m


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def mini(msg_type: int, body: bytes) -> bytes:
    return struct.pack("<HI", msg_type, len(body)) + body


def frames(parts: list[bytes | memoryview]) -> list[tuple[int, bytes]]:
    """(type, body) of each mini-header message in what the machine sent."""
    data, out = b"".join(bytes(p) for p in parts), []
    while data:
        msg_type, size = struct.unpack_from("<HI", data)
        out.append((msg_type, data[6 : 6 + size]))
        data = data[6 + size :]
    return out


# -- bodies ------------------------------------------------------------------------------------
def test_port_init_layout() -> None:
    # name_size (counts the NUL) 4, name offset 9 (right after the fixed part), opened 1,
    # then "qmp\0".
    assert m.PortInit(b"qmp", True).encode() == h("04000000 09000000 01 716d7000")
    assert m.PortInit(b"a", False).encode() == h("02000000 09000000 00 6100")
    assert m.PortInit.MSG_TYPE == 201


@pytest.mark.parametrize("name", [b"", b"a\0b", b"x" * 256])
def test_port_init_refuses_bad_names(name: bytes) -> None:
    with pytest.raises(ValueError):
        m.PortInit(name, True)


def test_port_event_and_data() -> None:
    assert (m.PortEventMsg.MSG_TYPE, m.PortEventMsg(PortEvent.CLOSED).encode()) == (202, h("01"))
    assert (m.SpicevmcData.MSG_TYPE, m.SpicevmcData(b"\x00\xff").encode()) == (101, h("00ff"))
    assert m.ClientSpicevmcData.decode(h("010203")) == m.ClientSpicevmcData(b"\x01\x02\x03")
    assert m.ClientPortEvent.decode(h("02")) == m.ClientPortEvent(PortEvent.BREAK)
    assert m.ClientPortEvent.decode(h("09")) == m.ClientPortEvent(9)  # newer clients' numbers


def test_compressed_data() -> None:
    # type NONE (0): no uncompressed_size, the bytes follow.
    assert m.ClientSpicevmcCompressedData.decode(h("00 6869")).data == b"hi"
    with pytest.raises(MessageDecodeError, match="LZ4"):
        m.ClientSpicevmcCompressedData.decode(h("01 02000000 2068"))
    with pytest.raises(MessageDecodeError, match="compression 5"):
        m.ClientSpicevmcCompressedData.decode(h("05"))
    with pytest.raises(MessageDecodeError):
        m.ClientSpicevmcCompressedData.decode(b"")
    with pytest.raises(MessageDecodeError):
        m.ClientPortEvent.decode(b"")


@given(st.sampled_from(sorted(m.CLIENT_MESSAGES)), st.binary(max_size=64))
def test_client_bodies_decode_or_raise_the_remote_error(msg_type: int, body: bytes) -> None:
    with contextlib.suppress(MessageDecodeError):
        m.CLIENT_MESSAGES[msg_type].decode(body)


# -- machine -----------------------------------------------------------------------------------
def test_registry_entry() -> None:
    port = KINDS[ChannelType.PORT]
    setup = ChannelSetup(True, CapabilitySet(), port.caps)
    assert isinstance(port.make(setup), PortChannel)
    assert not port.caps.bits  # LZ4 compression is not offered


def test_init_then_data_in_chunks_and_open_close_events() -> None:
    machine = PortChannel(mini_header=True)
    with pytest.raises(LocalProtocolError):
        machine.send_data(b"too early")
    machine.start(b"org.example", True)
    machine.send_data(b"\x07" * (DATA_CHUNK + 10))
    machine.set_opened(True)  # no change: nothing sent
    machine.set_opened(False)
    sent = frames(machine.data_to_send())
    assert [t for t, _ in sent] == [201, 101, 101, 202]
    assert sent[0][1] == m.PortInit(b"org.example", True).encode()
    assert [len(b) for _, b in sent[1:3]] == [DATA_CHUNK, 10]
    assert sent[3][1] == h("01")
    with pytest.raises(LocalProtocolError):
        machine.start(b"again", True)


def test_client_data_and_events_come_out_as_events() -> None:
    machine = PortChannel(mini_header=True)
    machine.start(b"p", True)
    machine.receive_data(
        mini(101, b"abc") + mini(101, b"") + mini(102, h("00 6465")) + mini(201, h("02"))
    )
    events = []
    while (event := machine.next_event()) is not NEED_DATA:
        events.append(event)
    assert events == [PortData(b"abc"), PortData(b"de"), m.ClientPortEvent(2)]


def test_oversized_message_is_a_remote_error() -> None:
    machine = PortChannel(mini_header=True)
    machine.receive_data(struct.pack("<HI", 101, MAX_PORT_MESSAGE + 1))
    with pytest.raises(RemoteProtocolError):
        machine.next_event()


@given(st.binary(max_size=200))
def test_garbage_yields_events_need_data_or_the_remote_error(data: bytes) -> None:
    machine = PortChannel(mini_header=True)
    machine.start(b"p", True)
    machine.receive_data(data)
    try:
        for _ in range(100):
            if machine.next_event() is NEED_DATA:
                break
    except (RemoteProtocolError, ChannelClosed):  # ChannelClosed: a DISCONNECTING
        pass
