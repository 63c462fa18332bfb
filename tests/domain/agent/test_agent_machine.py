"""The agent machine driven by an in-memory client that behaves like spice-gtk or spice-html5."""

from __future__ import annotations

import struct

import pytest
from agent_peer import HTML5_CAPS, AgentPeer, chunks_of

from spice.domain.agent import events as ev
from spice.domain.agent import messages as am
from spice.domain.agent.errors import AgentProtocolError
from spice.domain.agent.machine import PNG_SIGNATURE, AgentConfig, AgentMachine
from spice.domain.agent.messages import AgentCap, ClipboardSelection, ClipboardType
from spice.domain.agent.messages import FileXferStatus as S
from spice.domain.errors import LocalProtocolError
from spice.domain.link import NEED_DATA
from spice.domain.messages.main import (
    AgentStart,
    ClientAgentData,
    ClientAgentToken,
    ServerAgentToken,
)

TEXT = ClipboardType.UTF8_TEXT
PNG = PNG_SIGNATURE + b"rest of a png"


def started(config: AgentConfig | None = None, **peer: object) -> AgentPeer:
    client = AgentPeer(AgentMachine(config), **peer)  # type: ignore[arg-type]
    client.start()
    return client


# ---- capabilities and tokens ----------------------------------------------------------------


def test_caps_answer_a_request_with_request_zero() -> None:
    client = started()
    [announce] = client.take()
    assert isinstance(announce, am.AnnounceCapabilities)
    assert announce.request is False
    caps = announce.caps
    for cap in (
        AgentCap.MONITORS_CONFIG,
        AgentCap.REPLY,
        AgentCap.CLIPBOARD_BY_DEMAND,
        AgentCap.CLIPBOARD_SELECTION,
        AgentCap.MAX_CLIPBOARD,
    ):
        assert cap in caps
    # no serials on grabs, no display config we would ignore, transfers allowed
    for cap in (
        AgentCap.CLIPBOARD_GRAB_SERIAL,
        AgentCap.DISPLAY_CONFIG,
        AgentCap.FILE_XFER_DISABLED,
    ):
        assert cap not in caps
    assert client.machine.client_caps == client.caps


def test_no_announce_without_a_request() -> None:
    client = AgentPeer(AgentMachine())
    client.start(announce=False)
    client.send(am.AnnounceCapabilities(request=False, caps=client.caps))
    assert client.take() == []


def test_tokens_return_in_batches_of_five_and_when_a_message_ends() -> None:
    """Within a long message (one AGENT_DATA per 2048 bytes) tokens go back five at a time;
    when a message ends, whatever is owed goes back at once: spice-gtk sends what it queued
    after its last message (a file transfer's CANCELLED status) only once a token wakes it."""
    machine = AgentMachine()
    machine.agent_start(0xFFFFFFFF)
    body = am.encode_message(am.Clipboard(1, b"x" * (6 * 2048)))  # 7 AGENT_DATA bodies
    parts = [body[i : i + 2048] for i in range(0, len(body), 2048)]
    assert len(parts) == 7
    for part in parts[:4]:
        machine.receive_data(part)
    assert machine.data_to_send() == []
    machine.receive_data(parts[4])
    assert machine.data_to_send() == [ServerAgentToken(5)]
    machine.receive_data(parts[5])
    assert machine.data_to_send() == []
    machine.receive_data(parts[6])  # the message ends
    assert machine.data_to_send() == [ServerAgentToken(2)]
    assert machine.data_to_send() == []
    announce = am.encode_message(am.AnnounceCapabilities(False, HTML5_CAPS))
    machine.receive_data(announce)
    assert machine.data_to_send() == [ServerAgentToken(1)]


def test_a_client_sending_hundreds_of_messages_never_stalls() -> None:
    client = started()
    for i in range(300):
        client.send(am.MaxClipboard(i), pump=False)
    client.pump()
    assert not client.outbox
    assert client.machine.client_max_clipboard == 299


def test_token_overrun_is_one_clear_error() -> None:
    machine = AgentMachine()
    machine.agent_start(10)
    announce = am.encode_message(am.AnnounceCapabilities(False, HTML5_CAPS))
    for _ in range(10):
        machine.receive_data(announce)  # never collects the AGENT_TOKEN it is owed
    with pytest.raises(AgentProtocolError, match="token"):
        machine.receive_data(announce)
    with pytest.raises(LocalProtocolError):
        machine.receive_data(announce)
    assert machine.data_to_send() == []
    assert machine.failed is not None


