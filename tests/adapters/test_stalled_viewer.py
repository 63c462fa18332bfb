"""A viewer that stops reading for 10 s while the application draws at 60 fps: the server's
memory for it stays below one surface, another viewer keeps its frame rate, and when the first
one reads again it has the current picture within a second."""

from __future__ import annotations

import contextlib
import gc
import tracemalloc

import numpy as np
import rawclient as rc
import trio
from display_peer import DisplayPeer

W, H = 640, 480
STALL = 10.0


def frame(i: int) -> np.ndarray:
    """A moving bar over a gradient, different every frame (sent as images, not a stream)."""
    img = np.zeros((240, 320, 4), np.uint8)
    img[..., 0] = np.arange(320, dtype=np.uint8)[None, :]
    img[:, (i * 7) % 300 : (i * 7) % 300 + 20, 1] = 255
    img[(i * 3) % 220 : (i * 3) % 220 + 20, :, 2] = 200
    return img


def server_memory() -> tracemalloc.Snapshot:
    """What the server holds: every allocation but the test's own clients'."""
    mine = tracemalloc.Filter(False, "*/tests/*")
    return tracemalloc.take_snapshot().filter_traces([mine])


class Viewer:
    def __init__(self, channel: rc.Channel) -> None:
        self.channel = channel
        self.peer = DisplayPeer()
        self.frames: list[float] = []
        self.reading = trio.Event()
        self.reading.set()

    async def run(self) -> None:
        with contextlib.suppress(rc.Closed):
            while True:
                await self.reading.wait()
                msg_type, body = await self.channel.recv_msg()
                if msg_type in (3, 4):  # SET_ACK, PING: answered by the channel itself
                    continue
                self.peer.apply(msg_type, body)
                if msg_type == rc.MSG_DISPLAY_DRAW_COPY:
                    self.frames.append(trio.current_time())

    def fps(self, start: float, end: float) -> float:
        return sum(1 for t in self.frames if start <= t < end) / (end - start)


async def test_a_stalled_viewer_costs_little_and_catches_up(server_factory) -> None:
    server = await server_factory(displays=((W, H),), streaming_video="off", send_timeout=30)
    display = server.displays[0]
    await display.fill(0, 0, W, H, 0x101010)
    sessions = [await rc.open_session("127.0.0.1", server.port_bound) for _ in range(2)]
    try:
        viewers = [Viewer(await s.open_display(wait_mark=False)) for s in sessions]
        stalled, steady = viewers
        async with trio.open_nursery() as nursery:
            for v in viewers:
                nursery.start_soon(v.run)
            i = 0

            async def draw_for(seconds: float) -> None:
                nonlocal i
                end = trio.current_time() + seconds
                while trio.current_time() < end:
                    await display.update(160, 120, frame(i))
                    i += 1
                    await trio.sleep(1 / 60)

            # Traced from the start: tracing slows every allocation, and both rates compared
            # below must pay for it alike.
            tracemalloc.start()
            try:
                await draw_for(1.0)  # warm up
                t0 = trio.current_time()
                await draw_for(2.0)
                t1 = trio.current_time()
                before_fps = steady.fps(t0, t1)
                gc.collect()
                base = server_memory()
                stalled.reading = trio.Event()  # stops reading (its socket fills up)
                await draw_for(STALL)
                t2 = trio.current_time()
                gc.collect()
                end = server_memory()
                grown = sum(stat.size_diff for stat in end.compare_to(base, "filename"))
            finally:
                tracemalloc.stop()
            stall_fps = steady.fps(t1 + 1, t2)
            print(f"stall: grew {grown} B, fps {before_fps:.1f} -> {stall_fps:.1f}")
            assert grown < W * H * 4, grown
            assert stall_fps >= 0.8 * before_fps, (before_fps, stall_fps)

            stalled.reading.set()  # reads again; the application stops drawing
            await display.sync()
            expected = display.framebuffer
            resumed = trio.current_time()
            with trio.fail_after(5):
                while stalled.peer.pixels is None or not np.array_equal(
                    stalled.peer.pixels[..., :3], expected[..., :3]
                ):
                    await trio.sleep(0.01)
            print(f"caught up in {trio.current_time() - resumed:.3f} s")
            assert trio.current_time() - resumed < 1.0
            nursery.cancel_scope.cancel()
    finally:
        for s in sessions:
            await s.aclose()
