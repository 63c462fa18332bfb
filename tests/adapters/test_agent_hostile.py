# ruff: noqa: F811  (pytest fixtures imported from test_hostile_clients are parameters here)
"""Hostile agent traffic on the main channel, at byte level: each case gets one log line, the
offender's own session is closed only where the stream can no longer be trusted, and a good
client on the same server keeps working. Bytes are written from spice-protocol's vd_agent.h
(VDAgentMessage: uint32 protocol, uint32 type, uint64 opaque, uint32 size; 2048-byte chunks)
and spice.proto's main channel (AGENT_START 106, AGENT_DATA 107, AGENT_TOKEN 108 from the
client; AGENT_DATA 109, AGENT_TOKEN 110 from the server), never with the server's encoders.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

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

MSGC_AGENT_START, MSGC_AGENT_DATA, MSGC_AGENT_TOKEN = 106, 107, 108
MSG_AGENT_DATA, MSG_AGENT_TOKEN = 109, 110
MSG_MAIN_INIT = 103

# vd_agent.h message types and capability bits
CLIPBOARD, ANNOUNCE_CAPABILITIES, CLIPBOARD_GRAB, CLIPBOARD_REQUEST = 4, 6, 7, 8
FILE_XFER_START, FILE_XFER_STATUS, FILE_XFER_DATA = 10, 11, 12
CAP_CLIPBOARD_BY_DEMAND = 5
XFER_CAN_SEND_DATA, XFER_ERROR, XFER_SUCCESS = 0, 2, 3
TEXT = 1


def agent_message(
    type_: int, payload: bytes, *, protocol: int = 1, size: int | None = None
) -> bytes:
    return (
        struct.pack("<IIQI", protocol, type_, 0, len(payload) if size is None else size) + payload
    )


def announce(caps: int, request: bool = False) -> bytes:
    return agent_message(ANNOUNCE_CAPABILITIES, struct.pack("<II", int(request), caps))


def keyfile(name: str, size: int) -> bytes:
    return f"[vdagent-file-xfer]\nname={name}\nsize={size}\n".encode() + b"\0"


class AgentClient:
    """A raw session that speaks the agent stream by hand."""

    def __init__(self, session: rc.Session) -> None:
        self.session = session
        self.main = session.main
        self.sent = 0

    @classmethod
    async def open(cls, server: spice.Server, tokens: int = 1000) -> AgentClient:
        session = await rc.open_session(HOST, server.port_bound)
        client = cls(session)
        await client.main.send_msg(MSGC_AGENT_START, struct.pack("<I", tokens))
        return client

    async def data(self, body: bytes) -> None:
        """One AGENT_DATA (at most 2048 bytes for a well-behaved client)."""
        self.sent += 1
        await self.main.send_msg(MSGC_AGENT_DATA, body)

    async def message(self, message: bytes) -> None:
        for at in range(0, len(message), 2048):
            await self.data(message[at : at + 2048])

    async def agent_messages(self, timeout: float = 5.0) -> AsyncIterator[tuple[int, bytes]]:
        """Server agent messages as (type, payload), each starting an AGENT_DATA body."""
        while True:
            _, body = await self.main.recv_until(MSG_AGENT_DATA, timeout=timeout)
            _protocol, type_, _opaque, size = struct.unpack_from("<IIQI", body)
            payload = body[20:]
            while len(payload) < size:
                _, more = await self.main.recv_until(MSG_AGENT_DATA, timeout=timeout)
                payload += more
            yield type_, payload

    async def wait_agent(self, type_: int, timeout: float = 5.0) -> bytes:
        with trio.fail_after(timeout):
            async for got, payload in self.agent_messages(timeout):
                if got == type_:
                    return payload
        raise AssertionError("unreachable")

    async def closed(self) -> None:
        """The server closes this client's main channel."""
        await rc.read_until_closed(self.main.wire, timeout=5)

    async def aclose(self) -> None:
        await self.session.aclose()


GoodStart = Callable[..., Awaitable[tuple[spice.Server, GoodClient]]]


async def test_bad_protocol_in_a_chunk_closes_only_that_client(
    good_client: GoodStart, caplog: pytest.LogCaptureFixture
) -> None:
    server, good = await good_client()
    bad = await AgentClient.open(server)
    label = f"session {bad.session.session_id:08x} main"
    await bad.data(agent_message(ANNOUNCE_CAPABILITIES, b"\0" * 8, protocol=7))
    await bad.closed()
    await assert_one_line(caplog, label, "protocol error", level=logging.WARNING)
    await good.check_alive()
    await bad.aclose()


async def test_oversized_chunk_closes_only_that_client(
    good_client: GoodStart, caplog: pytest.LogCaptureFixture
) -> None:
    server, good = await good_client()
    bad = await AgentClient.open(server)
    label = f"session {bad.session.session_id:08x} main"
    await bad.data(announce(0) + b"\0" * 2100)  # 2128 bytes in one AGENT_DATA
    await bad.closed()
    await assert_one_line(caplog, label, "protocol error", level=logging.WARNING)
    await good.check_alive()
    await bad.aclose()


async def test_data_before_agent_start_closes_only_that_client(
    good_client: GoodStart, caplog: pytest.LogCaptureFixture
) -> None:
    server, good = await good_client()
    session = await rc.open_session(HOST, server.port_bound)
    await session.main.send_msg(MSGC_AGENT_DATA, announce(0))
    await rc.read_until_closed(session.main.wire, timeout=5)
    await assert_one_line(
        caplog, f"session {session.session_id:08x} main", "AGENT_START", level=logging.WARNING
    )
    await good.check_alive()
    await session.aclose()


