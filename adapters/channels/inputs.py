"""The inputs channel's runner: keyboard and mouse from one client to the application, through
an :class:`~spice.adapters.input_gate.InputGate` (its budget), and the keyboard LEDs back.

A view-only client's input is dropped (said once in the log). Over plain TCP while TLS is on
offer, the client is told its keystrokes travel in the clear, as the C server does.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import trio

from spice.adapters.channels.context import ChannelContext
from spice.adapters.connection import ClientGone
from spice.adapters.input_gate import InputGate
from spice.adapters.link import Linked
from spice.domain.channels.inputs import InputsChannel
from spice.domain.channels.registry import KINDS, ChannelSetup
from spice.domain.enums import ChannelType, NotifySeverity

log = logging.getLogger(__name__)


async def run_inputs(
    ctx: ChannelContext, stream: trio.abc.Stream, linked: Linked, label: str
) -> None:
    kind = KINDS[ChannelType.INPUTS]
    machine = kind.make(
        ChannelSetup(
            mini_header=linked.mini_header,
            client_caps=linked.request.channel_caps,
            server_caps=kind.caps,
            mouse_mode=ctx.mouse_mode,
        )
    )
    assert isinstance(machine, InputsChannel)
    conn = ctx.connection(stream, machine, label, ChannelType.INPUTS)
    machine.receive_data(linked.trailing)
    machine.start(ctx.keyboard_leds)
    ctx.inputs.append(conn)
    config = ctx.config
    view_only = ctx.view_only or linked.view_only
    if not linked.secure and config.tls_available and not view_only:
        # As reds does: tell the user their keystrokes travel in the clear.
        await ctx.notify("keyboard channel is insecure", NotifySeverity.WARN)
    ignored = False

    async def deliver(event: Any) -> None:
        nonlocal ignored
        if view_only:
            # A viewer's keys and clicks never reach the application; said once.
            if not ignored:
                ignored = True
                log.info("%s: view-only client; its input is ignored", label)
            return
        if attrs.has(type(event)) and hasattr(event, "client"):
            event = attrs.evolve(event, client=ctx.handle)
        await ctx.deliver_input(event)

    gate = InputGate(deliver, rate=config.input_rate, burst=config.input_burst, label=label)
    try:
        await conn.flush()
        await ctx.serve(conn, gate)
    except ClientGone as exc:
        ctx.gone(conn, exc)
    finally:
        ctx.inputs.remove(conn)
        with trio.move_on_after(1):
            await gate.flush()
