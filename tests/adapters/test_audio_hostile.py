# ruff: noqa: F811  (pytest fixtures imported from test_hostile_clients are parameters here)
"""Hostile record-channel traffic at byte level: each case gets one log line, only the
offender's record channel is closed (if anything), and a good client on the same server keeps
its display. Bytes are written from spice.proto's record channel (client DATA 101
``uint32 time; data``, MODE 102 ``uint32 time; uint16 mode``, START_MARK 103 ``uint32 time``;
server START 101 ``uint32 channels; uint16 format; uint32 frequency``), never with the
server's encoders."""

from __future__ import annotations

import logging
import struct
from collections.abc import Awaitable, Callable

import pytest
import rawclient as rc
import trio
from test_hostile_clients import (  # noqa: F401  (fixtures)
    GoodClient,
    assert_one_line,
    good_client,
    no_internal_errors,
    wait_until,
)

import spice

HOST = "127.0.0.1"
RECORD = 6
MSGC_DATA, MSGC_MODE, MSGC_START_MARK = 101, 102, 103
MSG_RECORD_START, MSG_RECORD_STOP = 101, 102
RAW, OPUS = 1, 3

GoodStart = Callable[..., Awaitable[tuple[spice.Server, GoodClient]]]


async def open_record(server: spice.Server) -> tuple[rc.Session, rc.Channel, str]:
    session = await rc.open_session(HOST, server.port_bound)
    result = await session.open_channel(RECORD, channel_caps=[1, 2])
    assert result.ok, result
    return session, result.channel, f"session {session.session_id:08x} record:0"


async def started(server: spice.Server, channel: rc.Channel) -> None:
    server.record.start()
    _, body = await channel.recv_until(MSG_RECORD_START)
    assert struct.unpack("<IHI", body) == (2, 1, 48000)


async def test_data_on_a_stopped_stream_is_dropped_with_one_line(
    good_client: GoodStart, caplog: pytest.LogCaptureFixture
) -> None:
    server, good = await good_client()
    session, record, label = await open_record(server)
    async with server.record_events() as events:
        for _ in range(5):
            await record.send_msg(MSGC_DATA, struct.pack("<I", 0) + bytes(1920))
        await assert_one_line(caplog, label, "no recording is open", level=logging.INFO)
        # All five were read and counted before the recording opens (else the last of them,
        # read after it opened, would be its data: they travel ahead of its START).
        (client,) = server._core.record.clients
        with trio.fail_after(5):
            while client.machine.dropped < 5:
                await trio.sleep(0.01)
        # The channel is still open: a recording started afterwards delivers.
        await started(server, record)
        await record.send_msg(MSGC_MODE, struct.pack("<IH", 0, RAW))
        await record.send_msg(MSGC_START_MARK, struct.pack("<I", 0))
        pcm = struct.pack("<4h", 1, -1, 2, -2)
        await record.send_msg(MSGC_DATA, struct.pack("<I", 7) + pcm)
        with trio.fail_after(5):
            first = await events.receive()
            second = await events.receive()
        assert isinstance(first, spice.RecordStarted) and first.mode == "raw"
        assert isinstance(second, spice.RecordData) and second.pcm == pcm
    await good.check_alive()
    await session.aclose()


@pytest.mark.parametrize(
    ("name", "messages", "words"),
    [
        ("short DATA", [(MSGC_DATA, b"\1\2")], ("RECORD_DATA",)),
        ("short MODE", [(MSGC_MODE, b"\0\0\0\0\1")], ("RECORD_MODE",)),
        ("mode not offered", [(MSGC_MODE, struct.pack("<IH", 0, 2))], ("not offered",)),
        (
            "half a sample",
            [(MSGC_MODE, struct.pack("<IH", 0, RAW)), (MSGC_DATA, b"\0" * 7)],
            ("whole",),
        ),
        (
            "oversized frame",
            [(MSGC_MODE, struct.pack("<IH", 0, RAW)), (MSGC_DATA, b"\0" * 40004)],
            ("protocol error",),
        ),
        (
            "garbage Opus",
            [(MSGC_MODE, struct.pack("<IH", 0, OPUS)), (MSGC_DATA, b"\0" * 4 + b"\xff" * 3)],
            ("Opus",),
        ),
        ("unknown message", [(150, b"")], ("unknown message type",)),
    ],
)
async def test_malformed_record_packets_close_only_that_channel(
    good_client: GoodStart,
    caplog: pytest.LogCaptureFixture,
    name: str,
    messages: list[tuple[int, bytes]],
    words: tuple[str, ...],
) -> None:
    server, good = await good_client()
    session, record, label = await open_record(server)
    await started(server, record)
    for msg_type, body in messages:
        await record.send_msg(msg_type, body)
    await rc.read_until_closed(record.wire, timeout=5)
    await assert_one_line(caplog, label, "protocol error", *words, level=logging.WARNING)
    # Its own session goes on (the main channel is untouched), and so does everyone else.
    assert any(c.session_id == session.session_id for c in server.clients)
    await good.check_alive()
    await session.aclose()
