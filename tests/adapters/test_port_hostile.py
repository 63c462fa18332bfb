"""Hostile port-channel clients at byte level, against a real server on 127.0.0.1.

A good client holds one port and echoes through it with the application the whole time; a
hostile client opens another port and sends what no client may. Each bad message closes only
the hostile connection, with one warning line; the good client's bytes keep flowing, the
display keeps drawing, and the port the hostile client held serves the next client.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import rawclient as rc
import trio

import spice
from spice.adapters.channels.port import RECEIVE_BUFFER
from spice.domain.channels.port import MAX_PORT_MESSAGE

HOST = "127.0.0.1"


@pytest.fixture(autouse=True)
def no_internal_errors(caplog: pytest.LogCaptureFixture) -> object:
    yield
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors, errors


async def echo(port: spice.Port) -> None:
    """The application's side of the good port: send back what arrives."""
    while data := await port.receive_some():
        await port.send_all(data)


async def round_trip(channel: rc.Channel, data: bytes) -> None:
    await channel.send_msg(rc.MSGC_SPICEVMC_DATA, data)
    got = b""
    with trio.fail_after(5):
        while len(got) < len(data):
            got += (await channel.recv_until(rc.MSG_SPICEVMC_DATA))[1]
    assert got == data


@asynccontextmanager
async def ports_server(
    server_factory: object, nursery: trio.Nursery
) -> AsyncIterator[tuple[spice.Server, spice.Port, rc.Session, rc.Channel]]:
    server = await server_factory()  # type: ignore[operator]
    good_port = server.open_port("org.example.good")
    target = server.open_port("org.example.target")
    nursery.start_soon(echo, good_port)
    session = await rc.open_session(HOST, server.port_bound)
    assert (rc.PORT, 0) in session.channels and (rc.PORT, 1) in session.channels
    good, name, opened = await session.open_port(0)
    assert (name, opened) == (b"org.example.good", True)
    try:
        yield server, target, session, good
    finally:
        await session.aclose()


def warnings_about(caplog: pytest.LogCaptureFixture, label: str) -> list[str]:
    pattern = re.compile(re.escape(label) + r"(?!\d)")
    return [
        r.getMessage()
        for r in caplog.get_records("call")
        if r.levelno >= logging.WARNING and pattern.search(r.getMessage())
    ]


BAD_MESSAGES = {
    "empty PORT_EVENT": (rc.MSGC_PORT_EVENT, b"", "PORT_EVENT"),
    "LZ4 never offered": (rc.MSGC_SPICEVMC_COMPRESSED_DATA, b"\x01" + struct.pack("<I", 8), "LZ4"),
    "unknown compression": (rc.MSGC_SPICEVMC_COMPRESSED_DATA, b"\x07abc", "compression 7"),
    "empty COMPRESSED_DATA": (rc.MSGC_SPICEVMC_COMPRESSED_DATA, b"", "COMPRESSED_DATA"),
    "unknown message type": (250, b"xyz", "unknown message type 250"),
}


@pytest.mark.parametrize("case", list(BAD_MESSAGES))
async def test_malformed_port_message_closes_only_that_connection(
    case: str, server_factory: object, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    msg_type, body, words = BAD_MESSAGES[case]
    async with ports_server(server_factory, nursery) as (server, target, session, good):
        hostile, _, _ = await session.open_port(1)
        with trio.fail_after(5):
            assert isinstance(await target.next_event(), spice.PortOpened)
        label = f"{session.session_id:08x} port:1"
        await hostile.send_msg(msg_type, body)
        await rc.read_until_closed(hostile.wire)
        with trio.fail_after(5):
            assert isinstance(await target.next_event(), spice.PortClosed)
        lines = warnings_about(caplog, label)
        assert len(lines) == 1 and words in lines[0], lines
        # Nothing else is affected: the good port echoes, the display draws.
        await round_trip(good, b"still here")
        await server.displays[0].fill(0, 0, 10, 10, 0x123456)
        await server.displays[0].sync()
        # The port the hostile client held serves the next client.
        again, name, opened = await session.open_port(1)
        assert (name, opened) == (b"org.example.target", True)
        await again.send_msg(rc.MSGC_SPICEVMC_DATA, b"after")
        with trio.fail_after(5):
            assert await target.receive_some() == b"after"


async def test_oversized_data_message_is_refused_without_buffering_it(
    server_factory: object, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async with ports_server(server_factory, nursery) as (_server, _target, session, good):
        hostile, _, _ = await session.open_port(1)
        # A header announcing more than the limit, and only the start of the body.
        await hostile.wire.send(rc.MINI.pack(rc.MSGC_SPICEVMC_DATA, MAX_PORT_MESSAGE + 1) + b"x")
        await rc.read_until_closed(hostile.wire)
        label = f"{session.session_id:08x} port:1"
        with trio.fail_after(5):
            while not warnings_about(caplog, label):
                await trio.sleep(0.01)
        assert len(warnings_about(caplog, label)) == 1
        await round_trip(good, b"unaffected")


async def test_second_client_on_a_held_port_is_refused(
    server_factory: object, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async with ports_server(server_factory, nursery) as (server, _target, _session, good):
        other = await rc.open_session(HOST, server.port_bound)
        try:
            result = await other.open_channel(rc.PORT, 0)
            assert result.ok
            await rc.read_until_closed(result.channel.wire)
            lines = warnings_about(caplog, f"{other.session_id:08x} port:0")
            assert len(lines) == 1 and "held by another client" in lines[0], lines
        finally:
            await other.aclose()
        await round_trip(good, b"the holder keeps it")


async def test_a_client_writing_faster_than_the_application_reads_is_held_back(
    server_factory: object, nursery: trio.Nursery
) -> None:
    """The application never reads: the port buffers at most its limit (plus one message),
    then the server stops reading that connection; the other port is unaffected."""
    async with ports_server(server_factory, nursery) as (server, target, session, good):
        hostile, _, _ = await session.open_port(1)
        endpoint = server._core.ports.ports[1]
        chunk = b"\xab" * 60_000

        async def flood() -> None:
            with trio.move_on_after(3):
                while True:
                    await hostile.send_msg(rc.MSGC_SPICEVMC_DATA, chunk)

        await flood()
        assert RECEIVE_BUFFER <= endpoint._incoming_bytes <= RECEIVE_BUFFER + len(chunk)
        await round_trip(good, b"flowing")
        # Reading drains it and the flood's bytes arrive intact.
        data = await target.receive_some()
        assert data == chunk
