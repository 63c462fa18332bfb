"""The built-in demo reacts to a real client: typed keys appear and a drag leaves a trail."""

from __future__ import annotations

import numpy as np
import trio
from gtk_client import open_gtk_client

import spice
from spice.demo import run_demo


async def test_demo_shows_typing_and_a_drag_trail() -> None:
    server = spice.Server(addr="127.0.0.1", port=0, disable_ticketing=True)
    display = server.add_display(640, 480)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        nursery.start_soon(run_demo, server, display)
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mark")
            await client.wait_for("cursor-set")
            await client.wait_for("mouse-mode", lambda e: e["mode"] == 2)
            await client.wait_for(
                "channel-event", lambda e: e["channel"] == "inputs" and e["name"] == "opened"
            )
            await display.sync()
            text_before = display.framebuffer[110:190, 50:400].copy()
            for code in (0x23, 0x17):  # "hi"
                await client.command({"cmd": "key_press_and_release", "scancode": code})
            await client.command({"cmd": "position", "x": 100, "y": 300, "buttons": 0})
            await client.command({"cmd": "button_press", "button": 1, "buttons": 1})
            for x in range(100, 300, 10):
                await client.command({"cmd": "position", "x": x, "y": 300, "buttons": 1})
            await client.command({"cmd": "button_release", "button": 1, "buttons": 0})
            await client.flush()
            with trio.fail_after(10):
                while True:
                    await display.sync()
                    frame = display.framebuffer
                    red = np.all(frame[296:305, 100:290, :3] == (80, 80, 255), axis=2)
                    typed = not np.array_equal(frame[110:190, 50:400], text_before)
                    if typed and red.any(axis=0).all():
                        break
                    await trio.sleep(0.05)
            # And the client shows the trail too.
            with trio.fail_after(10):
                while True:
                    shown = await client.screenshot()
                    if np.all(shown[300, 120:280, :3] == (80, 80, 255), axis=1).all():
                        break
                    await trio.sleep(0.05)
        nursery.cancel_scope.cancel()


async def test_demo_follows_the_client_window_and_shows_a_copy() -> None:
    server = spice.Server(addr="127.0.0.1", port=0, disable_ticketing=True)
    display = server.add_display(640, 480)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        nursery.start_soon(run_demo, server, display)
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mark")
            await client.wait_for("main-agent-update", lambda e: e["caps0"] & 2)
            await display.sync()
            news_before = display.framebuffer[36:60, 40:400].copy()
            mark = client.mark()
            await client.command({"cmd": "monitor_config", "width": 800, "height": 560})
            await client.wait_for(
                "primary-create", lambda e: (e["width"], e["height"]) == (800, 560), since=mark
            )
            # redrawn at the new size: the title bar spans the new width, the client shows it
            with trio.fail_after(10):
                while True:
                    shown = await client.screenshot()
                    bar = shown[5, 700:790, :3]
                    if shown.shape[:2] == (560, 800) and np.all(bar == (235, 230, 230)):
                        break
                    await trio.sleep(0.05)
            # too small for the demo's layout: refused, the size stays
            await client.command({"cmd": "monitor_config", "width": 200, "height": 100})
            await client.command({"cmd": "clipboard_grab", "data": {"1": b"copied!".hex()}})
            with trio.fail_after(10):
                while True:
                    await display.sync()
                    news = display.framebuffer[36:60, 40:400]
                    if not np.array_equal(news, news_before):
                        break
                    await trio.sleep(0.05)
            assert (display.width, display.height) == (800, 560)
        nursery.cancel_scope.cancel()
