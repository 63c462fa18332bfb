"""VD_AGENT payloads against layouts written out by hand from spice-protocol's vd_agent.h, the
main channel's agent transport messages against spice.proto, and every decoder fuzzed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spice.domain.agent import messages as am
from spice.domain.agent.errors import AgentDecodeError
from spice.domain.caps import CapabilitySet
from spice.domain.enums import MsgcMain, MsgMain
from spice.domain.errors import MessageDecodeError, RemoteProtocolError
from spice.domain.messages import main as mm


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# ---- VDAgentMessage header and the type / cap numbers ----------------------------------------


def test_header_is_20_packed_bytes() -> None:
    header = am.AgentMessageHeader(type=am.AgentMessageType.CLIPBOARD, size=5)
    wire = h("01000000 04000000 0000000000000000 05000000")
    assert header.encode() == wire
    assert am.AgentMessageHeader.decode(wire) == header
    with pytest.raises(AgentDecodeError):
        am.AgentMessageHeader.decode(wire[:19])


def test_numbers_follow_vd_agent_h() -> None:
    assert [t.value for t in am.AgentMessageType] == list(range(1, 17))
    assert am.AgentMessageType.FILE_XFER_START == 10
    assert am.AgentCap.CLIPBOARD_BY_DEMAND == 5
    assert am.AgentCap.FILE_XFER_DISABLED == 13
    assert am.AgentCap.CLIPBOARD_GRAB_SERIAL == 17
    assert am.FileXferStatus.CAN_SEND_DATA == 0
    assert am.FileXferStatus.SUCCESS == 3
    assert am.FileXferStatus.DISABLED == 7
    assert am.ClipboardType.IMAGE_PNG == 2
    assert am.ReplyError.SUCCESS == 1
    assert am.AgentButtonMask.LBUTTON == 2
    assert am.VD_AGENT_MAX_DATA_SIZE == 2048


# ---- payloads, one per message --------------------------------------------------------------


def test_mouse_state_is_13_bytes() -> None:
    msg = am.MouseState(x=0x100, y=0x20, buttons=am.AgentButtonMask.LBUTTON, display_id=1)
    wire = h("00010000 20000000 02000000 01")
    assert msg.encode() == wire
    assert am.MouseState.decode(wire) == msg
    with pytest.raises(AgentDecodeError):
        am.MouseState.decode(wire[:12])


def test_monitors_config_height_comes_before_width() -> None:
    wire = h(
        "01000000 02000000"  # one monitor, PHYSICAL_SIZE
        "00030000 00040000 20000000 ffffffff 00000000"  # height 768, width 1024, 32, x=-1, y=0
        "c800 2c01"  # 200 mm high, 300 mm wide
    )
    msg = am.MonitorsConfig(
        monitors=(am.MonConfig(width=1024, height=768, depth=32, x=-1, y=0),),
        flags=am.MonitorsConfigFlag.PHYSICAL_SIZE,
        physical_sizes=(am.MonitorMM(width=300, height=200),),
    )
    assert msg.encode() == wire
    assert am.MonitorsConfig.decode(wire) == msg
    # html5: one monitor, flags 0, no physical sizes
    html5 = h("01000000 00000000 58020000 20030000 20000000 00000000 00000000")
    decoded = am.MonitorsConfig.decode(html5)
    assert decoded.monitors == (am.MonConfig(width=800, height=600),)
    assert decoded.physical_sizes == ()
    # the flag without the sizes decodes without them (the reference reads only monitors)
    assert am.MonitorsConfig.decode(wire[:-4]).physical_sizes == ()
    with pytest.raises(AgentDecodeError):
        am.MonitorsConfig.decode(wire[:20])  # a monitor cut short
    with pytest.raises(AgentDecodeError):
        am.MonitorsConfig.decode(h("01010000 00000000"))  # 257 monitors


def test_reply() -> None:
    msg = am.Reply(am.AgentMessageType.MONITORS_CONFIG, am.ReplyError.SUCCESS)
    assert msg.encode() == h("02000000 01000000")
    assert am.Reply.decode(h("02000000 01000000")) == msg


def test_clipboard_with_and_without_selection() -> None:
    msg = am.Clipboard(am.ClipboardType.UTF8_TEXT, b"hi", selection=am.ClipboardSelection.PRIMARY)
    assert msg.encode(selection_prefix=True) == h("01 000000 01000000 6869")
    assert am.Clipboard.decode(h("01 000000 01000000 6869"), selection_prefix=True) == msg
    plain = am.Clipboard(am.ClipboardType.UTF8_TEXT, b"hi")
    assert plain.encode() == h("01000000 6869")
    assert am.Clipboard.decode(h("01000000 6869")) == plain
    with pytest.raises(ValueError):
        msg.encode(selection_prefix=False)  # PRIMARY cannot be said without the prefix
    with pytest.raises(AgentDecodeError):
        am.Clipboard.decode(h("01000000"), selection_prefix=True)


def test_display_config() -> None:
    msg = am.DisplayConfig(flags=9, depth=24)
    assert msg.encode() == h("09000000 18000000")
    assert am.DisplayConfig.decode(h("09000000 18000000")) == msg


def test_announce_capabilities() -> None:
    # spice-gtk's announce: MOUSE_STATE, MONITORS_CONFIG, REPLY, DISPLAY_CONFIG,
    # CLIPBOARD_BY_DEMAND, CLIPBOARD_SELECTION, MONITORS_CONFIG_POSITION,
    # FILE_XFER_DETAILED_ERRORS, NO_RELEASE_ON_REGRAB, GRAB_SERIAL = 0x00035077
    gtk = am.AnnounceCapabilities.decode(h("01000000 77500300"))
    assert gtk.request is True
    assert gtk.caps == CapabilitySet.of(0, 1, 2, 4, 5, 6, 12, 14, 16, 17)
    ours = am.AnnounceCapabilities(request=False, caps=CapabilitySet.of(0, 1, 2))
    assert ours.encode() == h("00000000 07000000")
    assert am.AnnounceCapabilities(False, CapabilitySet()).encode() == h("00000000 00000000")
    # a request with no caps words at all is still a request
    assert am.AnnounceCapabilities.decode(h("01000000")).caps == CapabilitySet()


def test_clipboard_grab_prefixes() -> None:
    msg = am.ClipboardGrab(types=(1, 2), selection=0, serial=5)
    wire = h("00000000 05000000 01000000 02000000")
    assert msg.encode(selection_prefix=True) == wire
    assert am.ClipboardGrab.decode(wire, selection_prefix=True, serial=True) == msg
    plain = am.ClipboardGrab(types=(2,))
    assert plain.encode() == h("02000000")
    assert am.ClipboardGrab.decode(h("02000000")) == plain
    with pytest.raises(AgentDecodeError):
        am.ClipboardGrab.decode(h("0200"))  # half a type


def test_clipboard_request_and_release() -> None:
    req = am.ClipboardRequest(am.ClipboardType.IMAGE_PNG, am.ClipboardSelection.SECONDARY)
    assert req.encode(selection_prefix=True) == h("02000000 02000000")
    assert am.ClipboardRequest.decode(h("02000000 02000000"), selection_prefix=True) == req
    assert am.ClipboardRequest(1).encode() == h("01000000")
    rel = am.ClipboardRelease(am.ClipboardSelection.PRIMARY)
    assert rel.encode(selection_prefix=True) == h("01000000")
    assert am.ClipboardRelease().encode() == b""
    assert am.ClipboardRelease.decode(b"") == am.ClipboardRelease()


def test_file_xfer_start_as_spice_gtk_writes_it() -> None:
    msg = am.FileXferStart.for_file(7, "report.pdf", 1234)
    wire = h("07000000") + b"[vdagent-file-xfer]\nname=report.pdf\nsize=1234\n\0"
    assert msg.encode() == wire
    assert am.FileXferStart.decode(wire) == msg
    # GLib escapes a leading space, backslashes and newlines
    assert b"name=\\sa\\\\b\\nc\n" in am.FileXferStart.for_file(1, " a\\b\nc", 0).keyfile


def test_file_xfer_status_with_detailed_errors() -> None:
    assert am.FileXferStatusMessage(3, am.FileXferStatus.SUCCESS).encode() == h("03000000 03000000")
    assert am.FileXferStatusMessage.not_enough_space(3, 0x1000).encode() == h(
        "03000000 04000000 0010000000000000"
    )
    # VDAgentFileXferStatusError is packed: uint8 error_type, uint32 error_code
    assert am.FileXferStatusMessage.glib_io_error(3, am.G_IO_ERROR_INVALID_FILENAME).encode() == (
        h("03000000 02000000 00 0a000000")
    )
    assert am.FileXferStatusMessage.decode(h("03000000 01000000")) == am.FileXferStatusMessage(
        3, am.FileXferStatus.CANCELLED
    )


def test_file_xfer_data_size_must_match() -> None:
    msg = am.FileXferData(9, b"xyz")
    wire = h("09000000 0300000000000000 78797a")
    assert msg.encode() == wire
    assert am.FileXferData.decode(wire) == msg
    with pytest.raises(AgentDecodeError):
        am.FileXferData.decode(h("09000000 0400000000000000 78797a"))  # says 4, carries 3
    with pytest.raises(AgentDecodeError):
        am.FileXferData.decode(h("09000000 0200000000000000 78797a"))  # says 2, carries 3


def test_small_messages() -> None:
    assert am.MaxClipboard(-1).encode() == h("ffffffff")
    assert am.MaxClipboard.decode(h("00001000")) == am.MaxClipboard(0x100000)
    assert am.ClientDisconnected().encode() == b""
    sync = am.AudioVolumeSync(is_playback=True, mute=False, volume=(0x100, 0xFFFF))
    assert sync.encode() == h("01 00 02 0001 ffff")
    assert am.AudioVolumeSync.decode(h("01 00 02 0001 ffff")) == sync
    with pytest.raises(AgentDecodeError):
        am.AudioVolumeSync.decode(h("01 00 02 0001"))


def test_graphics_device_info() -> None:
    info = am.GraphicsDeviceInfo(
        (am.DeviceDisplayInfo(0, 1, 2, b"pci/0000/02.0\0"),),
    )
    wire = h("01000000 00000000 01000000 02000000 0e000000") + b"pci/0000/02.0\0"
    assert info.encode() == wire
    assert am.GraphicsDeviceInfo.decode(wire) == info
    with pytest.raises(AgentDecodeError):
        am.GraphicsDeviceInfo.decode(wire[:-1])


def test_encode_message_is_header_and_payload() -> None:
    wire = am.encode_message(am.Reply(2, 1))
    assert wire == h("01000000 03000000 0000000000000000 08000000 02000000 01000000")


def test_decode_errors_are_remote_protocol_errors() -> None:
    assert issubclass(AgentDecodeError, MessageDecodeError)
    assert issubclass(AgentDecodeError, RemoteProtocolError)
    with pytest.raises(AgentDecodeError):
        am.decode_payload(99, b"")


# ---- the main channel's agent transport (spice.proto MainChannel) ----------------------------


def test_main_channel_agent_messages() -> None:
    assert (mm.AgentConnected.MSG_TYPE, mm.AgentDisconnected.MSG_TYPE) == (107, 108)
    assert (mm.ServerAgentData.MSG_TYPE, mm.ServerAgentToken.MSG_TYPE) == (109, 110)
    assert mm.AgentConnectedTokens.MSG_TYPE == MsgMain.AGENT_CONNECTED_TOKENS == 115
    assert (mm.AgentStart.MSG_TYPE, mm.ClientAgentData.MSG_TYPE) == (106, 107)
    assert mm.ClientAgentToken.MSG_TYPE == MsgcMain.AGENT_TOKEN == 108
    assert mm.AgentConnected().encode() == b""
    assert mm.AgentDisconnected().encode() == h("00000000")
    assert mm.AgentConnectedTokens(10).encode() == h("0a000000")
    assert mm.ServerAgentToken(5).encode() == h("05000000")
    assert mm.ServerAgentData(b"\x01\x02").encode() == b"\x01\x02"
    assert mm.AgentStart.decode(h("ffffffff")) == mm.AgentStart(0xFFFFFFFF)
    assert mm.ClientAgentToken.decode(h("05000000")) == mm.ClientAgentToken(5)
    assert mm.ClientAgentData.decode(b"abc") == mm.ClientAgentData(b"abc")
    with pytest.raises(MessageDecodeError):
        mm.AgentStart.decode(h("ffff"))


# ---- round trips and fuzzing ----------------------------------------------------------------

u32 = st.integers(0, 0xFFFFFFFF)
i32 = st.integers(-(1 << 31), (1 << 31) - 1)
sel = st.sampled_from(list(am.ClipboardSelection))
mon = st.builds(am.MonConfig, width=u32, height=u32, depth=u32, x=i32, y=i32)


@st.composite
def monitors_configs(draw: st.DrawFn) -> am.MonitorsConfig:
    monitors = tuple(draw(st.lists(mon, max_size=4)))
    physical = draw(st.booleans())
    sizes: tuple[am.MonitorMM, ...] = ()
    if physical:
        mm_ = st.builds(am.MonitorMM, width=st.integers(0, 0xFFFF), height=st.integers(0, 0xFFFF))
        sizes = tuple(draw(st.lists(mm_, min_size=len(monitors), max_size=len(monitors))))
    flags = am.MonitorsConfigFlag.PHYSICAL_SIZE if physical else draw(st.sampled_from([0, 1]))
    return am.MonitorsConfig(monitors=monitors, flags=flags, physical_sizes=sizes)


plain_messages = st.one_of(
    st.builds(am.MouseState, x=u32, y=u32, buttons=u32, display_id=st.integers(0, 255)),
    monitors_configs(),
    st.builds(am.Reply, type=u32, error=u32),
    st.builds(am.DisplayConfig, flags=u32, depth=u32),
    st.builds(
        am.AnnounceCapabilities,
        request=st.booleans(),
        caps=st.frozensets(st.integers(0, 63)).map(CapabilitySet),
    ),
    st.builds(am.FileXferStart, id=u32, keyfile=st.binary(max_size=64)),
    st.builds(am.FileXferStatusMessage, id=u32, result=u32, data=st.binary(max_size=16)),
    st.builds(am.FileXferData, id=u32, data=st.binary(max_size=64)),
    st.just(am.ClientDisconnected()),
    st.builds(am.MaxClipboard, max=i32),
    st.builds(
        am.AudioVolumeSync,
        is_playback=st.booleans(),
        mute=st.booleans(),
        volume=st.lists(st.integers(0, 0xFFFF), max_size=8).map(tuple),
    ),
    st.builds(
        am.GraphicsDeviceInfo,
        st.lists(
            st.builds(am.DeviceDisplayInfo, u32, u32, u32, st.binary(max_size=20)), max_size=3
        ).map(tuple),
    ),
)


@given(plain_messages)
def test_round_trip(msg: am.AgentMessage) -> None:
    assert am.decode_payload(msg.TYPE, msg.encode()) == msg
    header = am.AgentMessageHeader.decode(am.encode_message(msg))
    assert (header.type, header.size) == (msg.TYPE, len(msg.encode()))


clipboard_messages = st.one_of(
    st.builds(am.Clipboard, type=u32, data=st.binary(max_size=64), selection=sel),
    st.builds(am.ClipboardRequest, type=u32, selection=sel),
    st.builds(am.ClipboardRelease, selection=sel),
)


@given(clipboard_messages)
def test_clipboard_round_trip_with_selection(
    msg: am.Clipboard | am.ClipboardRequest | am.ClipboardRelease,
) -> None:
    wire = msg.encode(selection_prefix=True)
    assert am.decode_payload(msg.TYPE, wire, selection_prefix=True) == msg


@given(st.lists(u32, max_size=8), sel, st.none() | u32)
def test_grab_round_trip(types: list[int], selection: int, serial: int | None) -> None:
    msg = am.ClipboardGrab(tuple(types), selection, serial)
    wire = msg.encode(selection_prefix=True)
    decoded = am.ClipboardGrab.decode(wire, selection_prefix=True, serial=serial is not None)
    assert decoded == msg


@settings(max_examples=400)
@given(
    st.integers(0, 20),
    st.binary(max_size=300),
    st.booleans(),
    st.booleans(),
)
def test_every_decoder_raises_only_its_decode_error(
    type_: int, payload: bytes, selection_prefix: bool, grab_serial: bool
) -> None:
    try:
        msg = am.decode_payload(
            type_, payload, selection_prefix=selection_prefix, grab_serial=grab_serial
        )
    except AgentDecodeError:
        return
    assert msg.TYPE == type_


@given(st.binary(max_size=40))
def test_header_decoder_raises_only_its_decode_error(data: bytes) -> None:
    try:
        header = am.AgentMessageHeader.decode(data)
    except AgentDecodeError:
        assert len(data) < 20
        return
    assert header.encode() == data[:20]
