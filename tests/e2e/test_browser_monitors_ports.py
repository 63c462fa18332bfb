"""spice-html5 against a display with two monitors and an open port: it shows the whole
primary (it has no notion of heads), opens the port channel too, and nothing it receives
raises in the page."""

from __future__ import annotations

import numpy as np
import pytest
import trio
from browser_client import open_browser, require_browser

import spice
from spice.server import find_html5_dir

pytestmark = pytest.mark.e2e

HTML5 = find_html5_dir()


@pytest.fixture(autouse=True)
def _needs_browser() -> None:
    require_browser()
    if HTML5 is None:
        pytest.skip("spice-html5 is not installed (apt install spice-html5, or npm install)")


async def test_html5_shows_the_whole_primary_of_two_monitors_and_opens_the_port() -> None:
    server = spice.Server(addr="127.0.0.1", port=0, disable_ticketing=True, html5_dir=HTML5)
    display = server.add_display(640, 240, monitors=[(0, 0, 320, 240), (320, 0, 320, 240)])
    port = server.open_port("org.example.echo")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        await display.fill(0, 0, 320, 240, 0xCC3311)
        await display.fill(320, 0, 320, 240, 0x11CC33)
        async with open_browser() as browser:
            await browser.goto(f"http://127.0.0.1:{server.port_bound}/")
            await browser.wait_state("connected")
            with trio.fail_after(15):
                opened = await port.next_event()
            assert isinstance(opened, spice.PortOpened)
            await port.send_all(b"hello, browser")
            await display.sync()
            expected = display.framebuffer[..., [2, 1, 0]]
            with trio.fail_after(10):
                while True:
                    shown = await browser.canvas()
                    if shown.shape[:2] == (240, 640) and np.array_equal(shown[..., :3], expected):
                        break
                    await trio.sleep(0.1)
            assert len(browser.of("websocket")) == 5  # main, display, inputs, cursor, port
            assert not browser.client_errors, browser.describe()
        nursery.cancel_scope.cancel()
