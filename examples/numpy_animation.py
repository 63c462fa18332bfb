"""A numpy animation: a moving colour plasma, pushed as whole frames at about 20 fps.

Only the pixels that changed travel; an area that keeps changing at video rates becomes an
MJPEG stream (``streaming_video="all"``), and clients get it losslessly once it stops.
"""

import numpy as np
import trio

import spice

WIDTH, HEIGHT = 480, 320


def plasma(t: float) -> np.ndarray:
    """An (h, w, 3) RGB frame for time ``t``."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32) / 40.0
    v = np.sin(x + t) + np.sin((y + t) / 2) + np.sin((x + y + t) / 2)
    v += np.sin(np.sqrt((x - WIDTH / 80) ** 2 + (y - HEIGHT / 80) ** 2) + t)
    phase = np.stack([v, v + 2.1, v + 4.2], axis=-1)
    return ((np.sin(phase * np.pi / 2) + 1) * 127.5).astype(np.uint8)


async def main() -> None:
    server = spice.Server(port=5900, disable_ticketing=True, streaming_video="all")
    display = server.add_display(WIDTH, HEIGHT)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        print("serving on", server.addresses, flush=True)
        t = 0.0
        while True:
            await display.update(0, 0, plasma(t))
            t += 0.15
            await trio.sleep(1 / 20)


if __name__ == "__main__":
    trio.run(main)
