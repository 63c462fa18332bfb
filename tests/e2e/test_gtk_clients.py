"""Clients as the application sees them, with spice-gtk: its input carries its ``Client``, a
view-only client sees but cannot type, quitting is one log line, and moving to the TLS port is
routine (no warnings)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
from gtk_client import inputs_open, open_gtk_client
from serving import wait_same

import spice

pytestmark = pytest.mark.e2e

HOST = "127.0.0.1"


async def keys_from(events: trio.MemoryReceiveChannel[spice.InputEvent]) -> list[spice.KeyEvent]:
    """Key events until none arrives for half a second."""
    got: list[spice.KeyEvent] = []
    while True:
        with trio.move_on_after(0.5) as scope:
            event = await events.receive()
        if scope.cancelled_caught:
            return got
        if isinstance(event, spice.KeyEvent):
            got.append(event)


async def test_view_only_client_sees_but_cannot_type(server_factory) -> None:
    server = await server_factory(password="full", view_only_password="view")
    display = server.displays[0]
    await display.fill(0, 0, 320, 240, 0x3366AA)
    async with server.input_events() as events:
        async with open_gtk_client(HOST, server.port_bound, password="view") as viewer:
            await viewer.wait_for("mark", timeout=15)
            await wait_same(viewer, display)  # it sees the display
            await display.fill(5, 5, 40, 30, 0xFFEE00)
            await wait_same(viewer, display)
            (client,) = server.clients
            assert client.view_only
            await inputs_open(viewer)
            await viewer.command({"cmd": "key_press_and_release", "scancode": 0x1E})
            await viewer.command({"cmd": "position", "x": 30, "y": 20, "buttons": 0})
            await viewer.flush()
            async with open_gtk_client(HOST, server.port_bound, password="full") as full:
                await full.wait_for("mark", timeout=15)
                await inputs_open(full)
                await full.command({"cmd": "key_press_and_release", "scancode": 0x30})
                await full.flush()
                got = await keys_from(events)
                assert [(e.scancode, e.pressed) for e in got] == [(0x30, True), (0x30, False)]
                sender = got[0].client
                assert sender is not None and not sender.view_only
                assert sender in server.clients and sender is not client
                assert sender.transport == "tcp"
            assert not viewer.errors


async def test_a_view_only_client_cannot_resize_or_use_the_clipboard(server_factory) -> None:
    """The agent gives a view-only client nothing to act with: its monitors config is
    refused (the display keeps its size) and it is offered no clipboard."""
    server = await server_factory(password="full", view_only_password="view")
    display = server.displays[0]
    async with open_gtk_client(HOST, server.port_bound, password="view") as viewer:
        await viewer.wait_for("mark", timeout=15)
        await viewer.wait_for("main-agent-update", lambda e: e["connected"])
        update = await viewer.wait_for(
            "main-agent-update", lambda e: e["caps0"] & (1 << 1), timeout=10
        )
        assert not update["caps0"] & (1 << 5)  # VD_AGENT_CAP_CLIPBOARD_BY_DEMAND
        size = (display.width, display.height)
        await viewer.command({"cmd": "monitor_config", "width": 480, "height": 360})
        await trio.sleep(1.0)
        await display.sync()
        assert (display.width, display.height) == size
        assert not viewer.errors


async def test_spice_gtk_quitting_is_one_line(server_factory, caplog) -> None:
    server = await server_factory()
    async with open_gtk_client(HOST, server.port_bound) as client:
        await client.wait_for("mark", timeout=15)
        await inputs_open(client)
        (handle,) = server.clients
        sid = f"{handle.session_id:08x}"
        with trio.fail_after(5):
            while not any("network test" in r.getMessage() for r in caplog.records):
                await trio.sleep(0.05)
        before = len(caplog.records)
    with trio.fail_after(10):
        while server.clients:
            await trio.sleep(0.05)
    await trio.sleep(0.3)
    lines = [r.getMessage() for r in caplog.records[before:] if sid in r.getMessage()]
    assert len(lines) == 1, lines
    assert "client disconnected" in lines[0]


async def test_moving_to_the_tls_port_logs_no_warning(
    server_factory, x509_dir: str, caplog
) -> None:
    server = await server_factory(tls_port=0, x509_dir=x509_dir, tls_channels=["inputs"])
    ca_file = Path(x509_dir) / "ca-cert.pem"
    async with open_gtk_client(
        HOST, server.port_bound, tls_port=server.tls_port_bound, ca_file=ca_file
    ) as client:
        await client.wait_for("mark", timeout=15)
        await inputs_open(client)
        (handle,) = server.clients
        assert handle.transport == "tcp"
    moved = [r for r in caplog.records if "NEED_SECURED" in r.getMessage()]
    assert moved and all(r.levelno == logging.INFO for r in moved)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warnings, warnings
