"""``trio-spice x11`` against a real X server (Debian's Xvfb, with an xterm) and a real
client (spice-gtk): the client shows the X root window's exact pixels, what it types lands
in the xterm's shell, the X cursor reaches it, a small change sends a small update, and an X
server that dies leaves a notice on the screen and a server that keeps taking clients."""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
import xcffib.xproto as xp
from content import desktop_like
from gtk_client import GtkClient, agent_ready, inputs_open, next_event, open_gtk_client
from PIL import Image
from serving import free_port, read_rest, read_until, running_server, same_pixels
from supervised import stop_process
from xpeer import XPeer

import spice
from spice.adapters.sources.x11 import X11Source, message_screen
from spice.adapters.sources.x11_clipboard import X11Clipboard
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
                    await inputs_open(client)
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
                    await inputs_open(client)
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
    client, which resizes it; all of it gone when the command stops."""
    port = free_port()
    command = [sys.executable, "-m", "spice", "x11", "--port", str(port), "--size", "400x300"]
    proc = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    display = None
    output = b""
    try:
        output = await read_until(proc, b"connect with", 20)
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
            # The client's window size becomes the private Xvfb's (RandR, within --max-size).
            await agent_ready(client)
            mark = client.mark()
            await client.command({"cmd": "monitor_config", "width": 640, "height": 480})
            await client.wait_for(
                "primary-create", lambda e: (e["width"], e["height"]) == (640, 480), since=mark
            )
    finally:
        await stop_process(proc, signal.SIGINT, 10)
        output += await read_rest(proc)
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
    """An X server with RandR modes of its own (Xorg with the spiceqxl driver, used here only
    as an X server): ``size`` switches it to its listed 800x600, and when something else
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


# -- clipboard and resize -------------------------------------------------------------------
TEXT, PNG = 1, 2


def png_bytes(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (9, 7), color).save(out, "PNG")
    return out.getvalue()


