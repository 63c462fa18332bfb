"""Connect-to-first-frame latency with spice-gtk: trio-spice against libspice-server.

Usage (from the project root, with the project's virtualenv):

    .venv/bin/python benchmarks/first_frame.py [--runs 15] [--peers ours,xspice[,qemu]]

Each peer is started once and stays up for the whole run: ``ours`` is ``python -m spice``
(the demo display, 1024x768) and ``xspice`` is Xorg with the spiceqxl driver (the reference
libspice-server, 1024x768) showing ``xclock``; ``qemu`` (optional) is QEMU's qxl device with
no guest disk. For every run a fresh spice-gtk client (``tests/e2e/gtk_probe.py`` under
/usr/bin/python3) connects; the peers alternate run by run (A B, B A, ...) so slow drift on
this noisy machine hits both alike. One warm-up connection per peer is discarded.

Timing: every event the probe prints carries ``t``, the probe process's own
``time.monotonic()`` when spice-gtk's signal fired; ``started`` is printed just before
``spice_session_connect()``. All intervals are differences of these stamps, taken in the one
client process, so neither the JSON pipe nor this script's scheduling enters the numbers.

Measured, per run, from connect: main channel opened, display channel opened, first
``display-primary-create`` (the primary surface exists), first ``display-invalidate`` (first
pixels drawn) and first ``display-mark`` (the surface is ready to show). Printed: a table of
medians (and min-max) per peer with the ratio ours/reference, then one JSON object with every
sample. The target (issue): ours within 1.5x of libspice-server for the first primary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _peers
from _peers import HOST, fmt_ms, median, sigterm_as_exit
from gtk_client import open_gtk_client  # tests/e2e, put on sys.path by _peers

TARGET_RATIO = 1.5

#: (name, label, event, predicate): each metric is the first event matching after connect.
METRICS: list[tuple[str, str, str, Callable[[dict[str, Any]], bool] | None]] = [
    (
        "main_open",
        "main channel opened",
        "channel-event",
        lambda e: e.get("channel") == "main" and e.get("name") == "opened",
    ),
    (
        "display_open",
        "display channel opened",
        "channel-event",
        lambda e: e.get("channel") == "display" and e.get("name") == "opened",
    ),
    ("primary", "first primary surface", "primary-create", None),
    ("invalidate", "first invalidate (pixels)", "invalidate", None),
    ("mark", "first mark", "mark", None),
]


async def one_run(port: int, timeout: float) -> dict[str, Any]:
    """Connect one fresh spice-gtk client; return seconds from connect to each metric."""
    async with open_gtk_client(HOST, port, timeout=timeout + 10) as client:
        started = await client.wait_for("started", timeout=timeout)
        out: dict[str, Any] = {}
        for name, _label, event, predicate in METRICS:
            found = await client.wait_for(event, predicate, timeout=timeout)
            out[name] = found["t"] - started["t"]
            if name == "primary":
                out["size"] = [found["width"], found["height"]]
        return out


async def measure(
    ports: dict[str, int], runs: int, warmup: int, timeout: float, pause: float
) -> dict[str, Any]:
    names = list(ports)
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    failures: dict[str, list[str]] = {name: [] for name in names}
    sizes: dict[str, Any] = {}
    for index in range(warmup + runs):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            try:
                result = await one_run(ports[name], timeout)
            except AssertionError as exc:
                failures[name].append(str(exc).splitlines()[0])
                print(f"  run {index}: {name} FAILED: {str(exc).splitlines()[0]}", file=sys.stderr)
                result = None
            if result is not None:
                sizes[name] = result.pop("size", None)
                if index >= warmup:
                    samples[name].append(result)
                    print(
                        f"  run {index - warmup + 1:2d}/{runs} {name:7s} primary "
                        f"{fmt_ms(result['primary'])} ms",
                        file=sys.stderr,
                    )
            await trio.sleep(pause)  # let the server notice the disconnect
    return {"samples": samples, "failures": failures, "sizes": sizes}


def summarize(result: dict[str, Any], descriptions: dict[str, str], runs: int) -> dict[str, Any]:
    names = list(descriptions)
    peers: dict[str, Any] = {}
    for name in names:
        rows = result["samples"][name]
        per_metric = {m: [row[m] for row in rows] for m, *_ in METRICS}
        peers[name] = {
            "description": descriptions[name],
            "primary_size": result["sizes"].get(name),
            "ok_runs": len(rows),
            "failures": result["failures"][name],
            "median_s": {m: median(v) for m, v in per_metric.items()},
            "min_s": {m: min(v) if v else None for m, v in per_metric.items()},
            "max_s": {m: max(v) if v else None for m, v in per_metric.items()},
            "samples_s": per_metric,
        }
    ratios: dict[str, Any] = {}
    if "ours" in peers:
        for ref in names:
            if ref == "ours":
                continue
            ratios[ref] = {}
            for m, *_ in METRICS:
                a, b = peers["ours"]["median_s"][m], peers[ref]["median_s"][m]
                ratios[ref][m] = (a / b) if a is not None and b else None
    return {
        "benchmark": "first_frame",
        "runs": runs,
        "timing": "probe-side time.monotonic() stamps ('t' on every gtk_probe event)",
        "peers": peers,
        "ratio_ours_over": ratios,
        "target": {"metric": "primary", "max_ratio": TARGET_RATIO},
    }


def print_table(summary: dict[str, Any]) -> None:
    peers = summary["peers"]
    names = list(peers)
    refs = list(summary["ratio_ours_over"])
    head = f"{'ms from connect (median, min-max)':34s}" + "".join(f"{n:>22s}" for n in names)
    head += "".join(f"{'ours/' + r:>14s}" for r in refs)
    print()
    print(f"first frame, spice-gtk client, {summary['runs']} runs per peer (alternating)")
    print(head)
    print("-" * len(head))
    for m, label, *_ in METRICS:
        line = f"{label:34s}"
        for n in names:
            p = peers[n]
            cell = f"{fmt_ms(p['median_s'][m])} ({fmt_ms(p['min_s'][m])}-{fmt_ms(p['max_s'][m])})"
            line += f"{cell:>22s}"
        for r in refs:
            ratio = summary["ratio_ours_over"][r][m]
            line += f"{'-' if ratio is None else f'{ratio:.2f}x':>14s}"
        print(line)
    for n in names:
        p = peers[n]
        print(
            f"  {n}: {p['description']}; primary {p['primary_size']}; "
            f"{p['ok_runs']} ok, {len(p['failures'])} failed"
        )
    for r in refs:
        ratio = summary["ratio_ours_over"][r]["primary"]
        if ratio is not None:
            verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
            print(
                f"  first primary: ours/{r} = {ratio:.2f}x -> {verdict} the {TARGET_RATIO}x target"
            )
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--peers", default="ours,xspice", help="comma list of ours, xspice, qemu")
    parser.add_argument("--port-ours", type=int, default=5961)
    parser.add_argument("--port-xspice", type=int, default=5962)
    parser.add_argument("--port-qemu", type=int, default=5963)
    parser.add_argument("--timeout", type=float, default=15.0, help="per-event wait, seconds")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between runs")
    parser.add_argument("--json", type=Path, help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.peers.split(",") if n.strip()]
    starters = {
        "ours": lambda: _peers.ours(args.port_ours),
        "xspice": lambda: _peers.xspice(args.port_xspice),
        "qemu": lambda: _peers.qemu(args.port_qemu),
    }
    ports = {"ours": args.port_ours, "xspice": args.port_xspice, "qemu": args.port_qemu}
    unknown = set(names) - set(starters)
    if unknown:
        parser.error(f"unknown peers: {', '.join(sorted(unknown))}")
    with sigterm_as_exit(), contextlib.ExitStack() as stack:
        descriptions = {}
        for name in names:
            descriptions[name] = stack.enter_context(starters[name]())
            print(f"started {name}: {descriptions[name]} on {HOST}:{ports[name]}", file=sys.stderr)
        t0 = time.monotonic()
        result = trio.run(
            measure, {n: ports[n] for n in names}, args.runs, args.warmup, args.timeout, args.pause
        )
        print(f"measured in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    summary = summarize(result, descriptions, args.runs)
    print_table(summary)
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if all(p["ok_runs"] for p in summary["peers"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
