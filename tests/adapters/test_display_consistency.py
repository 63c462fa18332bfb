"""A client that applies what the display channel sends ends with the application's pixels,
even when pixels are read for one client while a COPY_BITS is being applied to the surface in
a worker thread (a read that sees the move before its pipe knows of it would make the client
move those pixels twice)."""

from __future__ import annotations

import contextlib
import struct
import time

import numpy as np
import rawclient as rc
import trio
from display_peer import decode_image

from domain.display.surface import Surface


class MirrorClient:
    """Applies SURFACE_CREATE, DRAW_COPY (any image the project decodes), DRAW_FILL and COPY_BITS to a local array,
    parsing the bodies by hand from the protocol layout."""

    def __init__(self) -> None:
        self.pixels = np.zeros((0, 0, 4), np.uint8)

    def apply(self, msg_type: int, body: bytes) -> None:
        if msg_type == rc.MSG_DISPLAY_SURFACE_CREATE:
            _, w, h, _, _ = struct.unpack_from("<5I", body)
            self.pixels = np.zeros((h, w, 4), np.uint8)
        elif msg_type == rc.MSG_DISPLAY_DRAW_COPY:
            _, top, left, bottom, right, clip, src = struct.unpack_from("<I4iBI", body)
            assert clip == 0
            _, img_type, _, w, h = struct.unpack_from("<QBBII", body, src)
            if img_type == 0:
                fmt, _, _, _, stride, _ = struct.unpack_from("<BBIIII", body, src + 18)
                assert fmt == 8 and stride == 4 * w
                start = src + 18 + 18
                rows = np.frombuffer(body[start : start + stride * h], np.uint8).reshape(h, w, 4)
            else:
                (size,) = struct.unpack_from("<I", body, src + 18)
                rows = decode_image(img_type, w, h, body[src + 22 : src + 22 + size])
            self.pixels[top:bottom, left:right, :3] = rows[..., :3]
        elif msg_type == rc.MSG_DISPLAY_DRAW_FILL:
            fill = rc.parse_draw_fill(body)
            c = fill.color
            self.pixels[fill.top : fill.bottom, fill.left : fill.right] = (
                c & 0xFF,
                c >> 8 & 0xFF,
                c >> 16 & 0xFF,
                0,
            )
        elif msg_type == rc.MSG_DISPLAY_COPY_BITS:
            _, top, left, bottom, right, clip, sx, sy = struct.unpack_from("<I4iBii", body)
            h, w = bottom - top, right - left
            block = self.pixels[sy : sy + h, sx : sx + w].copy()
            self.pixels[top:bottom, left:right] = block


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
    mirror = MirrorClient()
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
                while not np.array_equal(mirror.pixels[..., :3], expected[..., :3]):
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
    finally:
        await session.aclose()
