"""spice-gtk plays our MJPEG streams: a region animated at 30 fps becomes a stream that the
client decodes and shows (close to the source while it plays), drawing across its edge stays
exact on the client, and when the animation stops the client ends with the exact pixels."""

from __future__ import annotations

import numpy as np
import pytest
import trio
from gtk_client import open_gtk_client
from serving import running_server, wait_same

from spice.domain.codecs.jpeg import psnr
from spice.domain.enums import DisplayCap


def video_frame(i: int, h: int = 240, w: int = 320) -> np.ndarray:
    """A moving natural-looking picture (photographic to the classifier)."""
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 4), np.uint8)
    for c in range(3):
        base = 120 + 60 * np.sin((xx + 6 * i) / (25 + 9 * c)) * np.cos((yy - 4 * i) / 37)
        img[..., c] = np.clip(base + rng.normal(0, 2, (h, w)), 0, 255).astype(np.uint8)
    return img


async def play_under_a_window(server) -> None:  # type: ignore[no-untyped-def]
    """Video at (100, 80) becomes a stream; then a window is drawn over its right edge at
    (330, 150), 200x100, and stays on top while the video goes on."""
    display = server.displays[0]
    for i in range(15):
        await display.update(100, 80, video_frame(i))
        await trio.sleep(1 / 30)
    assert stream_stats(server)[1] == 1
    window = np.full((100, 200, 4), 210, np.uint8)
    window[20:30, 10:190, :3] = 20
    window[..., 3] = 0
    await display.update(330, 150, window)
    for i in range(15, 30):
        frame = video_frame(i)
        frame[70:170, 230:320] = window[:, :90]  # the window stays on top
        await display.update(100, 80, frame)
        await trio.sleep(1 / 30)


def stream_stats(server) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    clients = server._core.displays[0].clients
    frames = sum(c.machine.stats.stream_frames for c in clients)
    streams = sum(len(c.machine.streams) for c in clients)
    return frames, streams


async def test_an_animated_region_plays_as_a_stream_and_ends_exact() -> None:
    async with running_server(640, 480, streaming_video="filter") as server:
        display = server.displays[0]
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mark")
            await wait_same(client, display)
            started = trio.current_time()
            became_stream = None
            frames_before_stream = 0
            shown_quality = []
            for i in range(45):
                await display.update(100, 80, video_frame(i))
                await trio.sleep(1 / 30)
                frames, streams = stream_stats(server)
                if became_stream is None and streams:
                    became_stream = trio.current_time() - started
                    frames_before_stream = i + 1
                if i in (30, 40):
                    await display.sync()
                    await trio.sleep(0.15)
                    shown = await client.screenshot()
                    source = display.framebuffer
                    shown_quality.append(psnr(shown[80:320, 100:420], source[80:320, 100:420]))
            # Within half a second of 30 fps motion: counted in frames pushed, which a loaded
            # machine does not stretch (the wall time is in the message).
            assert became_stream is not None, "no stream"
            assert frames_before_stream <= 15, (frames_before_stream, became_stream)
            frames, _ = stream_stats(server)
            assert frames >= 25, frames
            # The client decoded and showed the frames (a JPEG of this at quality 70 is ~35 dB).
            assert min(shown_quality) > 28, shown_quality
            # The animation stops: the stream ends and the client gets the exact pixels.
            await wait_same(client, display, timeout=5)
            assert stream_stats(server)[1] == 0
            log = client.stderr_tail(200_000)  # spice-gtk's own warnings, if any
            for bad in ("CRITICAL", "g_return_if_fail", "assertion"):
                assert bad not in log, log[-3000:]


async def test_a_window_across_the_stream_edge_stays_exact() -> None:
    async with running_server(640, 480, streaming_video="all") as server:
        display = server.displays[0]
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mark")
            await play_under_a_window(server)
            await display.sync()
            await trio.sleep(0.2)
            shown = await client.screenshot()
            source = display.framebuffer
            assert np.array_equal(shown[150:250, 330:530, :3], source[150:250, 330:530, :3])
            await wait_same(client, display, timeout=5)


