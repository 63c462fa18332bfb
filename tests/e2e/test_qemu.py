"""``trio-spice qemu`` against a real QEMU (Debian's qemu-system-x86 7.2, TCG, ``-display
dbus``) booting a tiny guest (tests/e2e/guest/pattern.asm, assembled with nasm), and real
clients: spice-gtk and spice-html5 show the guest's pattern, keys typed in the client are
echoed by the guest (it draws each key's ASCII code as eight blocks), Enter switches the guest
to VGA mode 12h and the clients' surface follows, and a QEMU that dies leaves a notice on the
screen and a server that keeps taking clients and finds the next QEMU."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
from gtk_client import GtkClient, agent_ready, next_event, open_gtk_client
from serving import free_port, read_rest, read_until, running_server, same_pixels
from supervised import stop_process

import spice
from spice.adapters.sources.notice import message_screen
from spice.adapters.sources.qemu_dbus import QemuSource

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (
            shutil.which("qemu-system-x86_64")
            and shutil.which("nasm")
            and shutil.which("dbus-daemon")
        ),
        reason="needs qemu-system-x86, nasm and dbus-daemon (scripts/setup.sh --test)",
    ),
]

GUEST_ASM = Path(__file__).parent / "guest" / "pattern.asm"
#: QEMU's VGA shows mode 13h (320x200) doubled; Enter switches the guest to mode 12h.
W, H = 640, 400
M12_W, M12_H = 640, 480


def c6_to_8(v: int) -> int:
    """QEMU's VGA widens a 6-bit DAC value to 8 bits by shifting it left by two and
    repeating its lowest bit twice (hw/display/vga.c)."""
    low = v & 1
    return (v << 2) | (low << 1) | low


def dac(r: int, g: int, b: int) -> tuple[int, int, int]:
    """A 6-bit DAC entry as the display's B, G, R."""
    return c6_to_8(b), c6_to_8(g), c6_to_8(r)


#: The VGA BIOS's default palette, colours 1..8 (6-bit R, G, B).
BARS = [
    dac(0, 0, 0x2A),  # 1 blue
    dac(0, 0x2A, 0),  # 2 green
    dac(0, 0x2A, 0x2A),  # 3 cyan
    dac(0x2A, 0, 0),  # 4 red
    dac(0x2A, 0, 0x2A),  # 5 magenta
    dac(0x2A, 0x15, 0),  # 6 brown
    dac(0x2A, 0x2A, 0x2A),  # 7 light grey
    dac(0x15, 0x15, 0x15),  # 8 dark grey
]
WHITE = dac(0x3F, 0x3F, 0x3F)  # colour 15
#: Set-1 make codes of the keys typed.
KEYS = {"h": 0x23, "i": 0x17, "q": 0x10, "z": 0x2C, "\n": 0x1C}
NOTICE = "The virtual machine's display (QEMU) has closed. Waiting for it to come back..."


def pattern_shown(shown: np.ndarray) -> bool:
    """Eight bars, each 80 pixels wide (40 guest pixels, doubled), over rows 0..199."""
    if shown.shape[:2] != (H, W):
        return False
    return all(np.all(shown[0:200, 80 * i : 80 * i + 80, :3] == bar) for i, bar in enumerate(BARS))


def echoed_char(shown: np.ndarray) -> str | None:
    """The character the guest echoed as eight 16x16 blocks (8x8 doubled) on rows 240..255,
    white for a one and black for a zero, most significant bit first; None if it is not
    exactly that."""
    if shown.shape[:2] != (H, W):
        return None
    value = 0
    for bit in range(8):
        block = shown[240:256, 16 * bit : 16 * bit + 16, :3]
        if np.all(block == WHITE):
            value = value << 1 | 1
        elif np.all(block == 0):
            value <<= 1
        else:
            return None
    return chr(value)


async def boot_image(directory: Path) -> Path:
    image = directory / "pattern.img"
    await trio.run_process(["nasm", "-f", "bin", "-o", str(image), str(GUEST_ASM)])
    assert image.stat().st_size == 512
    return image


