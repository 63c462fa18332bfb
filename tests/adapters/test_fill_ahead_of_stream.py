"""A fill beside a running stream (a key's echo) that reaches the client's pipe while the
stream's next frame is out being encoded is written ahead of that frame, not behind its bytes:
over a slow link those bytes are a frame's time on the wire."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import rawclient as rc
import trio

from spice.domain.enums import MsgDisplay

STREAM_BOX = (0, 0, 320, 240)
ECHO = (400, 300, 40, 20)
MSG_FILL = rc.MSG_DISPLAY_DRAW_FILL


def frame(i: int) -> np.ndarray:
    """Natural-looking motion: a gradient with a moving bright disc, new every frame."""
    _, _, w, h = STREAM_BOX
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 4), np.uint8)
    img[..., 0] = (xx + 3 * i) % 256
    img[..., 1] = (yy * 2 + i) % 256
    cx, cy = 40 + (i * 9) % (w - 80), 40 + (i * 5) % (h - 80)
    img[(xx - cx) ** 2 + (yy - cy) ** 2 < 900, 2] = 255
    return img


async def test_a_fill_that_arrives_while_a_stream_frame_is_out_goes_ahead_of_it(
    server_factory, monkeypatch
) -> None:
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
            # Play until the area is a stream and its frames flow.
            i = 0
            with trio.fail_after(10):
                while received.count(MsgDisplay.STREAM_DATA) < 5:
                    await display.update(0, 0, frame(i))
                    i += 1
                    await trio.sleep(1 / 30)
            await trio.sleep(0.2)  # everything sent so far has arrived (the stream lives on)
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
            await display.update(0, 0, frame(i))
            with trio.fail_after(5):
                await taken.wait()
            # ... while the application draws the echo beside the stream.
            await display.fill(*ECHO, 0x00FF00)
            await display.sync()
            release.set()
            with trio.fail_after(5):
                while not (
                    MSG_FILL in received[mark:] and MsgDisplay.STREAM_DATA in received[mark:]
                ):
                    await trio.sleep(0.01)
            after = received[mark:]
            assert after.index(MSG_FILL) < after.index(MsgDisplay.STREAM_DATA), after
            nursery.cancel_scope.cancel()
    finally:
        await session.aclose()
