"""``trio-spice x11`` against a real X server (Debian's Xvfb, with an xterm) and a real
client (spice-gtk): the client shows the X root window's exact pixels, what it types lands
in the xterm's shell, the X cursor reaches it, a small change sends a small update, and an X
server that dies leaves a notice on the screen and a server that keeps taking clients."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
from content import desktop_like
from gtk_client import GtkClient, open_gtk_client
from serving import running_server, same_pixels
from supervised import stop_process
from xpeer import XPeer

import spice
from spice.adapters.sources.x11 import X11Source, message_screen
from spice.adapters.sources.xvfb import XServer, run_xvfb, wait_accepting

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (shutil.which("Xvfb") and shutil.which("xterm")),
        reason="needs Debian's xvfb and xterm (scripts/setup.sh --test installs them)",
    ),
]

W, H = 480, 320
PICTURE = (8, 8)  # where the known picture sits
#: The xterm: 40 columns by 6 rows of the default 6x13 font, below the picture.
XTERM_AT = (20, 200)


@asynccontextmanager
async def xvfb(programs: Sequence[Sequence[str]] = ()) -> AsyncIterator[tuple[XServer, Any]]:
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def run(task_status: trio.TaskStatus[XServer]) -> None:
            with scope:
                await run_xvfb(W, H, session=False, programs=programs, task_status=task_status)

        xserver: XServer = await nursery.start(run)
        try:
            yield xserver, scope
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def mirrored(
    xserver: XServer, server: spice.Server, **options: Any
) -> AsyncIterator[X11Source]:
    async with trio.open_nursery() as nursery:
        source = X11Source(
            xserver.display, server.displays[0], xauthority=xserver.xauthority, **options
        )
        await nursery.start(source.run)
        await source.connected.wait()
        try:
            yield source
        finally:
            nursery.cancel_scope.cancel()


async def client_equals_root(client: GtkClient, peer: XPeer, timeout: float = 15.0) -> None:
    shown = expected = None
    with trio.move_on_after(timeout):
        while True:
            expected = await trio.to_thread.run_sync(peer.root_pixels)
            shown = await client.screenshot()
            if same_pixels(shown, expected):
                return
            await trio.sleep(0.1)
    assert shown is not None and expected is not None
    if shown.shape != expected.shape:
        client.fail(f"client shows {shown.shape}, the X root is {expected.shape}")
    wrong = int(np.count_nonzero(np.any(shown[..., :3] != expected[..., :3], axis=2)))
    client.fail(f"client never showed the X root window: {wrong} pixels differ")


async def wait_file(path: Path, text: str, timeout: float = 10.0) -> str:
    content = ""
    with trio.move_on_after(timeout):
        while True:
            if path.exists():
                content = path.read_text()
                if text in content:
                    return content
            await trio.sleep(0.1)
    raise AssertionError(f"{path} never held {text!r}: {content!r}")


# Set-1 make codes for what the test types (US layout, as Xvfb's default keymap).
KEYS = {
    **{ch: code for code, ch in zip(range(0x10, 0x1A), "qwertyuiop", strict=True)},
    **{ch: code for code, ch in zip(range(0x1E, 0x27), "asdfghjkl", strict=True)},
    **{ch: code for code, ch in zip(range(0x2C, 0x33), "zxcvbnm", strict=True)},
    **{ch: code for code, ch in zip(range(0x02, 0x0C), "1234567890", strict=True)},
    " ": 0x39,
    "-": 0x0C,
    "\n": 0x1C,
}
SHIFTED = {">": 0x34}  # Shift + '.'


async def type_text(client: GtkClient, text: str) -> None:
    for ch in text:
        if ch in SHIFTED:
            await client.command({"cmd": "key_press", "scancode": 0x2A})
            await client.command({"cmd": "key_press_and_release", "scancode": SHIFTED[ch]})
            await client.command({"cmd": "key_release", "scancode": 0x2A})
        else:
            await client.command({"cmd": "key_press_and_release", "scancode": KEYS[ch]})
    await client.flush()


@pytest.mark.parametrize(
    "how",
    [
        {},  # MIT-SHM and DAMAGE
        {"use_shm": False},  # core GetImage
        {"use_damage": False},  # the tile scan
    ],
    ids=["shm-damage", "getimage", "tile-scan"],
)
async def test_xvfb_desktop_through_spice_gtk(tmp_path: Path, how: dict[str, bool]) -> None:
    xterm = [
        "xterm", "-geometry", f"40x6+{XTERM_AT[0]}+{XTERM_AT[1]}",
        "-e", "sh", "-c", f"cd {tmp_path} && exec sh",
    ]  # fmt: skip
    async with xvfb([xterm]) as (xserver, _), running_server(64, 64) as server:
        peer = XPeer(xserver.display, xserver.xauthority)
        try:
            picture = desktop_like(160, 300, seed=9)
            picture[20:60, 20:120, :3] = (30, 140, 250)  # and a flat colour panel
            window = peer.show_picture(*PICTURE, picture)
            async with (
                server.input_events() as events,
                mirrored(xserver, server, events=events) as source,
            ):
                async with open_gtk_client("127.0.0.1", server.port_bound) as client:
                    await client.wait_for("mouse-mode", lambda e: e["mode"] == 2)
                    await client.wait_for("primary-create", lambda e: e["width"] == W)
                    # Lossless: the client's surface is the X root window, pixel for pixel.
                    await client_equals_root(client, peer)
                    shown = await client.screenshot()
                    x0, y0 = PICTURE
                    assert same_pixels(shown[y0 : y0 + 160, x0 : x0 + 300], picture)

                    # Damage only: a 10x10 square sends about 10x10, not the screen.
                    await trio.sleep(0.5)  # let the xterm finish drawing its prompt
                    since = client.mark()
                    before = await client.command({"cmd": "read_bytes"}, "read-bytes")
                    sent_before = source.pixels_sent
                    await trio.to_thread.run_sync(peer.fill, window, 200, 100, 10, 10, 0xFF00FF)
                    await client.wait_for(
                        "invalidate",
                        lambda e: e["x"] <= x0 + 200 and e["y"] <= y0 + 100,
                        since=since,
                    )
                    await client_equals_root(client, peer)
                    await trio.sleep(0.3)
                    after = await client.command({"cmd": "read_bytes"}, "read-bytes")
                    areas = [
                        e["w"] * e["h"] for e in client.events[since:] if e["event"] == "invalidate"
                    ]
                    assert sum(areas) == 100, areas
                    read = after["channels"]["display:0"] - before["channels"]["display:0"]
                    assert read < 1000, f"{read} display bytes for a 10x10 change"
                    assert source.pixels_sent - sent_before <= 32 * 32

                    # The X cursor over the xterm is the xterm's I-beam: the client gets it.
                    mark = client.mark()
                    x, y = XTERM_AT[0] + 60, XTERM_AT[1] + 30
                    await client.command({"cmd": "position", "x": x, "y": y, "buttons": 0})
                    await client.flush()
                    with trio.fail_after(10):
                        while (peer.conn.core.QueryPointer(peer.root).reply().root_x,) != (x,):
                            await trio.sleep(0.05)
                    expected = await trio.to_thread.run_sync(peer.cursor)
                    got = await client.wait_for(
                        "cursor-set",
                        lambda e: e["rgba_sha256"] == expected["rgba_sha256"],
                        since=mark,
                    )
                    assert {k: got[k] for k in expected} == expected

                    # The client's Caps Lock state becomes the X server's, both ways.
                    for locks, caps in ((4, True), (0, False)):
                        await client.command({"cmd": "set_key_locks", "locks": locks})
                        await client.flush()
                        with trio.fail_after(10):
                            while (
                                bool(peer.conn.core.QueryPointer(peer.root).reply().mask & 2)
                                != caps
                            ):
                                await trio.sleep(0.05)

                    # Typed keys reach the shell in the xterm (focus follows the pointer).
                    await type_text(client, "echo typed-42 >out\n")
                    await wait_file(tmp_path / "out", "typed-42")
                    assert not client.errors
        finally:
            peer.close()


async def test_view_only_plays_no_input() -> None:
    """``events=None`` (``--view-only``): the client's pointer and keys never reach the X
    server, while the same client still sees the screen. The control is the first test,
    where the same commands move the X pointer."""
    async with xvfb() as (xserver, _), running_server(64, 64) as server:
        peer = XPeer(xserver.display, xserver.xauthority)
        try:
            start = peer.conn.core.QueryPointer(peer.root).reply()
            async with server.input_events() as events, mirrored(xserver, server, events=None):
                async with open_gtk_client("127.0.0.1", server.port_bound) as client:
                    await client.wait_for("mouse-mode", lambda e: e["mode"] == 2)
                    await client.wait_for("primary-create", lambda e: e["width"] == W)
                    await client_equals_root(client, peer)
                    await client.command({"cmd": "position", "x": 77, "y": 55, "buttons": 0})
                    await client.command({"cmd": "key_press_and_release", "scancode": 0x1E})
                    await client.flush()
                    # The server received the input (so it was sent) ...
                    got = []
                    with trio.fail_after(10):
                        while len(got) < 3:
                            event = await events.receive()
                            if not isinstance(event, spice.KeyboardModifiersEvent):
                                got.append(event)
                    assert got[0] == spice.MousePositionEvent(77, 55, 0, 0)
                    await trio.sleep(0.3)
            # ... and the X pointer did not move.
            now = peer.conn.core.QueryPointer(peer.root).reply()
            assert (now.root_x, now.root_y) == (start.root_x, start.root_y)
        finally:
            peer.close()


def free_display() -> int:
    for n in range(120, 220):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise RuntimeError("no free X display number")


@asynccontextmanager
async def plain_xvfb(number: int) -> AsyncIterator[trio.Process]:
    """Xvfb on a chosen display number (no cookie: the test restarts it on the same one),
    ready once it writes its number to ``-displayfd`` (a killed one leaves its socket file)."""
    read_end, write_end = os.pipe()
    try:
        proc = await trio.lowlevel.open_process(
            ["Xvfb", f":{number}", "-displayfd", str(write_end), "-screen", "0", f"{W}x{H}x24",
             "-nolisten", "tcp"],
            pass_fds=(write_end,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        os.close(write_end)
    try:
        async with trio.lowlevel.FdStream(read_end) as ready:
            # Read up to the newline: Xvfb dies if the pipe closes before it wrote that.
            announced = b""
            with trio.fail_after(10):
                while not announced.endswith(b"\n"):
                    chunk = await ready.receive_some(64)
                    assert chunk, "Xvfb exited before it was ready"
                    announced += chunk
        await wait_accepting(f":{number}")
        yield proc
    finally:
        await stop_process(proc, signal.SIGTERM, 5)


async def test_x_server_going_away_and_coming_back(caplog: pytest.LogCaptureFixture) -> None:
    notices: list[str] = []

    async def notify(text: str) -> None:
        notices.append(text)

    number = free_display()
    display = f":{number}"
    notice = message_screen(
        W, H, f"The X display {display} has closed. Waiting for it to come back..."
    )
    async with running_server(64, 64) as server, trio.open_nursery() as nursery:
        async with plain_xvfb(number) as xvfb_proc:
            source = X11Source(display, server.displays[0], notify=notify, retry=0.2)
            await nursery.start(source.run)
            async with open_gtk_client("127.0.0.1", server.port_bound) as client:
                await client.wait_for("primary-create", lambda e: e["width"] == W)
                with caplog.at_level(logging.INFO, logger="spice.adapters.sources.x11"):
                    xvfb_proc.kill()  # the X server dies mid-session
                    with trio.fail_after(15):
                        while not same_pixels(await client.screenshot(), notice):
                            await trio.sleep(0.1)
                    await trio.sleep(0.6)  # a few reconnect attempts fail meanwhile
                gone = [r for r in caplog.records if "went away" in r.getMessage()]
                assert len(gone) == 1, [r.getMessage() for r in caplog.records]
                assert notices == [notice_text(display)]
        # The SPICE server is still up: a new client connects and sees the notice.
        async with open_gtk_client("127.0.0.1", server.port_bound) as again:
            await again.wait_for("primary-create", lambda e: e["width"] == W)
            with trio.fail_after(15):
                while not same_pixels(await again.screenshot(), notice):
                    await trio.sleep(0.1)
            # The display comes back: the source reconnects and the client sees it again.
            async with plain_xvfb(number):
                peer = XPeer(display)
                try:
                    peer.fill(peer.root, 10, 10, 100, 50, 0x00FF00)
                    await client_equals_root(again, peer)
                finally:
                    peer.close()
        nursery.cancel_scope.cancel()


def notice_text(display: str) -> str:
    return f"The X display {display} has closed. Waiting for it to come back..."


async def test_command_without_display_serves_its_own_desktop() -> None:
    """``trio-spice x11`` with no display: a private Xvfb with an xterm in it, shown to a
    client; all of it gone when the command stops."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    command = [sys.executable, "-m", "spice", "x11", "--port", str(port), "--size", "400x300"]
    proc = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    display = None
    output = b""
    try:
        assert proc.stdout is not None
        with trio.fail_after(20):
            while b"connect with" not in output:
                chunk = await proc.stdout.receive_some(4096)
                assert chunk, output.decode(errors="replace")
                output += chunk
        found = re.search(rb"showing X display :(\d+)", output)
        assert found, output
        display = int(found.group(1))
        async with open_gtk_client("127.0.0.1", port) as client:
            await client.wait_for(
                "primary-create", lambda e: (e["width"], e["height"]) == (400, 300)
            )
            with trio.fail_after(15):
                while True:
                    shown = await client.screenshot()
                    white = np.all(shown[..., :3] == 255, axis=2)
                    if white.sum() > 20_000:  # the xterm's page
                        break
                    await trio.sleep(0.1)
    finally:
        await stop_process(proc, signal.SIGINT, 10)
        assert proc.stdout is not None
        with trio.move_on_after(5):
            while chunk := await proc.stdout.receive_some(4096):
                output += chunk
    assert proc.returncode == 0, output.decode(errors="replace")
    assert display is not None
    # Xvfb removed its lock file and socket: it stopped, and the session with it.
    assert not Path(f"/tmp/.X{display}-lock").exists()
    assert not Path(f"/tmp/.X11-unix/X{display}").exists()