def test_server_to_client_respects_the_clients_tokens() -> None:
    client = AgentPeer(AgentMachine(), grant=1)
    client.start()
    client.collect()
    assert len(client.take()) == 1  # the announce, on the one token
    client.send(am.MonitorsConfig((am.MonConfig(800, 600),)))
    [resize] = client.take_events()
    assert isinstance(resize, ev.ResizeRequest)
    client.machine.accept_resize(resize.request_id)
    client.collect()
    assert client.take() == []  # REPLY waits for a token
    client.machine.handle(ClientAgentToken(1))
    client.granted += 1
    client.collect()
    assert client.take() == [am.Reply(am.AgentMessageType.MONITORS_CONFIG, am.ReplyError.SUCCESS)]


def test_handle_dispatches_main_channel_messages() -> None:
    machine = AgentMachine()
    machine.handle(AgentStart(0xFFFFFFFF))
    machine.handle(ClientAgentData(am.encode_message(am.MaxClipboard(77))))
    assert machine.client_max_clipboard == 77
    with pytest.raises(LocalProtocolError):
        machine.handle(object())  # type: ignore[arg-type]


# ---- framing errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"\0" * 2049, "2048"),
        (struct.pack("<IIQI", 2, 6, 0, 8) + b"\0" * 8, "protocol"),
        (struct.pack("<IIQI", 1, 6, 0, 2) + b"\0\0", "ANNOUNCE"),  # too short to decode
        (struct.pack("<IIQI", 1, 2, 0, 1 << 20), "limit"),  # a 1 MiB MONITORS_CONFIG
        (struct.pack("<IIQI", 1, 12, 0, 5) + b"\0" * 5, "FILE_XFER_DATA"),
    ],
)
def test_malformed_stream_is_one_error(body: bytes, match: str) -> None:
    machine = AgentMachine()
    machine.agent_start(10)
    with pytest.raises(AgentProtocolError, match=match):
        machine.receive_data(body)
    with pytest.raises(LocalProtocolError):
        machine.add_tokens(1)


def test_data_before_agent_start_is_an_error() -> None:
    with pytest.raises(AgentProtocolError, match="AGENT_START"):
        AgentMachine().receive_data(am.encode_message(am.MaxClipboard(1)))


def test_a_header_split_anywhere_reassembles() -> None:
    client = AgentPeer(AgentMachine(), chunk=7)
    client.start()
    client.send(am.MonitorsConfig((am.MonConfig(1024, 768),)))
    [resize] = client.take_events()
    assert resize == ev.ResizeRequest(1, (am.MonConfig(1024, 768),), 0)


def test_unknown_and_unwanted_types_are_skipped_unread() -> None:
    client = started()
    client.take()
    big = struct.pack("<IIQI", 1, 99, 0, 100_000) + b"x" * 100_000
    client.send_raw(big)
    client.send(am.DisplayConfig(8, 24))
    client.send(am.AudioVolumeSync(True, False, (1, 2)))
    client.send(am.MaxClipboard(5))
    assert client.machine.client_max_clipboard == 5
    assert client.take_events() == [] and client.take() == []


# ---- resize ---------------------------------------------------------------------------------


def test_resize_accept_and_refuse() -> None:
    client = started()
    client.take()
    monitors = am.MonitorsConfig(
        (am.MonConfig(1280, 720),),
        flags=am.MonitorsConfigFlag.PHYSICAL_SIZE,
        physical_sizes=(am.MonitorMM(300, 200),),
    )
    client.send(monitors)
    [req] = client.take_events()
    assert isinstance(req, ev.ResizeRequest)
    assert req.size == (1280, 720)
    client.machine.accept_resize(req.request_id)
    client.collect()
    assert client.take() == [am.Reply(am.AgentMessageType.MONITORS_CONFIG, am.ReplyError.SUCCESS)]
    client.send(monitors)
    [req2] = client.take_events()
    client.machine.refuse_resize(req2.request_id)  # type: ignore[union-attr]
    client.collect()
    assert client.take() == [am.Reply(am.AgentMessageType.MONITORS_CONFIG, am.ReplyError.ERROR)]


