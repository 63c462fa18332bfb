"""The cursor channel's runner: the pointer shape and position the application sets on a
display (its worker's cursor state) sent to one client, within the channel's ACK window."""

from __future__ import annotations

from typing import Any

import trio

from spice.adapters.channels.context import ChannelContext
from spice.adapters.display_worker import CursorClient, CursorHideCmd, CursorMoveCmd, CursorSetCmd
from spice.adapters.link import Linked
from spice.domain.channels.cursor import CursorChannel
from spice.domain.channels.registry import KINDS, ChannelSetup
from spice.domain.enums import ChannelType


async def run_cursor(
    ctx: ChannelContext, stream: trio.abc.Stream, linked: Linked, label: str
) -> None:
    worker = ctx.display_worker(linked.request.channel_id)
    client = CursorClient()
    kind = KINDS[ChannelType.CURSOR]
    machine = kind.make(
        ChannelSetup(
            mini_header=linked.mini_header,
            client_caps=linked.request.channel_caps,
            server_caps=kind.caps,
        )
    )
    assert isinstance(machine, CursorChannel)
    conn = ctx.connection(stream, machine, label, ChannelType.CURSOR)
    conn.received = client.wake
    machine.receive_data(linked.trailing)
    state = worker.cursor
    machine.start(state.x, state.y, state.visible, state.shape)
    worker.attach_cursor(client)

    async def writer() -> None:
        while True:
            if client.queue and not machine.may_send:
                await ctx.await_acks(conn, client.wake)
                continue
            if not client.queue:
                await client.wake.wait()
                continue
            cmd = client.queue.popleft()
            if isinstance(cmd, CursorSetCmd):
                machine.set(cmd.x, cmd.y, cmd.visible, cmd.shape)
            elif isinstance(cmd, CursorMoveCmd):
                machine.move(cmd.x, cmd.y)
            elif isinstance(cmd, CursorHideCmd):
                machine.hide()
            await conn.flush()

    async def ignore(event: Any) -> None:
        pass

    try:
        await ctx.run_pair(conn, ignore, writer)
    finally:
        worker.detach_cursor(client)
