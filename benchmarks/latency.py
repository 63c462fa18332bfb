"""Keypress to echo on the client's screen, with a 1280x720 video playing beside it, over an
emulated WAN (benchmarks/wan.py) and on loopback, for spice-gtk and spice-html5 clients.

Usage (from the project root, as root for the WAN paths, with the project's virtualenv):

    apt-get install ffmpeg                    # renders the two clips once (cached in --clip-dir)
    .venv/bin/python benchmarks/latency.py [--json out.json]            # about 8 minutes
    .venv/bin/python benchmarks/latency.py --quick                      # about 2 minutes
    .venv/bin/python benchmarks/latency.py --links 80/10 --clips natural --modes all \
        --clients gtk --presses 30

Method (see benchmarks/README.md, "latency.py"):

* **The app** (``--role app``, this file run again, in wan.py's "srv" namespace): a
  ``spice.Server(addr=..., port=P, disable_ticketing=True, streaming_video=MODE,
  html5_dir=...)`` with one 1920x1080 display (dark grey). A task plays a clip at 30 fps with
  ``await display.update(64, 180, frame)`` (1280x720; a frame whose time has passed is skipped,
  as a player does). The clips are ffmpeg's ``testsrc2`` ("synthetic") and a ``mandelbrot``
  zoom ("natural"), 10 s at 1280x720, rendered once to raw BGRX and looped. Every frame
  carries a frame counter in its bottom-left corner: 12 blocks of 16x16 pixels, black or
  white (survives JPEG). Another task reads ``server.input_events()``: each key press fills
  the echo box (200x100 at (1500, 490)) with the next colour of a sequence (golden-ratio hue
  steps, so consecutive presses differ) and prints the time it got the key
  (``time.monotonic()``: the same clock as the client's, the namespaces share it). Every
  0.5 s it prints each display client's pacing state (``machine.pacing(now)``: rate, JPEG
  quality, queueing delay, round trip; streams, bytes sent).
* **spice-gtk** (``tests/e2e/gtk_probe.py`` under /usr/bin/python3, in the "cli" namespace):
  ``key_echo`` stamps ``time.monotonic()``, presses and releases A, and answers when a
  ``display-invalidate`` covering the echo pixel (1600, 540) finds it changed (spice-gtk has
  drawn it). ``watch_marker`` decodes the frame counter on every invalidate that touches it:
  each change is a video frame shown. Display bytes: the channel's ``total-read-bytes``.
* **spice-html5** (``tests/e2e/browser_probe.mjs``: headless Chromium, launched inside the cli
  namespace) on ``latency.html``, a copy of spice_auto.html served by our server, with a script
  in front that counts the display WebSocket's bytes and wraps the 2D context's
  ``putImageData``/``drawImage``/``fillRect``: after each draw on the primary canvas it reads the
  echo pixel and the counter (plus a 4 ms poll as a fallback). A keydown listener (capture,
  on window) stamps ``performance.now()``; the key comes from playwright's keyboard.
* Per configuration (link x clip x mode x client): a warm-up (``--warmup`` s and one press), then
  ``--presses`` presses 0.3-0.5 s apart (the next one waits for the echo). Reported: median,
  p90 and max keypress-to-echo; for spice-gtk also the split at the server (client -> app got
  the key -> client drew the echo); frames shown per second in the window (and the worst
  1-second bin); display bytes/s; the server's pacing state over the window.
* **Flood** (``--flood-link``, default 80 ms / 50 Mbit/s): the app pushes the clip with no pacing
  (``await display.update`` back to back); display bytes/s at spice-gtk over ``--flood-seconds``
  against the link's rate (target >= 80%), plus frames shown and a few presses.

Prints a table and then one JSON object (``--json FILE`` also writes it). Stops every process
it started and deletes the namespaces, also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import colorsys
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import _peers  # noqa: E402

SCREEN = (1920, 1080)
VIDEO = (64, 180, 1280, 720)  # x, y, w, h
ECHO = (1500, 490, 200, 100)
ECHO_PIXEL = (1600, 540)
BITS, BLOCK = 12, 16
MARKER = (VIDEO[0], VIDEO[1] + VIDEO[3] - BLOCK)  # bottom-left corner of the video
BACKGROUND = 0x303030
FPS = 30
CLIP_SECONDS = 10
CLIPS = {
    "synthetic": "testsrc2=size={w}x{h}:rate={fps}",
    "natural": "mandelbrot=size={w}x{h}:rate={fps}",
}
SCANCODE_A = 0x1E
PROBE = ROOT / "tests" / "e2e" / "gtk_probe.py"
BROWSER_PROBE = ROOT / "tests" / "e2e" / "browser_probe.mjs"
SYSTEM_PYTHON = "/usr/bin/python3"
HTML5_SOURCES = (Path("/usr/share/spice-html5"), ROOT / "node_modules/@spice-project/spice-html5")
TARGET = {"median_ms": 100.0, "p90_ms": 150.0, "fps": 24.0, "flood_share": 0.8}


def colour(n: int) -> int:
    """The echo box's colour after the n-th press (0xRRGGBB)."""
    r, g, b = colorsys.hsv_to_rgb((n * 0.6180339887) % 1.0, 0.85, 0.95)
    return (round(r * 255) << 16) | (round(g * 255) << 8) | round(b * 255)


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields, "t": time.monotonic()}) + "\n")
    sys.stdout.flush()


