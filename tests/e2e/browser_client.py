"""Trio-side wrapper around ``browser_probe.mjs``: headless Chromium running spice-html5.

The probe is a node script using playwright-core (the project's npm install) with Debian's
``/usr/bin/chromium``; :func:`open_browser` starts it with ``trio.lowlevel.open_process`` and
talks JSON lines, as ``gtk_client.py`` does with spice-gtk. Every event the page produces
(console lines, page errors, dialogs, WebSocket opens and closes, HTTP errors) lands in
:attr:`Browser.events`; :meth:`Browser.command` sends one command and returns its reply;
:meth:`Browser.canvas` reads the primary surface's canvas back as an ``(h, w, 4)`` RGBA array.
:meth:`Browser.media` reports the page's MediaSource use (after :meth:`Browser.instrument_media`).
:attr:`Browser.client_errors` is what a test asserts empty: uncaught exceptions, console
errors, and spice-html5's own ``ERROR:`` log lines (it logs its errors with console.log).
The probe has a watchdog; on exit it is asked to quit, then killed, and always reaped.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest
import trio
from supervised import quit_politely, supervised

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("browser_probe.mjs")
CHROMIUM = "/usr/bin/chromium"
PLAYWRIGHT = ROOT / "node_modules" / "playwright-core"

Event = dict[str, Any]


def require_browser() -> None:
    """Skip the calling test unless node, playwright-core and Debian's chromium are here
    (CI installs all three: see the README's test setup)."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node (apt install nodejs)")
    if not PLAYWRIGHT.is_dir():
        missing.append("playwright-core (npm install in the project root)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append("chromium (apt install chromium)")
    if missing:
        message = "browser tests need " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run them: see scripts/setup.sh)")
        pytest.skip(message)


class Browser:
    def __init__(self, process: trio.Process, stderr_path: Path) -> None:
        self.process = process
        self.stderr_path = stderr_path
        self.events: list[Event] = []
        self._changed = trio.Event()
        self._eof = False
        self._ids = itertools.count(1)

    # ---------------------------------------------------------------- events
    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.get("event") == kind]

    @property
    def client_errors(self) -> list[Event]:
        """Page errors, console errors and spice-html5's ``ERROR:`` lines, in order."""
        out = []
        for e in self.events:
            if e.get("event") == "pageerror" or (
                e.get("event") == "console"
                and (e.get("type") == "error" or str(e.get("text", "")).startswith("ERROR:"))
            ):
                out.append(e)
        return out

    async def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float = 10.0, since: int = 0
    ) -> Event:
        position = since
        with trio.move_on_after(timeout):
            while True:
                while position < len(self.events):
                    event = self.events[position]
                    position += 1
                    if predicate(event):
                        return event
                if self._eof:
                    self.fail("the browser probe exited")
                await self._changed.wait()
        self.fail(f"timed out after {timeout} s")

    async def command(self, cmd: str, timeout: float = 20.0, **args: Any) -> Event:
        ident = next(self._ids)
        assert self.process.stdin is not None
        line = json.dumps({"cmd": cmd, "id": ident, **args}) + "\n"
        try:
            await self.process.stdin.send_all(line.encode())
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.fail(f"cannot send {cmd!r} to the browser probe: {exc!r}")
        reply = await self.wait_for(lambda e: e.get("id") == ident, timeout)
        if reply.get("event") == "error":
            self.fail(f"browser command {cmd} failed: {reply.get('message')}")
        return reply

    # -------------------------------------------------------------- commands
    async def goto(self, url: str) -> Event:
        return await self.command("goto", url=url)

    async def wait_state(self, state: str, timeout: float = 15.0) -> None:
        await self.command("wait_state", timeout=timeout + 5, state=state, seconds=timeout)

    async def state(self) -> Event:
        return await self.command("state")

    async def canvas(self) -> np.ndarray:
        """The primary surface's canvas as an (h, w, 4) RGBA array ((0, 0, 4) if none yet)."""
        reply = await self.command("canvas")
        raw = np.frombuffer(base64.b64decode(reply["rgba"]), dtype=np.uint8)
        return raw.reshape(reply["height"], reply["width"], 4)

    async def shown(self) -> np.ndarray:
        """What the user sees over the primary surface: the canvas with the <video> elements
        spice-html5 plays VP8 streams in composed on top: (h, w, 3) RGB."""
        reply = await self.command("shown")
        raw = np.frombuffer(base64.b64decode(reply["rgba"]), dtype=np.uint8)
        return raw.reshape(reply["height"], reply["width"], 4)[..., :3]

    async def video_elements(self) -> int:
        """How many <video> elements spice-html5 has in the page (one per VP8 stream)."""
        reply = await self.command(
            "eval", expression="document.querySelectorAll('#spice-screen video').length"
        )
        return int(reply["value"])

    async def click(self, x: int, y: int, button: str = "left") -> None:
        await self.command("click", x=x, y=y, button=button)

    async def press(self, key: str) -> None:
        await self.command("press", key=key)

    async def login(self, password: str) -> None:
        await self.command("login", password=password)

    async def instrument_media(self) -> None:
        """Watch the page's MediaSource path from the next :meth:`goto` on (see the probe)."""
        await self.command("instrument_media")

    async def media(self) -> Event:
        """What the instrumented page did with MediaSource and its <audio> element so far."""
        return await self.command("media")

    async def screenshot(self, path: str | os.PathLike[str]) -> None:
        await self.command("screenshot", path=os.fspath(path))

    # ---------------------------------------------------------- diagnostics
    def describe(self, last: int = 60) -> str:
        try:
            stderr = self.stderr_path.read_bytes()[-3000:].decode(errors="replace")
        except OSError:
            stderr = "<no stderr>"
        lines = [json.dumps(e)[:300] for e in self.events[-last:]]
        return "--- browser events ---\n" + "\n".join(lines) + f"\n--- probe stderr ---\n{stderr}"

    def fail(self, message: str) -> NoReturn:
        raise AssertionError(f"{message}\n{self.describe()}")

    # ------------------------------------------------------------- plumbing
    async def _read_events(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        try:
            while chunk := await self.process.stdout.receive_some(1 << 20):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        try:
                            self.events.append(json.loads(line))
                        except ValueError:
                            self.events.append(
                                {"event": "unparsed", "line": line.decode(errors="replace")}
                            )
                changed, self._changed = self._changed, trio.Event()
                changed.set()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._eof = True
            self._changed.set()


@asynccontextmanager
async def open_browser(
    *, trust_spki: str | None = None, ignore_https_errors: bool = False, timeout: float = 90.0
) -> AsyncIterator[Browser]:
    """A headless Chromium for the duration of the block (skips the test if unavailable).

    ``trust_spki``: the base64 SHA-256 of one server key Chromium accepts without a CA it
    knows (Chromium's ``--ignore-certificate-errors-spki-list``), for a generated certificate.
    """
    require_browser()
    argv = ["node", str(PROBE), "--timeout", str(timeout)]
    if trust_spki is not None:
        argv += ["--trust-spki", trust_spki]
    if ignore_https_errors:
        argv.append("--ignore-https-errors")
    with tempfile.TemporaryDirectory(prefix="browser-probe-") as tmp:
        stderr_path = Path(tmp) / "probe.stderr"
        fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            process = await trio.lowlevel.open_process(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=fd, cwd=ROOT
            )
        finally:
            os.close(fd)
        browser = Browser(process, stderr_path)
        async with supervised(process, browser._read_events, partial(quit_politely, process, 10.0)):
            await browser.wait_for(lambda e: e.get("event") == "ready", 30)
            yield browser

    if process.returncode is None:
        process.terminate()
        with trio.move_on_after(3):
            await process.wait()
    if process.returncode is None:
        process.kill()
    await process.wait()
