"""spice-html5 plays our streams: an animated region becomes a stream (VP8 by default,
which spice-html5 plays in a <video> above its canvas; MJPEG when the server allows only
that, which it draws on the canvas) that the page shows close to the source while it plays,
with no page error, and the canvas ends exact when the animation stops."""

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


@pytest.mark.parametrize("codec", ["vp8", "mjpeg"])
async def test_an_animated_region_plays_in_spice_html5_and_ends_exact(
    server_factory, codec: str
) -> None:
    server = await server_factory(
        streaming_video="filter",
        html5_dir=HTML5,
        displays=((480, 360),),
        video_codecs=("mjpeg", "vp8") if codec == "vp8" else ("mjpeg",),
    )
    display = server.displays[0]
    await display.fill(0, 0, 480, 360, 0x203040)
    async with open_browser() as browser:
        await browser.goto(f"http://127.0.0.1:{server.port_bound}/")
        await browser.wait_state("connected")
        await wait_canvas_equals(browser, display)
        sources: list[np.ndarray] = []
        seen = []  # (frames behind the newest, PSNR) of what the page shows
        videos = []
        start = trio.current_time()
        for i in range(75):
            await trio.sleep_until(start + i / 30)
            sources.append(video_frame(i))
            await display.update(60, 40, sources[-1])
            if i in (50, 74):  # sampled while it plays: the page shows a recent frame
                videos.append(await browser.video_elements())
                shown = (await browser.shown())[40:280, 60:380]
                scores = [psnr(shown, as_rgb(src)) for src in sources[-20:]]
                best = int(np.argmax(scores))
                seen.append((len(scores) - 1 - best, scores[best]))
        frames, streams = stream_stats(server)
        assert frames >= 40 and streams == 1, (frames, streams)
        assert min(q for _, q in seen) > 28, seen
        assert videos == ([1, 1] if codec == "vp8" else [0, 0])
        await wait_canvas_equals(browser, display)  # the stream ended: exact again
        assert stream_stats(server)[1] == 0
        assert await browser.video_elements() == 0
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
