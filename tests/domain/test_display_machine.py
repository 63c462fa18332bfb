"""The display channel machine with its pipe, codecs, image cache and a shared encode cache,
driven the way the adapter drives it, against a wire-level client (``display_peer``).

For any interleaving of draws, fills, scrolls, resizes, viewers joining and viewers lagging:
every viewer ends with the server's pixels exactly, no viewer is ever sent a FROM_CACHE it
cannot resolve (spice-gtk would hang), the pipe stays bounded, and each (area, generation,
policy) is encoded at most once however many viewers ask for it."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from display_peer import DisplayPeer, client_message, display_init
from hypothesis import given, settings
from hypothesis import strategies as st

from spice.domain.caps import CapabilitySet
from spice.domain.channels.display import LZ4_PIXEL_RATE, DisplayChannel, DisplayReady, DrawJob
from spice.domain.codecs.select import CodecPolicy, EncodedImage, encode
from spice.domain.codecs.video import VideoFrame
from spice.domain.display.encode_cache import EncodeCache, EncodeKey
from spice.domain.display.surface import Surface
from spice.domain.enums import DisplayCap, ImageType
from spice.domain.errors import RemoteProtocolError
from spice.domain.geometry import Box
from spice.domain.link import NEED_DATA

W, H = 150, 90
GTK_CAPS = CapabilitySet.of(
    DisplayCap.SIZED_STREAM,
    DisplayCap.MONITORS_CONFIG,
    DisplayCap.COMPOSITE,
    DisplayCap.A8_SURFACE,
    DisplayCap.MULTI_CODEC,
    DisplayCap.LZ4_COMPRESSION,
    DisplayCap.STREAM_REPORT,
)
SERVER_CAPS = CapabilitySet.of(
    DisplayCap.MONITORS_CONFIG, DisplayCap.PREF_COMPRESSION, DisplayCap.STREAM_REPORT
)


class Display:
    """The worker's part, synchronously: the surface and the shared encode cache."""

    def __init__(self, width: int = W, height: int = H) -> None:
        self.surface = Surface(width, height)
        self.cache = EncodeCache(limit=1 << 40)
        self.encodes: collections.Counter[EncodeKey] = collections.Counter()
        self.viewers: list[Viewer] = []

    #: The multimedia time (ms) VP8 frames are stamped with; tests move it.
    mm_time = 0

    def images_for(self, job: DrawJob) -> list[EncodedImage | VideoFrame | None]:
        if job.video is not None:
            if not self.surface.box.contains(job.video.box):
                return [None]
            return [job.video.encode(self.surface.snapshot(job.video.box), self.mm_time)]
        out: list[EncodedImage | VideoFrame | None] = []
        for request in job.requests:
            if not self.surface.box.contains(request.box):
                out.append(None)
                continue
            key = EncodeKey(request.box, self.surface.generation(request.box), request.policy)
            image = self.cache.get(key)
            if image is None:
                image = encode(self.surface.snapshot(request.box), request.policy)
                self.encodes[key] += 1
                self.cache.put(key, image)
            out.append(image)
        return out

    def join(
        self,
        mode: str,
        caps: CapabilitySet = GTK_CAPS,
        cache: int = 1 << 20,
        codecs: tuple[str, ...] = ("mjpeg",),
    ) -> Viewer:
        viewer = Viewer(self, mode, caps, cache, codecs)
        self.viewers.append(viewer)
        return viewer

    def put(self, x: int, y: int, pixels: np.ndarray) -> None:
        for box in self.surface.put(x, y, pixels):
            for v in self.viewers:
                v.machine.damage(box)

    def fill(self, box: Box, color: int) -> None:
        done = self.surface.fill(box, color)
        if not done.empty:
            for v in self.viewers:
                v.machine.fill(done, color)

    def scroll(self, dx: int, dy: int) -> None:
        s = self.surface
        dest = s.box.intersect(Box(dx, dy, s.width, s.height))
        if dest.empty:
            return
        done = s.copy_bits(dest.x - dx, dest.y - dy, dest)
        for v in self.viewers:
            v.machine.copy_bits(dest.x - dx, dest.y - dy, done)

    def resize(self, width: int, height: int) -> None:
        if (width, height) == (self.surface.width, self.surface.height):
            return
        self.surface = self.surface.resized(width, height)
        for v in self.viewers:
            v.machine.new_primary(width, height, replace=True)


