"""spice-gtk against several monitors on one display channel and against a named port.

Monitors: spice-gtk reads the heads from MONITORS_CONFIG into ``SpiceDisplayChannel:monitors``
(the widget opens one window per head and shows that rectangle of the primary), so the test
reads that property and the primary's pixels inside each head. Ports: bytes both ways through
``spice_port_channel_write_async`` and the ``port-data`` signal, the name and the opened state,
PORT_EVENTs both ways, and the application's events with the client that caused them.
"""

from __future__ import annotations

import numpy as np
import trio
from gtk_client import open_gtk_client
from serving import same_pixels, wait_same

import spice

HEADS = [(0, 0, 320, 240), (320, 0, 320, 240)]


def scene(seed: int, w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 4), np.uint8)
    img[..., :3] = rng.integers(0, 255, (1, 1, 3))  # a colour of its own
    img[h // 4 : h // 2, w // 4 : w // 2, :3] = rng.integers(0, 255, (h // 4, w // 4, 3))
    return img


def as_monitors(event: dict) -> list[tuple[int, int, int, int, int, int]]:
    return [
        (m["id"], m["surface_id"], m["x"], m["y"], m["width"], m["height"])
        for m in event["monitors"]
    ]


async def test_two_monitors_on_one_display_channel_each_show_their_pixels() -> None:
    server = spice.Server(addr="127.0.0.1", port=0, disable_ticketing=True, html5_dir=None)
    display = server.add_display(640, 240, monitors=HEADS)
    assert display.monitors == tuple(HEADS)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        await server.codecs_ready()
        drawn = [scene(1, 320, 240), scene(2, 320, 240)]
        for (x, y, _w, _h), img in zip(HEADS, drawn, strict=True):
            await display.update(x, y, img)
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mark")
            reply = await client.command({"cmd": "monitors", "display": 0}, "monitors")
            assert as_monitors(reply) == [(0, 0, 0, 0, 320, 240), (1, 0, 320, 0, 320, 240)]
            assert reply["max"] == 2
            displays = [e for e in client.events if e["event"] == "channel-new"]
            assert [e["id"] for e in displays if e["type"] == "display"] == [0]
            shown = await wait_same(client, display)
            for (x, y, w, h), img in zip(HEADS, drawn, strict=True):
                assert same_pixels(shown[y : y + h, x : x + w], img)
            assert not same_pixels(drawn[0], drawn[1])

            # A new layout on the same primary: one MONITORS_CONFIG, no new surface.
            mark = client.mark()
            await display.set_monitors([(0, 0, 640, 120), (0, 120, 640, 120)])
            changed = await client.wait_for(
                "monitors-changed",
                lambda e: as_monitors(e) == [(0, 0, 0, 0, 640, 120), (1, 0, 0, 120, 640, 120)],
                since=mark,
            )
            assert changed["max"] == 2
            assert not [e for e in client.events[mark:] if e["event"] == "primary-create"]

            # A resize with its own layout: a new primary and the heads on it.
            await display.resize(800, 300, monitors=[(0, 0, 400, 300), (400, 0, 400, 300)])
            await display.fill(400, 0, 400, 300, 0x3366CC)
            await client.wait_for(
                "monitors-changed",
                lambda e: as_monitors(e) == [(0, 0, 0, 0, 400, 300), (1, 0, 400, 0, 400, 300)],
            )
            shown = await wait_same(client, display)
            assert (shown[150, 600, :3] == (0xCC, 0x66, 0x33)).all()
        nursery.cancel_scope.cancel()


async def test_a_port_carries_bytes_both_ways_with_events() -> None:
    server = spice.Server(addr="127.0.0.1", port=0, disable_ticketing=True, html5_dir=None)
    server.add_display(64, 48)
    port = server.open_port("org.example.echo")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            opened = await client.wait_for("port-opened")
            assert (opened["name"], opened["opened"]) == ("org.example.echo", True)
            with trio.fail_after(10):
                event = await port.next_event()
            assert event == spice.PortOpened("org.example.echo")
            assert event.client is server.clients[0] and port.client is server.clients[0]

            # Client -> application, larger than one DATA message of ours.
            payload = bytes(range(256)) * 1000
            written = await client.command(
                {"cmd": "port_write", "data": payload.hex()}, "port-written"
            )
            assert written["size"] == len(payload)
            got = b""
            with trio.fail_after(10):
                while len(got) < len(payload):
                    got += await port.receive_some()
            assert got == payload

            # Application -> client, in several DATA messages.
            await port.send_all(payload[::-1])
            received = b""
            with trio.fail_after(10):
                while len(received) < len(payload):
                    e = await client.wait_for("port-data")
                    received += bytes.fromhex(e["data"])
            assert received == payload[::-1]

            # A BREAK from the client reaches the application.
            await client.command({"cmd": "port_event", "event": 2})
            with trio.fail_after(10):
                brk = await port.next_event()
            assert isinstance(brk, spice.PortEventReceived) and brk.is_break

            # The application closes its side: the client is told.
            await port.aclose()
            closed = await client.wait_for("port-event", lambda e: e["port_event"] == 1)
            assert closed["id"] == 0
            await client.wait_for("port-opened", lambda e: not e["opened"])
            assert await port.receive_some() == b""
        with trio.fail_after(10):
            gone = await port.next_event()
        assert gone == spice.PortClosed("org.example.echo")
        nursery.cancel_scope.cancel()
