"""Hostile SASL clients over real sockets (tests/rawclient.py): malformed and oversized frames,
a client that never finishes, a secondary channel logging in as another user; each gets one
log line and a closed connection while a well-behaved SCRAM client (scramp's) logs in."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import pytest
import scramp
import trio
from rawclient import Wire, connect, link_packet, read_link_reply, read_until_closed

from spice.sasl import add_user

MAIN = 1
AUTH_SELECTION, AUTH_SASL, MINI_HEADER = 0, 2, 3
U32 = struct.Struct("<I")


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users"
    add_user(path, "alice", "pencil-1", iterations=4096)
    add_user(path, "bob", "pencil-2", iterations=4096)
    return path


async def start_sasl(
    port: int, channel_type: int = MAIN, connection_id: int = 0
) -> tuple[Wire, bytes]:
    wire = await connect("127.0.0.1", port)
    await wire.send(
        link_packet(
            channel_type=channel_type,
            connection_id=connection_id,
            common_caps=(AUTH_SELECTION, AUTH_SASL, MINI_HEADER),
        )
    )
    reply = await read_link_reply(wire)
    assert reply.error == 0
    assert AUTH_SASL in reply.common_caps and 1 not in reply.common_caps
    await wire.send(U32.pack(AUTH_SASL))
    (n,) = U32.unpack(await wire.read_exactly(4))
    return wire, await wire.read_exactly(n)


async def read_step(wire: Wire) -> tuple[bytes, int]:
    (n,) = U32.unpack(await wire.read_exactly(4))
    data = await wire.read_exactly(n)
    return data[:-1], (await wire.read_exactly(1))[0]


async def scram_login(port: int, user: str, password: str, **kw: int) -> tuple[Wire, int]:
    wire, mechs = await start_sasl(port, **kw)
    assert mechs == b",SCRAM-SHA-256,SCRAM-SHA-1,"
    client = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
    first = client.get_client_first().encode() + b"\0"
    await wire.send(U32.pack(13) + b"SCRAM-SHA-256" + U32.pack(len(first)) + first)
    data, complete = await read_step(wire)
    assert complete == 0
    client.set_server_first(data.decode())
    final = client.get_client_final().encode() + b"\0"
    await wire.send(U32.pack(len(final)) + final)
    data, complete = await read_step(wire)
    assert complete == 1
    client.set_server_final(data.decode())
    accepted, result = struct.unpack("<II", await wire.read_exactly(8))
    assert accepted == 0
    return wire, result


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


@pytest.mark.parametrize(
    ("frames", "answer", "text"),
    [
        (U32.pack(0), b"", "SASL mechanism name length 0"),
        (U32.pack(5000), b"", "SASL mechanism name length 5000"),
        (U32.pack(5) + b"PLAIN", U32.pack(3), "was not offered"),
        (U32.pack(13) + b"SCRAM-SHA-256" + U32.pack(1 << 30), U32.pack(3), "SASL data of"),
        (U32.pack(13) + b"SCRAM-SHA-256" + U32.pack(20000) + bytes(20000), None, "too much"),
        (U32.pack(13) + b"SCRAM-SHA-256" + U32.pack(5) + b"junk\0", b"", "client-first"),
    ],
)
async def test_malformed_frames(
    server_factory,
    users_file: Path,
    caplog: pytest.LogCaptureFixture,
    frames: bytes,
    answer: bytes | None,
    text: str,
) -> None:
    caplog.set_level(logging.INFO)
    server = await server_factory(sasl_users=users_file)
    wire, _ = await start_sasl(server.port_bound)
    await wire.send(frames)
    rest = await read_until_closed(wire)
    if answer is None:
        # Closing with unread bytes resets the connection, which may drop the answer.
        assert rest in (0, 4)
    else:
        assert rest == len(answer), (rest, answer)
    assert len(lines(caplog, text)) == 1, [r.getMessage() for r in caplog.records]
    # Others keep working.
    good, result = await scram_login(server.port_bound, "alice", "pencil-1")
    assert result == 0
    await good.aclose()


async def test_client_that_never_finishes(
    server_factory, users_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = await server_factory(sasl_users=users_file, link_timeout=1.0)
    wire, _ = await start_sasl(server.port_bound)
    await wire.send(U32.pack(13) + b"SCRAM-SHA-256")  # and nothing more
    assert await read_until_closed(wire, timeout=5) == 0
    assert len(lines(caplog, "link not completed")) == 1


async def test_secondary_channel_must_be_the_same_user(
    server_factory, users_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = await server_factory(sasl_users=users_file)
    main, result = await scram_login(server.port_bound, "alice", "pencil-1")
    assert result == 0
    with trio.fail_after(5):
        while not server.clients:
            await trio.sleep(0.01)
    (client,) = server.clients
    assert client.user == "alice"
    other, result = await scram_login(
        server.port_bound, "bob", "pencil-2", channel_type=3, connection_id=client.session_id
    )
    assert result == 7  # PERMISSION_DENIED
    assert len(lines(caplog, "not as the session's user")) == 1
    await other.aclose()
    await main.aclose()