class Viewer:
    def __init__(
        self,
        display: Display,
        mode: str,
        caps: CapabilitySet,
        cache: int,
        codecs: tuple[str, ...] = ("mjpeg",),
    ) -> None:
        self.display = display
        self.machine = DisplayChannel(
            mini_header=True,
            client_caps=caps,
            server_caps=SERVER_CAPS,
            image_compression=mode,
            jpeg_wan_compression="never",
            pipe_limit=20,
            video_codecs=codecs,
        )
        self.peer = DisplayPeer()
        self.machine.receive_data(display_init(cache))
        events = self._drain()
        assert any(isinstance(e, DisplayReady) for e in events)
        s = display.surface
        self.machine.new_primary(s.width, s.height, replace=False)

    def _drain(self) -> list[object]:
        events = []
        while (event := self.machine.next_event()) is not NEED_DATA:
            events.append(event)
        return events

    def _exchange(self) -> None:
        for part in self.machine.data_to_send():
            self.peer.feed(bytes(part))
        replies = self.peer.take_replies()
        if replies:
            self.machine.receive_data(replies)
            self._drain()

    def send(self, jobs: int, now: float | None = None) -> bool:
        """Let the writer run for ``jobs`` images (at time ``now``: paced and timed); False
        once there is nothing left."""
        for _ in range(jobs):
            job = self.machine.next_job(now)
            self._exchange()
            if job is None:
                return False
            self.machine.commit(job, self.display.images_for(job), now=now)
            self._exchange()
        return True


def _patch(rng: np.random.Generator, h: int, w: int, kind: int) -> np.ndarray:
    if kind == 0:  # flat with a few "glyphs"
        patch = np.full((h, w, 4), rng.integers(0, 256, 4), dtype=np.uint8)
        patch[::3, ::2] = rng.integers(0, 256, 4)
    elif kind == 1:  # photographic-ish gradient with noise
        yy, xx = np.mgrid[0:h, 0:w]
        base = (xx * 3 + yy * 2)[..., None] + np.array([0, 40, 80, 0])
        patch = (base + rng.integers(0, 6, (h, w, 4))).astype(np.uint8)
    else:
        patch = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    patch[..., 3] = 0
    return patch


boxes = st.builds(
    Box, st.integers(-10, W), st.integers(-10, H), st.integers(1, W), st.integers(1, H)
)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("put"), boxes, st.integers(0, 2), st.integers(0, 2**32 - 1)),
        st.tuples(st.just("fill"), boxes, st.integers(0, 0xFFFFFF)),
        st.tuples(st.just("scroll"), st.integers(-20, 20), st.integers(-20, 20)),
        st.tuples(st.just("send"), st.integers(0, 3), st.integers(1, 5)),
        st.tuples(st.just("join"), st.sampled_from(["lz", "auto_lz", "lz4", "off", "quic"])),
        st.tuples(st.just("resize"), st.integers(40, W + 30), st.integers(30, H + 20)),
        st.tuples(st.just("repeat"), st.integers(0, 5)),
    ),
    max_size=40,
)


