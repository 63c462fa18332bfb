"""Where the event loop's time goes for one stream frame: a deterministic profile.

    .venv/bin/python benchmarks/frame_profile.py [--frames 300] [--top 30] [--no-profile]

One `spice.Server` on 127.0.0.1 with a 1920x1080 display and streaming `all`, one raw client
(`tests/rawclient.py`: it reads every message and acks like a real one), and a 1280x720 moving
picture pushed at (320, 180) at 30 frames a second. Once the area streams, cProfile watches the
event-loop thread (the encoder threads are not profiled) for ``--frames`` frames. Prints the
stream frames the client got, the event-loop thread's CPU per frame (inflated by the profiler,
about twice), the Python calls per frame, and the functions by own and by cumulative time.
With ``--no-profile`` it prints only the event-loop thread's CPU per frame, unprofiled, and
the whole process's (the encoder threads too; both include the raw client's reading).

The pictures are generated (a gradient with a moving disc and noise, new every frame), so
nothing needs downloading. Everything runs in this process; it stops what it starts.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

W, H = 1280, 720
FPS = 30


def pictures(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:H, 0:W]
    out = []
    for i in range(count):
        img = np.zeros((H, W, 4), np.uint8)
        img[..., 0] = (xx + 5 * i) % 256
        img[..., 1] = (yy + 3 * i) % 256
        cx, cy = 100 + (i * 17) % (W - 200), 100 + (i * 11) % (H - 200)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < 80**2, 2] = 255
        img[..., :3] |= rng.integers(0, 8, (H, W, 3), dtype=np.uint8)
        out.append(img)
    return out


async def run(frames: int, top: int, profiled: bool = True) -> None:
    import rawclient as rc

    import spice
    from spice.domain.enums import MsgDisplay

    clip = pictures(30)
    async with trio.open_nursery() as nursery:
        server = spice.Server(
            addr="127.0.0.1", port=0, disable_ticketing=True, streaming_video="all"
        )
        display = server.add_display(1920, 1080)
        await nursery.start(server.serve)
        await server.codecs_ready()
        session = await rc.open_session("127.0.0.1", server.port_bound)
        channel = await session.open_display()
        received: list[int] = []

        async def read() -> None:
            with contextlib.suppress(rc.Closed):
                while True:
                    received.append((await channel.recv_msg())[0])

        nursery.start_soon(read)

        async def push(count: int) -> None:
            start = trio.current_time()
            for i in range(count):
                await display.update(320, 180, clip[i % len(clip)])
                await trio.sleep_until(start + (i + 1) / FPS)

        await push(FPS)  # the area becomes a stream
        before = received.count(MsgDisplay.STREAM_DATA)
        profile = cProfile.Profile()
        cpu, process = time.thread_time(), time.process_time()
        if profiled:
            profile.enable()
        await push(frames)
        if profiled:
            profile.disable()
        cpu, process = time.thread_time() - cpu, time.process_time() - process
        await trio.sleep(0.2)
        sent = received.count(MsgDisplay.STREAM_DATA) - before
        print(f"stream frames received: {sent} of {frames} pushed")
        if not profiled:
            print(f"event-loop thread CPU per frame: {cpu / frames * 1e3:.2f} ms")
            print(f"process CPU per frame: {process / frames * 1e3:.2f} ms")
        else:
            stats = pstats.Stats(profile)
            calls = sum(entry[1] for entry in stats.stats.values())  # type: ignore[attr-defined]
            print(f"event-loop thread CPU per frame (profiled): {cpu / frames * 1e3:.2f} ms")
            print(f"Python calls per frame: {calls / frames:.0f}")
            stats.sort_stats("tottime").print_stats(top)
            stats.sort_stats("cumulative").print_stats(top)
        await session.aclose()
        nursery.cancel_scope.cancel()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--no-profile", action="store_true", help="CPU per frame only")
    args = parser.parse_args()
    trio.run(run, args.frames, args.top, not args.no_profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
