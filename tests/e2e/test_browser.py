"""spice-html5 in headless Chromium against our server: the page we serve, WebSocket on the
same port as native SPICE, pixels on the lossless path, keyboard and mouse, passwords, and
``wss://`` on the TLS port."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import numpy as np
import pytest
import rawclient
import trio
from browser_client import Browser, open_browser, require_browser
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import spice
from spice.adapters.html5_page import find_client_module
from spice.server import HTML5_DIRS, find_html5_dir

pytestmark = pytest.mark.e2e

HTML5 = find_html5_dir()
#: Every spice-html5 found here: Debian's package (main.js at the top) and the npm install
#: (under src/); the display test runs against each.
INSTALLED = {
    "debian" if str(d).startswith("/usr") else "npm": d
    for d in reversed(HTML5_DIRS[:2])
    if find_client_module(d) is not None
}


@pytest.fixture(autouse=True)
def _needs_browser() -> None:
    require_browser()
    if HTML5 is None:
        pytest.skip("spice-html5 is not installed (apt install spice-html5, or npm install)")


def pattern(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    img[..., 3] = 0
    return img


def as_rgb(bgrx: np.ndarray) -> np.ndarray:
    return bgrx[..., [2, 1, 0]]


async def wait_canvas_equals(
    browser: Browser, display: spice.Display, timeout: float = 10.0
) -> np.ndarray:
    """Poll the canvas until its RGB equals the display's framebuffer (alpha opaque)."""
    await display.sync()
    expected = as_rgb(display.framebuffer)
    shown = np.zeros((0, 0, 4), np.uint8)
    with trio.move_on_after(timeout):
        while True:
            shown = await browser.canvas()
            if shown.shape[:2] == expected.shape[:2] and np.array_equal(shown[..., :3], expected):
                assert (shown[..., 3] == 255).all()
                return shown
            await trio.sleep(0.1)
    if shown.shape[:2] != expected.shape[:2]:
        browser.fail(f"canvas is {shown.shape[:2]}, display is {expected.shape[:2]}")
    differ = int(np.count_nonzero(np.any(shown[..., :3] != expected, axis=2)))
    browser.fail(f"canvas never equalled the framebuffer: {differ} pixels differ")


async def next_event(
    events: trio.MemoryReceiveChannel, kind: type, timeout: float = 5.0, **fields: object
) -> object:
    """The next input event of ``kind`` with ``fields``; the others before it are skipped."""
    skipped = []
    with trio.move_on_after(timeout):
        async for event in events:
            if isinstance(event, kind) and all(getattr(event, k) == v for k, v in fields.items()):
                return event
            skipped.append(event)
    raise AssertionError(f"no {kind.__name__} with {fields} in {timeout} s; got {skipped}")


@pytest.mark.parametrize("html5", sorted(INSTALLED))
async def test_page_on_the_spice_port_shows_the_display_and_sends_input(
    server_factory, html5: str
) -> None:
    server = await server_factory(html5_dir=INSTALLED[html5], displays=((320, 240),))
    display = server.displays[0]
    await display.update(0, 0, pattern(240, 320, 1))
    await display.fill(20, 30, 100, 50, 0x3366CC)
    port = server.port_bound
    async with server.input_events() as events, open_browser() as browser:
        reply = await browser.goto(f"http://127.0.0.1:{port}/")
        assert reply["status"] == 200
        await browser.wait_state("connected")
        await wait_canvas_equals(browser, display)
        with trio.move_on_after(5):
            while len(browser.of("websocket")) < 5:
                await trio.sleep(0.05)
        sockets = browser.of("websocket")
        assert sockets and all(e["url"] == f"ws://127.0.0.1:{port}/websockify" for e in sockets)
        # main, display, inputs, cursor, playback: each its own WebSocket (no record: see
        # test_browser_audio.py)
        assert len(sockets) == 5

        # The same port still takes a native SPICE client meanwhile.
        session = await rawclient.open_session("127.0.0.1", port)
        await session.aclose()

        # Updates after the first frame arrive too.
        await display.update(100, 100, pattern(60, 90, 2))
        await display.scroll(0, 0, 320, 240, dy=-7)
        await wait_canvas_equals(browser, display)

        await browser.press("a")
        down = await next_event(events, spice.KeyEvent, scancode=0x1E, pressed=True)
        up = await next_event(events, spice.KeyEvent, scancode=0x1E, pressed=False)
        assert (down, up) == (spice.KeyEvent(0x1E, True), spice.KeyEvent(0x1E, False))

        await browser.click(57, 43)
        press = await next_event(events, spice.MouseButtonEvent, pressed=True)
        assert press.button == 1  # left
        release = await next_event(events, spice.MouseButtonEvent, pressed=False)
        assert release.button == 1
        await browser.command("move", x=200, y=150)
        position = await next_event(events, spice.MousePositionEvent, x=200, y=150)
        assert position.display_id == 0

        assert browser.client_errors == [], browser.describe()
        assert not browser.of("dialog")


async def test_password_from_the_page(server_factory) -> None:
    server = await server_factory(html5_dir=HTML5, password="s3cret pass")
    display = server.displays[0]
    await display.update(0, 0, pattern(240, 320, 3))
    url = f"http://127.0.0.1:{server.port_bound}/"
    async with open_browser() as browser:
        await browser.goto(url)
        await browser.wait_state("login")
        assert (await browser.state())["loginVisible"]

        await browser.login("wrong")
        await browser.wait_state("error")
        state = await browser.state()
        assert "Permission denied" in state["status"] and state["statusVisible"], state
        assert state["loginVisible"]
        assert server.client_count == 0

        # The server keeps serving: a native client with the right password gets in...
        session = await rawclient.open_session("127.0.0.1", server.port_bound, "s3cret pass")
        await session.aclose()

        # ...and so does the page, on a second try.
        await browser.login("s3cret pass")
        await browser.wait_state("connected")
        await wait_canvas_equals(browser, display)
        assert not browser.of("dialog")
        assert not browser.of("pageerror")


def spki_pin(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


async def test_wss_on_the_tls_port(server_factory, x509_dir) -> None:
    # Every channel must be secure: the page only works if wss:// counts as TLS.
    server = await server_factory(
        html5_dir=HTML5, tls_port=0, x509_dir=x509_dir, tls_channels=["default"]
    )
    display = server.displays[0]
    await display.update(0, 0, pattern(240, 320, 4))
    tls_port = server.tls_port_bound
    pin = spki_pin((Path(x509_dir) / "server-cert.pem").read_bytes())
    async with open_browser(trust_spki=pin) as browser:
        reply = await browser.goto(f"https://127.0.0.1:{tls_port}/")
        assert reply["status"] == 200
        await browser.wait_state("connected")
        await wait_canvas_equals(browser, display)
        sockets = browser.of("websocket")
        assert sockets and all(
            e["url"] == f"wss://127.0.0.1:{tls_port}/websockify" for e in sockets
        )
        assert browser.client_errors == [], browser.describe()

        # The plain port refuses the same page's channels: they must be secure.
        await browser.goto(f"http://127.0.0.1:{server.port_bound}/")
        await browser.wait_state("error")
        status = (await browser.state())["status"]
        assert "link error 5" in status and "https://" in status, status  # NEED_SECURED
