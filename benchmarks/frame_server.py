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
* ``{"cmd": "load_clip", "name": "clip", "path": "clip.raw", "width": W, "height": H}``: read
  a raw video (frames of H x W BGRX, e.g. ffmpeg's ``-pix_fmt bgr0 -f rawvideo``) into memory;
  answers ``loaded`` with ``frames``.
* ``{"cmd": "play", "name": "clip", "x": X, "y": Y, "fps": 30}``: push the clip's frames at
  (X, Y) with ``display.update``, paced with Trio at ``fps``; a frame whose time has passed
  while an update waited is skipped, as a player drops late frames. Answers ``played`` with
  ``t_first``/``t_last`` (``time.monotonic()`` of the first and last push, comparable with
  other processes' stamps), ``pushed``, ``skipped``, and what the display's clients reported
  meanwhile: ``stream_start_s`` (first push to the first running stream, polled every 5 ms),
  ``stream_frames``/``stream_bytes`` (their ``DisplayStats`` deltas), ``streams_max``,
  ``images`` (the images sent meanwhile, by type).
  ``"clear": true`` paints the area black right after the last frame, as a player's window
  that closes would leave the screen.
* ``{"cmd": "state"}``: diagnostics read from private attributes (each display client's pipe,
  job, streams, ack window, pacing, rate controller; the worker's queued commands), for a
  benchmark that saw a client get nothing; answers ``state``.
* ``--streaming-video MODE`` and ``--video-codecs LIST`` are passed to the Server only when
  given.
* ``{"cmd": "quit"}`` or EOF: stop.

A command's ``"id"``, if any, is echoed in its reply.
"""

from __future__ import annotations

import argparse
import contextlib
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
        from spice.domain.codecs.select import warm_up
    except ImportError:
        return None
    start = time.monotonic()
    warm_up()
    return round(time.monotonic() - start, 3)


def parse_size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def client_machines(server: Any) -> list[Any]:
    """The display machines of the first display's clients (private API, benchmarks only)."""
    worker = server._core.displays[0]
    return [client.machine for client in getattr(worker, "clients", ())]


def stream_counts(server: Any) -> tuple[int, int, int]:
    """(stream frames, stream bytes, running streams) summed over the display's clients."""
    frames = nbytes = running = 0
    for machine in client_machines(server):
        stats = getattr(machine, "stats", None)
        frames += getattr(stats, "stream_frames", 0)
        nbytes += getattr(stats, "stream_bytes", 0)
        running += len(getattr(machine, "streams", ()) or ())
    return frames, nbytes, running


def image_types(server: Any) -> dict[str, int]:
    """Images sent so far by type name, summed over the display's clients."""
    out: dict[str, int] = {}
    for machine in client_machines(server):
        for name, n in getattr(getattr(machine, "stats", None), "by_type", {}).items():
            out[name] = out.get(name, 0) + n
    return out


def short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def server_state(server: Any) -> dict[str, Any]:
    """What each display client's machine holds (private attributes; diagnostics only)."""
    try:
        worker = server._core.displays[0]
        now = trio.current_time()
        clients = []
        for client in worker.clients:
            machine = client.machine
            entry: dict[str, Any] = {}
            for name in ("ready", "may_send", "unacked", "streams_refused", "video_quality",
                         "link_bandwidth"):  # fmt: skip
                with contextlib.suppress(Exception):
                    entry[name] = getattr(machine, name)
            pipe = getattr(machine, "pipe", None)
            if pipe is not None:
                entry["pipe_len"] = len(pipe)
                entry["pipe_head"] = [short(op, 120) for op in list(pipe)[:6]]
                entry["inflight"] = short(getattr(pipe, "_inflight", None), 120)
            entry["job"] = short(getattr(machine, "_job", None))
            entry["streams"] = short(getattr(machine, "_streams", None))
            wait_until = getattr(machine, "wait_until", None)
            entry["wait_until_in_s"] = None if wait_until is None else round(wait_until - now, 3)
            rate = getattr(machine, "_rate", None)
            if rate is not None:
                entry["rate"] = {
                    k: short(v, 80) for k, v in vars(rate).items() if not k.startswith("_sent")
                }
            entry["stats"] = short(getattr(machine, "stats", None))
            connection = getattr(client, "connection", None)
            entry["bytes_sent"] = getattr(connection, "bytes_sent", None)
            clients.append(entry)
        return {
            "clients": clients,
            "detector_streams": short(getattr(worker.streams, "streams", None)),
            "queued_commands": worker._receive.statistics().current_buffer_used,
        }
    except Exception as exc:  # diagnostics only
        return {"error": repr(exc)}


async def play(
    server: Any, display: Any, clip: np.ndarray, command: dict[str, Any]
) -> dict[str, Any]:
    """Push ``clip``'s frames at (x, y), paced at ``fps``; see the module docstring."""
    x, y = int(command.get("x", 0)), int(command.get("y", 0))
    fps = float(command.get("fps", 30))
    count = min(int(command.get("count", len(clip))), len(clip))
    frames0, bytes0, _ = stream_counts(server)
    types0 = image_types(server)
    result: dict[str, Any] = {"stream_start_s": None, "streams_max": 0}
    started = time.monotonic()

    async def watch_streams() -> None:
        # Every 5 ms until the first stream (its start time), then every 100 ms: this task
        # runs in the server's process, and its wake-ups are in the server's measured CPU.
        while True:
            running = stream_counts(server)[2]
            result["streams_max"] = max(result["streams_max"], running)
            if running and result["stream_start_s"] is None:
                result["stream_start_s"] = round(time.monotonic() - started, 4)
            await trio.sleep(0.005 if result["stream_start_s"] is None else 0.1)

    pushed = skipped = 0
    late_max = 0.0
    last = started
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_streams)
        index = 0
        while index < count:
            if index == 0:
                started = time.monotonic()
            await display.update(x, y, clip[index])
            pushed += 1
            last = time.monotonic()
            now = trio.current_time()
            late_max = max(late_max, now - (t0 + index / fps))
            following = index + 1
            due = int((now - t0) * fps)
            if due > following:
                skipped += min(due, count) - following
                following = due
            if following < count:
                await trio.sleep_until(t0 + following / fps)
            index = following
        if command.get("clear"):
            await display.update(x, y, np.zeros_like(clip[0]))
        await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    frames1, bytes1, _ = stream_counts(server)
    result.update(
        t_first=started,
        t_last=last,
        pushed=pushed,
        skipped=skipped,
        late_max_ms=round(late_max * 1000, 1),
        stream_frames=frames1 - frames0,
        stream_bytes=bytes1 - bytes0,
        images={k: n - types0.get(k, 0) for k, n in image_types(server).items()},
    )
    return result


async def serve(args: argparse.Namespace) -> int:
    from spice.server import Server

    options: dict[str, Any] = {}
    if args.image_compression is not None:
        options["image_compression"] = args.image_compression
    if args.jpeg_wan_compression is not None:
        options["jpeg_wan_compression"] = args.jpeg_wan_compression
    if args.html5_dir is not None:
        options["html5_dir"] = args.html5_dir
    if args.streaming_video is not None:
        options["streaming_video"] = args.streaming_video
    if args.video_codecs is not None:
        options["video_codecs"] = args.video_codecs
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
                elif name == "load_clip":
                    width, height = int(command["width"]), int(command["height"])
                    raw = await trio.to_thread.run_sync(np.fromfile, command["path"], np.uint8)
                    frames[command["name"]] = raw.reshape(-1, height, width, 4)
                    emit(
                        "loaded",
                        name=command["name"],
                        frames=len(frames[command["name"]]),
                        **ident,
                    )
                elif name == "play":
                    played = await play(server, display, frames[command["name"]], command)
                    emit("played", name=command["name"], **played, **ident)
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
                elif name == "state":
                    emit("state", **server_state(server), **ident)
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
    parser.add_argument("--streaming-video", default=None)
    parser.add_argument("--video-codecs", default=None)
    args = parser.parse_args()
    try:
        return trio.run(serve, args)
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    sys.exit(main())