async def test_clipboard_longer_than_its_header_says_closes_only_that_client(
    good_client: GoodStart, caplog: pytest.LogCaptureFixture
) -> None:
    """A CLIPBOARD whose header announces 6 bytes followed by 40: the rest is read as the next
    header, whose protocol is garbage."""
    server, good = await good_client()
    bad = await AgentClient.open(server)
    label = f"session {bad.session.session_id:08x} main"
    await bad.data(announce(1 << CAP_CLIPBOARD_BY_DEMAND))
    body = struct.pack("<I", TEXT) + b"hi" + b"this text was never announced, 40 bytes"
    await bad.data(agent_message(CLIPBOARD, body, size=6))
    await bad.closed()
    await assert_one_line(caplog, label, "protocol error", level=logging.WARNING)
    await good.check_alive()
    await bad.aclose()


async def test_token_overrun_from_a_client_that_never_reads(
    good_client: GoodStart, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that grants us no tokens and keeps pasting a 1 MiB clipboard: the answers
    queue up to the backlog limit, then the client gets no more tokens, and its eleventh
    AGENT_DATA after that is a token overrun. What waits for it stays bounded."""
    server, good = await good_client()
    await server.clipboard.set_text("x" * (1 << 20))
    bad = await AgentClient.open(server, tokens=0)
    label = f"session {bad.session.session_id:08x} main"
    await bad.data(announce(1 << CAP_CLIPBOARD_BY_DEMAND))
    with trio.fail_after(10):
        for _ in range(40):
            try:
                await bad.data(agent_message(CLIPBOARD_REQUEST, struct.pack("<I", TEXT)))
            except (trio.BrokenResourceError, trio.ClosedResourceError, rc.Closed):
                break
            await trio.sleep(0.01)
    await bad.closed()
    await assert_one_line(caplog, label, "token overrun", level=logging.WARNING)
    agent = server._core.agent
    assert all(a.machine.backlog <= 2 * a.machine.config.backlog_limit for a in agent.agents)
    await good.check_alive()
    await bad.aclose()


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def start_transfer(bad: AgentClient, xfer_id: int, name: str, size: int) -> tuple[int, int]:
    await bad.message(
        agent_message(FILE_XFER_START, struct.pack("<I", xfer_id) + keyfile(name, size))
    )
    payload = await bad.wait_agent(FILE_XFER_STATUS)
    got_id, result = struct.unpack_from("<II", payload)
    return got_id, result


def xfer_data(xfer_id: int, data: bytes) -> bytes:
    return agent_message(FILE_XFER_DATA, struct.pack("<IQ", xfer_id, len(data)) + data)


async def test_file_transfer_with_a_lying_size(
    good_client: GoodStart, caplog: pytest.LogCaptureFixture, inbox: Path
) -> None:
    server, good = await good_client(file_transfer_dir=inbox)
    bad = await AgentClient.open(server)
    await bad.data(announce(0))
    assert await start_transfer(bad, 1, "short.txt", 100) == (1, XFER_CAN_SEND_DATA)
    assert len(listing(inbox)) == 1  # the temporary file only
    await bad.message(xfer_data(1, b"a" * 150))
    payload = await bad.wait_agent(FILE_XFER_STATUS)
    assert struct.unpack_from("<II", payload) == (1, XFER_ERROR)
    await wait_until(lambda: listing(inbox) == [])
    await assert_one_line(caplog, "'short.txt'", "more data than", level=logging.WARNING)
    # the session goes on: the next transfer arrives whole
    assert await start_transfer(bad, 2, "ok.txt", 5) == (2, XFER_CAN_SEND_DATA)
    await bad.message(xfer_data(2, b"12345"))
    payload = await bad.wait_agent(FILE_XFER_STATUS)
    assert struct.unpack_from("<II", payload) == (2, XFER_SUCCESS)
    assert listing(inbox) == ["ok.txt"]
    assert (inbox / "ok.txt").read_bytes() == b"12345"
    await good.check_alive()
    await bad.aclose()


async def test_disconnect_mid_transfer_leaves_no_file(good_client: GoodStart, inbox: Path) -> None:
    server, good = await good_client(file_transfer_dir=inbox)
    bad = await AgentClient.open(server)
    await bad.data(announce(0))
    assert await start_transfer(bad, 7, "half.bin", 10_000) == (7, XFER_CAN_SEND_DATA)
    await bad.message(xfer_data(7, b"b" * 4000))
    agents = server._core.agent.agents

    def received() -> int:
        return sum(x.received for a in agents for x in a.machine.transfers.values())

    await wait_until(lambda: received() == 4000)
    [temp] = listing(inbox)
    assert temp.startswith(".half.bin.") and temp.endswith(".part")
    await bad.aclose()
    await wait_until(lambda: listing(inbox) == [])
    await good.check_alive()


@pytest.mark.parametrize("name", ["../escape.txt", "a/../../b", "/etc/passwd", "..", "x\\..\\y"])
async def test_file_names_that_leave_the_directory_are_refused(
    good_client: GoodStart, tmp_path: Path, inbox: Path, name: str
) -> None:
    server, good = await good_client(file_transfer_dir=inbox)
    bad = await AgentClient.open(server)
    await bad.data(announce(0))
    xfer_id, result = await start_transfer(bad, 3, name, 4)
    assert xfer_id == 3 and result == XFER_ERROR
    await bad.message(xfer_data(3, b"evil"))  # dropped: no such transfer
    assert listing(inbox) == []
    assert listing(tmp_path) == ["inbox"]
    await good.check_alive()
    await bad.aclose()


_: Any = None
