"""The agent with spice-html5 in Chromium: resizing the browser window resizes the display
(resize.js sends MONITORS_CONFIG), and a file dropped on the display (filexfer.js, through
its own drop handler) arrives byte-exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trio
from browser_client import Browser, open_browser, require_browser

import spice
from spice.server import find_html5_dir

pytestmark = pytest.mark.e2e

HTML5 = find_html5_dir()


@pytest.fixture(autouse=True)
def _needs_browser() -> None:
    require_browser()
    if HTML5 is None:
        pytest.skip("spice-html5 is not installed (apt install spice-html5, or npm install)")


async def next_event(events: trio.MemoryReceiveChannel, kind: type, timeout: float = 15) -> object:
    with trio.fail_after(timeout):
        while True:
            event = await events.receive()
            if isinstance(event, kind):
                return event


async def connected(browser: Browser, port: int) -> None:
    reply = await browser.goto(f"http://127.0.0.1:{port}/")
    assert reply["status"] == 200
    await browser.wait_state("connected")
    with trio.fail_after(15):
        while (await browser.command("eval", expression="document.body.dataset.agent"))[
            "value"
        ] != "ready":
            await trio.sleep(0.05)


async def test_resizing_the_browser_window_resizes_the_display(server_factory) -> None:
    server = await server_factory(html5_dir=HTML5, displays=((320, 240),))
    display = server.displays[0]
    await display.fill(0, 0, 320, 240, 0x336699)
    async with server.agent_events() as events, open_browser() as browser:
        await connected(browser, server.port_bound)
        await browser.command("viewport", width=700, height=560)
        resized = await next_event(events, spice.DisplayResizeRequested)
        assert resized.accepted and resized.width % 8 == 0 and resized.height % 8 == 0
        assert 500 <= resized.width <= 700 and 300 <= resized.height <= 560, resized
        await display.sync()
        assert (display.width, display.height) == (resized.width, resized.height)
        await display.fill(0, 0, display.width, display.height, 0x884422)
        await display.sync()
        with trio.fail_after(15):
            while True:
                shown = await browser.canvas()
                if shown.shape[:2] == (resized.height, resized.width) and np.all(
                    shown[..., :3] == (0x88, 0x44, 0x22)
                ):
                    break
                await trio.sleep(0.1)
        assert browser.client_errors == []


def content(n: int) -> bytes:
    """The bytes the page builds for the dropped file (same formula in JavaScript)."""
    i = np.arange(n, dtype=np.int64)
    return ((i * 7 + (i >> 8) * 13) & 0xFF).astype(np.uint8).tobytes()


DROP = """(async () => {
    const n = %d;
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = (i * 7 + (i >> 8) * 13) & 0xff;
    const file = new File([bytes], 'dropped.bin', { type: 'application/octet-stream' });
    const transfer = new DataTransfer();
    transfer.items.add(file);
    const area = document.getElementById('spice-area');
    area.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true,
                                               cancelable: true }));
    return true;
})()"""


async def test_a_dropped_file_arrives_byte_exact(server_factory, tmp_path: Path) -> None:
    server = await server_factory(html5_dir=HTML5, file_transfer_dir=tmp_path)
    size = 300_001
    async with server.agent_events() as events, open_browser() as browser:
        await connected(browser, server.port_bound)
        await browser.command("eval", expression=DROP % size)
        received = await next_event(events, spice.FileReceived, timeout=30)
        assert received.name == "dropped.bin" and received.size == size
        assert (tmp_path / "dropped.bin").read_bytes() == content(size)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["dropped.bin"]
        assert browser.client_errors == []
