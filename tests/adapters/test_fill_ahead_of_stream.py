"""A fill beside a running stream (a key's echo) that reaches the client's pipe while the
stream's next frame is out being encoded is written ahead of that frame, not behind its bytes:
over a slow link those bytes are a frame's time on the wire."""

from __future__ import annotations

from typing import Any

import rawclient as rc
import trio
from stream_viewer import frame, stream_viewer

from spice.domain.enums import MsgDisplay

ECHO = (400, 300, 40, 20)
MSG_FILL = rc.MSG_DISPLAY_DRAW_FILL


async def test_a_fill_that_arrives_while_a_stream_frame_is_out_goes_ahead_of_it(
    server_factory, monkeypatch
) -> None:
    server = await server_factory(displays=((640, 480),), streaming_video="all")
    display = server.displays[0]
    worker = server._core.displays[0]
    async with stream_viewer(server) as viewer:
        received = viewer.received
        mark = len(received)

        # The next frame's job is taken, then held before its encode ...
        taken, release = trio.Event(), trio.Event()
        images_for = worker.images_for

        async def held(job: Any, **kwargs: Any) -> Any:
            if job.stream_id is not None and not release.is_set():
                taken.set()
                await release.wait()
            return await images_for(job, **kwargs)

        monkeypatch.setattr(worker, "images_for", held)
        await display.update(0, 0, frame(viewer.next_frame))
        with trio.fail_after(5):
            await taken.wait()
        # ... while the application draws the echo beside the stream.
        await display.fill(*ECHO, 0x00FF00)
        await display.sync()
        release.set()
        with trio.fail_after(5):
            while not (MSG_FILL in received[mark:] and MsgDisplay.STREAM_DATA in received[mark:]):
                await trio.sleep(0.01)
        after = received[mark:]
        assert after.index(MSG_FILL) < after.index(MsgDisplay.STREAM_DATA), after
