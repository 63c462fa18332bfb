"""The same 1920x1080 pixels on libspice-server (Xspice) and on trio-spice, the same clients:
display-channel bytes, server CPU and client pixels, in one run.

Usage (from the project root, with the project's virtualenv):

    .venv/bin/python benchmarks/display_bytes.py [--json out.json]
        [--image-compression auto] [--jpeg-wan-compression never]
        [--lossy-jpeg-wan-compression always] [--viewers 20] [--skip-html5]

Method (see benchmarks/README.md, "display_bytes.py"):

* C server: Xorg with the spiceqxl driver (libspice-server) at 1920x1080, twm and four xterms
  full of text. Every screen the C server shows is grabbed with ``xwd -root`` and the very
  same pixels are pushed to ours (``benchmarks/frame_server.py``, its own process) with
  ``display.update(0, 0, frame)``.
* Clients: spice-gtk (``tests/e2e/gtk_probe.py``; display bytes from the channel's
  ``total-read-bytes``, link included) and spice-html5 in headless Chromium
  (``tests/e2e/browser_probe.mjs``) on a copy of spice_auto.html that counts the WebSocket
  message payload per channel (SPICE bytes; WebSocket framing reported apart). For the C server
  the page and the WebSocket come from websockify on loopback in front of Xspice's port; ours
  serves them itself.
* A measurement ends when the client's display byte count has not moved for ``--settle``
  seconds. Server CPU: ``/proc/PID/task/*/schedstat`` summed over threads (exited threads keep
  their last count), from just before the action to that point; for Xspice the whole Xorg
  process (X rendering included) and its "SPICE Worker" thread.
* Before bytes are compared, the clients' surfaces are compared with the grabbed frame (and so
  with each other): identical for lossless, PSNR otherwise.
* 20 viewers: ``--viewers`` lean raw clients (the wire code of transports.py, advertising
  spice-gtk's display capabilities) on our server vs one, for the same pushes.

Prints a table and then one JSON object (``--json FILE`` also writes it).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import json
import math
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _peers  # noqa: E402
from _peers import HOST, ROOT, CpuMeter, require_free, stop  # noqa: E402

PROBE = ROOT / "tests" / "e2e" / "gtk_probe.py"
BROWSER_PROBE = ROOT / "tests" / "e2e" / "browser_probe.mjs"
SYSTEM_PYTHON = "/usr/bin/python3"
HTML5_SOURCES = (Path("/usr/share/spice-html5"), ROOT / "node_modules/@spice-project/spice-html5")
PHOTO = Path("/usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg")  # lomiri-wallpapers-16.04
SIZE = (1920, 1080)


# ============================================================================ JSON-line children
class JsonChild:
    """A child process speaking JSON lines (gtk_probe.py, browser_probe.mjs, frame_server.py)."""

    def __init__(self, argv: list[str], workdir: Path, name: str, cwd: Path = ROOT) -> None:
        self.name = name
        self.stderr_path = workdir / f"{name}.stderr"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err
            )
        self.events: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.eof = False
        self.ids = 0
        self.reader = threading.Thread(target=self._read, daemon=True, name=f"read-{name}")
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "unparsed", "line": line[:300].decode(errors="replace")}
            with self.cond:
                self.events.append(event)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for event in self.events[seen:]:
                    if pred(event):
                        return event
                seen = len(self.events)
                if self.eof:
                    raise RuntimeError(f"{self.name} exited; stderr: {self.stderr_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{self.name}: timed out; last {self.events[-5:]}")
                self.cond.wait(left)

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def command(self, cmd: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        self.ids += 1
        ident = self.ids
        self.send({"cmd": cmd, "id": ident, **args})
        reply = self.wait_for(lambda e: e.get("id") == ident, timeout)
        if reply.get("event") == "error":
            raise RuntimeError(f"{self.name} {cmd}: {reply.get('message')}")
        return reply

    def stderr_tail(self) -> str:
        try:
            return self.stderr_path.read_bytes()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.send({"cmd": "quit"})
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            stop(self.proc, grace=3)


@contextlib.contextmanager
def child(argv: list[str], workdir: Path, name: str) -> Iterator[JsonChild]:
    proc = JsonChild(argv, workdir, name)
    try:
        yield proc
    finally:
        proc.close()
        stop(proc.proc)


# ============================================================================ measuring
def settle(
    read: Callable[[], int],
    settle_s: float,
    timeout: float,
    start: int,
    *,
    expect_change: bool = False,
    t0: float | None = None,
) -> tuple[int, float | None]:
    """Poll ``read()`` until it has stayed put for ``settle_s``; with ``expect_change``, only
    once it has moved from ``start`` (up to ``timeout`` after ``t0``). Returns the last value
    and the seconds from ``t0`` (default: now) to its last change (None if it never moved)."""
    t0 = time.monotonic() if t0 is None else t0
    deadline = t0 + timeout
    last = read()
    since = time.monotonic()
    changed_at = since if last != start else None
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = read()
        if now != last:
            last = now
            since = changed_at = time.monotonic()
        elif time.monotonic() - since >= settle_s and (not expect_change or last != start):
            break
    return last, None if changed_at is None else changed_at - t0


class Meter:
    """CPU of a server process (and optionally one of its threads) across one action."""

    def __init__(self, pid: int, thread: str | None = None) -> None:
        self.cpu = CpuMeter(pid)
        self.thread = thread

    @contextlib.contextmanager
    def measure(self, into: dict[str, Any]) -> Iterator[None]:
        with self.cpu.poll_in_background():
            total0 = self.cpu.total()
            thread0 = self.cpu.total(self.thread) if self.thread else 0.0
            yield
            into["cpu_ms"] = round((self.cpu.total() - total0) * 1000, 1)
            if self.thread:
                into["worker_cpu_ms"] = round((self.cpu.total(self.thread) - thread0) * 1000, 1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of the RGB channels of two BGRX/BGR arrays (inf when identical)."""
    diff = a[..., :3].astype(np.int32) - b[..., :3].astype(np.int32)
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0 else 10 * math.log10(255 * 255 / mse)


