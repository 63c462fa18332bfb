"""A running stream's frame, when its one viewer would send it at once, is encoded in the same
thread hop as it is copied into the surface: the viewer's job then finds the image ready in
the encode cache, and each frame is encoded once."""

from __future__ import annotations

import contextlib

import rawclient as rc
import trio
from test_fill_ahead_of_stream import frame

from spice.domain.enums import MsgDisplay


async def test_each_frame_is_encoded_once_in_the_hop_that_copies_it(server_factory) -> None:
    server = await server_factory(displays=((640, 480),), streaming_video="all")
    display = server.displays[0]
    worker = server._core.displays[0]
    session = await rc.open_session("127.0.0.1", server.port_bound)
    received: list[int] = []
    try:
        channel = await session.open_display()
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                with contextlib.suppress(rc.Closed):
                    while True:
                        received.append((await channel.recv_msg())[0])

            nursery.start_soon(read)
            i = 0
            with trio.fail_after(10):
                while received.count(MsgDisplay.STREAM_DATA) < 5:
                    await display.update(0, 0, frame(i))
                    i += 1
                    await trio.sleep(1 / 30)
            await trio.sleep(0.2)
            frames0 = received.count(MsgDisplay.STREAM_DATA)
            encodes0, hits0 = worker.encodes, worker.encode_cache.hits
            for j in range(i, i + 12):
                await display.update(0, 0, frame(j))
                await trio.sleep(1 / 15)  # each frame is sent before the next comes
            await trio.sleep(0.2)
            sent = received.count(MsgDisplay.STREAM_DATA) - frames0
            assert sent == 12
            assert worker.encode_cache.hits - hits0 == 12  # every job found its frame ready
            assert worker.encodes - encodes0 == 12  # and nothing was encoded twice
            nursery.cancel_scope.cancel()
    finally:
        await session.aclose()
