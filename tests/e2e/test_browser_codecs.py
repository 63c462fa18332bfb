"""spice-html5 in headless Chromium decodes every image codec it supports: LZ_RGB and QUIC
forced one at a time (and chosen by content in auto) give the canvas exactly the
application's pixels; JPEG stays within a PSNR bound; a repeated picture comes from the
browser's image cache; and the page logs no error throughout."""

from __future__ import annotations

import numpy as np
import pytest
import trio
from browser_client import Browser, open_browser, require_browser
from content import cache_hits, desktop_like, photo_like, sent_types
from test_browser import as_rgb, wait_canvas_equals

from spice.domain.codecs.jpeg import psnr
from spice.server import find_html5_dir

pytestmark = pytest.mark.e2e
HTML5 = find_html5_dir()


@pytest.fixture(autouse=True)
def _needs_browser() -> None:
    require_browser()
    assert HTML5 is not None, "spice-html5 is not installed (scripts/setup.sh --test)"


def assert_clean(browser: Browser) -> None:
    """No error, and none of spice-html5's "FIXME" warnings (an image it could not decode,
    a cache id it did not find)."""
    assert not browser.client_errors, browser.describe()
    fixme = [e for e in browser.of("console") if "FIXME" in str(e.get("text", ""))]
    assert not fixme, fixme


#: Seconds between the redraws of one area: two images this far apart stay under
#: ``VOLATILE_RATE`` and neither follows another within ``QUICK_REDRAW``.
REDRAW_GAP = 0.3

CASES = [
    ("lz", desktop_like, "LZ_RGB"),
    ("lz", photo_like, "LZ_RGB"),
    ("quic", photo_like, "QUIC"),
    ("quic", desktop_like, "QUIC"),
    ("auto_glz", photo_like, "QUIC"),
    ("off", desktop_like, "BITMAP"),
]


@pytest.mark.parametrize(("mode", "content", "expected"), CASES)
async def test_each_lossless_codec_is_pixel_exact_in_spice_html5(
    server_factory, mode: str, content: object, expected: str
) -> None:
    server = await server_factory(image_compression=mode, html5_dir=HTML5, displays=((480, 320),))
    display = server.displays[0]
    # Not black: a canvas not yet drawn (transparent black) must not pass for the first frame.
    await display.fill(0, 0, 480, 320, 0x203040)
    async with open_browser() as browser:
        await browser.goto(f"http://127.0.0.1:{server.port_bound}/")
        await browser.wait_state("connected")
        await wait_canvas_equals(browser, display)
        for i in range(2):
            # Apart enough not to be taken for video: an area redrawn at video rates on a
            # fast link skips the content check (domain.display.volatility), and auto_glz
            # would send LZ_RGB instead of the codec under test.
            await trio.sleep(REDRAW_GAP)
            await display.update(0, 0, content(320, 480, i))  # type: ignore[operator]
            await wait_canvas_equals(browser, display)
        await display.update(40, 30, content(100, 200, 7))  # type: ignore[operator]
        await wait_canvas_equals(browser, display)
        assert sent_types(server).get(expected, 0) >= 3, sent_types(server)
        assert_clean(browser)


async def test_jpeg_in_spice_html5_is_close_to_the_source(server_factory) -> None:
    server = await server_factory(
        jpeg_wan_compression="always", html5_dir=HTML5, displays=((480, 320),)
    )
    display = server.displays[0]
    source = photo_like(320, 480, 5)
    await display.fill(0, 0, 480, 320, 0x203040)
    async with open_browser() as browser:
        await browser.goto(f"http://127.0.0.1:{server.port_bound}/")
        await browser.wait_state("connected")
        await wait_canvas_equals(browser, display)
        await display.update(0, 0, source)
        await display.sync()
        expected = np.zeros_like(source)
        expected[..., :3] = as_rgb(source)
        quality = 0.0
        with trio.move_on_after(10):
            while quality < 30:
                await trio.sleep(0.1)
                quality = psnr(await browser.canvas(), expected)
        assert quality >= 30, quality
        assert sent_types(server).get("JPEG", 0) >= 1, sent_types(server)
        assert_clean(browser)


async def test_a_repeated_picture_comes_from_the_browser_cache(server_factory) -> None:
    server = await server_factory(image_compression="lz", html5_dir=HTML5, displays=((480, 320),))
    display = server.displays[0]
    a, b = desktop_like(100, 160, 1), photo_like(100, 160, 2)
    await display.fill(0, 0, 480, 320, 0x203040)
    async with open_browser() as browser:
        await browser.goto(f"http://127.0.0.1:{server.port_bound}/")
        await browser.wait_state("connected")
        await wait_canvas_equals(browser, display)  # the first screen is out: a, b go alone
        for _ in range(3):
            await display.update(20, 20, a)
            await wait_canvas_equals(browser, display)
            await display.update(20, 20, b)
            await wait_canvas_equals(browser, display)
        assert cache_hits(server) >= 4
        assert_clean(browser)