@asynccontextmanager
async def private_bus(directory: Path) -> AsyncIterator[str]:
    """A dbus-daemon of our own (the session configuration on a socket in ``directory``)."""
    path = directory / "bus"
    proc = await trio.lowlevel.open_process(
        [
            "dbus-daemon",
            "--session",
            "--nofork",
            "--print-address=1",
            f"--address=unix:path={path}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = b""
        with trio.fail_after(10):
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(4096)
                assert chunk, "dbus-daemon exited"
                line += chunk
        yield line.decode().strip()
    finally:
        await stop_process(proc, signal.SIGTERM, 5)


async def name_owned(address: str, name: str = "org.qemu") -> bool:
    result = await trio.run_process(
        ["dbus-send", f"--bus={address}", "--print-reply", "--dest=org.freedesktop.DBus",
         "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", f"string:{name}"],
        capture_stdout=True, check=False,
    )  # fmt: skip
    return b"boolean true" in result.stdout


@asynccontextmanager
async def qemu_vm(
    image: Path, *, bus: str | None = None, qmp: Path | None = None, vga: str = "std"
) -> AsyncIterator[trio.Process]:
    """QEMU (TCG, 16 MiB, std VGA, no other devices) booting ``image`` with its display on
    ``bus`` or, peer to peer, handed out through the QMP socket ``qmp``; ready when it returns."""
    command = [
        "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-accel", "tcg", "-m", "16",
        "-smp", "1", "-vga", vga, "-drive", f"file={image},format=raw,if=floppy",
        "-boot", "a", "-monitor", "none", "-serial", "none", "-parallel", "none",
    ]  # fmt: skip
    env = dict(os.environ)
    if bus is not None:
        command += ["-display", "dbus"]  # on the "session" bus: ours
        env["DBUS_SESSION_BUS_ADDRESS"] = bus
    else:
        assert qmp is not None
        command += ["-display", "dbus,p2p=yes", "-qmp", f"unix:{qmp},server=on,wait=off"]
    proc = await trio.lowlevel.open_process(
        command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    try:
        with trio.fail_after(20):
            while not (await name_owned(bus) if bus is not None else qmp and qmp.exists()):
                assert proc.poll() is None, "QEMU exited"
                await trio.sleep(0.1)
        yield proc
    finally:
        await stop_process(proc, signal.SIGTERM, 5)


@asynccontextmanager
async def showing(server: spice.Server, **options: Any) -> AsyncIterator[QemuSource]:
    async with trio.open_nursery() as nursery:
        source = QemuSource(server.displays[0], **options)
        await nursery.start(source.run)
        try:
            yield source
        finally:
            nursery.cancel_scope.cancel()


async def wait_screen(
    client: GtkClient, check: Any, what: str, timeout: float = 20.0
) -> np.ndarray:
    shown = None
    with trio.move_on_after(timeout):
        while True:
            if not any(e.get("event") == "primary-create" for e in client.events):
                await trio.sleep(0.05)  # no surface to read yet
                continue
            shown = await client.screenshot()
            if check(shown):
                return shown
            await trio.sleep(0.1)
    client.fail(f"the client never showed {what} (last: {None if shown is None else shown.shape})")


async def type_keys(client: GtkClient, text: str) -> None:
    for ch in text:
        await client.command({"cmd": "key_press_and_release", "scancode": KEYS[ch]})
    await client.flush()


@pytest.mark.parametrize("how", ["bus", "p2p"])
async def test_guest_through_spice_gtk(tmp_path: Path, how: str) -> None:
    """spice-gtk shows the guest's pattern (exactly what the source drew), its keys are
    echoed by the guest, and the guest's switch to mode 12h resizes its surface."""
    image = await boot_image(tmp_path)
    async with (
        private_bus(tmp_path) if how == "bus" else _no_bus() as bus,
        qemu_vm(image, bus=bus, qmp=None if bus else tmp_path / "qmp"),
        running_server(64, 64) as server,
        server.input_events() as events,
    ):
        where: dict[str, Any] = {"dbus_address": bus} if bus else {"qmp_path": tmp_path / "qmp"}
        async with showing(server, events=events, **where) as source:
            async with open_gtk_client("127.0.0.1", server.port_bound) as client:
                await client.wait_for(
                    "primary-create", lambda e: (e["width"], e["height"]) == (W, H)
                )
                shown = await wait_screen(client, pattern_shown, "the guest's bars")
                display = server.displays[0]
                await display.sync()
                assert same_pixels(shown, display.framebuffer)
                assert source.scanouts >= 1
                # Keys typed in the client reach the guest, which echoes each one.
                for ch in "hiqz":
                    await type_keys(client, ch)
                    await wait_screen(client, lambda s, c=ch: echoed_char(s) == c, f"{ch!r} echoed")
                # Enter: the guest switches to mode 12h (640x480); the surface follows.
                since = client.mark()
                await type_keys(client, "\n")
                await client.wait_for(
                    "primary-create",
                    lambda e: (e["width"], e["height"]) == (M12_W, M12_H),
                    since=since,
                    timeout=20,
                )
                text = await wait_screen(
                    client, lambda s: s.shape[:2] == (M12_H, M12_W) and s[..., :3].any(), "MODE 12H"
                )
                # Keys typed now are echoed as text: the screen changes below "MODE 12H".
                await type_keys(client, "hi")
                await wait_screen(
                    client,
                    lambda s: s.shape == text.shape and bool(np.any(s[16:32] != text[16:32])),
                    "the echo in mode 12h",
                )
                assert not client.errors


@asynccontextmanager
async def _no_bus() -> AsyncIterator[None]:
    yield None


async def test_guest_in_spice_html5(tmp_path: Path) -> None:
    """spice-html5 in Chromium shows the guest's pattern, its keys are echoed by the guest,
    and its canvas follows the switch to mode 12h."""
    from browser_client import open_browser, require_browser

    from spice.server import find_html5_dir

    require_browser()
    html5 = find_html5_dir()
    assert html5 is not None, "spice-html5 is not installed (scripts/setup.sh --test)"
    image = await boot_image(tmp_path)
    async with (
        private_bus(tmp_path) as bus,
        qemu_vm(image, bus=bus),
        running_server(64, 64, html5_dir=html5) as server,
        server.input_events() as events,
        showing(server, dbus_address=bus, events=events),
        open_browser() as browser,
    ):
        await browser.goto(f"http://127.0.0.1:{server.port_bound}/")
        await browser.wait_state("connected")

        async def canvas_bgr() -> np.ndarray:
            rgba = await browser.canvas()
            return np.ascontiguousarray(rgba[..., [2, 1, 0]])

        async def wait_canvas(check: Any, what: str) -> np.ndarray:
            shown = None
            with trio.move_on_after(20):
                while True:
                    shown = await canvas_bgr()
                    if check(shown):
                        return shown
                    await trio.sleep(0.1)
            browser.fail(f"the canvas never showed {what}")

        await wait_canvas(pattern_shown, "the guest's bars")
        for ch in "hi":
            await browser.press(ch)
            await wait_canvas(lambda s, c=ch: echoed_char(s) == c, f"{ch!r} echoed")
        await browser.press("Enter")
        await wait_canvas(lambda s: s.shape[:2] == (M12_H, M12_W), "the mode 12h size")
        assert not browser.client_errors


async def test_qemu_going_away_and_coming_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """QEMU killed mid-session: one log line, the notice on the clients' screen and in a
    NOTIFY, the server still takes clients; a new QEMU on the bus is found and shown."""
    notices: list[str] = []

    async def notify(text: str) -> None:
        notices.append(text)

    image = await boot_image(tmp_path)
    notice = message_screen(W, H, NOTICE)
    async with private_bus(tmp_path) as bus, running_server(64, 64) as server:
        async with trio.open_nursery() as nursery:
            async with qemu_vm(image, bus=bus) as vm:
                source = QemuSource(server.displays[0], dbus_address=bus, notify=notify, retry=0.2)
                await nursery.start(source.run)
                async with open_gtk_client("127.0.0.1", server.port_bound) as client:
                    await wait_screen(client, pattern_shown, "the guest's bars")
                    with caplog.at_level(logging.INFO, logger="spice.adapters.sources.qemu_dbus"):
                        vm.kill()  # QEMU dies mid-session
                        await wait_screen(client, lambda s: same_pixels(s, notice), "the notice")
                        await trio.sleep(0.6)  # a few attempts to find it fail meanwhile
                    gone = [r for r in caplog.records if "went away" in r.getMessage()]
                    assert len(gone) == 1, [r.getMessage() for r in caplog.records]
                    assert gone[0].levelno == logging.WARNING
                    assert notices == [NOTICE]
            # The SPICE server is still up: a new client connects and sees the notice.
            async with open_gtk_client("127.0.0.1", server.port_bound) as again:
                await wait_screen(again, lambda s: same_pixels(s, notice), "the notice")
                # A new QEMU on the bus: the source finds it and the client sees the guest.
                async with qemu_vm(image, bus=bus):
                    await wait_screen(again, pattern_shown, "the guest's bars again")
            nursery.cancel_scope.cancel()


async def test_command_peer_to_peer(tmp_path: Path) -> None:
    """``trio-spice qemu --qmp SOCKET`` with ``-display dbus,p2p=yes``: a client sees the
    guest; SIGINT stops the command cleanly."""
    image = await boot_image(tmp_path)
    qmp = tmp_path / "qmp"
    port = free_port()
    async with qemu_vm(image, qmp=qmp):
        command = [sys.executable, "-m", "spice", "qemu", "--port", str(port), "--qmp", str(qmp)]
        proc = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output = b""
        try:
            output = await read_until(proc, b"connect with", 30)
            assert re.search(rb"showing QEMU \(QMP .*qmp\)", output), output
            async with open_gtk_client("127.0.0.1", port) as client:
                await wait_screen(client, pattern_shown, "the guest's bars")
                await type_keys(client, "z")
                await wait_screen(client, lambda s: echoed_char(s) == "z", "'z' echoed")
        finally:
            await stop_process(proc, signal.SIGINT, 10)
            output += await read_rest(proc)
        assert proc.returncode == 0, output.decode(errors="replace")


async def test_command_without_qemu_fails_clearly(tmp_path: Path) -> None:
    """No QEMU behind the QMP socket: one clear line and a failure status, no traceback."""
    result = await trio.run_process(
        [sys.executable, "-m", "spice", "qemu", "--port", "0", "--qmp", str(tmp_path / "none")],
        capture_stdout=True, capture_stderr=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "trio-spice qemu: cannot show QEMU (QMP" in err, err
    assert "Traceback" not in err, err


@pytest.mark.parametrize(("vga", "taken"), [("std", False), ("virtio", True)])
async def test_client_resize_goes_to_set_ui_info(tmp_path: Path, vga: str, taken: bool) -> None:
    """A spice-gtk monitors config reaches QEMU as ``Console.SetUIInfo``: virtio-vga takes it
    (the boot-sector guest has no driver to follow it, so the size stays the guest's), the
    std VGA has no UI info and QEMU refuses it (the request is declined). Either way the
    guest still shows and echoes keys."""
    image = await boot_image(tmp_path)
    qmp = tmp_path / "qmp"
    async with (
        qemu_vm(image, qmp=qmp, vga=vga),
        running_server(64, 64) as server,
        server.input_events() as keys,
        server.agent_events() as events,
        showing(server, qmp_path=qmp, events=keys) as source,
    ):
        server.on_resize(lambda _display, w, h: source.request_size(w, h))
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await agent_ready(client)
            await wait_screen(client, pattern_shown, "the guest's bars")
            await client.command({"cmd": "monitor_config", "width": 800, "height": 600})
            resized = await next_event(events, spice.DisplayResizeRequested)
            assert (resized.width, resized.height, resized.accepted) == (800, 600, taken)
            assert source.ui_info == ((800, 600) if taken else None)
            await type_keys(client, "h")
            await wait_screen(client, lambda s: echoed_char(s) == "h", "'h' echoed")
            assert (server.displays[0].width, server.displays[0].height) == (W, H)
            assert not client.errors
