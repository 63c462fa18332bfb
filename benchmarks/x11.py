"""``trio-spice x11`` beside Xspice: capture-to-client latency and CPU for a 1920x1080 X
screen with a small animated region.

    .venv/bin/python benchmarks/x11.py [--seconds 10] [--fps 30] [--peers ours,xspice]
                                       [--json FILE]

Both X servers run the same content: an xterm, and ``_x11_marker.py`` drawing a frame counter
(a strip of 12 blocks of 16 px) and a moving 48x48 square at ``--fps`` (a 256x80 area). It
stamps each frame with ``time.monotonic()`` once the X server has drawn it (a round trip);
spice-gtk (``gtk_probe.py``'s ``watch_marker``) stamps the moment each counter value shows on
its surface. Both clocks are the machine's CLOCK_MONOTONIC, so a value's latency is the
difference: X drawing to pixels in the client, everything between included.

* ``ours``: Xvfb 1920x1080 and ``python -m spice x11 --display :N`` (MIT-SHM, DAMAGE, at most
  ``--max-fps`` reads per second, 60 by default as the command's). CPU: the trio-spice
  process, and Xvfb beside it (it serves our GetImage requests).
* ``xspice``: Xorg with the spiceqxl driver (libspice-server 0.15.1), 1920x1080. CPU: the
  whole Xorg process (X server and SPICE worker in one), and its "SPICE Worker" thread.

Needs ``xvfb xterm xserver-xspice`` and spice-gtk (``scripts/setup.sh --test``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _peers  # noqa: E402
from _peers import HOST, ROOT, CpuMeter, median, percentile, require_free, stop  # noqa: E402
from display_bytes import gtk_client  # noqa: E402

SIZE = (1920, 1080)
MARKER = (64, 64)
BITS, BLOCK = 12, 16
PORTS = {"ours": 5971, "xspice": 5972}


@contextlib.contextmanager
def ours_peer(tmp: Path, port: int, max_fps: float) -> Iterator[tuple[str, dict[str, int]]]:
    require_free(port)
    number = _peers.free_x_display(81)
    display = f":{number}"
    xvfb = server = None
    try:
        xvfb = subprocess.Popen(
            ["Xvfb", display, "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24", "-nolisten", "tcp"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            if xvfb.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Xvfb did not start")
            time.sleep(0.05)
        with open(tmp / "ours.log", "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "spice", "x11", "--display", display, "--addr", HOST,
                 "--port", str(port), "--disable-ticketing", "--no-html5",
                 "--max-fps", str(max_fps)],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        _peers.wait_listening(port, server, 30, "trio-spice x11")
        yield display, {"trio-spice": server.pid, "Xvfb": xvfb.pid}
    finally:
        stop(server)
        stop(xvfb)


@contextlib.contextmanager
def xspice_peer(tmp: Path, port: int, max_fps: float) -> Iterator[tuple[str, dict[str, int]]]:
    with _peers.xspice_screen(port, SIZE) as screen:
        yield screen.display, {"Xorg": screen.pid}


def run_peer(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    port = PORTS[name]
    peer = ours_peer if name == "ours" else xspice_peer
    with contextlib.ExitStack() as stack:
        display, pids = stack.enter_context(peer(tmp, port, args.max_fps))
        env = {"DISPLAY": display, "PATH": "/usr/bin:/bin"}
        xterm = subprocess.Popen(
            ["xterm", "-geometry", "100x30+600+300", "-e", "sh", "-c",
             "ls -l /usr/bin | head -25; exec sh"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        stack.callback(stop, xterm)
        gtk = stack.enter_context(gtk_client(port, tmp, name))
        gtk.p.wait_for(lambda e: e.get("event") == "primary-create" and e["width"] == SIZE[0])
        gtk.p.wait_for(lambda e: e.get("event") == "mark")
        time.sleep(2.0)  # the first full screen, the xterm's drawing
        gtk.p.command("watch_marker", x=MARKER[0], y=MARKER[1], bits=BITS, block=BLOCK)
        meters = {label: CpuMeter(pid) for label, pid in pids.items()}
        for meter in meters.values():
            stack.enter_context(meter.poll_in_background(0.05))
        cpu0 = {label: m.total() for label, m in meters.items()}
        worker0 = meters["Xorg"].total("SPICE Worker") if "Xorg" in meters else 0.0
        bytes0 = gtk.display_bytes()
        t0 = time.monotonic()
        marker = subprocess.run(
            [sys.executable, str(HERE / "_x11_marker.py"), "--display", display,
             "--seconds", str(args.seconds), "--fps", str(args.fps), "--x", str(MARKER[0]),
             "--y", str(MARKER[1]), "--bits", str(BITS), "--block", str(BLOCK)],
            env={"PATH": "/usr/bin:/bin"}, capture_output=True, check=True,
        )  # fmt: skip
        time.sleep(1.0)  # the last frames reach the client
        elapsed = time.monotonic() - t0
        cpu = {label: m.total() - cpu0[label] for label, m in meters.items()}
        if "Xorg" in meters:
            cpu["SPICE Worker"] = meters["Xorg"].total("SPICE Worker") - worker0
        sent = gtk.display_bytes() - bytes0
        changes = gtk.p.command("marker_stats")["changes"]
    drawn = {value: t for t, value in json.loads(marker.stdout)["drawn"]}
    latencies = [t - drawn[v] for t, v in changes if v in drawn and t >= drawn[v]]
    shown = {v for _, v in changes if v in drawn}
    return {
        "peer": name,
        "frames_drawn": len(drawn),
        "frames_shown": len(shown),
        "latency_median_ms": _ms(median(latencies)),
        "latency_p90_ms": _ms(percentile(latencies, 90)),
        "cpu_percent": {label: round(100 * s / elapsed, 1) for label, s in cpu.items()},
        "display_bytes_per_s": round(sent / elapsed),
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--peers", default="ours,xspice")
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--max-fps", type=float, default=60.0, help="ours: screen reads per second (default 60)"
    )
    args = p.parse_args()
    results = []
    with _peers.sigterm_as_exit(), tempfile.TemporaryDirectory(prefix="bench-x11-") as tmpdir:
        for name in args.peers.split(","):
            results.append(run_peer(name, args, Path(tmpdir)))
    print(
        f"{'peer':8} {'drawn':>6} {'shown':>6} {'median ms':>10} {'p90 ms':>8} "
        f"{'bytes/s':>10}  CPU %"
    )
    for r in results:
        cpu = ", ".join(f"{k} {v}" for k, v in r["cpu_percent"].items())
        print(
            f"{r['peer']:8} {r['frames_drawn']:6} {r['frames_shown']:6} "
            f"{r['latency_median_ms']!s:>10} {r['latency_p90_ms']!s:>8} "
            f"{r['display_bytes_per_s']:10}  {cpu}"
        )
    out = {
        "size": SIZE,
        "fps": args.fps,
        "max_fps": args.max_fps,
        "seconds": args.seconds,
        "results": results,
    }
    print(json.dumps(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
