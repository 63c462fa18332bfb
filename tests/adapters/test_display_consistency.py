"""A client that applies what the display channel sends ends with the application's pixels,
even when pixels are read for one client while a COPY_BITS is being applied to the surface in
a worker thread (a read that sees the move before its pipe knows of it would make the client
move those pixels twice)."""

from __future__ import annotations

import contextlib
import time

import numpy as np
import rawclient as rc
import trio
from display_peer import DisplayPeer

from spice.domain.display.surface import Surface


async def test_reads_during_a_threaded_copy_bits_stay_consistent(
    server_factory, monkeypatch
) -> None:
    original = Surface.copy_bits

    def slow_copy_bits(self: Surface, src_x: int, src_y: int, dest):  # type: ignore[no-untyped-def]
        done = original(self, src_x, src_y, dest)
        time.sleep(0.01)  # widen the window between the move and its recording in the pipes
        return done

    monkeypatch.setattr(Surface, "copy_bits", slow_copy_bits)
    server = await server_factory(displays=((320, 240),))
    display = server.displays[0]
    mirror = DisplayPeer()  # parses every display message and image by hand
    session = await rc.open_session("127.0.0.1", server.port_bound)
    try:
        channel = await session.open_display(wait_mark=False)
        async with trio.open_nursery() as nursery:

            async def follow() -> None:
                with contextlib.suppress(rc.Closed):
                    while True:
                        mirror.apply(*await channel.recv_msg())

            nursery.start_soon(follow)
            rng = np.random.default_rng(5)
            for _ in range(40):
                patch = rng.integers(0, 256, (30, 60, 4), dtype=np.uint8)
                await display.update(int(rng.integers(0, 260)), int(rng.integers(0, 210)), patch)
                await display.scroll(0, 0, 320, 240, dy=-3)  # 76,800 px: copied in a thread
                await trio.sleep(0.003)
            await display.sync()
            expected = display.framebuffer
            with trio.fail_after(10):
                while mirror.pixels is None or not np.array_equal(
                    mirror.pixels[..., :3], expected[..., :3]
                ):
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
    finally:
        await session.aclose()
