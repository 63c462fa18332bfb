"""A normal client's service during a tiny-frame WebSocket flood (issue 10), and the server's RSS.

Usage (from the project root):

    .venv/bin/python benchmarks/ws_flood.py [--flooders 200] [--seconds 20] [--src DIR]
                                            [-- extra trio-spice options]

Starts ``python -m spice`` (the demo, from ``--src``, default this tree, so an older checkout
can be measured the same way), connects a good native client (main + display, rawclient), then
a separate flooder process opens (from 127.0.0.2, another address than the good client's)
``--flooders`` WebSockets to ``/websockify``, each sending a
1-byte binary frame without FIN and then 1-byte continuation frames without end (with
``--reconnect``, again once closed). Meanwhile,
every 0.5 s: the server's RSS (``/proc/PID/status``), the longest gap between display messages
the good client received (the demo animates at 20 fps) and the time a new client takes to link
main. Printed: one line per second and a JSON summary. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import rawclient as rc  # noqa: E402

HOST = "127.0.0.1"

FLOODER = r"""
import socket, sys, threading, time
port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
reconnect = sys.argv[4] == "1"
up = ("GET /websockify HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Protocol: binary\r\n\r\n" % port)
frame = lambda op, fin, p: bytes([(0x80 if fin else 0) | op, 0x80 | len(p)]) + b"\0\0\0\0" + p
first = frame(2, False, b"R")
batch = frame(0, False, b"\0") * 9000
end = time.monotonic() + seconds
def one():
    while time.monotonic() < end:
        try:
            s = socket.create_connection(("127.0.0.1", port), 5, ("127.0.0.2", 0))
            s.sendall(up.encode()); s.recv(4096); s.settimeout(None); s.sendall(first)
            while time.monotonic() < end:
                s.sendall(batch)
        except OSError:
            time.sleep(0.2)
        finally:
            try: s.close()
            except Exception: pass
        if not reconnect:
            return
threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
for t in threads: t.start()
time.sleep(seconds)
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def measure(args: argparse.Namespace, port: int, pid: int) -> dict[str, object]:
    session = await rc.open_session(HOST, port)
    display = await session.open_display()
    last = [trio.current_time()]
    gap = [0.0]

    async def read_display() -> None:
        display.wire.timeout = 1e9
        while True:
            await display.recv_msg()
            now = trio.current_time()
            gap[0] = max(gap[0], now - last[0])
            last[0] = now

    samples: list[dict[str, float]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_display)
        await trio.sleep(1)
        flooder = subprocess.Popen(
            [
                *(sys.executable, "-c", FLOODER, str(port), str(args.flooders)),
                *(str(args.seconds), "1" if args.reconnect else "0"),
            ]
        )
        try:
            start = trio.current_time()
            while trio.current_time() - start < args.seconds:
                t0 = trio.current_time()
                link = float("nan")
                with trio.move_on_after(10):
                    try:
                        other = await rc.open_session(HOST, port)
                    except (rc.Closed, OSError, AssertionError):
                        pass
                    else:
                        link = trio.current_time() - t0
                        await other.aclose()
                gap[0] = max(gap[0], trio.current_time() - last[0])
                sample = {
                    "t": round(trio.current_time() - start, 1),
                    "rss_mb": round(rss_mb(pid), 1),
                    "display_gap_s": round(gap[0], 3),
                    "new_link_s": round(link, 3),
                }
                samples.append(sample)
                print(sample, flush=True)
                gap[0] = 0.0
                await trio.sleep(max(0.0, 0.5 - (trio.current_time() - t0)))
        finally:
            flooder.terminate()
            flooder.wait(10)
        nursery.cancel_scope.cancel()
    await session.aclose()
    links = [s["new_link_s"] for s in samples]
    ok = [x for x in links if x == x]
    return {
        "flooders": args.flooders,
        "seconds": args.seconds,
        "rss_mb_max": max(s["rss_mb"] for s in samples),
        "display_gap_s_max": max(s["display_gap_s"] for s in samples),
        "new_link_s_median": sorted(ok)[len(ok) // 2] if ok else None,
        "new_link_s_max": max(ok) if ok else None,
        "new_link_failed": len(links) - len(ok),
        "samples": len(samples),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flooders", type=int, default=200)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument(
        "--reconnect", action="store_true", help="each flooder connects again once closed"
    )
    p.add_argument("--src", default=str(ROOT), help="the trio-spice tree to run")
    p.add_argument("--log", help="write the server's log to this file")
    p.add_argument("extra", nargs="*", help="more trio-spice options (after --)")
    args = p.parse_args()
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": args.src}
    log = open(args.log, "wb") if args.log else None  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [sys.executable, "-m", "spice", "--port", str(port), "--no-html5", *args.extra],
        env=env,
        cwd=args.src,
        stdout=subprocess.DEVNULL,
        stderr=log or subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex((HOST, port)) == 0:
                    break
            time.sleep(0.2)
        time.sleep(2)  # codecs loaded
        before = rss_mb(server.pid)
        print(f"server RSS before: {before:.1f} MB", flush=True)
        summary = trio.run(measure, args, port, server.pid)
        summary["rss_mb_before"] = before
        print(json.dumps(summary))
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        if log is not None:
            log.close()


if __name__ == "__main__":
    main()
