"""Soak: many short connections, then thousands of idle and slow-loris ones beside a real client.

    .venv/bin/python benchmarks/soak.py                       # the full run (~5 minutes)
    .venv/bin/python benchmarks/soak.py --cycles 500 --idle 200 --loris 50 --window 3   # CI

The script runs itself again as the server (`--role server`, its own process, so its
descriptors and RSS are its own): a `spice.Server` on 127.0.0.1 with one 640x480 display that
an application task redraws at 30 frames/s (a 160x120 block moving over a gradient), serving
spice-html5 on the same port. **The soak raises the server's connection limits** (they exist to
stop exactly this load from one address): `max_connections=8000`,
`max_connections_per_address=8000`, `link_attempts_per_second=100000`; and spreads its clients
over 64 loopback source addresses (127.0.0.2 ... 127.0.0.65). Both processes raise
RLIMIT_NOFILE to their hard limit.

1. **cycles**: `--cycles` connect / link the main channel (the whole link stage with an
   RSA-encrypted ticket) / disconnect, 16 at a time. The server's open descriptors and RSS are
   read from /proc after a warm-up of 5% of the cycles (the baseline) and again at the end,
   once the server has had up to 10 s to close everything.
2. **load**: a spice-gtk client (`tests/e2e/gtk_probe.py`) shows the display; its frame rate
   (the probe's `invalidate` events per second, stamped in the probe) is taken alone for
   `--window` seconds, then again while `--idle` idle connections (half on the SPICE path:
   connected, nothing sent; half on the HTTP path: a complete keep-alive `GET /` answered,
   then silent) and `--loris` slow-loris connections (half SPICE: the link header one byte a
   second; half HTTP: a request head one byte a second) are held open. A connection the server
   closes (its handshake and idle deadlines) is opened again at once, so the pressure stays.
3. Everything is closed; the server's descriptors must come back to the baseline.

Prints a table and one JSON object; exits 1 when fds do not return, RSS grows 5% or more, or
the loaded frame rate is more than 20% under the solo one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import trio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

HOST = "127.0.0.1"
HTML5 = "/usr/share/spice-html5"
SOURCES = [f"127.0.0.{i}" for i in range(2, 66)]


def raise_nofile() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# -- the server process ----------------------------------------------------------------------------


async def serve(port: int) -> None:
    import spice

    server = spice.Server(
        addr=HOST,
        port=port,
        disable_ticketing=True,
        html5_dir=HTML5 if Path(HTML5).is_dir() else None,
        # Raised on purpose: the soak is many connections from few addresses.
        max_connections=8000,
        max_connections_per_address=8000,
        link_attempts_per_second=100000.0,
    )
    display = server.add_display(640, 480)
    y, x = np.mgrid[0:480, 0:640]
    base = np.zeros((480, 640, 4), np.uint8)
    base[..., 0], base[..., 1], base[..., 2] = x % 256, y % 256, (x + y) % 256
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        await server.codecs_ready()
        await display.update(0, 0, base)
        print(json.dumps({"pid": os.getpid(), "port": server.port_bound}), flush=True)
        frame = 0
        block = np.empty((120, 160, 4), np.uint8)
        while True:
            frame += 1
            bx, by = (frame * 7) % (640 - 160), (frame * 3) % (480 - 120)
            block[:] = ((frame * 5) % 256, 255 - (frame * 3) % 256, 128, 0)
            await display.update(bx, by, block)
            await trio.sleep(1 / 30)


def server_main(port: int) -> int:
    raise_nofile()
    trio.run(serve, port)
    return 0


# -- measuring the server -------------------------------------------------------------------------


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def settle_fds(pid: int, baseline: int, timeout: float = 10.0) -> int:
    with trio.move_on_after(timeout):
        while fds(pid) > baseline:
            await trio.sleep(0.1)
    return fds(pid)


# -- phase 1: connect / link / disconnect ---------------------------------------------------------


async def cycles(port: int, count: int, concurrency: int = 16) -> dict[str, Any]:
    import rawclient

    done = 0
    failed = 0
    lock = trio.Semaphore(concurrency)

    async def one(i: int) -> None:
        nonlocal done, failed
        async with lock:
            try:
                stream = await trio.open_tcp_stream(
                    HOST, port, local_address=SOURCES[i % len(SOURCES)]
                )
                async with stream:
                    result = await rawclient.link(stream, channel_type=rawclient.MAIN)
                    if result.result != rawclient.OK:
                        failed += 1
            except (OSError, trio.BrokenResourceError, rawclient.Closed):
                failed += 1
            done += 1

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i in range(count):
            await lock.acquire()
            lock.release()
            nursery.start_soon(one, i)
    seconds = time.perf_counter() - start
    return {"cycles": done, "failed": failed, "seconds": round(seconds, 1)}


# -- phase 2: idle and slow-loris beside a spice-gtk client --------------------------------------


class Pressure:
    """Holds idle and slow-loris connections open, reopening what the server closes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.open = {"spice-idle": 0, "http-idle": 0, "spice-loris": 0, "http-loris": 0}
        self.peak = dict(self.open)
        self.closed_by_server = dict(self.open)
        self.refused = 0

    async def _hold(self, kind: str, index: int, stop: trio.Event) -> None:
        source = SOURCES[index % len(SOURCES)]
        while not stop.is_set():
            try:
                stream = await trio.open_tcp_stream(HOST, self.port, local_address=source)
            except OSError:
                self.refused += 1
                await trio.sleep(0.5)
                continue
            self.open[kind] += 1
            self.peak[kind] = max(self.peak[kind], self.open[kind])
            closed = False
            try:
                async with stream:
                    closed = await self._behave(kind, stream, stop)
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                closed = True
            finally:
                self.open[kind] -= 1
            if closed:
                self.closed_by_server[kind] += 1
                await trio.sleep(0.2)

    async def _behave(self, kind: str, stream: trio.SocketStream, stop: trio.Event) -> bool:
        """True when the server closed the connection (it is then reopened)."""
        if kind == "http-idle":
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        if kind in ("spice-loris", "http-loris"):
            head = (
                b"REDQ\x02\x00\x00\x00\x02\x00\x00\x00" + bytes(64)
                if kind == "spice-loris"
                else b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4000
            )
            for byte in head:
                if stop.is_set():
                    return False
                await stream.send_all(bytes([byte]))
                with trio.move_on_after(1.0):
                    if await stream.receive_some(65536) == b"":
                        return True
            return False
        # Idle: read (and drop) what the server sends until it closes or we stop.
        with trio.move_on_after(3600):
            while not stop.is_set():
                with trio.move_on_after(0.5):
                    if await stream.receive_some(65536) == b"":
                        return True
        return False

    async def run(self, idle: int, loris: int, stop: trio.Event) -> None:
        kinds = (
            [("spice-idle", i) for i in range(idle // 2)]
            + [("http-idle", i) for i in range(idle - idle // 2)]
            + [("spice-loris", i) for i in range(loris // 2)]
            + [("http-loris", i) for i in range(loris - loris // 2)]
        )
        async with trio.open_nursery() as nursery:
            for n, (kind, i) in enumerate(kinds):
                nursery.start_soon(self._hold, kind, i, stop)
                if n % 50 == 49:
                    await trio.sleep(0.05)


async def gtk_fps(client: Any, seconds: float) -> float:
    start = trio.current_time()
    mark = client.mark()
    await trio.sleep(seconds)
    t0 = time.monotonic() - (trio.current_time() - start)
    frames = [
        e
        for e in client.events[mark:]
        if e.get("event") == "invalidate" and t0 <= e.get("t", 0) <= t0 + seconds
    ]
    return len(frames) / seconds


# -- the driver ------------------------------------------------------------------------------------


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    from gtk_client import open_gtk_client

    # The server logs one line per connection it closes: to a file, counted at the end.
    log_path = Path(args.server_log)
    with open(log_path, "wb") as log:
        proc = await trio.lowlevel.open_process(
            [sys.executable, __file__, "--role", "server", "--port", str(args.port)],
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=ROOT,
        )
    assert proc.stdout is not None
    try:
        line = b""
        with trio.fail_after(60):
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(1)
                if not chunk:
                    raise RuntimeError("server exited before it was ready")
                line += chunk
        ready = json.loads(line)
        pid, port = ready["pid"], ready["port"]
        out: dict[str, Any] = {
            "limits_raised": {
                "max_connections": 8000,
                "max_connections_per_address": 8000,
                "link_attempts_per_second": 100000,
            },
            "source_addresses": len(SOURCES),
        }

        warm = max(20, args.cycles // 20)
        await cycles(port, warm)
        await trio.sleep(1)
        base_fds, base_rss = fds(pid), rss_kib(pid)
        run = await cycles(port, args.cycles)
        end_fds = await settle_fds(pid, base_fds)
        end_rss = rss_kib(pid)
        out["cycles"] = {
            **run,
            "per_second": round(run["cycles"] / run["seconds"]) if run["seconds"] else None,
            "fds_baseline": base_fds,
            "fds_after": end_fds,
            "rss_baseline_kib": base_rss,
            "rss_after_kib": end_rss,
            "rss_growth_pct": round(100 * (end_rss - base_rss) / base_rss, 2),
        }
        print(f"cycles: {out['cycles']}", flush=True)

        if args.idle or args.loris:
            pressure = Pressure(port)
            async with open_gtk_client(HOST, port, timeout=args.window * 4 + 600) as client:
                await client.wait_for("mark", timeout=30)
                await trio.sleep(1)
                solo = await gtk_fps(client, args.window)
                stop = trio.Event()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(pressure.run, args.idle, args.loris, stop)
                    # Let every connection open before measuring.
                    with trio.move_on_after(60):
                        while sum(pressure.open.values()) < 0.95 * (args.idle + args.loris):
                            await trio.sleep(0.2)
                    held = sum(pressure.open.values())
                    server_fds_loaded = fds(pid)
                    loaded = await gtk_fps(client, args.window)
                    held_after = sum(pressure.open.values())
                    stop.set()
                    nursery.cancel_scope.deadline = trio.current_time() + 5
            out["load"] = {
                "idle": args.idle,
                "loris": args.loris,
                "held_when_measuring": held,
                "held_at_end_of_window": held_after,
                "peak_open": pressure.peak,
                "closed_by_server": pressure.closed_by_server,
                "connect_errors": pressure.refused,
                "server_fds_loaded": server_fds_loaded,
                "gtk_fps_solo": round(solo, 1),
                "gtk_fps_loaded": round(loaded, 1),
                "fps_ratio": round(loaded / solo, 3) if solo else None,
            }
            print(f"load: {out['load']}", flush=True)
            out["fds_after_load"] = await settle_fds(pid, base_fds, 30)
            out["fds_baseline"] = base_fds
        out["server_log_lines"] = len(log_path.read_bytes().splitlines())
        return out
    finally:
        proc.terminate()
        with trio.move_on_after(5):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def verdict(out: dict[str, Any]) -> list[str]:
    problems = []
    c = out["cycles"]
    if c["failed"]:
        problems.append(f"{c['failed']} cycles failed")
    if c["fds_after"] > c["fds_baseline"]:
        problems.append(f"fds {c['fds_baseline']} -> {c['fds_after']} after the cycles")
    if c["rss_growth_pct"] >= 5:
        problems.append(f"RSS grew {c['rss_growth_pct']}%")
    if "load" in out:
        ratio = out["load"]["fps_ratio"]
        if ratio is None or ratio < 0.8:
            problems.append(f"loaded frame rate ratio {ratio}")
        if out["fds_after_load"] > out["fds_baseline"]:
            problems.append(f"fds {out['fds_baseline']} -> {out['fds_after_load']} after the load")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("driver", "server"), default="driver")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cycles", type=int, default=10000)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--loris", type=int, default=500)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--server-log", default="/tmp/trio-spice-soak-server.log")
    args = parser.parse_args()
    if args.role == "server":
        return server_main(args.port)
    nofile = raise_nofile()
    if nofile < args.idle + args.loris + 200:
        print(f"RLIMIT_NOFILE hard limit {nofile} is too low", file=sys.stderr)
        return 2
    out = trio.run(drive, args)
    out["problems"] = verdict(out)
    print(json.dumps(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 1 if out["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