@asynccontextmanager
async def bridged(
    xserver: XServer, server: spice.Server, **options: Any
) -> AsyncIterator[X11Clipboard]:
    async with server.agent_events() as events, trio.open_nursery() as nursery:
        bridge = X11Clipboard(
            xserver.display, server.clipboard, events, xauthority=xserver.xauthority, **options
        )
        await nursery.start(bridge.run)
        try:
            yield bridge
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def xclip_in(xserver: XServer, data: bytes, *args: str) -> AsyncIterator[trio.Process]:
    """``xclip -i`` holding ``data`` on a selection until the block ends (in the foreground,
    so the test stops it)."""
    proc = await trio.lowlevel.open_process(
        ["xclip", "-quiet", "-i", *args], env=xserver.env(), stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdin is not None
        await proc.stdin.send_all(data)
        await proc.stdin.aclose()
        yield proc
    finally:
        await stop_process(proc, signal.SIGTERM, 5)


async def xclip_out(xserver: XServer, *args: str) -> bytes | None:
    result = await trio.run_process(
        ["xclip", "-o", *args], env=xserver.env(), capture_stdout=True, capture_stderr=True,
        check=False,
    )  # fmt: skip
    return result.stdout if result.returncode == 0 else None


async def wait_xclip(xserver: XServer, expected: bytes, *args: str, timeout: float = 10) -> None:
    got = None
    with trio.move_on_after(timeout):
        while (got := await xclip_out(xserver, *args)) != expected:
            await trio.sleep(0.05)
        return
    raise AssertionError(f"xclip -o {' '.join(args)} gave {got!r}, not {expected!r}")


async def client_paste(client: GtkClient, type_: int, since: int, selection: int = 0) -> bytes:
    await client.command({"cmd": "clipboard_request", "type": type_, "selection": selection})
    data = await client.wait_for(
        "clipboard-data", lambda e: e["type"] == type_ and e["selection"] == selection, since=since
    )
    return bytes.fromhex(data["hex"])


@pytest.mark.skipif(not shutil.which("xclip"), reason="needs xclip (scripts/setup.sh --test)")
async def test_clipboard_between_x_and_spice_gtk() -> None:
    """Text and a PNG copied in X (xclip) are pasted by spice-gtk, on CLIPBOARD and PRIMARY;
    what spice-gtk copies is pasted by X programs as UTF-8, Latin-1 and PNG; the client's
    clear gives the X selection up, and nothing is echoed back either way."""
    async with xvfb() as (xserver, _), running_server(64, 64) as server:
        async with mirrored(xserver, server), bridged(xserver, server) as bridge:
            async with open_gtk_client("127.0.0.1", server.port_bound) as client:
                await agent_ready(client)
                # X -> client: text on CLIPBOARD, then on PRIMARY
                text = "copied in X ✓ héllo"
                mark = client.mark()
                async with xclip_in(xserver, text.encode(), "-selection", "clipboard"):
                    await client.wait_for(
                        "clipboard-grab", lambda e: e["selection"] == 0 and TEXT in e["types"],
                        since=mark,
                    )  # fmt: skip
                    pasted = await client_paste(client, TEXT, mark)
                    assert pasted.rstrip(b"\0") == text.encode()
                    mark = client.mark()
                    async with xclip_in(xserver, b"primary words", "-selection", "primary"):
                        await client.wait_for(
                            "clipboard-grab", lambda e: e["selection"] == 1, since=mark
                        )
                        assert (await client_paste(client, TEXT, mark, 1)).rstrip(
                            b"\0"
                        ) == b"primary words"
                # X -> client: a PNG image
                red = png_bytes((200, 20, 20))
                mark = client.mark()
                async with xclip_in(xserver, red, "-selection", "clipboard", "-t", "image/png"):
                    await client.wait_for(
                        "clipboard-grab", lambda e: e["types"] == [PNG], since=mark
                    )
                    assert await client_paste(client, PNG, mark) == red
                assert bridge.from_x == 3

                # client -> X: text, read as UTF8_STRING, STRING and the list of targets
                mark = client.mark()
                copied = "from spice-gtk ✓ é"
                await client.command(
                    {"cmd": "clipboard_grab", "data": {TEXT: copied.encode().hex()}}
                )
                await wait_xclip(xserver, copied.encode(), "-selection", "clipboard")
                targets = await xclip_out(xserver, "-selection", "clipboard", "-t", "TARGETS")
                assert targets is not None
                assert {"TARGETS", "UTF8_STRING", "STRING", "TEXT"} <= set(targets.decode().split())
                assert "image/png" not in targets.decode().split()
                latin1 = await xclip_out(xserver, "-selection", "clipboard", "-t", "STRING")
                assert latin1 == "from spice-gtk ? é".encode("latin-1")
                mime = "text/plain;charset=utf-8"
                assert await xclip_out(xserver, "-selection", "clipboard", "-t", mime) == (
                    copied.encode()
                )
                # client -> X: a PNG
                blue = png_bytes((20, 20, 200))
                await client.command({"cmd": "clipboard_grab", "data": {PNG: blue.hex()}})
                await wait_xclip(xserver, blue, "-selection", "clipboard", "-t", "image/png")
                # nothing came back to the client: it got no grab of ours since its copies
                assert not [e for e in client.events[mark:] if e["event"] == "clipboard-grab"]
                assert bridge.from_x == 3 and bridge.to_x == 2

                # the client clears: X has no owner any more
                await client.command({"cmd": "clipboard_release"})
                peer = XPeer(xserver.display, xserver.xauthority)
                try:
                    atom = peer.conn.core.InternAtom(False, 9, "CLIPBOARD").reply().atom
                    with trio.fail_after(10):
                        while peer.conn.core.GetSelectionOwner(atom).reply().owner != 0:
                            await trio.sleep(0.05)
                finally:
                    peer.close()
                assert client.errors == []


class HostileOwner:
    """An X program that owns CLIPBOARD and answers every request with ``answer``:
    "silent" (never), "garbage" (random bytes typed as ATOM for TARGETS, a non-PNG for
    image/png, bytes of an unknown type for text) or "incr" (announces INCR, sends nothing)."""

    def __init__(self, xserver: XServer, answer: str) -> None:
        self.peer = XPeer(xserver.display, xserver.xauthority)
        self.answer = answer
        conn = self.peer.conn
        self.window = conn.generate_id()
        conn.core.CreateWindow(0, self.window, self.peer.root, 0, 0, 1, 1, 0,
                               xp.WindowClass.InputOnly, 0, 0, [])  # fmt: skip
        self.atoms = {
            n: conn.core.InternAtom(False, len(n), n).reply().atom
            for n in ("CLIPBOARD", "ATOM", "INCR", "image/png", "TARGETS", "JUNK_TYPE")
        }
        conn.core.SetSelectionOwner(self.window, self.atoms["CLIPBOARD"], 0)
        conn.flush()
        self.stop = False

    def serve(self) -> None:
        conn = self.peer.conn
        while not self.stop:
            event = conn.poll_for_event()
            if event is None:
                time.sleep(0.01)
                continue
            if not isinstance(event, xp.SelectionRequestEvent) or self.answer == "silent":
                continue
            if self.answer == "incr":
                kind, data = self.atoms["INCR"], (1 << 20).to_bytes(4, "little")
                fmt = 32
            elif event.target == self.atoms["TARGETS"]:
                kind, data, fmt = self.atoms["ATOM"], os.urandom(13), 8
            elif event.target == self.atoms["image/png"]:
                kind, data, fmt = self.atoms["image/png"], os.urandom(64), 8
            else:
                kind, data, fmt = self.atoms["JUNK_TYPE"], os.urandom(64), 8
            conn.core.ChangeProperty(xp.PropMode.Replace, event.requestor, event.property,
                                     kind, fmt, len(data) * 8 // fmt, data)  # fmt: skip
            notify = xp.SelectionNotifyEvent.synthetic(  # type: ignore[no-untyped-call]
                event.time, event.requestor, event.selection, event.target, event.property
            )
            conn.core.SendEvent(False, event.requestor, 0, notify.pack())
            conn.flush()

    def close(self) -> None:
        self.peer.close()


@pytest.mark.skipif(not shutil.which("xclip"), reason="needs xclip (scripts/setup.sh --test)")
async def test_hostile_selection_owners_do_not_hang_the_clipboard(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Owners that never answer, answer garbage or start an INCR transfer and stop: each
    costs a bounded wait, nothing reaches the client, and the next honest copy still does."""
    async with xvfb() as (xserver, _), running_server(64, 64) as server:
        async with bridged(xserver, server, step_timeout=0.5) as bridge:
            async with open_gtk_client("127.0.0.1", server.port_bound) as client:
                await agent_ready(client)
                mark = client.mark()
                for answer in ("silent", "garbage", "incr"):
                    owner = HostileOwner(xserver, answer)
                    try:
                        async with trio.open_nursery() as nursery:
                            nursery.start_soon(trio.to_thread.run_sync, owner.serve)
                            await trio.sleep(1.6)  # TARGETS, then text: each 0.5 s at most
                            owner.stop = True
                    finally:
                        owner.close()
                with trio.fail_after(5):
                    async with xclip_in(xserver, b"honest", "-selection", "clipboard"):
                        await client.wait_for(
                            "clipboard-grab", lambda e: e["selection"] == 0, since=mark
                        )
                        assert (await client_paste(client, TEXT, mark)).rstrip(b"\0") == b"honest"
                grabs = [e for e in client.events[mark:] if e["event"] == "clipboard-grab"]
                assert len(grabs) == 1, grabs
                assert bridge.from_x == 1
                said = " ".join(r.getMessage() for r in caplog.records)
                assert "did not answer" in said and "stalled" in said


async def test_spice_gtk_resize_changes_the_xvfb_screen() -> None:
    """A spice-gtk monitors config becomes the X screen's size through RandR (a mode made
    for it), the client's surface follows with the root window's pixels; a size past the
    Xvfb framebuffer is declined and the screen keeps its size."""
    async with (
        xvfb() as (xserver, _),
        running_server(64, 64) as server,
        server.agent_events() as events,
    ):
        peer = XPeer(xserver.display, xserver.xauthority)
        try:
            peer.show_picture(*PICTURE, desktop_like(100, 200, seed=3))
            async with mirrored(xserver, server) as source:
                server.on_resize(lambda _display, w, h: source.request_size(w, h))
                async with open_gtk_client("127.0.0.1", server.port_bound) as client:
                    await agent_ready(client)
                    await client.wait_for("primary-create", lambda e: e["width"] == W)
                    for size in ((640, 480), (300, 200)):  # larger, then smaller than at start
                        mark = client.mark()
                        await client.command(
                            {"cmd": "monitor_config", "width": size[0], "height": size[1]}
                        )
                        resized = await next_event(events, spice.DisplayResizeRequested)
                        assert (resized.width, resized.height, resized.accepted) == (*size, True)
                        await client.wait_for(
                            "primary-create",
                            lambda e, s=size: (e["width"], e["height"]) == s,
                            since=mark,
                        )
                        root = peer.conn.core.GetGeometry(peer.root).reply()
                        assert (root.width, root.height) == size
                        peer.width, peer.height = size
                        await client_equals_root(client, peer)
                    # past the framebuffer Xvfb was started with: declined, size kept
                    await client.command({"cmd": "monitor_config", "width": 4000, "height": 3000})
                    resized = await next_event(events, spice.DisplayResizeRequested)
                    assert resized.accepted is False
                    root = peer.conn.core.GetGeometry(peer.root).reply()
                    assert (root.width, root.height) == (300, 200)
                    display = server.displays[0]
                    assert (display.width, display.height) == (300, 200)
                    assert client.errors == []
        finally:
            peer.close()