def test_a_newer_resize_supersedes_the_pending_one() -> None:
    client = started()
    client.take()
    client.send(am.MonitorsConfig((am.MonConfig(800, 600),)))
    client.send(am.MonitorsConfig((am.MonConfig(900, 700),)))
    first, second = client.take_events()
    assert isinstance(first, ev.ResizeRequest) and isinstance(second, ev.ResizeRequest)
    assert client.take() == [am.Reply(am.AgentMessageType.MONITORS_CONFIG, am.ReplyError.ERROR)]
    client.machine.accept_resize(first.request_id)  # late: ignored
    client.collect()
    assert client.take() == []
    client.machine.accept_resize(second.request_id)
    client.collect()
    assert client.take() == [am.Reply(am.AgentMessageType.MONITORS_CONFIG, am.ReplyError.SUCCESS)]


def test_html5_resize_with_html5_chunking() -> None:
    client = AgentPeer(AgentMachine(), caps=HTML5_CAPS, chunk=2042)
    client.start()
    client.take()
    client.send(am.MonitorsConfig((am.MonConfig(800, 600, 32, 0, 0),)))
    [req] = client.take_events()
    assert req.size == (800, 600)  # type: ignore[union-attr]


# ---- clipboard, app to client ---------------------------------------------------------------


def test_app_text_is_grabbed_and_answered_by_the_machine() -> None:
    client = started()
    client.take()
    client.machine.set_clipboard_text("héllo")
    client.collect()
    assert client.take() == [am.ClipboardGrab((TEXT,), ClipboardSelection.CLIPBOARD)]
    client.send(am.ClipboardRequest(TEXT))
    assert client.take() == [am.Clipboard(TEXT, "héllo".encode())]
    client.send(am.ClipboardRequest(ClipboardType.IMAGE_PNG))  # not offered
    assert client.take() == [am.Clipboard(ClipboardType.NONE, b"")]
    assert client.take_events() == []


def test_app_png_on_the_primary_selection_uses_the_prefix() -> None:
    client = started()
    client.take()
    client.machine.set_clipboard_image(PNG, ClipboardSelection.PRIMARY)
    client.collect()
    assert client.take() == [am.ClipboardGrab((ClipboardType.IMAGE_PNG,), 1)]
    client.send(am.ClipboardRequest(ClipboardType.IMAGE_PNG, 1))
    assert client.take() == [am.Clipboard(ClipboardType.IMAGE_PNG, PNG, 1)]
    with pytest.raises(LocalProtocolError):
        client.machine.set_clipboard_image(b"GIF89a")


def test_a_large_clipboard_goes_out_in_2048_byte_bodies() -> None:
    client = started()
    client.take()
    data = bytes(range(256)) * 100  # 25600 bytes
    client.machine.set_clipboard({ClipboardType.IMAGE_BMP: data})
    client.send(am.ClipboardRequest(ClipboardType.IMAGE_BMP))  # peer asserts every body size
    assert client.take()[-1] == am.Clipboard(ClipboardType.IMAGE_BMP, data)


def test_lazy_grab_asks_the_app() -> None:
    client = started()
    client.take()
    client.machine.grab_clipboard([TEXT, ClipboardType.IMAGE_PNG])
    client.send(am.ClipboardRequest(ClipboardType.IMAGE_PNG))
    assert client.take_events() == [ev.ClipboardRequested(0, ClipboardType.IMAGE_PNG)]
    client.machine.send_clipboard(0, ClipboardType.IMAGE_PNG, PNG)
    client.machine.send_clipboard(0, ClipboardType.IMAGE_PNG, PNG)  # nobody waits: ignored
    client.collect()
    msgs = client.take()
    assert msgs[-1] == am.Clipboard(ClipboardType.IMAGE_PNG, PNG)
    assert sum(isinstance(m, am.Clipboard) for m in msgs) == 1


def test_a_second_paste_before_the_app_answers_gets_none() -> None:
    client = started()
    client.take()
    client.machine.grab_clipboard([TEXT])
    client.send(am.ClipboardRequest(TEXT))
    client.send(am.ClipboardRequest(TEXT))
    assert client.take_events() == [ev.ClipboardRequested(0, TEXT)] * 2
    client.machine.send_clipboard(0, TEXT, b"answer")
    client.collect()
    assert client.take()[-2:] == [
        am.Clipboard(ClipboardType.NONE, b""),
        am.Clipboard(TEXT, b"answer"),
    ]
    with pytest.raises(LocalProtocolError):
        client.machine.grab_clipboard([1 << 32])


