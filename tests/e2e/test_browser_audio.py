"""spice-html5 in headless Chromium plays our Opus: its playback channel announces the Opus cap
(MediaSource says it can play WebM Opus), gets OPUS mode, builds its WebM stream in a
SourceBuffer and plays it: the <audio> element's buffered range and clock move with the
stream, and the sound it decodes has the application's tone at its loudest frequency. A
second stream after a STOP plays in a fresh SourceBuffer. The page logs no error throughout
(the record channel, which spice-html5 lacks and would report, is not offered to it)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import trio
from browser_client import Browser, open_browser, require_browser
from test_browser import INSTALLED
from test_browser_codecs import assert_clean

import spice
from spice.domain.enums import AudioDataMode, PlaybackCap

pytestmark = pytest.mark.e2e
OPUS_WEBM = 'audio/webm; codecs="opus"'


@pytest.fixture(autouse=True)
def _needs_browser() -> None:
    require_browser()
    assert INSTALLED, "spice-html5 is not installed (scripts/setup.sh --test)"


def tone(freq: float, seconds: float, rate: int = 48000, amplitude: int = 12000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (np.sin(2 * np.pi * freq * t) * amplitude).astype(np.int16)
    return np.repeat(mono[:, None], 2, axis=1)


def buffered_end(media: dict[str, Any]) -> float:
    audio = media.get("audio")
    return max((end for _start, end in audio["buffered"]), default=0.0) if audio else 0.0


async def play_and_watch(
    server: spice.Server, browser: Browser, freq: float, seconds: float
) -> dict[str, Any]:
    """Play a tone while polling the page; returns the last snapshot taken while it played,
    with the loudest frequencies heard in ``heard``."""
    heard: list[float] = []
    last: dict[str, Any] = {}
    # playback.js drops the frames that arrive before its MediaSource opens (it has no
    # SourceBuffer to put them in yet), so the tone starts once the page has one: how long
    # Chromium takes to open it is the machine's business, not what is tested here.
    buffers = len((await browser.media())["sourceBuffers"])
    server.playback.start(48000, 2)
    with trio.fail_after(10):
        while len((await browser.media())["sourceBuffers"]) == buffers:
            await trio.sleep(0.02)
    async with trio.open_nursery() as nursery:
        done = trio.Event()

        async def play() -> None:
            await server.playback.write(tone(freq, seconds))
            done.set()

        nursery.start_soon(play)
        appends, quiet = -1, 0
        with trio.fail_after(seconds + 10):
            while True:
                await trio.sleep(0.1)
                media = await browser.media()
                audio = media.get("audio")
                if audio is None:
                    continue
                last = media
                # The analyser's window is 8192 samples (170 ms): count it once it is full.
                loud = audio["peak"]["db"] is not None and audio["peak"]["db"] > -60
                if audio["currentTime"] > 0.3 and loud:
                    heard.append(audio["peak"]["hz"])
                quiet = quiet + 1 if media["appends"] == appends else 0
                appends = media["appends"]
                # Everything appended (a STOP would drop what is still on its way) and played.
                played = audio["currentTime"] >= buffered_end(media) - 0.3
                if done.is_set() and quiet >= 3 and played:
                    break
    server.playback.stop()
    last["heard"] = heard
    return last


@pytest.mark.parametrize("install", sorted(INSTALLED))
async def test_spice_html5_plays_opus_through_media_source(server_factory, install: str) -> None:
    server = await server_factory(html5_dir=INSTALLED[install], displays=((320, 240),))
    async with open_browser() as browser:
        await browser.instrument_media()
        await browser.goto(f"http://127.0.0.1:{server.port_bound}/")
        await browser.wait_state("connected")
        with trio.fail_after(10):
            while not server._core.playback.clients:
                await trio.sleep(0.02)
        # The page asked MediaSource, was told yes, and announced the cap: OPUS mode.
        media = await browser.media()
        assert {"type": OPUS_WEBM, "answer": True} in media["queries"], media
        machine = server._core.playback.clients[0].machine
        assert PlaybackCap.OPUS in machine.client_caps
        assert machine.mode == AudioDataMode.OPUS

        first = await play_and_watch(server, browser, 880, 1.5)
        assert first["sourceBuffers"] == [OPUS_WEBM], first
        # One append for the header and one per 10 ms frame or cluster (queued ones merged).
        assert first["appends"] >= 20 and first["updateEnds"] == first["appends"], first
        assert first["bufferErrors"] == 0 and first["mediaErrors"] == [], first
        # Every 10 ms of the tone is in one buffered range: nothing lost, nothing doubled.
        assert len(first["audio"]["buffered"]) == 1, first
        assert abs(buffered_end(first) - 1.5) <= 0.02, first
        assert not first["audio"]["paused"] and first["audio"]["currentTime"] >= 0.7, first
        # What Chromium decoded is the tone (one FFT bin is 48000 / 8192 = 5.9 Hz).
        assert len(first["heard"]) >= 5, first
        assert all(abs(hz - 880) <= 6 for hz in first["heard"]), first["heard"]

        # STOP removed the element; the next stream gets a new MediaSource and SourceBuffer.
        with trio.fail_after(5):
            while (await browser.media())["audio"] is not None:
                await trio.sleep(0.05)
        second = await play_and_watch(server, browser, 440, 1.0)
        assert second["sourceBuffers"] == [OPUS_WEBM, OPUS_WEBM], second
        assert second["bufferErrors"] == 0 and second["mediaErrors"] == [], second
        assert len(second["audio"]["buffered"]) == 1, second
        assert abs(buffered_end(second) - 1.0) <= 0.02, second
        assert len(second["heard"]) >= 3, second
        assert all(abs(hz - 440) <= 6 for hz in second["heard"]), second["heard"]

        # main, display, inputs, cursor and playback: no record channel to complain about.
        assert len(browser.of("websocket")) == 5, browser.describe()
        assert_clean(browser)