XORG_CONF = """\
Section "Device"
    Identifier "XSPICE"
    Driver "spiceqxl"
    Option "SpicePort" "{port}"
    Option "SpiceAddr" "127.0.0.1"
    Option "SpiceDisableTicketing" "True"
    Option "NumHeads" "1"
    Option "FrameBufferSize" "16"
    Option "SurfaceBufferSize" "128"
    Option "CommandBufferSize" "128"
EndSection
Section "Screen"
    Identifier "XSPICE Screen"
    Device     "XSPICE"
    DefaultDepth 24
    SubSection "Display"
        Virtual 1024 768
        Modes "1024x768" "800x600"
    EndSubSection
EndSection
Section "ServerFlags"
    Option "AutoAddDevices" "False"
EndSection
"""


@pytest.mark.skipif(
    not (shutil.which("Xorg") and Path("/usr/lib/xorg/modules/drivers/spiceqxl_drv.so").exists()),
    reason="needs Debian's xserver-xspice (scripts/setup.sh --test installs it)",
)
async def test_randr_size_asked_and_resizes_followed(tmp_path: Path) -> None:
    """An X server that resizes (Xorg with the spiceqxl driver, used here only as an X server
    with RandR modes; Xvfb cannot): ``size`` switches it to 800x600, and when something else
    switches it back to 1024x768 the client gets a new primary surface with the right pixels."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        xspice_port = int(s.getsockname()[1])
    conf = tmp_path / "xorg.conf"
    conf.write_text(XORG_CONF.format(port=xspice_port))
    number = free_display()
    display = f":{number}"
    xorg = await trio.lowlevel.open_process(
        ["Xorg", "-config", str(conf), "-noreset", "-nolisten", "tcp",
         "-logfile", str(tmp_path / "xorg.log"), display],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_accepting(display, timeout=30)
        async with running_server(64, 64) as server, trio.open_nursery() as nursery:
            source = X11Source(display, server.displays[0], size=(800, 600))
            await nursery.start(source.run)
            peer = XPeer(display)
            try:
                async with open_gtk_client("127.0.0.1", server.port_bound) as client:
                    await client.wait_for(
                        "primary-create", lambda e: (e["width"], e["height"]) == (800, 600)
                    )
                    await client_equals_root(client, peer)
                    since = client.mark()
                    result = await trio.run_process(
                        ["xrandr", "-display", display, "-s", "1024x768"], check=False
                    )
                    assert result.returncode == 0
                    await client.wait_for(
                        "primary-create",
                        lambda e: (e["width"], e["height"]) == (1024, 768),
                        since=since,
                    )
                    peer.width, peer.height = 1024, 768
                    await client_equals_root(client, peer)
            finally:
                peer.close()
            nursery.cancel_scope.cancel()
    finally:
        await stop_process(xorg, signal.SIGTERM, 10)


async def test_x_desktop_in_spice_html5(tmp_path: Path) -> None:
    """The browser path of ``trio-spice x11``: spice-html5 in Chromium shows the X root
    window exactly and its keys reach the xterm's shell."""
    from browser_client import open_browser, require_browser

    from spice.server import find_html5_dir

    require_browser()
    html5 = find_html5_dir()
    assert html5 is not None, "spice-html5 is not installed (scripts/setup.sh --test)"
    xterm = [
        "xterm", "-geometry", f"40x6+{XTERM_AT[0]}+{XTERM_AT[1]}",
        "-e", "sh", "-c", f"cd {tmp_path} && exec sh",
    ]  # fmt: skip
    async with xvfb([xterm]) as (xserver, _), running_server(64, 64, html5_dir=html5) as server:
        peer = XPeer(xserver.display, xserver.xauthority)
        try:
            peer.show_picture(*PICTURE, desktop_like(160, 300, seed=4))
            async with server.input_events() as events, mirrored(xserver, server, events=events):
                async with open_browser() as browser:
                    await browser.goto(f"http://127.0.0.1:{server.port_bound}/")
                    await browser.wait_state("connected")
                    shown = expected = None
                    with trio.move_on_after(15):
                        while True:
                            expected = await trio.to_thread.run_sync(peer.root_pixels)
                            shown = await browser.canvas()
                            if shown.shape[:2] == expected.shape[:2] and np.array_equal(
                                shown[..., :3], expected[..., [2, 1, 0]]
                            ):
                                break
                            await trio.sleep(0.1)
                    assert shown is not None and expected is not None
                    assert np.array_equal(shown[..., :3], expected[..., [2, 1, 0]]), (
                        "the canvas never showed the X root window"
                    )
                    # A click in the xterm puts the X pointer there (focus follows it).
                    await browser.click(XTERM_AT[0] + 60, XTERM_AT[1] + 30)
                    for key in [*"touch html5", "Enter"]:
                        await browser.press("Space" if key == " " else key)
                    await wait_file(tmp_path / "html5", "")
                    assert not browser.client_errors
        finally:
            peer.close()