def test_clients_max_clipboard_is_honoured() -> None:
    client = started()
    client.take()
    client.send(am.MaxClipboard(4))
    client.machine.set_clipboard_text("too long")
    client.send(am.ClipboardRequest(TEXT))
    assert client.take()[-1] == am.Clipboard(ClipboardType.NONE, b"")
    [refused] = client.take_events()
    assert isinstance(refused, ev.ClipboardRefused) and "limit" in refused.reason


def test_grab_waits_for_the_clients_caps_and_release() -> None:
    client = AgentPeer(AgentMachine())
    client.start(announce=False)
    client.machine.set_clipboard_text("early")
    client.collect()
    assert client.take() == []  # the client has not said it does clipboard
    client.send(am.AnnounceCapabilities(request=True, caps=client.caps))
    msgs = client.take()
    assert msgs[-1] == am.ClipboardGrab((TEXT,), 0)
    client.machine.release_clipboard()
    client.collect()
    assert client.take() == [am.ClipboardRelease(0)]
    client.send(am.ClipboardRequest(TEXT))
    assert client.take() == [am.Clipboard(ClipboardType.NONE, b"")]


def test_html5_hears_no_clipboard() -> None:
    client = AgentPeer(AgentMachine(), caps=HTML5_CAPS)
    client.start()
    client.take()
    client.machine.set_clipboard_text("x")
    client.collect()
    assert client.take() == []
    assert client.machine.request_clipboard(0, TEXT) is False


# ---- clipboard, client to app ---------------------------------------------------------------


def test_client_grab_request_data_release() -> None:
    client = started()
    client.take()
    client.send(am.ClipboardGrab((TEXT, ClipboardType.IMAGE_PNG), 0))
    assert client.take_events() == [ev.ClipboardGrabbed(0, (TEXT, ClipboardType.IMAGE_PNG))]
    assert client.machine.request_clipboard(0, ClipboardType.IMAGE_BMP) is False
    assert client.machine.request_clipboard(0, TEXT) is True
    assert client.machine.request_clipboard(0, TEXT) is False  # one in flight per selection
    client.collect()
    assert client.take() == [am.ClipboardRequest(TEXT, 0)]
    client.send(am.Clipboard(TEXT, "día\0".encode()))
    [data] = client.take_events()
    assert isinstance(data, ev.ClipboardData) and data.text == "día"
    client.send(am.Clipboard(TEXT, b"unasked"))  # dropped, as vdagent does
    client.send(am.ClipboardRelease(0))
    assert client.take_events() == [ev.ClipboardReleased(0)]
    assert client.machine.request_clipboard(0, TEXT) is False


def test_client_grab_replaces_the_apps() -> None:
    client = started()
    client.take()
    client.machine.set_clipboard_text("mine")
    client.send(am.ClipboardGrab((TEXT,), 2))
    client.take()
    client.send(am.ClipboardRequest(TEXT, 0))  # the app still owns CLIPBOARD
    assert client.take() == [am.Clipboard(TEXT, b"mine")]
    client.send(am.ClipboardGrab((TEXT,), 0))
    client.send(am.ClipboardRequest(TEXT, 0))
    assert client.take() == [am.Clipboard(ClipboardType.NONE, b"")]


def test_client_clipboard_over_the_limit_is_dropped_not_fatal() -> None:
    client = started(AgentConfig(clipboard_limit=1000))
    client.take()
    client.send(am.ClipboardGrab((TEXT,), 0))
    client.machine.request_clipboard(0, TEXT)
    client.take_events()
    client.send(am.Clipboard(TEXT, b"x" * 5000))
    [refused] = client.take_events()
    assert isinstance(refused, ev.ClipboardRefused)
    assert "5004 bytes" in refused.reason or "bytes over the limit" in refused.reason
    # the stream is still in step: the next message works
    client.send(am.MonitorsConfig((am.MonConfig(640, 480),)))
    assert isinstance(client.take_events()[0], ev.ResizeRequest)
    assert client.machine.request_clipboard(0, TEXT) is True


# ---- switches -------------------------------------------------------------------------------