@settings(max_examples=120, deadline=None)
@given(actions, st.sampled_from(["lz", "auto_lz", "lz4", "off", "quic"]))
def test_every_viewer_ends_exact_and_each_generation_is_encoded_once(
    steps: list[tuple], first_mode: str
) -> None:
    display = Display()
    display.join(first_mode)
    history: list[tuple[int, int, np.ndarray]] = []
    for step in steps:
        if step[0] == "put":
            _, box, kind, seed = step
            patch = _patch(np.random.default_rng(seed), box.h, box.w, kind)
            history.append((box.x, box.y, patch))
            display.put(box.x, box.y, patch)
        elif step[0] == "repeat" and history:
            x, y, patch = history[step[1] % len(history)]
            display.put(x, y, patch)  # the same pictures again: cache hits, not new images
        elif step[0] == "fill":
            display.fill(step[1], step[2])
        elif step[0] == "scroll":
            display.scroll(step[1], step[2])
        elif step[0] == "send":
            viewer = display.viewers[step[1] % len(display.viewers)]
            viewer.send(step[2])
        elif step[0] == "join":
            display.join(step[1])
        elif step[0] == "resize":
            display.resize(step[1], step[2])
        for v in display.viewers:
            assert len(v.machine.pipe) <= 20 + 5
    for viewer in display.viewers:
        while viewer.send(10):
            pass
        assert viewer.peer.marked
        assert viewer.peer.pixels is not None
        expected = display.surface.pixels.copy()
        expected[..., 3] = 0
        assert np.array_equal(viewer.peer.pixels, expected)
    assert all(n == 1 for n in display.encodes.values())


def test_viewers_in_step_share_every_encode() -> None:
    rng = np.random.default_rng(1)
    display = Display(640, 360)
    viewers = [display.join("auto_lz") for _ in range(20)]
    for v in viewers:
        v.send(100)
    for i in range(5):
        display.put(10 * i, 20 * i, _patch(rng, 40, 200, i % 3))
        for v in viewers:
            v.send(100)
    one_viewer = sum(display.encodes.values())
    assert display.cache.hits >= 19 * one_viewer
    assert all(n == 1 for n in display.encodes.values())


def test_a_repeated_picture_comes_from_the_cache() -> None:
    rng = np.random.default_rng(2)
    display = Display(200, 100)
    viewer = display.join("lz")
    viewer.send(100)
    a, b = _patch(rng, 32, 48, 2), _patch(rng, 32, 48, 2)
    for _ in range(3):
        display.put(10, 10, a)
        viewer.send(100)
        display.put(10, 10, b)
        viewer.send(100)
    assert viewer.peer.cache_hits == 4
    assert viewer.machine.stats.cache_hits == 4
    assert ImageType.FROM_CACHE in viewer.peer.types


def test_a_large_change_goes_as_two_bands_but_not_the_first_picture() -> None:
    """Two bands are encoded at once on two threads; the first image after the primary is
    created stays whole (spicy-screenshot takes it as the picture)."""
    rng = np.random.default_rng(5)
    display = Display(640, 480)
    viewer = display.join("lz")
    display.put(0, 0, _patch(rng, 480, 640, 2))
    job = viewer.machine.next_job()
    assert job is not None and [r.box for r in job.requests] == [Box(0, 0, 640, 480)]
    viewer.machine.commit(job, display.images_for(job))
    viewer.send(100)
    display.put(0, 0, _patch(rng, 480, 640, 2))
    job = viewer.machine.next_job()
    assert job is not None
    assert [r.box for r in job.requests] == [Box(0, 0, 640, 240), Box(0, 240, 640, 240)]
    viewer.machine.commit(job, display.images_for(job))
    viewer.send(100)
    assert np.array_equal(viewer.peer.pixels[..., :3], display.surface.pixels[..., :3])


def test_unchanged_pixels_send_nothing() -> None:
    rng = np.random.default_rng(3)
    display = Display(300, 200)
    viewer = display.join("lz")
    frame = _patch(rng, 200, 300, 2)
    display.put(0, 0, frame)
    viewer.send(100)
    before = viewer.peer.messages
    display.put(0, 0, frame.copy())
    viewer.send(100)
    assert viewer.peer.messages == before


def test_a_small_cache_evicts_with_inval_list_and_stays_in_step() -> None:
    rng = np.random.default_rng(4)
    display = Display(200, 100)
    # Room for two 40x40 images (and not the first full-surface image).
    viewer = display.join("lz", cache=2 * 1600 + 100)
    pictures = [_patch(rng, 40, 40, 2) for _ in range(5)]
    for round_ in range(3):
        for p in pictures[: 3 + round_]:
            display.put(0, 0, p)
            viewer.send(100)
    assert viewer.machine.cache is not None
    assert viewer.machine.cache.used <= 2 * 1600 + 100
    assert viewer.machine.cache.held_ids() == set(viewer.peer.cache)