# ============================================================================ the app (server)
def app_main(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    import logging

    import numpy as np
    import trio

    import spice

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s.%(msecs)03d %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    vx, vy, vw, vh = VIDEO
    clips: dict[str, Any] = {}
    for item in args.clip:
        name, path = item.split("=", 1)
        frames = os.path.getsize(path) // (vw * vh * 4)
        clips[name] = np.memmap(path, np.uint8, "r", shape=(frames, vh, vw, 4))

    kwargs: dict[str, Any] = {}
    if args.html5_dir:
        kwargs["html5_dir"] = args.html5_dir
    if args.video_codecs:
        kwargs["video_codecs"] = args.video_codecs
    server = spice.Server(
        addr=args.addr,
        port=args.port,
        disable_ticketing=True,
        streaming_video=args.mode,
        **kwargs,
    )
    display = server.add_display(*SCREEN)

    async def keep_the_layout(_display: Any, _width: int, _height: int) -> bool:
        return False  # spice_auto.html asks for its window's size: the layout stays fixed

    if hasattr(server, "on_resize"):
        server.on_resize(keep_the_layout)
    diag = _instrument() if not args.no_instrument else {}
    buf = np.zeros((vh, vw, 4), np.uint8)
    counters = {"pushed": 0, "presses": 0}

    def touch(clip: Any) -> int:
        return int(clip[:, ::64, ::64, 0].sum())

    def prepare(clip: Any, i: int) -> None:
        np.copyto(buf, clip[i % len(clip)])
        strip = buf[vh - BLOCK : vh, : BITS * BLOCK].reshape(BLOCK, BITS, BLOCK, 4)
        for k in range(BITS):
            strip[:, k, :, :3] = 255 if (i >> k) & 1 else 0

    async def play(clip_name: str, fps: float, flood: bool) -> None:
        clip = clips[clip_name]
        start = trio.current_time()
        i = 0
        while True:
            if not flood:
                due = int((trio.current_time() - start) * fps)
                if due < i:
                    await trio.sleep_until(start + i / fps)
                    continue
                i = due  # frames whose time has passed are skipped
            await trio.to_thread.run_sync(prepare, clip, i)
            await display.update(vx, vy, buf)
            counters["pushed"] += 1
            i += 1

    async def echo() -> None:
        async with server.input_events() as events:
            async for event in events:
                if isinstance(event, spice.KeyEvent) and event.pressed:
                    t_key = time.monotonic()
                    ahead = [_ahead_of_echo(c) for w in server._core.displays for c in w.clients]
                    counters["presses"] += 1
                    c = colour(counters["presses"])
                    await display.fill(*ECHO, c)
                    emit("key", n=counters["presses"], scancode=event.scancode, colour=c,
                         t_key=t_key, t_filled=time.monotonic(), ahead=ahead)  # fmt: skip

    def client_state(client: Any) -> dict[str, Any]:
        machine = client.machine
        out: dict[str, Any] = {}
        try:
            rate = machine.pacing(trio.current_time())
            out.update(
                rate=getattr(rate, "rate", None),
                quality=getattr(rate, "quality", None),
                queue_delay=getattr(rate, "queue_delay", None),
                rtt=getattr(rate, "rtt", None),
            )
        except Exception as exc:  # the pacing code is being changed under us: say so
            out["pacing_error"] = repr(exc)[:200]
        out["bandwidth"] = getattr(machine, "link_bandwidth", None)
        out["low_bandwidth"] = getattr(machine, "low_bandwidth", None)
        out["streams"] = len(getattr(machine, "_streams", ()) or ())
        with contextlib.suppress(Exception):
            out["pipe"] = len(machine.pipe)
        stats = getattr(machine, "stats", None)
        if stats is not None:
            out.update(
                images=stats.images,
                image_bytes=stats.image_bytes,
                stream_frames=stats.stream_frames,
                stream_bytes=stats.stream_bytes,
            )
        conn = getattr(client, "connection", None)
        out["bytes_sent"] = getattr(conn, "bytes_sent", None)
        out["unacked"] = getattr(machine, "unacked", None)
        return out

    async def report_state() -> None:
        while True:
            await trio.sleep(args.state_interval)
            workers = server._core.displays
            clients = [client_state(c) for w in workers for c in list(w.clients)]
            emit("state", clients=clients, pushed=counters["pushed"], presses=counters["presses"],
                 diag=dict(diag))  # fmt: skip

    async def commands(nursery: trio.Nursery) -> None:
        stdin = trio.lowlevel.FdStream(os.dup(0))
        player: trio.CancelScope | None = None
        pending = b""

        async def run_player(clip: str, fps: float, flood: bool, task_status: Any) -> None:
            with trio.CancelScope() as scope:
                task_status.started(scope)
                await play(clip, fps, flood)

        async with stdin:
            while True:
                chunk = await stdin.receive_some(65536)
                if not chunk:
                    nursery.cancel_scope.cancel()
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if not line.strip():
                        continue
                    msg = json.loads(line)
                    cmd, ident = msg.get("cmd"), msg.get("id")
                    if cmd in ("play", "flood", "stop"):
                        if player is not None:
                            player.cancel()
                            player = None
                        if cmd != "stop":
                            player = await nursery.start(
                                run_player, msg["clip"], float(msg.get("fps", FPS)), cmd == "flood"
                            )
                        emit("ok", id=ident, pushed=counters["pushed"])
                    elif cmd == "quit":
                        emit("bye", id=ident)
                        nursery.cancel_scope.cancel()
                        return
                    else:
                        emit("error", id=ident, message=f"unknown command {cmd!r}")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            started = time.monotonic()
            await server.codecs_ready()
            codecs_s = time.monotonic() - started
            await display.fill(0, 0, *SCREEN, BACKGROUND)
            await display.fill(*ECHO, colour(0))
            # Read each clip once so its pages are in memory before anything is measured.
            for clip in clips.values():
                await trio.to_thread.run_sync(touch, clip)
            nursery.start_soon(echo)
            nursery.start_soon(report_state)
            emit("ready", port=server.port_bound, codecs_s=codecs_s, mode=args.mode,
                 clips={k: len(v) for k, v in clips.items()})  # fmt: skip
            nursery.start_soon(commands, nursery)

    trio.run(main)
    return 0


def _socket_of(stream: Any, depth: int = 0) -> Any:
    """The socket under a display connection's stream (through sniffing/WebSocket wrappers)."""
    if stream is None or depth > 5:
        return None
    sock = getattr(stream, "socket", None)
    if sock is not None and hasattr(sock, "fileno"):
        return sock
    for name in ("transport_stream", "_stream", "stream", "raw", "_inner", "inner"):
        found = _socket_of(getattr(stream, name, None), depth + 1)
        if found is not None:
            return found
    return None


def _ahead_of_echo(client: Any) -> dict[str, Any]:
    """What stands between a key's echo and the client when the key arrives: bytes in the
    display socket's kernel send queue (TIOCOUTQ: sent but unacked plus unsent; SIOCOUTQNSD:
    unsent), whether an encode/write job is out, and the pipe's length."""
    import fcntl
    import struct

    out: dict[str, Any] = {}
    machine = client.machine
    out["job_out"] = getattr(machine, "_job", None) is not None
    with contextlib.suppress(Exception):
        out["pipe"] = len(machine.pipe)
    sock = _socket_of(getattr(getattr(client, "connection", None), "stream", None))
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            fd = sock.fileno()
            out["outq"] = struct.unpack("i", fcntl.ioctl(fd, 0x5411, b"\0" * 4))[0]
            out["unsent"] = struct.unpack("i", fcntl.ioctl(fd, 0x894B, b"\0" * 4))[0]
    return out


def _instrument() -> dict[str, Any]:
    """Count, in the app's process, what the pacing does and why (no server code changes:
    methods are wrapped): STREAM_REPORTs from the client (frames, drops, late) and the rate
    cuts they cause, rate cuts from queueing delay (display-channel PINGs) and from slow socket
    drains, and the time the display channel spent unable to send because the client owed acks
    (2 windows of 20)."""
    diag: dict[str, Any] = {
        "reports": 0, "report_frames": 0, "report_drops": 0, "reports_late": 0,
        "report_cuts": 0, "delay_cuts": 0, "pongs": 0, "drain_cuts": 0, "ack_blocked_s": 0.0,
        "ack_stalls": 0,
    }  # fmt: skip
    try:
        from spice.domain.channels.display import DisplayChannel
        from spice.domain.display.rate import RateController
    except ImportError as exc:
        diag["instrument_error"] = repr(exc)
        return diag
    if hasattr(RateController, "client_report"):
        report = RateController.client_report

        def client_report(self: Any, frames: int, drops: int, late: bool, now: float) -> Any:
            before = self.rate
            out = report(self, frames, drops, late, now)
            diag["reports"] += 1
            diag["report_frames"] += frames
            diag["report_drops"] += drops
            diag["reports_late"] += bool(late)
            diag["report_cuts"] += self.rate < before
            return out

        RateController.client_report = client_report  # type: ignore[method-assign]
    if hasattr(RateController, "round_trip"):
        round_trip = RateController.round_trip

        def wrapped_round_trip(self: Any, rtt: float, now: float) -> Any:
            before = self.rate
            out = round_trip(self, rtt, now)
            diag["pongs"] += 1
            diag["delay_cuts"] += self.rate < before
            return out

        RateController.round_trip = wrapped_round_trip  # type: ignore[method-assign]
    if hasattr(RateController, "drained"):
        drained = RateController.drained

        def wrapped_drained(self: Any, *args: Any, **kwargs: Any) -> Any:
            before = self.rate
            out = drained(self, *args, **kwargs)
            diag["drain_cuts"] += self.rate < before
            return out

        RateController.drained = wrapped_drained  # type: ignore[method-assign]
    next_job = DisplayChannel.next_job

    def wrapped_next_job(self: Any, now: float | None = None) -> Any:
        job = next_job(self, now)
        since = getattr(self, "_bench_blocked_since", None)
        t = time.monotonic()
        if job is None and getattr(self, "ready", False) and not self.may_send and len(self.pipe):
            if since is None:
                self._bench_blocked_since = t
                diag["ack_stalls"] += 1
        elif since is not None:
            diag["ack_blocked_s"] += t - since
            self._bench_blocked_since = None
        return job

    DisplayChannel.next_job = wrapped_next_job  # type: ignore[method-assign]
    return diag


# ============================================================================ orchestration
def render_clip(name: str, clip_dir: Path) -> Path:
    """The clip as raw BGRX 1280x720 frames (ffmpeg's bgr0), rendered once into ``clip_dir``."""
    _, _, w, h = VIDEO
    path = clip_dir / f"{name}-{w}x{h}-{FPS}fps-{CLIP_SECONDS}s.bgr0"
    source = CLIPS[name].format(w=w, h=h, fps=FPS)
    return _peers.render_clip(source, path, FPS * CLIP_SECONDS, w, h)


LATENCY_JS = """<script>
(function () {
  // Display bytes per WebSocket (channel type = byte 20 of the client's link message).
  const Native = window.WebSocket;
  window.__spiceBench = [];
  function Counted(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    const rec = { type: null, bytes: 0, messages: 0 };
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
      rec.bytes += ev.data.byteLength !== undefined ? ev.data.byteLength : (ev.data.size || 0);
      rec.messages += 1;
    });
    return ws;
  }
  Counted.prototype = Native.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Counted[k] = Native[k];
  window.WebSocket = Counted;

  // Keypress -> echo pixel, and the video's frame counter, in the page's own clock.
  const L = window.__lat = {
    echo: [%(ex)d, %(ey)d], marker: [%(mx)d, %(my)d, %(bits)d, %(block)d],
    video: [%(vx)d, %(vy)d, %(vw)d, %(vh)d],
    armed: null, results: [], changes: [], value: null, draws: 0, waiter: null, vframes: 0,
  };
  // A VP8 stream plays in a <video> above the canvas: read the counter from each frame it
  // presents (requestVideoFrameCallback), scaled from the stream's area to the frame's size.
  function watchVideo(v) {
    const [mx, my, bits, block] = L.marker;
    const [vx, vy, vw, vh] = L.video;
    const c = document.createElement('canvas');
    c.width = bits * block; c.height = 1;
    const cx = c.getContext('2d', { willReadFrequently: true });
    function onFrame() {
      if (!v.isConnected) return;
      if (v.videoWidth) {
        const sx = v.videoWidth / vw, sy = v.videoHeight / vh;
        cx.drawImage(v, (mx - vx) * sx, (my - vy + (block >> 1)) * sy, bits * block * sx,
                     Math.max(1, sy), 0, 0, bits * block, 1);
        const row = cx.getImageData(0, 0, bits * block, 1).data;
        let value = 0;
        for (let k = 0; k < bits; k++) {
          const i = (k * block + (block >> 1)) * 4;
          if (row[i] + 2 * row[i + 1] + row[i + 2] > 512) value |= 1 << k;
        }
        L.vframes++;
        if (value !== L.value) {
          L.value = value;
          if (L.changes.length < 200000) L.changes.push([performance.now(), value]);
        }
      }
      v.requestVideoFrameCallback(onFrame);
    }
    v.requestVideoFrameCallback(onFrame);
  }
  new MutationObserver((records) => {
    for (const r of records) {
      for (const n of r.addedNodes) if (n.nodeName === 'VIDEO') watchVideo(n);
    }
  }).observe(document.documentElement, { childList: true, subtree: true });
  let canvas = null, ctx = null;
  function primary() {
    if (!canvas || !canvas.isConnected) {
      canvas = document.querySelector('#spice-screen canvas');
      ctx = canvas ? canvas.getContext('2d') : null;
    }
    return canvas;
  }
  function check(via) {
    if (!primary()) return;
    const now = performance.now();
    const a = L.armed;
    if (a && a.t0 !== null) {
      const d = ctx.getImageData(L.echo[0], L.echo[1], 1, 1).data;
      const c = (d[0] << 16) | (d[1] << 8) | d[2];
      if (c !== a.before) {
        L.armed = null;
        const r = { t0: a.t0, t1: now, latency_ms: now - a.t0, colour: c, before: a.before, via };
        L.results.push(r);
        if (L.waiter) { const w = L.waiter; L.waiter = null; w(r); }
      }
    }
    const [mx, my, bits, block] = L.marker;
    if (canvas.width < mx + bits * block || canvas.height <= my + block) return;
    if (document.querySelector('#spice-screen video')) return;  // the video shows it (VP8)
    const row = ctx.getImageData(mx, my + (block >> 1), bits * block, 1).data;
    let v = 0;
    for (let k = 0; k < bits; k++) {
      const i = (k * block + (block >> 1)) * 4;
      if (row[i] + 2 * row[i + 1] + row[i + 2] > 512) v |= 1 << k;
    }
    if (v !== L.value) { L.value = v; if (L.changes.length < 200000) L.changes.push([now, v]); }
  }
  const how = new URLSearchParams(location.search).get('watch') || 'hooks';
  const proto = CanvasRenderingContext2D.prototype;
  for (const name of how === 'hooks' ? ['putImageData', 'drawImage', 'fillRect'] : []) {
    const orig = proto[name];
    proto[name] = function () {
      const r = orig.apply(this, arguments);
      if (primary() && this.canvas === canvas) { L.draws++; check(name); }
      return r;
    };
  }
  // hooks: the poll is only a fallback while a key waits for its echo (drawing is seen by
  // the hooks); poll: the canvas is read every 4 ms all the time.
  if (how !== 'none') setInterval(() => { if (how === 'poll' || L.armed) check('poll'); }, 4);
  window.addEventListener('keydown', () => {
    if (L.armed && L.armed.t0 === null) L.armed.t0 = performance.now();
  }, true);
  L.arm = function () {
    if (!primary()) return false;
    const d = ctx.getImageData(L.echo[0], L.echo[1], 1, 1).data;
    L.armed = { before: (d[0] << 16) | (d[1] << 8) | d[2], t0: null };
    return true;
  };
  L.wait = function (ms) {
    return new Promise((resolve) => {
      if (!L.armed) { resolve(L.results[L.results.length - 1] || null); return; }
      const timer = setTimeout(() => {
        L.waiter = null;
        const a = L.armed; L.armed = null;
        resolve({ timed_out: true, t0: a ? a.t0 : null });
      }, ms);
      L.waiter = (r) => { clearTimeout(timer); resolve(r); };
    });
  };
  L.snapshot = function () {
    const d = window.__spiceBench.find((r) => r.type === 2);
    return { now: performance.now(), display_bytes: d ? d.bytes : 0, changes: L.changes.length,
             value: L.value, draws: L.draws, has_canvas: !!primary(), vframes: L.vframes,
             videos: document.querySelectorAll('video').length };
  };
})();
</script>
"""


def latency_html5_dir(tmp: Path) -> Path | None:
    """A copy of spice-html5 with latency.html: spice_auto.html with LATENCY_JS in front."""
    for source in HTML5_SOURCES:
        if (source / "spice_auto.html").is_file():
            target = tmp / "html5"
            shutil.copytree(source, target, symlinks=False)
            page = (source / "spice_auto.html").read_text()
            script = LATENCY_JS % {
                "ex": ECHO_PIXEL[0], "ey": ECHO_PIXEL[1],
                "mx": MARKER[0], "my": MARKER[1], "bits": BITS, "block": BLOCK,
                "vx": VIDEO[0], "vy": VIDEO[1], "vw": VIDEO[2], "vh": VIDEO[3],
            }  # fmt: skip
            (target / "latency.html").write_text(page.replace("<head>", "<head>\n" + script, 1))
            for path in [target, *target.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            return target
    return None


# ---------------------------------------------------------------------------- children
class Net:
    def __init__(self, name: str, addr: str, srv: list[str], cli: list[str], link: Any) -> None:
        self.name = name
        self.addr = addr
        self.srv = srv  # argv prefix to run in the server's namespace
        self.cli = cli
        self.link = link

    def stats(self) -> dict[str, Any] | None:
        if self.link is None:
            return None
        try:
            stats: dict[str, Any] = self.link.stats()
            return stats
        except Exception:
            return None


@contextlib.contextmanager
def network(spec: tuple[float, float] | None) -> Iterator[Net]:
    if spec is None:
        yield Net("loopback", "127.0.0.1", [], [], None)
        return
    import wan

    rtt, rate = spec
    with wan.link(rtt_ms=rtt, rate_mbit=rate, queue_bytes=128 * 1024) as lnk:
        yield Net(f"{rtt:g} ms / {rate:g} Mbit/s", lnk.server_addr, lnk.netns_cmd("srv"),
                  lnk.netns_cmd("cli"), lnk)  # fmt: skip


def stats_window(values: list[float]) -> dict[str, Any]:
    from _peers import median, percentile

    return {
        "n": len(values),
        "median_ms": median(values),
        "p90_ms": percentile(values, 90),
        "max_ms": max(values) if values else None,
        "min_ms": min(values) if values else None,
    }


def frames_in(changes: list[list[float]], t0: float, t1: float) -> dict[str, Any]:
    """Frames shown per second between t0 and t1 (seconds), and the worst whole second."""
    times = [c[0] for c in changes if t0 <= c[0] < t1]
    span = t1 - t0
    bins = [0] * max(1, int(span))
    for t in times:
        i = int(t - t0)
        if i < len(bins):
            bins[i] += 1
    return {
        "fps": len(times) / span if span > 0 else None,
        "fps_worst_second": min(bins) if span >= 1 else None,
        "frames": len(times),
    }


def pacing_summary(states: list[dict[str, Any]], t0: float, t1: float) -> dict[str, Any]:
    """The app's per-client pacing state over [t0, t1] (one display client expected)."""
    from _peers import median

    rows = [s for s in states if t0 <= s["t"] <= t1 and s.get("clients")]
    out: dict[str, Any] = {"samples": len(rows)}
    if not rows:
        return out
    firsts = [s["clients"][0] for s in rows]
    for key in ("rate", "quality", "queue_delay", "rtt"):
        vals = [c[key] for c in firsts if isinstance(c.get(key), (int, float))]
        if vals:
            out[key + "_median"] = median(vals)
            out[key + "_min"] = min(vals)
            out[key + "_max"] = max(vals)
    last, first = firsts[-1], firsts[0]
    out["rate_first"], out["rate_last"] = first.get("rate"), last.get("rate")
    out["bandwidth"] = last.get("bandwidth")
    out["low_bandwidth"] = last.get("low_bandwidth")
    out["streams_max"] = max(c.get("streams") or 0 for c in firsts)
    for key in ("images", "image_bytes", "stream_frames", "stream_bytes", "bytes_sent"):
        if isinstance(last.get(key), int) and isinstance(first.get(key), int):
            out[key + "_per_s"] = (last[key] - first[key]) / max(1e-9, rows[-1]["t"] - rows[0]["t"])
    d0, d1 = rows[0].get("diag") or {}, rows[-1].get("diag") or {}
    out["diag"] = {
        k: d1[k] - d0.get(k, 0) for k in d1 if isinstance(d1[k], (int, float))
    }  # counts over the window: STREAM_REPORTs, rate cuts and why, ack-window stalls
    pipes = [c.get("pipe") for c in firsts if isinstance(c.get("pipe"), int)]
    if pipes:
        out["pipe_max"] = max(pipes)
    unacked = [c.get("unacked") for c in firsts if isinstance(c.get("unacked"), int)]
    if unacked:
        out["unacked_max"] = max(unacked)
    errors = {c.get("pacing_error") for c in firsts if c.get("pacing_error")}
    if errors:
        out["pacing_errors"] = sorted(errors)
    if len(rows[-1]["clients"]) > 1:
        out["clients"] = len(rows[-1]["clients"])
    return out


def wan_delta(a: dict[str, Any] | None, b: dict[str, Any] | None, secs: float) -> dict[str, Any]:
    if not a or not b or secs <= 0:
        return {}
    d = {}
    for direction in ("srv_to_cli", "cli_to_srv"):
        x, y = a[direction], b[direction]
        d[direction] = {
            "ip_mbit_s": (y["bytes_fwd"] - x["bytes_fwd"]) * 8 / secs / 1e6,
            "dropped": y["pkts_dropped"] - x["pkts_dropped"],
            "max_queue_bytes": y["max_queue_bytes"],
        }
    return d


class Runner:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        from display_bytes import JsonChild

        self.JsonChild = JsonChild
        self.args = args
        self.tmp = tmp
        self.rng = random.Random(args.seed)
        self.logdir = tmp
        self.counter = 0

    def child(self, argv: list[str], name: str) -> Any:
        self.counter += 1
        return self.JsonChild(argv, self.logdir, f"{self.counter:02d}-{name}")

    # -------------------------------------------------------------- spacing
    def gap(self) -> float:
        return self.rng.uniform(self.args.gap_min, self.args.gap_max)

    def match_keys(self, app: Any, since: int) -> list[dict[str, Any]]:
        return [e for e in app.events[since:] if e.get("event") == "key"]

    # -------------------------------------------------------------- spice-gtk
    def gtk_session(
        self, net: Net, port: int, app: Any, label: str, flood_clip: str | None = None
    ) -> dict[str, Any]:
        args = self.args
        argv = [*net.cli, SYSTEM_PYTHON, str(PROBE), "--host", net.addr, "--port", str(port),
                "--timeout", "600"]  # fmt: skip
        gtk = self.child(argv, f"gtk-{label}")
        result: dict[str, Any] = {}
        try:
            gtk.wait_for(lambda e: e.get("event") == "primary-create", 30)
            gtk.wait_for(
                lambda e: (
                    e.get("event") == "channel-event"
                    and e.get("channel") == "inputs"
                    and e.get("name") == "opened"
                ),
                30,
            )
            gtk.command("watch_marker", x=MARKER[0], y=MARKER[1], bits=BITS, block=BLOCK)
            time.sleep(args.warmup)
            self.gtk_press(gtk, 5.0)  # one unmeasured press
            result.update(self.gtk_window(gtk, net, app, args.presses))
            if flood_clip is not None:
                mark = len(app.events)
                app.command("flood", clip=flood_clip)
                t_flood = time.monotonic()
                time.sleep(args.flood_warmup)
                warm = [e for e in app.events[mark:] if e.get("event") == "state"]
                warmup_pacing = pacing_summary(warm, t_flood, time.monotonic())
                flood = self.gtk_window(gtk, net, app, args.flood_presses, min_s=args.flood_seconds)
                app.command("play", clip=flood_clip)
                flood["warmup_pacing"] = warmup_pacing  # the first seconds of the flood
                result["flood"] = flood
            errors = [e for e in gtk.events if e.get("event") == "error"]
            if errors:
                result["client_errors"] = [str(e.get("message"))[:200] for e in errors[:3]]
        finally:
            gtk.close()
        return result

    def gtk_press(self, gtk: Any, timeout: float) -> dict[str, Any]:
        reply: dict[str, Any] = gtk.command(
            "key_echo", timeout=timeout + 5, x=ECHO_PIXEL[0], y=ECHO_PIXEL[1], scancode=SCANCODE_A
        )
        return reply

    def display_bytes(self, gtk: Any) -> int:
        return int(gtk.command("read_bytes")["channels"].get("display:0", 0))

    def gtk_window(
        self, gtk: Any, net: Net, app: Any, presses: int, min_s: float = 0.0
    ) -> dict[str, Any]:
        app_mark = len(app.events)
        w0 = net.stats()
        b0, t0 = self.display_bytes(gtk), time.monotonic()
        echoes = []
        next_at = t0
        for _ in range(presses):
            time.sleep(max(0.0, next_at - time.monotonic()))
            start = time.monotonic()
            echoes.append(self.gtk_press(gtk, self.args.echo_timeout))
            next_at = start + self.gap()
        time.sleep(max(0.0, next_at - time.monotonic(), t0 + min_s - time.monotonic()))
        b1, t1 = self.display_bytes(gtk), time.monotonic()
        w1 = net.stats()
        changes = gtk.command("marker_stats")["changes"]
        keys = self.match_keys(app, app_mark)
        states = [e for e in app.events[app_mark:] if e.get("event") == "state"]
        by_colour = {k["colour"]: k for k in keys}
        lat, up, down, mismatched, timeouts = [], [], [], 0, 0
        for e in echoes:
            if e.get("timed_out"):
                timeouts += 1
                continue
            lat.append(e["latency_ms"])
            key = by_colour.get(e["colour"])
            if key is None:
                mismatched += 1
                continue
            up.append((key["t_key"] - e["t0"]) * 1000)
            down.append((e["t1"] - key["t_key"]) * 1000)
        secs = t1 - t0
        out = {
            "seconds": secs,
            "app_fill_wait_ms": _median([(k["t_filled"] - k["t_key"]) * 1000 for k in keys]),
            "ahead_of_echo": _ahead_summary(keys),
            "latency": stats_window(lat),
            "uplink_ms_median": _median(up),
            "echo_after_key_ms": stats_window(down),
            "timeouts": timeouts,
            "colour_mismatch": mismatched,
            "presses_seen_by_app": len(keys),
            "display_bytes_per_s": (b1 - b0) / secs,
            **frames_in(changes, t0, t1),
            "pacing": pacing_summary(states, t0, t1),
            "wan": wan_delta(w0, w1, secs),
            "app_pushed_per_s": _pushed_rate(states),
            "latencies_ms": [round(x, 1) for x in lat],
        }
        return out

    # -------------------------------------------------------------- spice-html5
    def browser_session(self, net: Net, port: int, app: Any, label: str) -> dict[str, Any]:
        args = self.args
        argv = [*net.cli, "node", str(BROWSER_PROBE), "--timeout", "600"]
        browser = self.child(argv, f"browser-{label}")
        result: dict[str, Any] = {}
        try:
            browser.wait_for(lambda e: e.get("event") == "ready", 60)
            url = f"http://{net.addr}:{port}/latency.html?watch={args.html5_watch}"
            browser.command("goto", url=url, timeout=60)
            deadline = time.monotonic() + 60
            while True:
                snap = self.snapshot(browser)
                if args.html5_watch == "none" and snap["display_bytes"] > 100_000:
                    break
                if snap["has_canvas"] and snap["changes"] > 2 and snap["display_bytes"] > 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the page shows no video: {snap}")
                time.sleep(0.2)
            time.sleep(args.warmup)
            blind = args.html5_watch == "none"  # nothing to wait for: press and go on
            self.browser_press(browser, 50 if blind else 5000)
            app_mark = len(app.events)
            w0 = net.stats()
            s0 = self.snapshot(browser)
            tm0 = time.monotonic()
            echoes = []
            next_at = tm0
            for _ in range(args.presses):
                time.sleep(max(0.0, next_at - time.monotonic()))
                start = time.monotonic()
                echoes.append(
                    self.browser_press(browser, 50 if blind else args.echo_timeout * 1000)
                )
                next_at = start + self.gap()
            time.sleep(max(0.0, next_at - time.monotonic()))
            s1 = self.snapshot(browser)
            tm1 = time.monotonic()
            w1 = net.stats()
            changes = json.loads(
                browser.command("eval", expression="JSON.stringify(__lat.changes)")["value"]
            )
            keys = self.match_keys(app, app_mark)
            states = [e for e in app.events[app_mark:] if e.get("event") == "state"]
            lat = [e["latency_ms"] for e in echoes if e and not e.get("timed_out")]
            secs = (s1["now"] - s0["now"]) / 1000
            colours = {k["colour"] for k in keys}
            result.update(
                seconds=secs,
                app_fill_wait_ms=_median([(k["t_filled"] - k["t_key"]) * 1000 for k in keys]),
                ahead_of_echo=_ahead_summary(keys),
                latency=stats_window(lat),
                timeouts=sum(1 for e in echoes if not e or e.get("timed_out")),
                colour_mismatch=sum(
                    1 for e in echoes if e and not e.get("timed_out") and e["colour"] not in colours
                ),
                presses_seen_by_app=len(keys),
                detected_by={v: sum(1 for e in echoes if e and e.get("via") == v)
                             for v in ("putImageData", "drawImage", "fillRect", "poll")},
                display_bytes_per_s=(s1["display_bytes"] - s0["display_bytes"]) / secs,
                video_frames_presented_per_s=(s1["vframes"] - s0["vframes"]) / secs,
                vp8=s1["videos"] > 0,
                pacing=pacing_summary(states, tm0, tm1),
                wan=wan_delta(w0, w1, tm1 - tm0),
                app_pushed_per_s=_pushed_rate(states),
                latencies_ms=[round(x, 1) for x in lat],
                **frames_in([[c[0] / 1000, c[1]] for c in changes], s0["now"] / 1000,
                            s1["now"] / 1000),
            )  # fmt: skip
            errors = [
                e for e in browser.events
                if e.get("event") == "pageerror"
                or (e.get("event") == "console" and str(e.get("text", "")).startswith("ERROR"))
            ]  # fmt: skip
            if errors:
                result["client_errors"] = [str(e.get("text"))[:200] for e in errors[:3]]
        finally:
            browser.close()
        return result

    def snapshot(self, browser: Any) -> dict[str, Any]:
        value = browser.command("eval", expression="JSON.stringify(__lat.snapshot())")["value"]
        snap: dict[str, Any] = json.loads(value)
        return snap

    def browser_press(self, browser: Any, timeout_ms: float) -> dict[str, Any] | None:
        if not browser.command("eval", expression="__lat.arm()")["value"]:
            raise RuntimeError("the page has no canvas")
        browser.command("press", key="a")
        reply = browser.command(
            "eval", expression=f"__lat.wait({int(timeout_ms)})", timeout=timeout_ms / 1000 + 10
        )
        value: dict[str, Any] | None = reply.get("value")
        return value

    # -------------------------------------------------------------- one server
    def configuration(
        self,
        spec: tuple[float, float] | None,
        mode: str,
        clips: dict[str, Path],
        html5: Path | None,
    ) -> list[dict[str, Any]]:
        args = self.args
        rows: list[dict[str, Any]] = []
        flood_here = spec in args.flood_links
        with network(spec) as net:
            port = args.port
            if spec is None:
                from _peers import require_free

                require_free(port)
            argv = [*net.srv, sys.executable, str(Path(__file__).resolve()), "--role", "app",
                    "--addr", net.addr, "--port", str(port), "--mode", mode]  # fmt: skip
            if args.video_codecs:
                argv += ["--video-codecs", args.video_codecs]
            for name, path in clips.items():
                argv += ["--clip", f"{name}={path}"]
            if html5 is not None:
                argv += ["--html5-dir", str(html5)]
            label = f"{net.name.replace(' ', '').replace('/', '_')}-{mode}"
            app = self.child(argv, f"app-{label}")
            try:
                ready = app.wait_for(lambda e: e.get("event") == "ready", 120)
                for clip in clips:
                    app.command("play", clip=clip)
                    for client in args.clients:
                        row: dict[str, Any] = {
                            "link": net.name,
                            "link_rate_mbit": spec[1] if spec else None,
                            "clip": clip,
                            "mode": mode,
                            "client": client,
                            "codecs_s": ready.get("codecs_s"),
                        }
                        print(
                            f"-- {net.name}, {clip}, {mode}, {client}", file=sys.stderr, flush=True
                        )
                        t = time.monotonic()
                        log_at = app.stderr_path.stat().st_size
                        try:
                            if client == "gtk":
                                flood = clip if flood_here and clip in args.flood_clips else None
                                row.update(
                                    self.gtk_session(net, port, app, f"{label}-{clip}", flood)
                                )
                            else:
                                if html5 is None:
                                    raise RuntimeError("no spice-html5 found")
                                row.update(self.browser_session(net, port, app, f"{label}-{clip}"))
                        except Exception as exc:
                            row["error"] = f"{type(exc).__name__}: {exc}"[:600]
                        row["wall_s"] = time.monotonic() - t
                        with open(app.stderr_path, "rb") as f:
                            f.seek(log_at)
                            lines = f.read().decode(errors="replace").splitlines()
                        row["server_log"] = [ln[:300] for ln in lines if _notable(ln)][:20]
                        rows.append(row)
                        print("   " + one_line(row), file=sys.stderr, flush=True)
                        time.sleep(0.5)  # the old session goes before the next one comes
                    app.command("stop")
            finally:
                app.close()
                log = app.stderr_path.read_text(errors="replace").splitlines()
                trouble = [ln for ln in log if "Traceback" in ln or " ERROR " in ln]
                if trouble and rows:
                    rows[-1]["server_trouble"] = trouble[:5]
        return rows


def _notable(line: str) -> bool:
    return (
        "network test" in line
        or "Traceback" in line
        or " ERROR " in line
        or (" WARNING " in line and "favicon" not in line)
    )


def _median(values: list[float]) -> float | None:
    from _peers import median

    return median(values)


def _ahead_summary(keys: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the presses of what was ahead of the echo in the server (first client)."""
    firsts = [k["ahead"][0] for k in keys if k.get("ahead")]
    out: dict[str, Any] = {}
    for name in ("outq", "unsent", "pipe"):
        vals = [float(a[name]) for a in firsts if isinstance(a.get(name), int)]
        if vals:
            out[name + "_median"] = _median(vals)
            out[name + "_max"] = max(vals)
    if firsts:
        out["job_out_share"] = sum(1 for a in firsts if a.get("job_out")) / len(firsts)
    return out


def _pushed_rate(states: list[dict[str, Any]]) -> float | None:
    if len(states) < 2:
        return None
    pushed = float(states[-1]["pushed"] - states[0]["pushed"])
    span = float(states[-1]["t"] - states[0]["t"])
    return pushed / max(1e-9, span)


def parse_link(text: str) -> tuple[float, float] | None:
    if text in ("loopback", "lo", "0"):
        return None
    rtt, rate = text.split("/")
    return (float(rtt), float(rate))


def fmt(value: Any, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def one_line(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"ERROR {row['error']}"
    lat = row["latency"]
    pace = row.get("pacing", {})
    text = (
        f"median {fmt(lat['median_ms'])} ms, p90 {fmt(lat['p90_ms'])}, max {fmt(lat['max_ms'])}"
        f" ({lat['n']} of {row.get('presses_seen_by_app')}, {row['timeouts']} timeouts);"
        f" {fmt(row['fps'], '.1f')} fps (worst s {row['fps_worst_second']});"
        f" {row['display_bytes_per_s'] * 8 / 1e6:.2f} Mbit/s;"
        f" rate {fmt((pace.get('rate_median') or 0) / 1e6, '.1f')} Mbit/s,"
        f" q {fmt(pace.get('quality_median'))},"
        f" qdelay {fmt((pace.get('queue_delay_median') or 0) * 1000)} ms,"
        f" streams {pace.get('streams_max')}"
    )
    if row.get("flood"):
        f = row["flood"]
        mbit = f["display_bytes_per_s"] * 8 / 1e6
        text += f"; FLOOD {mbit:.1f} Mbit/s, {fmt(f['fps'], '.1f')} fps,"
        text += f" median {fmt(f['latency']['median_ms'])} ms"
    return text


def verdict(row: dict[str, Any]) -> str:
    if "error" in row:
        return "error"
    lat = row["latency"]
    ok = (
        lat["median_ms"] is not None
        and lat["median_ms"] <= TARGET["median_ms"]
        and lat["p90_ms"] < TARGET["p90_ms"]
        and (row["fps"] or 0) >= TARGET["fps"]
        and not row["timeouts"]
    )
    return "PASS" if ok else "miss"


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    head = ("link", "clip", "mode", "client", "echo median ms", "p90", "max", "up / down ms",
            "fps shown (worst s)", "display Mbit/s", "pacing rate Mbit/s", "JPEG q",
            "queue delay ms", "streams", "socket queue KB at key", "target")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        if "error" in r:
            print(f"| {r['link']} | {r['clip']} | {r['mode']} | {r['client']} | error: "
                  f"{r['error'][:120]} |" + " |" * (len(head) - 5))  # fmt: skip
            continue
        lat, pace = r["latency"], r.get("pacing", {})
        updown = "-"
        if r["client"] == "gtk" and r.get("uplink_ms_median") is not None:
            updown = f"{r['uplink_ms_median']:.0f} / {r['echo_after_key_ms']['median_ms']:.0f}"
        target = verdict(r) if r["link"].startswith("80 ms / 10 ") else ""
        rate = pace.get("rate_median")
        qd = pace.get("queue_delay_median")
        outq = (r.get("ahead_of_echo") or {}).get("outq_median")
        cells = [
            r["link"], r["clip"], r["mode"], r["client"],
            fmt(lat["median_ms"]), fmt(lat["p90_ms"]), fmt(lat["max_ms"]), updown,
            f"{fmt(r['fps'], '.1f')} ({fmt(r['fps_worst_second'])})",
            f"{r['display_bytes_per_s'] * 8 / 1e6:.2f}",
            fmt(rate / 1e6 if rate else None, ".1f"), fmt(pace.get("quality_median")),
            fmt(qd * 1000 if qd is not None else None), fmt(pace.get("streams_max")),
            fmt(outq / 1000 if outq is not None else None),
            target + (f" ({r['timeouts']} timeouts)" if r["timeouts"] else ""),
        ]  # fmt: skip
        print("| " + " | ".join(str(c) for c in cells) + " |")
    floods = [r for r in rows if r.get("flood")]
    if floods:
        print()
        print(f"Flood (the app pushes as fast as it can), target >= {TARGET['flood_share']:.0%} of "
              "the link:")  # fmt: skip
        print(
            "| link | clip | mode | display Mbit/s | share of link | IP Mbit/s srv->cli | app "
            "updates/s | fps shown | echo median / p90 ms | pacing rate Mbit/s | target |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in floods:
            f = r["flood"]
            mbit = f["display_bytes_per_s"] * 8 / 1e6
            share = mbit / r["link_rate_mbit"] if r.get("link_rate_mbit") else None
            ip = f.get("wan", {}).get("srv_to_cli", {}).get("ip_mbit_s")
            rate = f.get("pacing", {}).get("rate_median")
            f["share_of_link"] = share
            ok = "-" if share is None else "PASS" if share >= TARGET["flood_share"] else "miss"
            print(f"| {r['link']} | {r['clip']} | {r['mode']} | {mbit:.1f} | {fmt(share, '.0%')} | "
                  f"{fmt(ip, '.1f')} | {fmt(f.get('app_pushed_per_s'), '.0f')} | "
                  f"{fmt(f['fps'], '.1f')} | {fmt(f['latency']['median_ms'])} / "
                  f"{fmt(f['latency']['p90_ms'])} | {fmt(rate / 1e6 if rate else None, '.1f')} | "
                  f"{ok} |")  # fmt: skip


def _git(*argv: str) -> str | None:
    try:
        res = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--role", default="bench", choices=("bench", "app"))
    # app
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--mode", default="filter")
    p.add_argument("--clip", action="append", default=[], help="app: NAME=PATH")
    p.add_argument("--html5-dir")
    p.add_argument(
        "--video-codecs",
        help="the server's video_codecs (default: its own; 'h264' makes spice-gtk's streams "
        "H.264, 'vp8' VP8)",
    )
    p.add_argument("--state-interval", type=float, default=0.5)
    p.add_argument("--no-instrument", action="store_true", help="app: wrap no server methods")
    # bench
    p.add_argument("--port", type=int, default=5991)
    p.add_argument(
        "--links",
        default="80/10,80/50,loopback",
        help="RTT_MS/MBIT or loopback, comma-separated (80/10,80/50,loopback)",
    )
    p.add_argument("--clips", default="synthetic,natural")
    p.add_argument("--modes", default="filter,all", help="streaming_video values")
    p.add_argument("--clients", default="gtk,html5")
    p.add_argument("--presses", type=int, default=30)
    p.add_argument(
        "--html5-watch",
        default="hooks",
        choices=("hooks", "poll", "none"),
        help="how the page sees its canvas change: after each 2D draw call plus a 4 ms poll "
        "(hooks), the poll alone, or not at all (only the server's view of the video is left)",
    )
    p.add_argument("--gap-min", type=float, default=0.3)
    p.add_argument("--gap-max", type=float, default=0.45)
    p.add_argument("--warmup", type=float, default=2.5, help="s of video before pressing")
    p.add_argument("--echo-timeout", type=float, default=3.0)
    p.add_argument(
        "--flood-link", default="80/50", help="links to flood on, comma-separated ('' = none)"
    )
    p.add_argument("--flood-clips", default="synthetic,natural")
    p.add_argument("--flood-seconds", type=float, default=5.0)
    p.add_argument("--flood-warmup", type=float, default=2.5)
    p.add_argument("--flood-presses", type=int, default=10)
    p.add_argument(
        "--clip-dir", default=str(Path(tempfile.gettempdir()) / "trio-spice-latency-clips")
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep-logs", action="store_true", help="keep the children's logs")
    p.add_argument("--json")
    p.add_argument(
        "--quick",
        action="store_true",
        help="80/10 and loopback, natural clip, 12 presses, flood at 80/50 skipped",
    )
    args = p.parse_args()
    if args.role == "app":
        return app_main(args)
    if args.quick:
        args.links = "80/10,loopback"
        args.clips = "natural"
        args.presses = 12
        args.warmup = 2.0
        args.flood_link = ""
    args.clients = [c for c in args.clients.split(",") if c]
    args.flood_clips = [c for c in args.flood_clips.split(",") if c]
    args.flood_links = [parse_link(x) for x in args.flood_link.split(",") if x]
    links = [parse_link(x) for x in args.links.split(",") if x]
    if any(link is not None for link in links) and os.geteuid() != 0:
        print("the WAN paths need root (benchmarks/wan.py)", file=sys.stderr)
        return 2
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:

        def on_term(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_term)
    clips = {name: render_clip(name, Path(args.clip_dir)) for name in args.clips.split(",")}
    started = time.monotonic()
    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    tmp.chmod(0o755)
    rows: list[dict[str, Any]] = []
    try:
        html5 = latency_html5_dir(tmp) if "html5" in args.clients else None
        runner = Runner(args, tmp)
        for spec in links:
            for mode in args.modes.split(","):
                rows += runner.configuration(spec, mode, clips, html5)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        if args.keep_logs:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - started
    print()
    report(rows, args)
    out = {
        "benchmark": "latency",
        "elapsed_s": elapsed,
        "loadavg_start_end": [load_start, os.getloadavg()],
        "commit": _git("rev-parse", "HEAD"),
        "dirty": _git("status", "--short", "domain", "adapters", "spice"),
        "layout": {"screen": SCREEN, "video": VIDEO, "echo_box": ECHO, "fps": FPS},
        "targets": TARGET,
        "args": {k: v for k, v in vars(args).items() if k not in ("role", "clip")},
        "rows": rows,
    }
    print()
    print(json.dumps(out, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