def test_copy_paste_disabled() -> None:
    client = started(AgentConfig(copy_paste=False))
    [announce] = client.take()
    assert isinstance(announce, am.AnnounceCapabilities)
    assert AgentCap.CLIPBOARD_BY_DEMAND not in announce.caps
    assert AgentCap.CLIPBOARD_SELECTION not in announce.caps
    client.machine.set_clipboard_text("x")
    client.send(am.ClipboardGrab((TEXT,)))
    client.send(am.ClipboardRequest(TEXT))
    client.send(am.Clipboard(TEXT, b"y" * 100_000))
    assert client.take() == [] and client.take_events() == []


def test_file_transfer_disabled() -> None:
    client = started(AgentConfig(file_transfer=False))
    [announce] = client.take()
    assert AgentCap.FILE_XFER_DISABLED in announce.caps  # type: ignore[union-attr]
    client.send(am.FileXferStart.for_file(1, "a.txt", 3))
    client.send(am.FileXferData(1, b"abc"))
    assert client.take() == [am.FileXferStatusMessage(1, S.DISABLED)]
    assert client.take_events() == []


# ---- file transfer --------------------------------------------------------------------------


def test_file_transfer_happy_path_with_progress() -> None:
    client = started()
    client.take()
    client.send(am.FileXferStart.for_file(1, "notes.txt", 10))
    assert client.take_events() == [ev.FileTransferStarted(1, "notes.txt", 10)]
    assert client.take() == []  # nothing until the adapter has its temporary file
    client.machine.accept_transfer(1)
    client.collect()
    assert client.take() == [am.FileXferStatusMessage(1, S.CAN_SEND_DATA)]
    client.send(am.FileXferData(1, b"0123"))
    client.send(am.FileXferData(1, b"456789"))
    assert client.take_events() == [
        ev.FileTransferData(1, b"0123", 4, 10),
        ev.FileTransferData(1, b"456789", 10, 10),
        ev.FileTransferCompleted(1, "notes.txt", 10),
    ]
    assert client.take() == []  # SUCCESS only once the file is in place
    client.machine.finish_transfer(1)
    client.collect()
    assert client.take() == [am.FileXferStatusMessage(1, S.SUCCESS)]
    assert client.machine.transfers == {}


def test_a_64k_data_message_across_many_bodies() -> None:
    client = started()
    client.take()
    payload = bytes(range(256)) * 256
    client.send(am.FileXferStart.for_file(4, "blob.bin", len(payload)))
    client.machine.accept_transfer(4)
    client.send(am.FileXferData(4, payload))
    events = client.take_events()
    assert events[-2] == ev.FileTransferData(4, payload, len(payload), len(payload))
    assert events[-1] == ev.FileTransferCompleted(4, "blob.bin", len(payload))


def test_empty_file_completes_on_accept_and_ignores_gtks_empty_data() -> None:
    client = started()
    client.take()
    client.send(am.FileXferStart.for_file(2, "empty", 0))
    client.take_events()
    client.machine.accept_transfer(2)
    client.collect()
    assert client.take_events() == [ev.FileTransferCompleted(2, "empty", 0)]
    client.send(am.FileXferData(2, b""))
    assert client.take_events() == []
    client.machine.finish_transfer(2, ok=False)
    client.collect()
    assert client.take()[-1] == am.FileXferStatusMessage(2, S.ERROR)


@pytest.mark.parametrize(
    "name", ["../etc/passwd", "/etc/passwd", "..", "a/b", "C:\\x", "", "a\0b", "x" * 300]
)
def test_paths_are_refused_with_invalid_filename(name: str) -> None:
    client = started()
    client.take()
    client.send(am.FileXferStart.for_file(3, name, 1))
    assert client.take_events() == []
    [status] = client.take()
    if "\0" in name:  # the key file text ends at the NUL, so "size" is missing: plain ERROR
        assert status == am.FileXferStatusMessage(3, S.ERROR)
    else:
        assert status == am.FileXferStatusMessage.glib_io_error(3, am.G_IO_ERROR_INVALID_FILENAME)