def compare(shown: np.ndarray | None, source: np.ndarray) -> dict[str, Any]:
    if shown is None or shown.shape[:2] != source.shape[:2]:
        return {
            "identical": False,
            "psnr_db": None,
            "shape": None if shown is None else shown.shape,
        }
    value = psnr(shown, source)
    return {
        "identical": math.isinf(value),
        "psnr_db": None if math.isinf(value) else round(value, 2),
    }


# ============================================================================ X side
def xwd_grab(display: str) -> np.ndarray:
    """The root window of ``display`` as an (h, w, 4) uint8 BGRX array, read from xwd."""
    data = subprocess.run(
        ["xwd", "-root", "-silent", "-display", display], check=True, capture_output=True
    ).stdout
    fields = struct.unpack(">25I", data[:100])
    header_size, width, height = fields[0], fields[4], fields[5]
    byte_order, bpp, bytes_per_line, ncolors = fields[7], fields[11], fields[12], fields[19]
    if bpp != 32 or byte_order != 0:
        raise RuntimeError(f"xwd gave {bpp} bits per pixel, byte order {byte_order}")
    offset = header_size + 12 * ncolors
    rows = np.frombuffer(data, np.uint8, bytes_per_line * height, offset).reshape(height, -1)
    frame = rows[:, : width * 4].reshape(height, width, 4).copy()
    frame[..., 3] = 0
    return frame


TEXT_SOURCES = (
    "/usr/share/common-licenses/GPL-3",
    str(ROOT / "benchmarks" / "_peers.py"),
    str(ROOT / "spice" / "server.py"),
    "/usr/share/common-licenses/Apache-2.0",
)


