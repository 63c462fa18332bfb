"""The built-in demo reacts to a real client: typed keys appear and a drag leaves a trail; a
click on "Tone" plays a chime at the client; with "Mic" on, what the client's microphone sends
moves the level bar."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import trio
from gtk_client import GtkClient, inputs_open, open_gtk_client
from test_gtk_audio import dominant, tone

import spice
from spice.demo import LEVEL_FULL, Demo, chime, run_demo


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
            await inputs_open(client)
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


async def click(client: GtkClient, box: tuple[int, int, int, int]) -> None:
    x, y = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    await client.command({"cmd": "position", "x": x, "y": y, "buttons": 0})
    await client.command({"cmd": "button_press", "button": 1, "buttons": 1})
    await client.command({"cmd": "button_release", "button": 1, "buttons": 0})
    await client.flush()


def level_filled(frame: np.ndarray, box: tuple[int, int, int, int]) -> int:
    """How many columns of the level bar (middle row) show the level colour."""
    left, top, right, bottom = box
    row = frame[(top + bottom) // 2, left:right, :3]
    return int(np.all(row == LEVEL_FULL[::-1], axis=1).sum())


async def test_demo_plays_a_tone_on_click_and_shows_the_microphone_level() -> None:
    server = spice.Server(addr="127.0.0.1", port=0, disable_ticketing=True)
    display = server.add_display(640, 480)
    with tempfile.TemporaryDirectory(prefix="demo-audio-") as tmp:
        mic = Path(tmp) / "mic.pcm"
        mic.write_bytes(tone(440, 1.0).astype("<i2").tobytes())
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            nursery.start_soon(run_demo, server, display)
            async with open_gtk_client(
                "127.0.0.1", server.port_bound, extra_args=["--audio", "--audio-dir", tmp]
            ) as client:
                await client.wait_for("mark")
                await client.wait_for("mouse-mode", lambda e: e["mode"] == 2)
                await inputs_open(client)
                await client.wait_for("channel-new", lambda e: e["type"] == "record")
                with trio.fail_after(10):
                    while not (server._core.playback.clients and server._core.record.clients):
                        await trio.sleep(0.02)
                demo = Demo(display)  # the same layout as the running demo's, for the boxes

                # A click on "Tone": the client plays the chime (two notes, 659 then 880 Hz).
                await click(client, demo.tone_box())
                start = await client.wait_for("playback-start")
                assert (start["channels"], start["rate"]) == (2, 48000)
                stop = await client.wait_for("playback-stop", timeout=10)
                pcm = np.frombuffer(Path(stop["file"]).read_bytes(), "<i2").reshape(-1, 2)
                assert abs(len(pcm) - len(chime())) <= 960, len(pcm)
                half = len(pcm) // 2
                assert abs(dominant(pcm[:half], 48000) - 659.25) <= 10
                assert abs(dominant(pcm[half:], 48000) - 880) <= 10

                # The level bar is empty until a client records; a click on "Mic" asks for it.
                await display.sync()
                assert level_filled(display.framebuffer, demo.level_box()) == 0
                await click(client, demo.mic_box())
                await client.wait_for("record-start")
                await client.command({"cmd": "record_send", "file": str(mic)})
                # RMS of a 12000-amplitude sine: -11.7 dBFS, about 80% of the bar.
                with trio.fail_after(10):
                    while True:
                        shown = await client.screenshot()
                        if 70 <= level_filled(shown, demo.level_box()) <= 90:
                            break
                        await trio.sleep(0.05)
                # "Mic" again: recording stops and the bar empties.
                await click(client, demo.mic_box())
                await client.wait_for("record-stop")
                with trio.fail_after(10):
                    while level_filled(await client.screenshot(), demo.level_box()):
                        await trio.sleep(0.05)
                assert not server.record.recording
            nursery.cancel_scope.cancel()