def test_absurd_cache_sizes() -> None:
    machine = DisplayChannel(mini_header=True, client_caps=GTK_CAPS, server_caps=SERVER_CAPS)
    machine.receive_data(display_init(-1))
    with pytest.raises(RemoteProtocolError):
        machine.next_event()
    huge = DisplayChannel(mini_header=True, client_caps=GTK_CAPS, server_caps=SERVER_CAPS)
    huge.receive_data(display_init(2**62))
    assert isinstance(huge.next_event(), DisplayReady)
    assert huge.cache is not None
    assert huge.cache.capacity <= 256 * 1024 * 1024


def test_preferred_compression_overrides_the_server_mode() -> None:
    machine = DisplayChannel(
        mini_header=True, client_caps=GTK_CAPS, server_caps=SERVER_CAPS, image_compression="lz"
    )
    machine.receive_data(display_init() + client_message(103, bytes([1])))  # OFF
    while machine.next_event() is not NEED_DATA:
        pass
    assert machine.policy.mode == "off"


def test_the_encode_cache_keeps_only_current_content() -> None:
    rng = np.random.default_rng(5)
    display = Display(300, 200)
    viewer = display.join("lz")
    for i in range(30):
        display.put(0, 0, _patch(rng, 200, 300, 2))
        viewer.send(100)
        display.cache.prune(display.surface.generation)
        assert len(display.cache) <= 1, i
    assert display.cache.bytes <= 300 * 200 * 4 + 100


def test_a_snapshot_is_a_copy_even_of_whole_rows() -> None:
    """Full-width areas are contiguous in memory: a view would let the encoder read pixels
    that change under it (seen as a client moving pixels twice)."""
    surface = Surface(64, 32)
    snap = surface.snapshot(Box(0, 4, 64, 8))
    surface.fill(Box(0, 0, 64, 32), 0xFFFFFF)
    assert not snap.any()
    assert not np.shares_memory(snap, surface.pixels)


def _redraw(
    viewer: Viewer,
    display: Display,
    fps: float,
    frames: int,
    size: tuple[int, int] = (240, 320),
) -> list[int]:
    """Draw a new synthetic picture of ``size`` (h, w) at the origin ``frames`` times at
    ``fps``; the type of the last image encoded for each (a band may repeat another of the
    same picture and come from the cache)."""
    rng = np.random.default_rng(9)
    got = []
    for i in range(frames):
        before = len(viewer.peer.types)
        display.put(0, 0, _patch(rng, *size, 0))
        viewer.send(100, now=10.0 + i / fps)
        got.append([t for t in viewer.peer.types[before:] if t != ImageType.FROM_CACHE])
    return [t for types in got for t in types[-1:]]


@pytest.mark.parametrize(("bandwidth", "fast"), [(1e9, ImageType.LZ4), (10e6, ImageType.LZ_RGB)])
def test_a_large_area_redrawn_at_video_rate_goes_as_lz4_on_a_fast_link(
    bandwidth: float, fast: ImageType
) -> None:
    """Flat content (it does not stream in filter mode), 640x480 redrawn 30 times a second:
    LZ_RGB would fall behind, so where the link has room it goes as LZ4, the codec that
    encodes fastest. From the second frame on: three images would show a rate, but an
    area this large asked for again 1/30 s after its last image is enough (a 720p LZ_RGB
    frame costs several LZ4 ones, and a video's first frames queue behind it). A slow link
    keeps the compact codec. The client ends exact."""
    display = Display(1280, 720)
    viewer = display.join("auto_glz")
    viewer.machine.link_bandwidth = bandwidth
    viewer.send(100, now=9.0)
    types = _redraw(viewer, display, 30.0, 12, size=(480, 640))
    assert types[0] == ImageType.LZ_RGB
    assert set(types[1:]) == {fast}
    assert np.array_equal(viewer.peer.pixels[..., :3], display.surface.pixels[..., :3])