def start_desktop(screen: _peers.XspiceScreen, tmp: Path, stack: contextlib.ExitStack) -> Path:
    """twm and four xterms (156x38 characters of 6x13 "fixed", one per quarter) with 30 lines
    of text each; the first xterm prints 4 more lines (no scrolling) when ``trigger`` appears."""
    env = screen.env()
    procs: list[subprocess.Popen[bytes]] = []

    def stop_all() -> None:
        for proc in reversed(procs):
            stop(proc, 2)

    stack.callback(stop_all)
    procs.append(
        subprocess.Popen(
            ["twm"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    time.sleep(0.5)
    trigger = tmp / "trigger"
    extra = tmp / "extra.txt"
    extra.write_text(
        "".join(
            f"changed line {i}: the quick brown fox jumps over the lazy dog {i * 7}\n"
            for i in range(1, 5)
        )
    )
    for i, source in enumerate(TEXT_SOURCES):
        lines = Path(source).read_text(errors="replace").splitlines()[:30]
        text = tmp / f"text{i}.txt"
        text.write_text("\n".join(line[:150] for line in lines) + "\n")
        script = f"cat {text}; "
        if i == 0:
            script += f"while [ ! -e {trigger} ]; do sleep 0.05; done; cat {extra}; "
        script += "exec sleep 100000"
        x, y = (i % 2) * 960, (i // 2) * 540
        procs.append(
            subprocess.Popen(
                ["xterm", "-geometry", f"156x38+{x}+{y}", "-fn", "fixed", "-e", "sh", "-c", script],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    time.sleep(2.0)
    return trigger


@contextlib.contextmanager
def x_client(argv: list[str], screen: _peers.XspiceScreen) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        argv,
        env=screen.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        stop(proc, 2)


# ============================================================================ clients
class Gtk:
    """One spice-gtk probe connected to a port, with its display byte count."""

    def __init__(self, proc: JsonChild) -> None:
        self.p = proc

    def display_bytes(self) -> int:
        reply = self.p.command("read_bytes")
        return int(reply["channels"].get("display:0", 0))

    def screenshot(self, workdir: Path) -> np.ndarray:
        path = workdir / "shot.raw"
        reply = self.p.command("screenshot", path=str(path), display=0)
        raw = np.fromfile(path, np.uint8)
        path.unlink()
        rows = raw.reshape(reply["height"], reply["stride"])[:, : reply["width"] * 4]
        return rows.reshape(reply["height"], reply["width"], 4)


@contextlib.contextmanager
def gtk_client(port: int, workdir: Path, tag: str) -> Iterator[Gtk]:
    argv = [SYSTEM_PYTHON, str(PROBE), "--port", str(port), "--timeout", "600"]
    with child(argv, workdir, f"gtk-{tag}") as proc:
        yield Gtk(proc)


def new_gtk_client(
    port: int,
    workdir: Path,
    tag: str,
    meter: Meter,
    source: np.ndarray,
    args: argparse.Namespace,
    stack: contextlib.ExitStack,
) -> tuple[dict[str, Any], Gtk]:
    """Connect a new spice-gtk client, measure its display bytes and the server's CPU until the
    display is quiet, compare its surface with ``source``. The client stays connected until
    ``stack`` closes."""
    result: dict[str, Any] = {}
    t0 = time.monotonic()
    with meter.measure(result):
        gtk = stack.enter_context(gtk_client(port, workdir, tag))
        gtk.p.wait_for(lambda e: e.get("event") == "primary-create", 30)
        gtk.p.wait_for(lambda e: e.get("event") == "invalidate", 30)
        result["bytes"], done = settle(gtk.display_bytes, args.settle, 60, 0, t0=t0)
    result["done_ms"] = None if done is None else round(done * 1000)
    result.update(compare(gtk.screenshot(workdir), source))
    return result, gtk


def change_on(
    gtk: Gtk,
    meter: Meter,
    action: Callable[[], None],
    args: argparse.Namespace,
    workdir: Path,
    source: np.ndarray | None,
    expect_change: bool = True,
) -> dict[str, Any]:
    """Bytes the connected ``gtk`` client receives, and server CPU, for ``action``: until the
    count has moved and then been quiet for ``--settle`` s, or (``expect_change=False``) been
    quiet for 3x that."""
    result: dict[str, Any] = {}
    before, _ = settle(gtk.display_bytes, 0.3, 10, -1)
    quiet = args.settle if expect_change else 3 * args.settle
    with meter.measure(result):
        t0 = time.monotonic()
        action()
        after, done = settle(
            gtk.display_bytes, quiet, 60, before, expect_change=expect_change, t0=t0
        )
    result["bytes"] = after - before
    result["done_ms"] = None if done is None else round(done * 1000)
    if source is not None:
        result.update(compare(gtk.screenshot(workdir), source))
    return result


# The WebSocket counter put in front of spice_auto.html: per socket, the channel type (byte 20
# of the client's link message), SPICE payload bytes received, and the WebSocket framing the
# server needed for them (2, 4 or 10 bytes per unmasked frame, one frame per message).
COUNTER = """<script>
(function () {
  const Native = window.WebSocket;
  window.__spiceBench = [];
  function Counted(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    const rec = { url: String(url), type: null, bytes: 0, messages: 0, framing: 0,
                  created: performance.now(), last: null };
    window.__spiceBench.push(rec);
    const send = ws.send.bind(ws);
    ws.send = function (data) {
      if (rec.type === null) {
        try {
          const u8 = data instanceof ArrayBuffer ? new Uint8Array(data)
            : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
          if (u8.length > 20 && u8[0] === 0x52) rec.type = u8[20];
        } catch (e) { /* not a buffer */ }
      }
      return send(data);
    };
    ws.addEventListener('message', function (ev) {
      const n = ev.data.byteLength !== undefined ? ev.data.byteLength : (ev.data.size || 0);
      rec.bytes += n; rec.messages += 1; rec.framing += n < 126 ? 2 : n < 65536 ? 4 : 10;
      rec.last = performance.now();
    });
    return ws;
  }
  Counted.prototype = Native.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Counted[k] = Native[k];
  window.WebSocket = Counted;
})();
</script>
"""


def bench_html5_dir(tmp: Path) -> Path | None:
    """A copy of spice-html5 with bench.html: spice_auto.html with the counter in front."""
    for source in HTML5_SOURCES:
        if (source / "spice_auto.html").is_file():
            target = tmp / "html5"
            shutil.copytree(source, target, symlinks=False)
            page = (source / "spice_auto.html").read_text()
            (target / "bench.html").write_text(page.replace("<head>", "<head>\n" + COUNTER, 1))
            return target
    return None


def html5_new_client(
    url: str, workdir: Path, meter: Meter, source: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    argv = ["node", str(BROWSER_PROBE), "--timeout", "300"]
    with child(argv, workdir, "browser") as browser:
        browser.wait_for(lambda e: e.get("event") == "ready", 60)

        def display_record() -> dict[str, Any]:
            value = browser.command("eval", expression="JSON.stringify(window.__spiceBench||[])")
            records = json.loads(value["value"])
            return next((r for r in records if r.get("type") == 2), {"bytes": 0})

        with meter.measure(result):
            browser.command("goto", url=url, timeout=60)
            # The link reply and the display's first messages are a few hundred bytes; wait for
            # the image itself (any 1080p screen is more than 2 KB) before waiting for quiet.
            deadline = time.monotonic() + 60
            while display_record()["bytes"] < 2048 and time.monotonic() < deadline:
                time.sleep(0.1)
            settle(lambda: display_record()["bytes"], args.settle + 0.5, 90, -1)
        record = display_record()
        result["bytes"] = record["bytes"]
        result["ws_framing_bytes"] = record.get("framing")
        result["ws_messages"] = record.get("messages")
        if record.get("last") is not None:
            # socket created -> last display message, in the page's clock
            result["display_ms"] = round(record["last"] - record["created"], 1)
        canvas = browser.command("canvas", timeout=60)
        if canvas.get("width"):
            rgba = np.frombuffer(base64.b64decode(canvas["rgba"]), np.uint8)
            rgba = rgba.reshape(canvas["height"], canvas["width"], 4)
            result.update(compare(rgba[..., [2, 1, 0, 3]], source))
        else:
            result.update(compare(None, source))
        errors = [e for e in browser.events if e.get("event") == "pageerror"]
        if errors:
            result["page_errors"] = [str(e.get("text"))[:200] for e in errors[:3]]
    return result


# ============================================================================ raw viewers
async def raw_viewers(
    port: int, count: int, server: JsonChild, meter: Meter, pushes: list[str], settle_s: float
) -> list[dict[str, Any]]:
    """``count`` lean clients (main + display) on our server; for each name in ``pushes``,
    the server's CPU and the bytes all clients received until they are all quiet."""
    import trio
    from transports import (
        DISPLAY,
        MSGC_DISPLAY_INIT,
        Reader,
    )

    # spice-gtk 0.42's display caps: sized stream, monitors config, composite, A8, stream
    # report, LZ4, preferred compression, multi codec, MJPEG.
    display_caps = sum(1 << b for b in (0, 1, 2, 3, 4, 5, 6, 8, 9))

    displays: list[Reader] = []

    async def viewer(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        main_stream = await trio.open_tcp_stream(HOST, port)
        display_stream = await trio.open_tcp_stream(HOST, port)
        async with main_stream, display_stream, trio.open_nursery() as nursery:
            main = Reader(main_stream)
            session_id = await main.open_main()

            async def pump(reader: Reader) -> None:
                while True:
                    await reader.message()

            nursery.start_soon(pump, main)
            display = Reader(display_stream)
            await display.link(DISPLAY, session_id, display_caps)
            await display.send(MSGC_DISPLAY_INIT, struct.pack("<BqBi", 1, 0, 1, 0))
            displays.append(display)
            nursery.start_soon(pump, display)
            task_status.started()

    def total() -> int:
        return sum(d.bytes for d in displays)

    async def quiet(start: int) -> int:
        last, since = total(), trio.current_time()
        deadline = since + 60
        while trio.current_time() < deadline:
            await trio.sleep(0.05)
            now = total()
            if now != last:
                last, since = now, trio.current_time()
            elif (last != start and trio.current_time() - since >= settle_s) or (
                last == start and trio.current_time() - since >= 5
            ):
                break
        return last

    results = []
    async with trio.open_nursery() as nursery:
        for _ in range(count):
            await nursery.start(viewer)
        with trio.move_on_after(60):
            while min(d.bytes for d in displays) < 4096:  # each has its first image
                await trio.sleep(0.05)
        await quiet(-1)
        for name in pushes:  # warm-up: threads, caches and buffers of the server
            before = total()
            await trio.to_thread.run_sync(functools.partial(server.command, "push", name=name))
            await quiet(before)
        for name in pushes:
            before = total()
            result: dict[str, Any] = {"frame": name}
            stats = await trio.to_thread.run_sync(functools.partial(server.command, "stats"))
            with meter.measure(result):
                await trio.to_thread.run_sync(functools.partial(server.command, "push", name=name))
                after = await quiet(before)
            later = await trio.to_thread.run_sync(functools.partial(server.command, "stats"))
            result["bytes_all_viewers"] = after - before
            result["encodes"] = later["encodes"] - stats["encodes"]
            result["encode_cpu_ms"] = round(later["encode_cpu_ms"] - stats["encode_cpu_ms"], 2)
            results.append(result)
        nursery.cancel_scope.cancel()
    return results


# ============================================================================ our server
@contextlib.contextmanager
def our_server(
    port: int, workdir: Path, options: dict[str, str | None], html5: Path | None, tag: str
) -> Iterator[JsonChild | str]:
    """frame_server.py with ``options``; yields the child, or the Server's refusal as text."""
    require_free(port)
    argv = [
        sys.executable,
        str(HERE / "frame_server.py"),
        "--port",
        str(port),
        "--size",
        f"{SIZE[0]}x{SIZE[1]}",
    ]
    for key, value in options.items():
        if value is not None:
            argv += [f"--{key.replace('_', '-')}", value]
    if html5 is not None:
        argv += ["--html5-dir", str(html5)]
    with child(argv, workdir, f"ours-{tag}") as server:
        first = server.wait_for(lambda e: e.get("event") in ("listening", "rejected"), 30)
        if first["event"] == "rejected":
            yield f"rejected by spice.Server: {first['message']}"
            return
        yield server


def push_and_wait(server: JsonChild, name: str) -> Callable[[], None]:
    def push() -> None:
        server.command("push", name=name)

    return push


# ============================================================================ the run
def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {}  # case -> {"c": ..., "ours": ...}
    notes: list[str] = []
    frames: dict[str, np.ndarray] = {}

    def put(case: str, side: str, value: dict[str, Any] | str) -> None:
        results.setdefault(case, {})[side] = value
        print(f"  {case:32} {side:5} {json.dumps(value)[:160]}", flush=True)

    html5 = None if args.skip_html5 else bench_html5_dir(tmp)
    if not args.skip_html5 and html5 is None:
        notes.append("spice-html5 not found: html5 case skipped")
    if html5 is not None and (shutil.which("node") is None or shutil.which("websockify") is None):
        notes.append("node or websockify missing: html5 case skipped")
        html5 = None

    # ---------------------------------------------------------------- C server, lossless
    print(f"C server: Xspice on {HOST}:{args.xspice_port}", flush=True)
    xopts = dict(kv.split("=", 1) for kv in args.xspice_option)
    with contextlib.ExitStack() as stack:
        screen = stack.enter_context(_peers.xspice_screen(args.xspice_port, SIZE, xopts))
        meter = Meter(screen.pid, "SPICE Worker")
        trigger = start_desktop(screen, tmp, stack)
        frames["text"] = xwd_grab(screen.display)
        if html5 is not None:
            require_free(args.websockify_port)
            ws_log = open(tmp / "websockify.log", "wb")  # noqa: SIM115
            stack.callback(ws_log.close)
            wsp = subprocess.Popen(
                [
                    "websockify",
                    "--web",
                    str(html5),
                    f"{HOST}:{args.websockify_port}",
                    f"{HOST}:{args.xspice_port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=ws_log,
                stderr=ws_log,
            )
            try:
                _peers.wait_listening(args.websockify_port, wsp, 20, "websockify")
                ws_meter = CpuMeter(wsp.pid)
                ws0 = ws_meter.total()
                url = f"http://{HOST}:{args.websockify_port}/bench.html"
                res = html5_new_client(url, tmp, meter, frames["text"], args)
                res["websockify_cpu_ms"] = round((ws_meter.total() - ws0) * 1000, 1)
                put("text, new spice-html5 client", "c", res)
            finally:
                stop(wsp)
        # libspice-server takes one client at a time: a new one replaces the old, so the
        # spice-gtk client that stays for the changes connects after the browser.
        res, gtk = new_gtk_client(
            args.xspice_port, tmp, "c-text", meter, frames["text"], args, stack
        )
        put("text, new spice-gtk client", "c", res)
        time.sleep(0.5)
        res = change_on(gtk, meter, lambda: trigger.touch(), args, tmp, None)
        frames["changed"] = xwd_grab(screen.display)
        res.update(compare(gtk.screenshot(tmp), frames["changed"]))
        put("a few text lines change", "c", res)

        def xrefresh() -> None:
            subprocess.run(["xrefresh"], env=screen.env(), check=True)

        res = change_on(gtk, meter, xrefresh, args, tmp, frames["changed"], expect_change=False)
        put("same pixels again (xrefresh)", "c", res)

        # The photo, drawn while the client is connected, then to a new client.
        feh = ["feh", "-F", "--zoom", "fill", "--hide-pointer", str(args.photo)]
        photo_proc: list[subprocess.Popen[bytes]] = []

        def show_photo() -> None:
            photo_proc.append(stack.enter_context(x_client(feh, screen)))

        res = change_on(gtk, meter, show_photo, args, tmp, None)
        frames["photo"] = xwd_grab(screen.display)
        res.update(compare(gtk.screenshot(tmp), frames["photo"]))
        put("photo drawn, client connected", "c", res)
        res, _ = new_gtk_client(
            args.xspice_port, tmp, "c-photo", meter, frames["photo"], args, stack
        )
        put("photo, new spice-gtk client", "c", res)

    # ---------------------------------------------------------------- C server, lossy
    lossy_opts = {**xopts, "SpiceJpegWanCompression": args.lossy_jpeg_wan_compression}
    print(f"C server, lossy: Xspice with {lossy_opts}", flush=True)
    with contextlib.ExitStack() as stack:
        screen = stack.enter_context(_peers.xspice_screen(args.xspice_port, SIZE, lossy_opts))
        meter = Meter(screen.pid, "SPICE Worker")
        black = np.zeros_like(frames["photo"])
        _, gtk = new_gtk_client(args.xspice_port, tmp, "c-lossy0", meter, black, args, stack)

        def show_photo_lossy() -> None:
            stack.enter_context(x_client(feh, screen))

        res = change_on(gtk, meter, show_photo_lossy, args, tmp, None)
        lossy_source = xwd_grab(screen.display)
        res.update(compare(gtk.screenshot(tmp), lossy_source))
        res["source_equals_lossless_grab"] = bool(np.array_equal(lossy_source, frames["photo"]))
        put("photo drawn, lossy allowed", "c", res)
        res, _ = new_gtk_client(args.xspice_port, tmp, "c-lossy", meter, lossy_source, args, stack)
        put("photo, new client, lossy allowed", "c", res)

    for name, frame in frames.items():
        np.save(tmp / f"{name}.npy", frame)

    # ---------------------------------------------------------------- ours, lossless
    ours_opts = {
        "image_compression": args.image_compression,
        "jpeg_wan_compression": args.jpeg_wan_compression,
    }
    print(f"ours: frame_server.py on {HOST}:{args.our_port} with {ours_opts}", flush=True)
    rejected: str | None = None
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(our_server(args.our_port, tmp, ours_opts, html5, "main"))
        if isinstance(server, str):
            rejected = server
            for case in CASES[:6]:
                if html5 is not None or "html5" not in case:
                    put(case, "ours", server)
        else:
            for name in frames:
                server.command("load", name=name, path=str(tmp / f"{name}.npy"))
            meter = Meter(int(server.proc.pid))
            server.command("push", name="text")
            time.sleep(0.5)
            if html5 is not None:
                url = f"http://{HOST}:{args.our_port}/bench.html"
                put(
                    "text, new spice-html5 client",
                    "ours",
                    html5_new_client(url, tmp, meter, frames["text"], args),
                )
            res, gtk = new_gtk_client(
                args.our_port, tmp, "o-text", meter, frames["text"], args, stack
            )
            put("text, new spice-gtk client", "ours", res)
            put(
                "a few text lines change",
                "ours",
                change_on(
                    gtk, meter, push_and_wait(server, "changed"), args, tmp, frames["changed"]
                ),
            )
            put(
                "same pixels again (xrefresh)",
                "ours",
                change_on(
                    gtk,
                    meter,
                    push_and_wait(server, "changed"),
                    args,
                    tmp,
                    frames["changed"],
                    expect_change=False,
                ),
            )
            put(
                "photo drawn, client connected",
                "ours",
                change_on(gtk, meter, push_and_wait(server, "photo"), args, tmp, frames["photo"]),
            )
            res, _ = new_gtk_client(
                args.our_port, tmp, "o-photo", meter, frames["photo"], args, stack
            )
            put("photo, new spice-gtk client", "ours", res)

    # ---------------------------------------------------------------- ours, viewers
    if rejected is None:
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(our_server(args.our_port, tmp, ours_opts, None, "viewers"))
            if isinstance(server, str):
                raise RuntimeError(server)
            for name in frames:
                server.command("load", name=name, path=str(tmp / f"{name}.npy"))
            server.command("push", name="photo")
            meter = Meter(int(server.proc.pid))
            import trio

            pushes = ["text", "changed", "changed", "photo"]
            viewers: dict[int, list[dict[str, Any]]] = {}
            for count in (1, args.viewers):
                viewers[count] = trio.run(
                    raw_viewers, args.our_port, count, server, meter, pushes, args.settle
                )
                print(f"  {count} viewer(s): {viewers[count]}", flush=True)
            one = sum(r["cpu_ms"] for r in viewers[1])
            many = sum(r["cpu_ms"] for r in viewers[args.viewers])
            encode_one = sum(r["encode_cpu_ms"] for r in viewers[1])
            encode_many = sum(r["encode_cpu_ms"] for r in viewers[args.viewers])
            results["viewers"] = {
                "pushes": pushes,
                "one": viewers[1],
                "many": viewers[args.viewers],
                "count": args.viewers,
                "cpu_ms_one": round(one, 1),
                "cpu_ms_many": round(many, 1),
                "ratio": round(many / one, 2) if one else None,
                "encode_cpu_ms_one": round(encode_one, 1),
                "encode_cpu_ms_many": round(encode_many, 1),
                "encode_ratio": round(encode_many / encode_one, 2) if encode_one else None,
            }

    # ---------------------------------------------------------------- ours, lossy
    lossy = {**ours_opts, "jpeg_wan_compression": args.lossy_jpeg_wan_compression}
    print(f"ours, lossy: {lossy}", flush=True)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(our_server(args.our_port, tmp, lossy, None, "lossy"))
        if isinstance(server, str):
            put("photo drawn, lossy allowed", "ours", server)
            put("photo, new client, lossy allowed", "ours", server)
        else:
            server.command("load", name="photo", path=str(tmp / "photo.npy"))
            meter = Meter(int(server.proc.pid))
            _, gtk = new_gtk_client(
                args.our_port, tmp, "o-lossy0", meter, np.zeros_like(frames["photo"]), args, stack
            )
            put(
                "photo drawn, lossy allowed",
                "ours",
                change_on(gtk, meter, push_and_wait(server, "photo"), args, tmp, frames["photo"]),
            )
            res, _ = new_gtk_client(
                args.our_port, tmp, "o-lossy", meter, frames["photo"], args, stack
            )
            put("photo, new client, lossy allowed", "ours", res)
    return {"cases": results, "notes": notes}


CASES = (
    "text, new spice-gtk client",
    "text, new spice-html5 client",
    "a few text lines change",
    "same pixels again (xrefresh)",
    "photo drawn, client connected",
    "photo, new spice-gtk client",
    "photo drawn, lossy allowed",
    "photo, new client, lossy allowed",
)


def ratio(a: Any, b: Any) -> float | None:
    return (
        round(a / b, 2)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b
        else None
    )


def pixels(res: dict[str, Any]) -> str:
    if res.get("identical"):
        return "exact"
    return f"{res['psnr_db']} dB" if res.get("psnr_db") is not None else "-"


def report(out: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    print(
        f"\n{'case':34} {'C bytes':>11} {'ours bytes':>11} {'ours/C':>7} {'C cpu ms':>9} "
        f"{'(worker)':>9} {'ours cpu':>9} {'ours/C':>7}  pixels C / ours"
    )
    for case in CASES:
        entry = out["cases"].get(case)
        if not entry:
            continue
        c, ours = entry.get("c", {}), entry.get("ours", {})
        if isinstance(ours, str):
            row = {"c": c, "ours": ours, "bytes_ratio": None, "cpu_ratio": None}
            print(f"{case:34} {c.get('bytes', 0):>11,} {'n/a':>11}  ours: {ours}")
        else:
            row = {
                "c": c,
                "ours": ours,
                "bytes_ratio": ratio(ours.get("bytes"), c.get("bytes")),
                "cpu_ratio": ratio(ours.get("cpu_ms"), c.get("cpu_ms")),
                "cpu_ratio_vs_worker": ratio(ours.get("cpu_ms"), c.get("worker_cpu_ms")),
            }
            print(
                f"{case:34} {c.get('bytes', 0):>11,} {ours.get('bytes', 0):>11,} "
                f"{row['bytes_ratio'] or '-':>7} {c.get('cpu_ms', '-'):>9} "
                f"{c.get('worker_cpu_ms', '-'):>9} {ours.get('cpu_ms', '-'):>9} "
                f"{row['cpu_ratio'] or '-':>7}  {pixels(c)} / {pixels(ours)}"
            )
        summary[case] = row
    v = out["cases"].get("viewers")
    if v:
        print(
            f"\nour server CPU for the pushes {v['pushes']}: 1 viewer {v['cpu_ms_one']} ms, "
            f"{v['count']} viewers {v['cpu_ms_many']} ms: {v['ratio']}x; encode CPU "
            f"{v['encode_cpu_ms_one']} vs {v['encode_cpu_ms_many']} ms: {v['encode_ratio']}x"
        )
        summary["viewers"] = v
    for note in out["notes"]:
        print("note:", note)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xspice-port", type=int, default=5971)
    parser.add_argument("--websockify-port", type=int, default=5973)
    parser.add_argument("--our-port", type=int, default=5972)
    parser.add_argument("--image-compression", default=None, help="ours (default: server's)")
    parser.add_argument("--jpeg-wan-compression", default=None, help="ours, lossless cases")
    parser.add_argument(
        "--lossy-jpeg-wan-compression",
        default="always",
        help="both servers, the 'lossy allowed' cases",
    )
    parser.add_argument(
        "--xspice-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra spiceqxl Option, e.g. SpiceImageCompression=quic",
    )
    parser.add_argument("--photo", type=Path, default=PHOTO)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--settle", type=float, default=0.7, help="quiet seconds = done")
    parser.add_argument("--skip-html5", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    for tool in ("Xorg", "xwd", "twm", "xterm", "feh", "xrefresh"):
        if shutil.which(tool) is None:
            print(
                f"{tool} not found: apt-get install xserver-xspice x11-apps twm xterm feh "
                "x11-xserver-utils websockify",
                file=sys.stderr,
            )
            return 2
    if not args.photo.is_file():
        print(f"{args.photo} not found: apt-get install lomiri-wallpapers-16.04", file=sys.stderr)
        return 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="display-bytes-") as tmpdir:
        out = run(args, Path(tmpdir))
    out["photo"] = str(args.photo)
    out["options"] = {
        "ours": {
            "image_compression": args.image_compression,
            "jpeg_wan_compression": args.jpeg_wan_compression,
        },
        "lossy_jpeg_wan_compression": args.lossy_jpeg_wan_compression,
        "xspice_options": args.xspice_option,
    }
    out["summary"] = report(out)
    out["seconds"] = round(time.monotonic() - started, 1)
    text = json.dumps(out, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
