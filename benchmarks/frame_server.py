"""A trio-spice server in its own process that pushes frames it is told to, for benchmarks.

Usage (from the project root, with the project's virtualenv):

    .venv/bin/python benchmarks/frame_server.py --port 5972 [--size 1920x1080]
        [--image-compression auto] [--jpeg-wan-compression always] [--html5-dir DIR]

It builds ``spice.Server(addr="127.0.0.1", port=PORT, disable_ticketing=True, ...)`` with one
display of ``--size`` and speaks JSON lines: events on stdout, commands on stdin, so the
server's CPU (``/proc/PID/task/*/schedstat``) is this process's alone.

* Before it listens it compiles the codecs (``domain.codecs.select.warm_up``, when there is
  one), so that numba's compile time and a cold server's codec choice stay out of what is
  measured, and waits for ``Server.codecs_ready()`` when the Server has it;
  ``codec_warmup_s`` in the first line says how long the compiling took.
* First line: ``{"event": "listening", "port": P, "pid": N, ...}``, or
  ``{"event": "rejected", "message": ...}`` and exit status 2 when the Server refuses an option
  (an unknown keyword such as ``jpeg_wan_compression`` before that codec exists, or a value it
  does not take). ``--image-compression`` and ``--jpeg-wan-compression`` are passed only when
  given.
* ``{"cmd": "load", "name": "text", "path": "frame.npy"}``: read an (h, w, 4) BGRX or (h, w, 3)
  RGB uint8 array into memory (before any measurement, so file reading is not counted);
  answers ``loaded``.
* ``{"cmd": "push", "name": "text"}``: ``await display.update(0, 0, array)``; answers
  ``pushed`` once the update is accepted (encoding and sending follow in the server).
* ``{"cmd": "quit"}`` or EOF: stop.

A command's ``"id"``, if any, is echoed in its reply.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def warm_codecs() -> float | None:
    """Compile the numba codecs (or load them from numba's disk cache) before anything is
    measured. The server warms them in a thread of its own and sends LZ4/BITMAP until that is
    done; after an edit of the codecs numba recompiles for seconds, which would otherwise land
    in the first measurements, with the codec choice of a cold server. Returns the seconds it
    took, or None on a tree without ``domain.codecs.select.warm_up``."""
    try:
        from domain.codecs.select import warm_up
    except ImportError:
        return None
    start = time.monotonic()
    warm_up()
    return round(time.monotonic() - start, 3)


def parse_size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


async def serve(args: argparse.Namespace) -> int:
    from spice.server import Server

    options: dict[str, Any] = {}
    if args.image_compression is not None:
        options["image_compression"] = args.image_compression
    if args.jpeg_wan_compression is not None:
        options["jpeg_wan_compression"] = args.jpeg_wan_compression
    if args.html5_dir is not None:
        options["html5_dir"] = args.html5_dir
    try:
        server = Server(addr="127.0.0.1", port=args.port, disable_ticketing=True, **options)
    except (TypeError, ValueError) as exc:
        emit("rejected", message=f"{type(exc).__name__}: {exc}", options=options)
        return 2
    warmup = await trio.to_thread.run_sync(warm_codecs)
    width, height = args.size
    display = server.add_display(width, height)
    frames: dict[str, np.ndarray] = {}
    stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        if hasattr(server, "codecs_ready"):
            await server.codecs_ready()
        emit(
            "listening",
            port=server.port_bound,
            pid=os.getpid(),
            options=options,
            codec_warmup_s=warmup,
        )
        buffer = b""
        while True:
            chunk = await stdin.receive_some(65536)
            if not chunk:
                break
            buffer += chunk
            quit_now = False
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not line.strip():
                    continue
                command = json.loads(line)
                name = command.get("cmd")
                ident = {"id": command["id"]} if "id" in command else {}
                if name == "load":
                    frames[command["name"]] = await trio.to_thread.run_sync(
                        np.load, command["path"]
                    )
                    emit("loaded", name=command["name"], **ident)
                elif name == "push":
                    await display.update(0, 0, frames[command["name"]])
                    emit("pushed", name=command["name"], **ident)
                elif name == "stats":
                    worker = server._core.displays[0]
                    emit(
                        "stats",
                        encodes=worker.encodes,
                        encode_cpu_ms=round(worker.encode_cpu * 1000, 2),
                        **ident,
                    )
                elif name == "quit":
                    quit_now = True
                    break
                else:
                    emit("error", message=f"unknown command {name!r}", **ident)
            if quit_now:
                break
        nursery.cancel_scope.cancel()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5972)
    parser.add_argument("--size", type=parse_size, default=(1920, 1080))
    parser.add_argument("--image-compression", default=None)
    parser.add_argument("--jpeg-wan-compression", default=None)
    parser.add_argument("--html5-dir", default=None)
    args = parser.parse_args()
    try:
        return trio.run(serve, args)
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    sys.exit(main())
