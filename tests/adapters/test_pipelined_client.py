"""A client may write its first channel messages in the same segment as the ticket (nothing in
the protocol forbids it): the server must act on them without waiting for more bytes."""

from __future__ import annotations

import struct

import rawclient as rc
import trio

MSGC_INPUTS_KEY_DOWN = 101


async def link_with_trailing(
    server, channel_type: int, session_id: int, trailing: bytes
) -> rc.Wire:
    wire = await rc.connect("127.0.0.1", server.port_bound)
    await wire.send(rc.link_packet(channel_type=channel_type, connection_id=session_id))
    reply = await rc.read_link_reply(wire)
    assert reply.error == rc.OK
    ticket = rc.encrypt_ticket(reply.pub_key, b"")
    await wire.send(struct.pack("<I", rc.AUTH_SPICE) + ticket + trailing)
    assert struct.unpack("<I", await wire.read_exactly(4)) == (rc.OK,)
    return wire


async def test_display_init_sent_with_the_ticket_gets_the_primary(server) -> None:
    session = await rc.open_session("127.0.0.1", server.port_bound)
    try:
        init = struct.pack("<HI", rc.MSGC_DISPLAY_INIT, 14) + struct.pack("<BqBi", 1, 1 << 20, 1, 0)
        wire = await link_with_trailing(server, rc.DISPLAY, session.session_id, init)
        display = rc.Channel(wire, mini_header=True)
        with trio.fail_after(5):
            msg_type, _ = await display.recv_until(rc.MSG_DISPLAY_SURFACE_CREATE)
        assert msg_type == rc.MSG_DISPLAY_SURFACE_CREATE
        await wire.aclose()
    finally:
        await session.aclose()


async def test_keys_sent_with_the_ticket_reach_the_application(server) -> None:
    session = await rc.open_session("127.0.0.1", server.port_bound)
    try:
        async with server.input_events() as events:
            key = struct.pack("<HI", MSGC_INPUTS_KEY_DOWN, 4) + struct.pack("<I", 0x1E)
            wire = await link_with_trailing(server, rc.INPUTS, session.session_id, key)
            with trio.fail_after(5):
                event = await events.receive()
            assert (event.scancode, event.pressed) == (0x1E, True)
            await wire.aclose()
    finally:
        await session.aclose()