def flat_frame(i: int, h: int = 240, w: int = 320) -> np.ndarray:
    """Flat stripes moving sideways: synthetic, not photographic, to the classifier."""
    img = np.zeros((h, w, 4), np.uint8)
    img[:, (np.arange(w) + 6 * i) // 24 % 2 == 1, :3] = (40, 200, 90)
    return img


async def test_filter_mode_streams_flat_animation_when_the_link_cannot_carry_it(
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """In ``filter`` mode flat animation stays lossless, unless a viewer's link, as measured,
    cannot carry it lossless at video rates: then it streams. The link's measurement is what
    is set here (the WAN benchmark measures a real one); spice-gtk plays the stream without a
    warning and ends exact."""
    from spice.domain.channels.display import DisplayChannel

    async with running_server(640, 480, streaming_video="filter") as server:
        display = server.displays[0]
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mark")
            await wait_same(client, display)
            for i in range(20):  # loopback, measured fast: lossless
                await display.update(100, 80, flat_frame(i))
                await trio.sleep(1 / 30)
            assert stream_stats(server) == (0, 0)
            await wait_same(client, display, timeout=5)
            monkeypatch.setattr(DisplayChannel, "_measured_link", lambda self, now: 1e6)
            for i in range(20, 50):
                await display.update(100, 80, flat_frame(i))
                await trio.sleep(1 / 30)
            frames, streams = stream_stats(server)
            assert streams == 1 and frames >= 15, (frames, streams)
            await wait_same(client, display, timeout=5)
            assert stream_stats(server)[1] == 0
            log = client.stderr_tail(200_000)
            for bad in ("CRITICAL", "g_return_if_fail", "assertion", "WARNING"):
                assert bad not in log, log[-3000:]


@pytest.mark.parametrize("codecs", ["mjpeg", "mjpeg,vp8,h264"])
async def test_on_a_slow_link_smaller_frames_or_h264(monkeypatch, codecs: str) -> None:  # type: ignore[no-untyped-def]
    """Paced as if the link carried 1 Mbit/s: with MJPEG alone, frames travel smaller than
    the stream (STREAM_DATA_SIZED) and spice-gtk scales them up onto the stream's area;
    with H.264 allowed (the default), spice-gtk, which plays it, gets H.264 at the area's
    size instead. Either way it shows the picture without a warning and ends exact when the
    motion stops."""
    from spice.domain.display import rate

    monkeypatch.setattr(rate, "MAX_RATE", 1_000_000.0)
    async with running_server(640, 480, streaming_video="all", video_codecs=codecs) as server:
        display = server.displays[0]
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mark")
            await wait_same(client, display)
            (machine,) = [c.machine for c in server._core.displays[0].clients]
            for i in range(60):
                await display.update(100, 80, video_frame(i))
                await trio.sleep(1 / 30)
                if i == 30:
                    videos = [v.codec.name for v in machine._video.values()]
                    assert videos == ([] if codecs == "mjpeg" else ["h264"]), videos
            if codecs == "mjpeg":
                assert machine.stats.scaled_frames >= 5, machine.stats
            await display.sync()
            await trio.sleep(0.2)
            shown = (await client.screenshot())[80:320, 100:420]
            # MJPEG scaled up (nearest neighbour) from about a third of the size: a blurred
            # copy (30 dB here); H.264 at full size may show the frame before (see below).
            # The screen before the video: 6 dB.
            assert max(psnr(shown, video_frame(k)) for k in (58, 59)) > 24
            await wait_same(client, display, timeout=5)
            log = client.stderr_tail(200_000)
            for bad in ("CRITICAL", "g_return_if_fail", "assertion", "WARNING", "GStreamer"):
                assert bad not in log, log[-3000:]


@pytest.mark.parametrize(
    ("codec", "server_codecs", "preferred"),
    [
        (2, ("mjpeg", "vp8", "h264"), [2, 1]),  # spice-gtk asks for VP8
        (3, ("mjpeg", "vp8", "h264"), [3, 1]),  # spice-gtk asks for H.264
        (3, ("h264",), None),  # --video-codecs h264
    ],
    ids=["vp8-preferred", "h264-preferred", "h264-server-option"],
)
async def test_a_spice_gtk_gets_vp8_or_h264_and_shows_it(
    codec: int, server_codecs: tuple[str, ...], preferred: list[int] | None
) -> None:
    """spice-gtk's own codec choice (spicy's menu; the API's
    change_preferred_video_codec_types) comes first, or the server allows one codec: the next
    stream is VP8 or H.264, which spice-gtk (it announces CODEC_VP8 and CODEC_H264 with
    GStreamer's decoders installed) decodes through GStreamer and shows close to the source,
    with no GStreamer error; the stream ends exact."""
    async with running_server(
        640, 480, streaming_video="all", video_codecs=server_codecs
    ) as server:
        display = server.displays[0]
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mark")
            await wait_same(client, display)
            machine = server._core.displays[0].clients.copy().pop().machine
            assert DisplayCap.CODEC_VP8 in machine.client_caps
            assert DisplayCap.CODEC_H264 in machine.client_caps
            if preferred is not None:
                await client.command({"cmd": "preferred_video_codecs", "codecs": preferred})
                await trio.sleep(0.2)
                assert machine.preferred_video_codecs == tuple(preferred)
            quality = []
            for i in range(60):
                await display.update(100, 80, video_frame(i))
                await trio.sleep(1 / 30)
                if i == 45:
                    videos = list(machine._video.values())
                    assert [v.codec.codec_type for v in videos] == [codec]
                    await display.sync()
                    await trio.sleep(0.3)
                    shown = (await client.screenshot())[80:320, 100:420]
                    # spice-gtk's h264parse passes an H.264 frame on when the next one
                    # begins (as with the C server's stream): the one before may show.
                    quality.append(max(psnr(shown, video_frame(k)) for k in (i - 1, i)))
            frames, _ = stream_stats(server)
            assert frames >= 30, frames
            assert min(quality) > 30, quality
            await wait_same(client, display, timeout=5)
            log = client.stderr_tail(200_000)
            for bad in ("CRITICAL", "g_return_if_fail", "assertion", "GStreamer", "gstreamer"):
                assert bad not in log, log[-3000:]
