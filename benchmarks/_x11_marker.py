"""An X client for ``benchmarks/x11.py``: a small animated region drawn at a fixed rate, the
same program on every X server compared.

Usage: ``python benchmarks/_x11_marker.py --display :N --seconds 10 [--fps 30]``

Each frame it fills a strip of ``--bits`` blocks of ``--block`` pixels at (``--x``, ``--y``)
with the frame number (white = 1, black = 0, least significant bit first: what
``gtk_probe.py``'s ``watch_marker`` reads) and moves a 48x48 square along a 256x48 lane below
it; then a round trip (the X server has drawn it) and the time. It ends with one JSON line:
``drawn`` as [time.monotonic(), frame number] pairs. Uses xcffib (core requests only).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import xcffib
import xcffib.xproto as xp


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--display", required=True)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--x", type=int, default=64)
    p.add_argument("--y", type=int, default=64)
    p.add_argument("--bits", type=int, default=12)
    p.add_argument("--block", type=int, default=16)
    args = p.parse_args()
    xcb: Any = xcffib
    conn: Any = xcb.connect(display=args.display)
    screen = conn.get_setup().roots[0]
    root = screen.root
    width, height = args.bits * args.block, args.block + 8 + 48
    window = conn.generate_id()
    conn.core.CreateWindow(
        screen.root_depth, window, root, args.x, args.y, max(width, 256), height, 0,
        xp.WindowClass.InputOutput, 0, xp.CW.BackPixel | xp.CW.OverrideRedirect,
        [screen.black_pixel, 1],
    )  # fmt: skip
    conn.core.MapWindow(window)
    gcs = {}
    for name, pixel in (("white", 0xFFFFFF), ("black", 0), ("square", 0x30A0FF)):
        gc = conn.generate_id()
        conn.core.CreateGC(gc, window, xp.GC.Foreground, [pixel])
        gcs[name] = gc
    conn.core.GetInputFocus().reply()
    time.sleep(0.5)
    drawn: list[tuple[float, int]] = []
    period = 1.0 / args.fps
    start = time.monotonic()
    frame = 0
    while True:
        due = start + frame * period
        now = time.monotonic()
        if now - start > args.seconds:
            break
        if due > now:
            time.sleep(due - now)
        value = (frame + 1) % (1 << args.bits)
        ones = [
            xp.RECTANGLE.synthetic(k * args.block, 0, args.block, args.block)
            for k in range(args.bits)
            if value >> k & 1
        ]
        zeros = [
            xp.RECTANGLE.synthetic(k * args.block, 0, args.block, args.block)
            for k in range(args.bits)
            if not value >> k & 1
        ]
        if ones:
            conn.core.PolyFillRectangle(window, gcs["white"], len(ones), ones)
        if zeros:
            conn.core.PolyFillRectangle(window, gcs["black"], len(zeros), zeros)
        lane_y = args.block + 8
        pos = (frame * 8) % (256 - 48)
        conn.core.PolyFillRectangle(
            window, gcs["black"], 1, [xp.RECTANGLE.synthetic(0, lane_y, 256, 48)]
        )
        conn.core.PolyFillRectangle(
            window, gcs["square"], 1, [xp.RECTANGLE.synthetic(pos, lane_y, 48, 48)]
        )
        conn.core.GetInputFocus().reply()  # XSync: the server has drawn the frame
        drawn.append((time.monotonic(), value))
        frame += 1
    conn.disconnect()
    print(json.dumps({"drawn": drawn}), flush=True)


if __name__ == "__main__":
    main()
