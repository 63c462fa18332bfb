"""A cancelled file transfer's CANCELLED status reaches the server from a client that, like
spice-gtk, sends a queued agent message only when its main channel next wakes.

spice-gtk's channel-main.c wakes the main channel when a file read fails (a cancel) and only
then completes the task, which queues VD_AGENT_FILE_XFER_STATUS CANCELLED without another
wake-up: the status leaves when the next server message arrives on the main channel. The
tokens for the client's last data already went back when that message ended, and the next
keepalive PING is ``ping_interval`` (15 s) away, so the server wakes a quiet transfer's main
channel itself. (Seen in CI: spice-gtk cancelled, and the server never heard of it in 10 s.)
"""

from __future__ import annotations

import struct
from pathlib import Path

import trio
from test_agent_hostile import (
    FILE_XFER_STATUS,
    MSG_AGENT_TOKEN,
    XFER_CAN_SEND_DATA,
    AgentClient,
    agent_message,
    announce,
    start_transfer,
    xfer_data,
)

import spice

XFER_CANCELLED = 1  # vd_agent.h VD_AGENT_FILE_XFER_STATUS_CANCELLED


async def test_a_cancel_held_until_the_main_channel_wakes_gets_through(
    server_factory, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    server = await server_factory(file_transfer_dir=inbox)  # keepalive PINGs 15 s apart
    async with server.agent_events() as events:
        client = await AgentClient.open(server, tokens=10)
        await client.data(announce(0))
        assert await start_transfer(client, 3, "big.bin", 1 << 20) == (3, XFER_CAN_SEND_DATA)
        await client.message(xfer_data(3, b"c" * 4000))
        # The tokens for that message come back; the client has nothing more queued ...
        await client.main.recv_until(MSG_AGENT_TOKEN)
        # ... until its user cancels, and the status waits for the main channel's next
        # message (the raw client answers a PING with a PONG, as spice-gtk does).
        started = trio.current_time()
        await client.main.recv_msg()
        assert trio.current_time() - started < 2.0
        status = struct.pack("<II", 3, XFER_CANCELLED)
        await client.message(agent_message(FILE_XFER_STATUS, status))
        with trio.fail_after(5):
            async for event in events:
                if isinstance(event, spice.FileTransferAborted):
                    break
        assert event.name == "big.bin"
        with trio.fail_after(5):
            while list(inbox.iterdir()):
                await trio.sleep(0.02)
        await client.aclose()
