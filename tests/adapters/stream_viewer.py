"""A raw client watching a display whose area (0, 0, 320, 240) plays as a stream: for tests of
what the server does with a running stream's frames."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import attrs
import numpy as np
import rawclient as rc
import trio

from spice.domain.enums import MsgDisplay

STREAM_BOX = (0, 0, 320, 240)


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


@attrs.define
class StreamViewer:
    #: The type of every message the client got, in order.
    received: list[int]
    #: The index of the next frame to play.
    next_frame: int


@contextlib.asynccontextmanager
async def stream_viewer(server: Any) -> AsyncIterator[StreamViewer]:
    """A raw client on ``server``'s display 0, once ``frame``s played there at 30 fps made
    the area a stream and five of its frames arrived."""
    display = server.displays[0]
    session = await rc.open_session("127.0.0.1", server.port_bound)
    try:
        channel = await session.open_display()
        viewer = StreamViewer([], 0)
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                with contextlib.suppress(rc.Closed):
                    while True:
                        viewer.received.append((await channel.recv_msg())[0])

            nursery.start_soon(read)
            with trio.fail_after(10):
                while viewer.received.count(MsgDisplay.STREAM_DATA) < 5:
                    await display.update(0, 0, frame(viewer.next_frame))
                    viewer.next_frame += 1
                    await trio.sleep(1 / 30)
            await trio.sleep(0.2)  # everything sent so far has arrived (the stream lives on)
            yield viewer
            nursery.cancel_scope.cancel()
    finally:
        await session.aclose()
