"""A private X server for ``trio-spice x11`` with no display named: Xvfb with a session in it
(a window manager and an xterm, when installed), so a new user gets a desktop at once.

Xvfb picks a free display number itself (``-displayfd``), listens on no TCP port and admits
only holders of a fresh MIT-MAGIC-COOKIE-1 written to a private Xauthority file, which the
session's programs and the source (through ``XAUTHORITY``) use. Everything started here is
stopped when the task is cancelled.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import attrs
import trio

from spice.adapters.sources.x11_screen import LOST, XScreen, connect
from spice.domain.sources.xauth import xauthority_entry

log = logging.getLogger(__name__)

#: Window managers tried in this order for the session.
WINDOW_MANAGERS = ("openbox", "twm")
#: Seconds Xvfb gets to announce its display.
START_TIMEOUT = 15.0
#: The largest screen clients' resizes may ask of the private Xvfb: its framebuffer is
#: allocated at this size (RandR can shrink a screen and grow it back, never past it), which
#: costs about 4 bytes a pixel of memory: 32 MiB at this default.
MAX_SIZE = (3840, 2160)


@attrs.frozen
class XServer:
    display: str  # ":N"
    xauthority: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.display, "XAUTHORITY": str(self.xauthority)}


async def _stop(process: trio.Process, grace: float = 3.0) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(grace):
            await process.wait()
        if process.returncode is None:
            process.kill()
    with trio.CancelScope(shield=True):
        await process.wait()


async def run_xvfb(
    width: int,
    height: int,
    *,
    session: bool = True,
    programs: Sequence[Sequence[str]] = (),
    max_size: tuple[int, int] | None = MAX_SIZE,
    task_status: trio.TaskStatus[XServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run Xvfb (and the session) until cancelled; ``task_status.started(XServer)`` once the
    display accepts connections. ``programs`` are started too, after the session's.

    The screen is ``width`` x ``height``; RandR may make it as large as ``max_size`` later
    (None: no larger than it starts)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise FileNotFoundError("Xvfb is not installed (Debian: apt install xvfb)")
    with tempfile.TemporaryDirectory(prefix="trio-spice-x11-") as tmp:
        auth = Path(tmp) / "Xauthority"
        cookie = secrets.token_bytes(16)
        fd = os.open(auth, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(xauthority_entry(cookie))
        fb_width, fb_height = width, height
        if max_size is not None:
            fb_width, fb_height = max(width, max_size[0]), max(height, max_size[1])
        read_end, write_end = os.pipe()
        argv = [
            xvfb,
            "-displayfd",
            str(write_end),
            "-screen",
            "0",
            f"{fb_width}x{fb_height}x24",
            "-nolisten",
            "tcp",
            "-auth",
            str(auth),
            "-noreset",
        ]
        try:
            server = await trio.lowlevel.open_process(
                argv,
                pass_fds=(write_end,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            os.close(write_end)
        children: list[trio.Process] = []
        try:
            number = await _read_display_number(read_end)
            x = XServer(f":{number}", auth)
            await wait_accepting(x.display, auth)
            if (fb_width, fb_height) != (width, height):
                await trio.to_thread.run_sync(_shrink, x, width, height)
            log.info("started Xvfb on display %s (%dx%d)", x.display, width, height)
            commands: list[Sequence[str]] = []
            if session:
                wm = next((w for w in WINDOW_MANAGERS if shutil.which(w)), None)
                if wm is not None:
                    commands.append([wm])
                if shutil.which("xterm"):
                    commands.append(["xterm", "-geometry", "80x24+40+40"])
                if not commands:
                    log.warning(
                        "neither a window manager nor xterm is installed: an empty "
                        "desktop (Debian: apt install xterm twm)"
                    )
            commands += programs
            for cmd in commands:
                children.append(
                    await trio.lowlevel.open_process(
                        list(cmd),
                        env=x.env(),
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        cwd=os.path.expanduser("~"),
                    )
                )
            task_status.started(x)
            await server.wait()
            log.warning("Xvfb on display %s exited with status %s", x.display, server.returncode)
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                for child in reversed(children):
                    await _stop(child)
                await _stop(server)


def _shrink(x: XServer, width: int, height: int) -> None:
    """The screen down from its framebuffer's size to the one asked, before anything draws."""
    screen = XScreen(x.display, xauthority=x.xauthority, use_shm=False, use_damage=False)
    try:
        if not screen.set_size(width, height):
            raise RuntimeError(f"Xvfb on {x.display} did not take the size {width}x{height}")
    finally:
        screen.close()


async def wait_accepting(
    display: str, xauthority: Path | None = None, timeout: float = START_TIMEOUT
) -> None:
    """Until an X client can connect: Xvfb may announce its display on ``-displayfd`` a
    moment before it accepts connections."""

    def attempt() -> bool:
        try:
            connect(display, xauthority).disconnect()
        except LOST as exc:
            log.debug("X display %s not accepting yet: %r", display, exc)
            return False
        return True

    with trio.fail_after(timeout):
        while not await trio.to_thread.run_sync(attempt):
            await trio.sleep(0.02)


async def _read_display_number(fd: int) -> int:
    stream = trio.lowlevel.FdStream(fd)
    data = b""
    async with stream:
        with trio.fail_after(START_TIMEOUT):
            while not data.endswith(b"\n"):
                chunk = await stream.receive_some(64)
                if not chunk:
                    raise RuntimeError("Xvfb exited before it announced a display")
                data += chunk
                if len(data) > 64:
                    raise RuntimeError(f"Xvfb announced {data!r}, not a display number")
    return int(data.strip())
