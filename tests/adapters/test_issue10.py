"""Attacks from issue 10 on the SPICE side of a port, against a real server on 127.0.0.1 with
the byte-level client: ticket replay, connection and link limits, duplicate channels, password
guessing and input floods. Each test failed on the code before its fix."""

from __future__ import annotations

import struct

import rawclient as rc
import trio

HOST = "127.0.0.1"
PASSWORD = b"hunter2"


async def captured_ticket(port: int, password: bytes) -> bytes:
    """Link a main channel with ``password`` and return the ticket bytes it sent (what a
    sniffer on the plain port sees)."""
    stream = await trio.open_tcp_stream(HOST, port)
    async with stream:
        wire = rc.Wire(stream)
        await wire.send(rc.link_packet(channel_type=rc.MAIN))
        reply = await rc.read_link_reply(wire)
        assert reply.error == rc.OK
        ticket = rc.encrypt_ticket(reply.pub_key, password)
        await wire.send(struct.pack("<I", rc.AUTH_SPICE) + ticket)
        assert struct.unpack("<I", await wire.read_exactly(4))[0] == rc.OK
    return ticket


async def replay(port: int, ticket: bytes, channel_type: int = rc.MAIN) -> tuple[int, bytes]:
    """Link with a recorded ticket instead of one made under this link's key; (result, key)."""
    stream = await trio.open_tcp_stream(HOST, port)
    async with stream:
        wire = rc.Wire(stream)
        await wire.send(rc.link_packet(channel_type=channel_type))
        reply = await rc.read_link_reply(wire)
        assert reply.error == rc.OK
        await wire.send(struct.pack("<I", rc.AUTH_SPICE) + ticket)
        return struct.unpack("<I", await wire.read_exactly(4))[0], reply.pub_key


async def test_a_captured_ticket_does_not_link_again(server_factory) -> None:
    """Issue 10: one RSA key for the server's life let a sniffed ticket link main again later
    without the password. Each link must carry a fresh key."""
    server = await server_factory(password=PASSWORD.decode())
    ticket = await captured_ticket(server.port_bound, PASSWORD)
    keys = set()
    for _ in range(3):
        result, key = await replay(server.port_bound, ticket)
        assert result == rc.PERMISSION_DENIED
        keys.add(key)
    assert len(keys) == 3
    session = await rc.open_session(HOST, server.port_bound, PASSWORD)  # the password still works
    await session.aclose()
