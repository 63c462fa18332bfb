"""Real tools against the server: spicy-screenshot against the demo command, and tshark's SPICE
dissector over a captured spice-gtk session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import trio
from gtk_client import open_gtk_client
from PIL import Image
from serving import free_port, running_server, wait_same
from supervised import stop_process


async def wait_listening(port: int, timeout: float = 15.0) -> None:
    with trio.fail_after(timeout):
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.1)
                continue
            await stream.aclose()
            return


async def test_spicy_screenshot_of_the_demo_is_not_blank(tmp_path: Path) -> None:
    port = free_port()
    server = await trio.lowlevel.open_process(
        [sys.executable, "-m", "spice", "--port", str(port), "--size", "640x480"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        await wait_listening(port)
        out = tmp_path / "shot.ppm"
        result = await trio.run_process(
            ["spicy-screenshot", "-h", "127.0.0.1", "-p", str(port), "-o", str(out)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        image = np.asarray(Image.open(out).convert("RGB"))
        assert image.shape == (480, 640, 3)
        colours = np.unique(image.reshape(-1, 3), axis=0)
        assert len(colours) > 50, f"only {len(colours)} colours: looks blank"
        # The title bar of the demo is light grey, the desktop below it blue.
        assert image[5, 300].min() > 200
        assert image[300, 600, 2] > image[300, 600, 0]
    finally:
        await stop_process(server, signal.SIGINT, 5)


async def test_the_demo_with_two_monitors_shows_two_heads() -> None:
    """``--monitors 2``: one display channel, two heads side by side, each with its picture
    (the desktop on the first, the monitor-2 panel on the second)."""
    port = free_port()
    server = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "spice",
            "--port",
            str(port),
            "--size",
            "640x480",
            "--monitors",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        await wait_listening(port)
        async with open_gtk_client("127.0.0.1", port) as client:
            await client.wait_for("mark")
            reply = await client.command({"cmd": "monitors"}, "monitors")
            heads = [(m["id"], m["x"], m["y"], m["width"], m["height"]) for m in reply["monitors"]]
            assert heads == [(0, 0, 0, 640, 480), (1, 640, 0, 640, 480)]
            kinds = [e["type"] for e in client.events if e["event"] == "channel-new"]
            assert kinds.count("display") == 1
            with trio.fail_after(10):
                while True:
                    shown = await client.screenshot()
                    # Monitor 1: the demo's blue desktop under a grey title bar; monitor 2:
                    # its own panel colour (R 134, G 116, B 121), B,G,R in memory.
                    desktop = shown[300, 600, 2] < shown[300, 600, 0]
                    panel = tuple(shown[300, 900, :3]) == (121, 116, 134)
                    if shown.shape[:2] == (480, 1280) and desktop and panel:
                        break
                    await trio.sleep(0.05)
    finally:
        await stop_process(server, signal.SIGINT, 5)


async def test_tshark_dissects_a_whole_session_without_malformed_packets(tmp_path: Path) -> None:
    capture = tmp_path / "session.pcapng"
    async with running_server(200, 150, password="pw") as server:
        port = server.port_bound
        tshark = await trio.lowlevel.open_process(
            ["tshark", "-i", "lo", "-f", f"tcp port {port}", "-w", str(capture)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            assert tshark.stderr is not None
            seen = b""
            with trio.fail_after(20):
                while b"Capturing on" not in seen:
                    chunk = await tshark.stderr.receive_some(4096)
                    assert chunk, seen
                    seen += chunk
            display = server.displays[0]
            async with open_gtk_client("127.0.0.1", port, password="pw") as client:
                await client.wait_for("mark")
                await display.fill(10, 10, 50, 50, 0xFF8800)
                await display.update(60, 20, np.full((30, 40, 3), 99, dtype=np.uint8))
                await wait_same(client, display)
                await display.scroll(0, 0, 200, 150, dy=-5)
                await display.move_cursor(20, 20)
                await wait_same(client, display)
                for code in (0x1E, 0x148):
                    await client.command({"cmd": "key_press", "scancode": code})
                    await client.command({"cmd": "key_release", "scancode": code})
                for i in range(10):
                    await client.command({"cmd": "position", "x": i, "y": i, "buttons": 0})
                await client.flush()
                await display.resize(160, 120)
                await client.wait_for("primary-create", lambda e: e["width"] == 160)
                await server.set_keyboard_leds(2)
                await client.wait_for("inputs-modifiers", lambda e: e["modifiers"] == 2)
            await trio.sleep(0.5)
        finally:
            await stop_process(tshark, signal.SIGINT, 10)

    def fields(*args: str) -> list[str]:
        out = subprocess.run(
            ["tshark", "-r", str(capture), "-d", f"tcp.port=={port},spice", *args],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "LC_ALL": "C"},
        )
        return [line for line in out.stdout.splitlines() if line.strip()]

    spice_frames = fields("-Y", "spice", "-T", "fields", "-e", "frame.number")
    malformed = fields(
        "-Y", "_ws.malformed || _ws.expert.severity == error", "-T", "fields", "-e", "frame.number"
    )
    assert len(spice_frames) > 20, "the dissector did not see the SPICE session"
    assert malformed == [], f"malformed frames: {malformed[:20]}"
    # Every channel we speak was recognised.
    summary = " ".join(fields("-Y", "spice", "-T", "fields", "-e", "_ws.col.Info"))
    for name in (
        "INIT",
        "CHANNELS_LIST",
        "SURFACE_CREATE",
        "DRAW_COPY",
        "DRAW_FILL",
        "COPY_BITS",
        "KEY_DOWN",
        "MOUSE_POSITION",
        "MOUSE_MOTION_ACK",
        "MOVE",
        "SET_ACK",
    ):
        assert name in summary.split(), (name, sorted(set(summary.split())))
