"""spice-html5 plays our MJPEG streams: an animated region becomes a stream that the page
draws (close to the source while it plays), with no page error, and the canvas ends exact
when the animation stops."""

from __future__ import annotations

import numpy as np
import pytest
import trio
from browser_client import open_browser, require_browser
from test_browser import as_rgb, wait_canvas_equals
from test_browser_codecs import assert_clean
from test_gtk_streams import play_under_a_window, stream_stats, video_frame

from spice.domain.codecs.jpeg import psnr
from spice.server import find_html5_dir

pytestmark = pytest.mark.e2e
HTML5 = find_html5_dir()


@pytest.fixture(autouse=True)
def _needs_browser() -> None:
    require_browser()
    assert HTML5 is not None, "spice-html5 is not installed (scripts/setup.sh --test)"


async def test_an_animated_region_plays_in_spice_html5_and_ends_exact(server_factory) -> None:
    server = await server_factory(streaming_video="filter", html5_dir=HTML5, displays=((480, 360),))
    display = server.displays[0]
    await display.fill(0, 0, 480, 360, 0x203040)
    async with open_browser() as browser:
        await browser.goto(f"http://127.0.0.1:{server.port_bound}/")
        await browser.wait_state("connected")
        await wait_canvas_equals(browser, display)
        quality = []
        for i in range(45):
            await display.update(60, 40, video_frame(i))
            await trio.sleep(1 / 30)
            if i in (30, 40):
                await display.sync()
                await trio.sleep(0.2)
                shown = await browser.canvas()
                expected = display.framebuffer
                expected[..., :3] = as_rgb(expected)
                quality.append(psnr(shown[40:280, 60:380], expected[40:280, 60:380]))
        frames, streams = stream_stats(server)
        assert frames >= 25 and streams == 1, (frames, streams)
        assert min(quality) > 28, quality
        await wait_canvas_equals(browser, display)  # the stream ended: exact again
        assert stream_stats(server)[1] == 0
        assert_clean(browser)


async def test_a_window_across_the_stream_edge_stays_exact_in_spice_html5(server_factory) -> None:
    server = await server_factory(streaming_video="all", html5_dir=HTML5, displays=((640, 480),))
    display = server.displays[0]
    await display.fill(0, 0, 640, 480, 0x203040)
    async with open_browser() as browser:
        await browser.goto(f"http://127.0.0.1:{server.port_bound}/")
        await browser.wait_state("connected")
        await wait_canvas_equals(browser, display)
        await play_under_a_window(server)
        await display.sync()
        await trio.sleep(0.3)
        shown = await browser.canvas()
        expected = as_rgb(display.framebuffer)
        assert np.array_equal(shown[150:250, 330:530, :3], expected[150:250, 330:530])
        await wait_canvas_equals(browser, display)
        assert_clean(browser)