def test_a_lying_size_fails_that_transfer_only() -> None:
    client = started()
    client.take()
    client.send(am.FileXferStart.for_file(5, "small", 4))
    client.send(am.FileXferStart.for_file(6, "other", 2))
    client.take_events()
    client.machine.accept_transfer(5)
    client.machine.accept_transfer(6)
    client.collect()
    client.take()
    client.send(am.FileXferData(5, b"0123456"))
    [failed] = client.take_events()
    assert failed == ev.FileTransferFailed(5, "more data than the 4 bytes announced")
    assert client.take() == [am.FileXferStatusMessage(5, S.ERROR)]
    client.send(am.FileXferData(5, b"more"))  # in flight after the failure: dropped
    client.send(am.FileXferData(6, b"ok"))
    assert client.take_events() == [
        ev.FileTransferData(6, b"ok", 2, 2),
        ev.FileTransferCompleted(6, "other", 2),
    ]


def test_data_before_accept_fails_the_transfer() -> None:
    client = started()
    client.take()
    client.send(am.FileXferStart.for_file(7, "f", 4))
    client.take_events()
    client.send(am.FileXferData(7, b"ab"))
    assert client.take_events() == [
        ev.FileTransferFailed(7, "data before the transfer was accepted")
    ]
    client.machine.accept_transfer(7)  # too late: ignored
    client.collect()
    assert client.take() == [am.FileXferStatusMessage(7, S.ERROR)]


def test_cancel_both_ways() -> None:
    client = started()
    client.take()
    client.send(am.FileXferStart.for_file(8, "a", 100))
    client.send(am.FileXferStart.for_file(9, "b", 100))
    client.take_events()
    client.machine.accept_transfer(8)
    client.machine.accept_transfer(9)
    client.send(am.FileXferStatusMessage(8, S.CANCELLED))  # what html5 sends on Cancel
    assert client.take_events() == [ev.FileTransferCancelled(8)]
    client.machine.cancel_transfer(9)
    client.collect()
    assert client.take_events() == [ev.FileTransferFailed(9, "cancelled by the application")]
    assert client.take()[-1] == am.FileXferStatusMessage(9, S.CANCELLED)
    assert client.machine.transfers == {}


def test_refusals_size_limit_and_count_limit() -> None:
    client = started(AgentConfig(file_size_limit=1000, max_transfers=2))
    client.take()
    client.send(am.FileXferStart.for_file(1, "huge", 1001))
    assert client.take() == [am.FileXferStatusMessage(1, S.NOT_ENOUGH_SPACE)]
    for i in (2, 3, 4):
        client.send(am.FileXferStart.for_file(i, f"f{i}", 1))
    assert client.take() == [am.FileXferStatusMessage(4, S.ERROR)]
    client.machine.refuse_transfer(2, S.NOT_ENOUGH_SPACE, free_space=4096)
    client.machine.refuse_transfer(3, S.SESSION_LOCKED)
    client.collect()
    assert client.take() == [
        am.FileXferStatusMessage.not_enough_space(2, 4096),
        am.FileXferStatusMessage(3, S.SESSION_LOCKED),
    ]
    with pytest.raises(LocalProtocolError):
        client.machine.refuse_transfer(3, S.SUCCESS)


def test_misuse_of_transfer_calls() -> None:
    client = started()
    client.take()
    client.send(am.FileXferStart.for_file(1, "f", 5))
    with pytest.raises(LocalProtocolError):
        client.machine.finish_transfer(1)
    client.machine.accept_transfer(1)
    with pytest.raises(LocalProtocolError):
        client.machine.accept_transfer(1)
    client.machine.finish_transfer(99)  # unknown: a race with the client, ignored


def test_duplicate_start_is_a_protocol_error() -> None:
    client = started()
    client.take()
    client.send(am.FileXferStart.for_file(1, "f", 5))
    with pytest.raises(AgentProtocolError, match="already open"):
        client.send(am.FileXferStart.for_file(1, "g", 5))


def test_html5_start_with_a_latin1_name() -> None:
    client = AgentPeer(AgentMachine(), caps=HTML5_CAPS, chunk=2042)
    client.start()
    # html5 writes charCodeAt() bytes: "é" arrives as 0xE9, with a NUL after the text
    text = b"[vdagent-file-xfer]\nname=caf\xe9.txt\nsize=3\n\0"
    client.send(am.FileXferStart(0, text))
    assert client.take_events() == [ev.FileTransferStarted(0, "café.txt", 3)]


def test_next_event_is_need_data_when_empty() -> None:
    assert AgentMachine().next_event() is NEED_DATA


def test_chunker_helper() -> None:
    assert chunks_of(3)(b"abcdefg") == [b"abc", b"def", b"g"]
