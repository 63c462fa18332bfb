"""A running stream's frame, when its one viewer would send it at once, is encoded in the same
thread hop as it is copied into the surface: the viewer's job then finds the image ready in
the encode cache, and each frame is encoded once."""

from __future__ import annotations

import trio
from stream_viewer import frame, stream_viewer

from spice.domain.enums import MsgDisplay


async def test_each_frame_is_encoded_once_in_the_hop_that_copies_it(server_factory) -> None:
    server = await server_factory(displays=((640, 480),), streaming_video="all")
    display = server.displays[0]
    worker = server._core.displays[0]
    async with stream_viewer(server) as viewer:
        frames0 = viewer.received.count(MsgDisplay.STREAM_DATA)
        encodes0, hits0 = worker.encodes, worker.encode_cache.hits
        for j in range(viewer.next_frame, viewer.next_frame + 12):
            await display.update(0, 0, frame(j))
            await trio.sleep(1 / 15)  # each frame is sent before the next comes
        await trio.sleep(0.2)
        sent = viewer.received.count(MsgDisplay.STREAM_DATA) - frames0
        assert sent == 12
        assert worker.encode_cache.hits - hits0 == 12  # every job found its frame ready
        assert worker.encodes - encodes0 == 12  # and nothing was encoded twice
