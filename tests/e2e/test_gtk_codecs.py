"""spice-gtk decodes every image codec we send: each lossless codec, forced one at a time,
gives the client exactly the application's pixels; JPEG stays within a PSNR bound; a repeated
picture comes from the client's image cache; pushing an unchanged frame sends nothing."""

from __future__ import annotations

import pytest
import trio
from content import cache_hits, desktop_like, display_bytes, photo_like, sent_types
from gtk_client import open_gtk_client
from serving import running_server, wait_same

from spice.domain.codecs.jpeg import psnr

#: Seconds between the redraws of one area: three images this far apart stay under
#: ``VOLATILE_RATE`` and none follows another within ``QUICK_REDRAW``.
REDRAW_GAP = 0.3

CASES = [
    ("off", desktop_like, "BITMAP"),
    ("lz", desktop_like, "LZ_RGB"),
    ("lz4", desktop_like, "LZ4"),
    ("quic", photo_like, "QUIC"),
    ("auto_glz", desktop_like, "LZ_RGB"),
    ("auto_lz", photo_like, "QUIC"),
]


@pytest.mark.parametrize(("mode", "content", "expected"), CASES)
async def test_each_lossless_codec_is_pixel_exact_in_spice_gtk(
    mode: str, content: object, expected: str
) -> None:
    async with running_server(640, 480, image_compression=mode) as server:
        display = server.displays[0]
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mark")
            await wait_same(client, display)
            for i in range(3):
                # Apart enough not to be taken for video: an area redrawn at video rates on
                # a fast link skips the content check (domain.display.volatility), and the
                # auto modes would send it as LZ4 or LZ_RGB instead of the codec under test.
                await trio.sleep(REDRAW_GAP)
                await display.update(0, 0, content(480, 640, i))  # type: ignore[operator]
                await wait_same(client, display)
            await display.update(50, 70, content(100, 300, 9))  # type: ignore[operator]
            await wait_same(client, display)
            types = sent_types(server)
            assert types.get(expected, 0) >= 4, types
            if not mode.startswith("auto"):  # auto sends the flat first screen as LZ
                assert set(types) <= {expected, "BITMAP"}, types


async def test_jpeg_always_is_close_to_the_source() -> None:
    async with running_server(
        640, 480, image_compression="auto_glz", jpeg_wan_compression="always"
    ) as server:
        display = server.displays[0]
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mark")
            source = photo_like(480, 640, 3)
            before = display_bytes(server)
            await display.update(0, 0, source)
            await display.sync()
            shown = await client.screenshot()
            with trio.move_on_after(10):
                while psnr(shown, source) < 30:
                    await trio.sleep(0.1)
                    shown = await client.screenshot()
            assert psnr(shown, source) >= 30
            assert sent_types(server).get("JPEG", 0) >= 1
            assert display_bytes(server) - before < source.nbytes / 8


async def test_a_repeated_picture_is_a_cache_hit_and_unchanged_frames_are_free() -> None:
    async with running_server(640, 480, image_compression="lz") as server:
        display = server.displays[0]
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mark")
            a, b = desktop_like(120, 200, 1), photo_like(120, 200, 2)
            for _ in range(3):
                await display.update(30, 40, a)
                await wait_same(client, display)
                await display.update(30, 40, b)
                await wait_same(client, display)
            hits = cache_hits(server)
            assert hits >= 4
            # The whole frame again, unchanged: nothing goes on the wire.
            frame = display.framebuffer
            before = display_bytes(server)
            await display.update(0, 0, frame)
            await display.sync()
            await wait_same(client, display)
            assert display_bytes(server) - before < 1024
