"""Trio-side wrapper around ``gtk_probe.py``, the spice-gtk client used by end-to-end tests.

spice-gtk is only reachable through GObject introspection from the system interpreter, so the
tests never import ``gi``: :func:`open_gtk_client` starts ``/usr/bin/python3 gtk_probe.py`` as a
subprocess with ``trio.lowlevel.open_process`` and talks to it in JSON lines. A reader task
appends every event the probe prints to :attr:`GtkClient.events`; :meth:`GtkClient.wait_for`
returns the first matching event that no earlier wait has consumed (already-received events
included, so nothing that arrived early is missed); :meth:`GtkClient.command` sends a command
tagged with a fresh ``id`` and waits for the reply carrying that id; :meth:`GtkClient.screenshot`
returns the primary surface as an ``(h, w, 4)`` uint8 BGRX array. Every failure raises
``AssertionError`` carrying the recent event log and the tail of the probe's stderr. On exit the
probe is asked to quit, given five seconds, then killed, and it is always reaped.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import trio
from supervised import quit_politely, supervised

PROBE = Path(__file__).with_name("gtk_probe.py")
SYSTEM_PYTHON = "/usr/bin/python3"

#: SPICE_SURFACE_FMT_32_xRGB and SPICE_SURFACE_FMT_32_ARGB: 4 bytes per pixel, B G R X/A.
FORMATS_32BPP = frozenset({32, 96})

Event = dict[str, Any]
Predicate = Callable[[Event], bool]


class GtkClient:
    """A running ``gtk_probe.py``: its event log and the commands it understands."""

    def __init__(self, process: trio.Process, workdir: Path) -> None:
        self.process = process
        self.workdir = workdir
        self.stderr_path = workdir / "probe.stderr"
        #: Every event received so far, in arrival order.
        self.events: list[Event] = []
        self._consumed: set[int] = set()
        self._changed = trio.Event()
        self._eof = False
        self._ids = itertools.count(1)
        self._shots = itertools.count(1)
        self._send_lock = trio.Lock()  # concurrent send_all on one stream is an error in trio

    # ---------------------------------------------------------------- events
    @property
    def errors(self) -> list[Event]:
        """All ``error`` events (failed commands and exceptions inside the probe)."""
        return [event for event in self.events if event.get("event") == "error"]

    def mark(self) -> int:
        """Index of the next event to arrive; pass it as ``since=`` to ignore older events."""
        return len(self.events)

    async def wait_for(
        self,
        event: str,
        predicate: Predicate | None = None,
        timeout: float = 10.0,
        *,
        since: int = 0,
    ) -> Event:
        """Return (and consume) the first not-yet-consumed ``event`` matching ``predicate``.

        Events that arrived before the call count too; ``since`` (from :meth:`mark`) skips
        older ones. Raises AssertionError on timeout or when the probe exits first.
        """

        def matches(candidate: Event) -> bool:
            return candidate.get("event") == event and (predicate is None or predicate(candidate))

        return await self._wait(matches, timeout, since, f"{event!r}")

    async def command(
        self, command: dict[str, Any], reply_event: str = "ok", timeout: float = 10.0
    ) -> Event:
        """Send ``command`` tagged with a fresh id and return the reply carrying that id.

        Input commands answer ``ok``, ``screenshot`` answers ``screenshot``, ``flush`` answers
        ``flushed``; an ``error`` reply raises AssertionError.
        """
        ident = next(self._ids)
        message = {**command, "id": ident}
        await self.send(message)

        def is_reply(candidate: Event) -> bool:
            return candidate.get("id") == ident and candidate.get("event") in (reply_event, "error")

        reply = await self._wait(is_reply, timeout, 0, f"{reply_event!r} answering {message!r}")
        if reply["event"] == "error":
            self.fail(f"command {message!r} failed: {reply.get('message')}")
        return reply

    async def _wait(self, matches: Predicate, timeout: float, since: int, what: str) -> Event:
        position = since
        with trio.move_on_after(timeout):
            while True:
                # Each event is examined once per wait: the cursor only moves forward.
                while position < len(self.events):
                    index = position
                    position += 1
                    if index not in self._consumed and matches(self.events[index]):
                        self._consumed.add(index)
                        return self.events[index]
                if self._eof:
                    self.fail(f"probe exited while waiting for {what}")
                await self._changed.wait()
        self.fail(f"timed out after {timeout} s waiting for {what}")

    async def send(self, message: dict[str, Any]) -> None:
        """Write one raw JSON command line (no id, no reply awaited)."""
        assert self.process.stdin is not None
        data = (json.dumps(message) + "\n").encode()
        try:
            async with self._send_lock:
                await self.process.stdin.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.fail(f"cannot send {message!r} to the probe: {exc!r}")

    # -------------------------------------------------------------- commands
    async def screenshot(self, display: int = 0, timeout: float = 10.0) -> np.ndarray:
        """The primary surface of ``display`` as an ``(height, width, 4)`` uint8 BGRX array."""
        path = self.workdir / f"shot-{next(self._shots)}.raw"
        reply = await self.command(
            {"cmd": "screenshot", "path": str(path), "display": display},
            "screenshot",
            timeout,
        )
        width, height, stride = reply["width"], reply["height"], reply["stride"]
        if reply["format"] not in FORMATS_32BPP:
            self.fail(f"screenshot of unsupported surface format {reply['format']}")
        raw = np.fromfile(path, dtype=np.uint8)
        path.unlink()
        if raw.size != stride * height:
            self.fail(f"screenshot has {raw.size} bytes, expected {stride * height}")
        rows = raw.reshape(height, stride)[:, : width * 4]
        return rows.reshape(height, width, 4).copy()

    async def flush(self, channel: str = "inputs", timeout: float = 10.0) -> Event:
        """Wait until everything queued on ``channel`` has been written to the socket."""
        return await self.command({"cmd": "flush", "channel": channel}, "flushed", timeout)

    # ---------------------------------------------------------- diagnostics
    def stderr_tail(self, limit: int = 4000) -> str:
        try:
            data = self.stderr_path.read_bytes()
        except OSError:
            return "<no stderr>"
        return data[-limit:].decode(errors="replace")

    def describe(self, last: int = 80) -> str:
        shown = self.events[-last:]
        skipped = len(self.events) - len(shown)
        lines = [f"... {skipped} earlier events"] if skipped else []
        lines += [json.dumps(event)[:300] for event in shown]
        return (
            f"probe pid {self.process.pid}, returncode {self.process.returncode}\n"
            f"--- events ({len(self.events)}) ---\n"
            + "\n".join(lines)
            + f"\n--- stderr tail ---\n{self.stderr_tail()}"
        )

    def fail(self, message: str) -> NoReturn:
        raise AssertionError(f"{message}\n{self.describe()}")

    # ------------------------------------------------------------- plumbing
    def _notify(self) -> None:
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    async def _read_events(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        try:
            while True:
                chunk = await self.process.stdout.receive_some(65536)
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError:
                        event = {"event": "unparsed", "line": line.decode(errors="replace")}
                    if not isinstance(event, dict):
                        event = {"event": "unparsed", "line": line.decode(errors="replace")}
                    self.events.append(event)
                self._notify()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._eof = True
            self._notify()

    async def _shutdown(self, grace: float = 5.0) -> None:
        await quit_politely(self.process, grace)


def probe_command(
    host: str,
    port: int | None,
    *,
    password: str | None = None,
    tls_port: int | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
    extra_args: Sequence[str] = (),
    username: str | None = None,
) -> list[str]:
    """The argv that starts the probe (exposed for debugging by hand)."""
    args = [SYSTEM_PYTHON, str(PROBE), "--host", host, "--timeout", str(timeout)]
    if port is not None:
        args += ["--port", str(port)]
    if tls_port is not None:
        args += ["--tls-port", str(tls_port)]
    if password is not None:
        args += ["--password", password]
    if username is not None:
        args += ["--username", username]
    if ca_file is not None:
        args += ["--ca-file", os.fspath(ca_file)]
    return args + list(extra_args)


@asynccontextmanager
async def open_gtk_client(
    host: str,
    port: int | None,
    *,
    password: str | None = None,
    tls_port: int | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
    extra_args: Sequence[str] = (),
    spice_debug: bool = False,
    username: str | None = None,
) -> AsyncIterator[GtkClient]:
    """Run a spice-gtk client against ``host``/``port`` for the duration of the block.

    ``timeout`` is the probe's own watchdog (it exits with status 3 after that many seconds),
    so keep it above the test's duration. ``spice_debug`` sets ``SPICE_DEBUG=1`` so spice-gtk
    logs its protocol trace to the probe's stderr (shown in failure messages).
    """
    argv = probe_command(
        host,
        port,
        password=password,
        tls_port=tls_port,
        ca_file=ca_file,
        timeout=timeout,
        extra_args=extra_args,
        username=username,
    )
    env = dict(os.environ)
    if spice_debug:
        env["SPICE_DEBUG"] = "1"
    with tempfile.TemporaryDirectory(prefix="gtk-probe-") as tmp:
        workdir = Path(tmp)
        stderr_fd = os.open(workdir / "probe.stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            process = await trio.lowlevel.open_process(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr_fd,
                env=env,
            )
        finally:
            os.close(stderr_fd)
        client = GtkClient(process, workdir)
        async with supervised(process, client._read_events, client._shutdown):
            yield client


async def channel_open(client: GtkClient, channel: str, timeout: float = 10.0) -> None:
    """Until spice-gtk's ``channel`` ("inputs", "cursor", ...) is open."""
    await client.wait_for(
        "channel-event",
        lambda e: e["channel"] == channel and e["name"] == "opened",
        timeout=timeout,
    )


async def inputs_open(client: GtkClient, timeout: float = 10.0) -> None:
    """Until spice-gtk's inputs channel is open: input commands fail before that."""
    await channel_open(client, "inputs", timeout)


async def agent_ready(client: GtkClient) -> None:
    """Until spice-gtk's agent is up and knows the server agent's capabilities."""
    await client.wait_for("main-agent-update", lambda e: e["connected"])
    # The capabilities exchange is done once the client knows ours (MONITORS_CONFIG is bit 1).
    await client.wait_for("main-agent-update", lambda e: e["caps0"] & (1 << 1), timeout=10)


async def next_event(events: Any, kind: type, timeout: float = 10.0) -> Any:
    """The next event of ``kind`` from a server's event channel (others are skipped)."""
    with trio.fail_after(timeout):
        while True:
            event = await events.receive()
            if isinstance(event, kind):
                return event
