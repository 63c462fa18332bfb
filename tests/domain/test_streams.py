"""Video detection and streams: an area changing at video rates becomes an MJPEG stream
within a fraction of a second, frames of a lagging client are superseded rather than queued,
drawing across the stream's edge clips it, and when the motion stops every client ends with
the exact pixels."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from display_peer import client_message
from test_display_machine import Display, Viewer

from spice.domain.caps import CapabilitySet
from spice.domain.display.routing import end_idle, joined, route
from spice.domain.display.streams import IDLE_END, MIN_AREA, StreamDetector, subtract
from spice.domain.enums import DisplayCap, ImageType
from spice.domain.geometry import Box

FPS = 30


class StreamingDisplay(Display):
    def __init__(self, width: int, height: int, mode: str = "all") -> None:
        super().__init__(width, height)
        self.detector = StreamDetector(mode)
        self.now = 0.0

    def put(self, x: int, y: int, pixels: np.ndarray) -> None:
        def too_big_lossless(area: Box) -> bool:  # as the display worker asks its viewers
            return any(v.machine.lossless_too_big(area, self.now) for v in self.viewers)

        for box in self.surface.put(x, y, pixels):
            for record in route(
                self.detector, self.surface, box, self.now, too_big_lossless=too_big_lossless
            ):
                for v in self.viewers:
                    record(v.machine)

    def join(self, mode: str, *args: object, **kwargs: object) -> Viewer:
        viewer = super().join(mode, *args, **kwargs)  # type: ignore[arg-type]
        for record in joined(self.detector):
            record(viewer.machine)
        return viewer

    def tick(self, seconds: float) -> None:
        self.now += seconds
        for record in end_idle(self.detector, self.now):
            for v in self.viewers:
                record(v.machine)


def video_frame(i: int, h: int = 120, w: int = 160) -> np.ndarray:
    """A moving natural-looking picture (photographic to the classifier)."""
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 4), np.uint8)
    for c in range(3):
        base = 120 + 60 * np.sin((xx + 4 * i) / (15 + 5 * c)) * np.cos((yy - 3 * i) / 21)
        img[..., c] = np.clip(base + rng.normal(0, 3, (h, w)), 0, 255).astype(np.uint8)
    return img


def play(display: StreamingDisplay, viewers: list[Viewer], frames: int, start: int = 0) -> None:
    for i in range(start, start + frames):
        display.put(40, 30, video_frame(i))
        for v in viewers:
            v.send(50)
        display.tick(1 / FPS)


def finish(display: StreamingDisplay, viewers: list[Viewer]) -> None:
    display.tick(IDLE_END + 0.2)
    for v in viewers:
        while v.send(50):
            pass


def exact(display: Display, viewer: Viewer) -> bool:
    assert viewer.peer.pixels is not None
    return bool(np.array_equal(viewer.peer.pixels[..., :3], display.surface.pixels[..., :3]))


def test_video_becomes_a_stream_quickly_and_ends_exact() -> None:
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz")
    viewer.send(50)
    play(display, [viewer], 30)
    assert viewer.peer.stream_codecs == [1]  # MJPEG
    # Started within START_FRAMES frames (C: 20 frames): 25 of 30 went as stream frames.
    assert viewer.peer.stream_frames >= 24
    assert viewer.machine.stats.stream_frames == viewer.peer.stream_frames
    assert not exact(display, viewer)  # lossy meanwhile
    finish(display, [viewer])
    assert viewer.peer.streams == {}
    assert exact(display, viewer)


def test_a_lagging_client_gets_the_newest_frame_not_the_backlog() -> None:
    display = StreamingDisplay(320, 200)
    fast, slow = display.join("auto_glz"), display.join("auto_glz")
    fast.send(50)
    slow.send(50)
    play(display, [fast], 10)
    for i in range(10, 60):  # slow reads nothing for 50 frames
        display.put(40, 30, video_frame(i))
        fast.send(50)
        display.tick(1 / FPS)
        assert len(slow.machine.pipe) <= 4
    slow.send(50)
    assert slow.peer.stream_frames <= 3
    finish(display, [fast, slow])
    assert exact(display, fast)
    assert exact(display, slow)


def test_filter_mode_streams_photographic_video_only() -> None:
    flat = StreamingDisplay(320, 200, mode="filter")
    viewer = flat.join("auto_glz")
    for i in range(30):
        frame = np.zeros((120, 160, 4), np.uint8)
        frame[:, (i * 5) % 160 :, 1] = 200  # a flat, synthetic animation
        flat.put(40, 30, frame)
        viewer.send(50)
        flat.tick(1 / FPS)
    assert viewer.peer.stream_frames == 0
    photo = StreamingDisplay(320, 200, mode="filter")
    viewer = photo.join("auto_glz")
    play(photo, [viewer], 20)
    assert viewer.peer.stream_frames > 10
    off = StreamingDisplay(320, 200, mode="off")
    viewer = off.join("auto_glz")
    play(off, [viewer], 20)
    assert viewer.peer.stream_frames == 0


def flat_animation(display: StreamingDisplay, viewers: list[Viewer], frames: int) -> None:
    columns = np.arange(160)
    for i in range(frames):  # flat stripes moving sideways: every frame changes all of it
        frame = np.zeros((120, 160, 4), np.uint8)
        frame[:, (columns + 5 * i) // 20 % 2 == 1, 1] = 200
        display.put(40, 30, frame)
        for v in viewers:
            v.send(50)
        display.tick(1 / FPS)


@pytest.mark.parametrize(
    ("link", "streams"),
    [
        (None, False),  # not measured: filter's rule alone
        (2_000_000.0, False),  # 160x120 at 30 fps, 1 bit a pixel: 0.58 Mbit/s fits
        (400_000.0, True),  # it does not fit: a stream, though the content is flat
    ],
)
def test_filter_mode_streams_flat_animation_that_a_viewers_link_cannot_carry(
    link: float | None, streams: bool
) -> None:
    display = StreamingDisplay(320, 200, mode="filter")
    viewer = display.join("auto_glz")
    viewer.machine.link_bandwidth = link
    viewer.send(50)
    flat_animation(display, [viewer], 30)
    assert (viewer.peer.stream_frames > 10) is streams
    finish(display, [viewer])
    assert viewer.peer.streams == {}
    assert exact(display, viewer)


def test_drawing_across_the_stream_edge_clips_it_and_stays_exact() -> None:
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz")
    viewer.send(50)
    play(display, [viewer], 10)
    # A "window" over the stream's right edge, drawn once, lossless.
    window = np.full((50, 100, 4), 200, np.uint8)
    window[..., 3] = 0
    display.put(150, 60, window)
    viewer.send(50)
    ((_dest, clip),) = viewer.peer.streams.values()
    assert clip is not None and len(clip) >= 1
    # The video goes on under it (the application draws the window on top of each frame).
    for i in range(10, 20):
        frame = video_frame(i)
        frame[30:80, 110:160] = window[:50, :50]  # what the window covers of the video
        display.put(40, 30, frame)
        viewer.send(50)
        display.tick(1 / FPS)
    assert viewer.peer.pixels is not None
    shown = viewer.peer.pixels[60:110, 150:250, :3]
    assert np.array_equal(shown, display.surface.pixels[60:110, 150:250, :3])  # not lossy
    finish(display, [viewer])
    assert exact(display, viewer)


def test_a_client_joining_mid_stream_gets_it_and_ends_exact() -> None:
    display = StreamingDisplay(320, 200)
    first = display.join("auto_glz")
    play(display, [first], 10)
    late = display.join("lz")
    play(display, [first, late], 10, start=10)
    assert late.peer.stream_frames > 5
    finish(display, [first, late])
    assert exact(display, late)
    assert ImageType.LZ_RGB in late.peer.types


def test_resize_destroys_streams_first() -> None:
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz")
    play(display, [viewer], 10)
    display.detector.end_all()
    display.resize(300, 180)
    viewer.send(50)
    assert viewer.peer.streams == {}
    play(display, [viewer], 10, start=10)
    finish(display, [viewer])
    assert exact(display, viewer)


def test_small_or_slow_changes_never_stream() -> None:
    detector = StreamDetector("all")
    small = Box(0, 0, 50, 50)
    assert small.area < MIN_AREA
    assert all(detector.route(small, i / 60).candidate is None for i in range(100))
    big = Box(0, 0, 200, 200)
    assert all(detector.route(big, i * 0.5).candidate is None for i in range(20))  # 2 fps


@pytest.mark.parametrize(
    ("holes", "area"),
    [([Box(10, 10, 20, 20)], 100 * 100 - 400), ([Box(-5, -5, 200, 200)], 0), ([], 100 * 100)],
)
def test_subtract(holes: list[Box], area: int) -> None:
    parts = subtract(Box(0, 0, 100, 100), holes)
    assert sum(p.area for p in parts) == area
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            assert not a.overlaps(b)


def test_stream_reports_are_asked_for_and_a_refusal_means_images() -> None:
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz")
    play(display, [viewer], 10)
    ((stream_id, unique_id, window, timeout),) = viewer.peer.report_requests
    assert window > 0 and timeout > 0
    # spice-gtk's "cannot decode this stream": num_frames 0, num_drops 0xFFFFFFFF.
    report = struct.pack("<6IiI", stream_id, unique_id, 0, 0, 0, 0xFFFFFFFF, 0, 0)
    viewer.machine.receive_data(client_message(102, report))
    viewer._drain()
    play(display, [viewer], 10, start=10)
    assert viewer.peer.streams == {}
    assert viewer.machine.streams_refused
    frames = viewer.peer.stream_frames
    play(display, [viewer], 10, start=20)
    assert viewer.peer.stream_frames == frames  # images only from now on
    finish(display, [viewer])
    assert exact(display, viewer)


def test_drops_in_reports_slow_the_stream_down() -> None:
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz")
    play(display, [viewer], 10)
    ((stream_id, unique_id, _, _),) = viewer.peer.report_requests
    rate = viewer.machine.pacing(0.0).rate
    report = struct.pack("<6IiI", stream_id, unique_id, 0, 100, 10, 5, -20, 0)
    viewer.machine.receive_data(client_message(102, report))
    viewer._drain()
    viewer.machine.next_job(1.0)
    assert viewer.machine.pacing(1.0).rate < rate


def test_a_client_that_cannot_clip_gets_a_covered_stream_as_images() -> None:
    """spice-html5 draws stream frames whole: once something covers the stream, it gets the
    area as images instead, and stays exact."""
    html5_caps = CapabilitySet.of(DisplayCap.SIZED_STREAM, DisplayCap.STREAM_REPORT)
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz", html5_caps)
    viewer.send(50)
    play(display, [viewer], 10)
    assert viewer.peer.streams
    window = np.full((50, 100, 4), 200, np.uint8)
    window[..., 3] = 0
    display.put(150, 60, window)
    viewer.send(50)
    assert viewer.peer.streams == {}
    frames = viewer.peer.stream_frames
    for i in range(10, 20):
        frame = video_frame(i)
        frame[30:80, 110:160] = window[:50, :50]
        display.put(40, 30, frame)
        viewer.send(50)
        display.tick(1 / FPS)
    assert viewer.peer.stream_frames == frames
    assert exact(display, viewer)


def _play_paced(display: StreamingDisplay, viewer: Viewer, frames: int) -> None:
    """Play at 30 fps with the writer paced to the link (``now`` passed in)."""
    for i in range(frames):
        display.put(40, 30, video_frame(i, 140, 240))
        for _ in range(50):
            job = viewer.machine.next_job(display.now)
            viewer._exchange()
            if job is None:
                break
            viewer.machine.commit(job, display.images_for(job), now=display.now)
            viewer._exchange()
        display.tick(1 / FPS)


@pytest.mark.parametrize("client", ["gtk", "html5"])
def test_on_a_slow_link_frames_travel_smaller_to_a_client_that_scales(client: str) -> None:
    """spice-gtk scales a frame up to its stream's area, so on a slow link it gets
    STREAM_DATA_SIZED frames smaller than the area; spice-html5 draws images at their own
    size, so it never does. Both end exact when the motion stops."""
    html5_caps = CapabilitySet.of(DisplayCap.SIZED_STREAM, DisplayCap.STREAM_REPORT)
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz", *([html5_caps] if client == "html5" else []))
    viewer.machine.link_bandwidth = 300_000 / 0.7  # 300 kbit/s: 375 bytes a frame
    viewer.send(50)
    _play_paced(display, viewer, 60)
    assert viewer.peer.stream_frames > 10
    if client == "gtk":
        assert viewer.peer.scaled_frames > 0
    else:
        assert viewer.peer.scaled_frames == 0
    finish(display, [viewer])
    assert exact(display, viewer)


def test_a_fill_beside_a_frame_being_encoded_goes_first_and_all_ends_exact() -> None:
    """Input is answered before bulk output: while a stream frame's job is out (encoding),
    the echo of a key (a fill beside the video) is framed and goes ahead of it."""
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz")
    viewer.send(50)
    play(display, [viewer], 10)
    display.put(40, 30, video_frame(10))
    job = viewer.machine.next_job()
    assert job is not None and job.stream_id is not None
    box = Box(280, 150, 20, 20)
    display.surface.fill(box, 0xFF0000)
    viewer.machine.fill(box, 0xFF0000)
    frames = viewer.peer.stream_frames
    assert viewer.machine.frame_fills_ahead() == 1
    viewer._exchange()
    assert viewer.peer.pixels is not None
    assert tuple(viewer.peer.pixels[160, 290, :3]) == (0, 0, 255)  # BGRX red, drawn already
    assert viewer.peer.stream_frames == frames  # before the frame
    viewer.machine.commit(job, display.images_for(job))
    viewer._exchange()
    assert viewer.peer.stream_frames == frames + 1
    # A fill on the frame's own area waits for the frame.
    display.put(40, 30, video_frame(11))
    job = viewer.machine.next_job()
    assert job is not None
    over = Box(50, 40, 10, 10)
    display.surface.fill(over, 0x00FF00)
    viewer.machine.fill(over, 0x00FF00)
    assert viewer.machine.frame_fills_ahead() == 0
    viewer.machine.commit(job, display.images_for(job))
    finish(display, [viewer])
    assert exact(display, viewer)


def test_the_frame_a_client_would_send_at_once_is_named_before_it_arrives() -> None:
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz")
    viewer.send(50, display.now)
    for i in range(10):
        display.put(40, 30, video_frame(i))
        viewer.send(50, display.now)
        display.tick(1 / FPS)
    machine = viewer.machine
    ((stream_id, box),) = machine.streams.items()
    ahead = machine.frame_request_now(stream_id, display.now)
    assert ahead is not None and ahead.box == box and ahead.policy.video
    assert machine.frame_request_now(stream_id + 1, display.now) is None  # not a stream
    display.put(40, 30, video_frame(10))
    # The frame is in the pipe now: a next one would queue behind it.
    assert machine.frame_request_now(stream_id, display.now) is None
    job = machine.next_job(display.now)
    assert job is not None and job.stream_id == stream_id
    assert job.requests == (ahead,)  # what the worker encoded ahead is what the job asks for
    assert machine.frame_request_now(stream_id, display.now) is None  # a job is out
    machine.commit(job, display.images_for(job), now=display.now)
    assert machine.frame_request_now(stream_id, display.now) is not None