def test_a_small_area_redrawn_at_video_rate_keeps_the_compact_codec() -> None:
    """320x240 redrawn 30 times a second is 2.3 million pixels a second: LZ_RGB keeps up,
    and its images are smaller than LZ4's, so it stays even on a fast link."""
    display = Display(640, 480)
    viewer = display.join("auto_glz")
    viewer.machine.link_bandwidth = 1e9
    viewer.send(100, now=9.0)
    assert set(_redraw(viewer, display, 30.0, 20)) == {ImageType.LZ_RGB}


def test_small_areas_go_as_lz4_once_they_add_up_to_more_than_lz_rgb_keeps_up_with() -> None:
    """Twelve separate 256x256 areas redrawn 30 times a second (each too small to count
    alone): 24 million pixels a second in all, more than ``LZ4_PIXEL_RATE``. Once the
    rate shows, every one of them goes as LZ4."""
    rng = np.random.default_rng(11)
    display = Display(1280, 960)
    viewer = display.join("auto_glz")
    viewer.machine.link_bandwidth = 1e9
    viewer.send(100, now=9.0)
    frames = []
    for i in range(45):  # the rate over the surface builds up over a second or so
        before = len(viewer.peer.types)
        for row in range(3):
            for col in range(4):
                display.put(320 * col, 320 * row, _patch(rng, 256, 256, 0))
        viewer.send(100, now=10.0 + i / 30)
        frames.append(viewer.peer.types[before:])
    assert set(frames[0]) == {ImageType.LZ_RGB}
    assert len(frames[-1]) == 12 and set(frames[-1]) == {ImageType.LZ4}
    assert viewer.machine._volatility is not None
    assert viewer.machine._volatility.pixel_rate(10.0 + 44 / 30) > LZ4_PIXEL_RATE


def test_a_fast_loop_of_two_pictures_comes_from_the_cache() -> None:
    """A spinner's or a blinking picture's few frames redrawn at video rate: volatile, and
    still named by content, so each comes back from the client's cache."""
    rng = np.random.default_rng(10)
    display = Display(640, 480)
    viewer = display.join("auto_glz")
    viewer.machine.link_bandwidth = 1e9
    viewer.send(100, now=9.0)
    pictures = [_patch(rng, 240, 320, 0), _patch(rng, 240, 320, 0)]
    for i in range(20):
        display.put(0, 0, pictures[i % 2])
        viewer.send(100, now=10.0 + i / 30)
    assert viewer.peer.types[-10:] == [ImageType.FROM_CACHE] * 10
    assert np.array_equal(viewer.peer.pixels[..., :3], display.surface.pixels[..., :3])


def test_an_area_redrawn_now_and_then_keeps_the_compact_codec_and_the_cache() -> None:
    display = Display(640, 480)
    viewer = display.join("auto_glz")
    viewer.machine.link_bandwidth = 1e9
    viewer.send(100, now=9.0)
    cached_before = len(viewer.peer.cache)
    types = _redraw(viewer, display, 2.0, 8)
    assert set(types) == {ImageType.LZ_RGB}
    assert len(viewer.peer.cache) - cached_before == 8


def test_a_client_without_lz4_gets_the_compact_codec_even_on_a_fast_link() -> None:
    display = Display(640, 480)
    caps = CapabilitySet.of(DisplayCap.SIZED_STREAM, DisplayCap.COMPOSITE, DisplayCap.MULTI_CODEC)
    viewer = display.join("auto_glz", caps=caps)
    viewer.machine.link_bandwidth = 1e9
    viewer.send(100, now=9.0)
    assert set(_redraw(viewer, display, 30.0, 20)[-10:]) == {ImageType.LZ_RGB}
    assert np.array_equal(viewer.peer.pixels[..., :3], display.surface.pixels[..., :3])


@pytest.mark.parametrize(("bandwidth", "jobs"), [(1e9, 1), (10e6, 3)])
def test_queued_damage_joins_one_job_on_a_fast_link_only(bandwidth: float, jobs: int) -> None:
    """Three separate changes of one update: on a fast link one job (drawn together), on a
    slow one three (a key's echo may go between them)."""
    rng = np.random.default_rng(6)
    display = Display(640, 480)
    viewer = display.join("lz")
    viewer.machine.link_bandwidth = bandwidth
    viewer.send(100, now=1.0)
    frame = display.surface.pixels.copy()
    for x, y in ((0, 0), (256, 128), (448, 320)):
        frame[y : y + 64, x : x + 64] = _patch(rng, 64, 64, 2)
    display.put(0, 0, frame)
    made = []
    while (job := viewer.machine.next_job(2.0)) is not None:
        made.append(job)
        viewer.machine.commit(job, display.images_for(job), now=2.0)
        viewer._exchange()
    assert len(made) == jobs
    assert sum(len(job.requests) for job in made) == 3
    assert np.array_equal(viewer.peer.pixels[..., :3], display.surface.pixels[..., :3])


def test_the_bytes_in_flight_cap_follows_the_measured_path() -> None:
    viewer = Display(64, 64).join("lz")
    machine = viewer.machine
    assert machine.in_flight_cap(0.08, 1.0) is None  # nothing measured yet
    machine.on_delivery_rate(10e6, 1.0)  # 10 Mbit/s, 80 ms: 100 KB in the path
    cap = machine.in_flight_cap(0.08, 1.0)
    assert cap is not None and 100_000 < cap <= 130_000
    machine.on_delivery_rate(50e6, 1.5)  # the best recent sample is the capacity
    cap = machine.in_flight_cap(0.08, 1.5)
    assert cap is not None and 500_000 < cap <= 650_000
    # On loopback the product is tiny; a floor keeps writes flowing.
    assert machine.in_flight_cap(50e-6, 1.5) == 64 * 1024


def test_the_pacing_ceiling_is_over_the_capacity_and_never_under_start_up_over_the_test() -> None:
    machine = Display(64, 64).join("lz").machine
    assert machine.pacing_ceiling(0.08, 1.0) is None  # no network test: no ceiling
    machine.link_bandwidth = 23e6  # the test reads below an 80 ms / 50 Mbit/s path
    assert machine.pacing_ceiling(0.08, 1.0) == pytest.approx(2.89 * 23e6)
    machine.on_delivery_rate(0.5e6, 1.0)  # measured while little was sent: not a ceiling
    assert machine.pacing_ceiling(0.08, 1.0) == pytest.approx(2.89 * 23e6)
    machine.on_delivery_rate(50.8e6, 2.0)  # a sample at the bottleneck's rate
    assert machine.pacing_ceiling(0.08, 2.0) == pytest.approx(2.89 * 23e6)  # over 1.25 x 50.8
    machine.link_bandwidth = 10e6
    assert machine.pacing_ceiling(0.08, 2.0) == pytest.approx(1.25 * 50.8e6)
    # Loopback or a LAN: no ceiling.
    assert machine.pacing_ceiling(50e-6, 2.0) is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(boxes, st.integers(0, 2), st.integers(0, 2**32 - 1)), max_size=12),
    st.lists(boxes, min_size=1, max_size=8),
)
def test_pruning_near_what_was_drawn_drops_what_a_full_prune_drops(
    puts: list[tuple[Box, int, int]], cached: list[Box]
) -> None:
    surface = Surface(W, H)
    near, full = EncodeCache(), EncodeCache()
    image = EncodedImage(ImageType.BITMAP, 1, 1, b"\x00" * 4, b"")
    policy = CodecPolicy(mode="lz")
    for at, kind, seed in puts:
        for box in cached:  # what viewers asked for at the current content
            key = EncodeKey(box, surface.generation(box), policy)
            near.put(key, image)
            full.put(key, image)
        patch = _patch(np.random.default_rng(seed), 40, 50, kind)
        drawn = surface.put(at.x, at.y, patch)
        near.prune(surface.generation, [surface.tile_cover(b) for b in drawn])
        full.prune(surface.generation)
        assert list(near._entries) == list(full._entries)
