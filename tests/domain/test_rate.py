"""Pacing to the link: the rate follows queueing delay, video waits for its budget while
other drawing (the echo of a key) goes first, and the JPEG quality follows the budget."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from test_display_machine import _patch
from test_streams import StreamingDisplay, play, video_frame

from spice.domain.display.rate import (
    CAPACITY_SHARE,
    DECREASE,
    HIGH_DELAY,
    MAX_QUALITY,
    MIN_QUALITY,
    SCALE_QUALITY,
    SCALES,
    START_QUALITY,
    START_SHARE,
    RateController,
)


def test_the_rate_starts_from_the_measured_link_and_follows_the_delay() -> None:
    rate = RateController(bandwidth=10e6, now=0.0)
    assert rate.rate == 10e6 * START_SHARE
    rate.round_trip(0.080, 0.0)  # the path's own round trip
    for i in range(1, 40):  # busy, and no queueing: the rate grows
        rate.sent(int(rate.rate / 8 * 0.25), i * 0.25)
        rate.round_trip(0.081, i * 0.25)
    grown = rate.rate
    assert grown > 10e6 * START_SHARE
    rate.round_trip(0.080 + HIGH_DELAY + 0.05, 10.1)  # a queue builds up: cut
    assert rate.rate == grown * DECREASE
    rate.round_trip(0.080 + HIGH_DELAY + 0.05, 10.12)  # at most once per round trip
    assert rate.rate == grown * DECREASE


def test_an_idle_link_does_not_grow_the_rate() -> None:
    rate = RateController(bandwidth=10e6, now=0.0)
    for i in range(40):
        rate.round_trip(0.08, i * 0.25)
    assert rate.rate == 10e6 * START_SHARE


def test_frames_wait_for_the_budget() -> None:
    rate = RateController(bandwidth=8e6 / START_SHARE, now=0.0)  # 1 MB/s
    assert rate.frame_due(0.0) <= 0.0
    rate.sent(100_000, 0.0)
    assert abs(rate.frame_due(0.0) - 0.1) < 0.01  # 100 KB at 1 MB/s
    assert rate.frame_due(0.2) <= 0.2


def test_quality_follows_the_budget() -> None:
    rate = RateController(bandwidth=3e6 / START_SHARE, now=0.0)  # 2.1 Mbit/s: ~8.7 KB/frame
    quality = rate.quality
    assert quality == START_QUALITY
    for _ in range(20):
        rate.frame_sent(60_000, rate.quality)
    assert rate.quality == MIN_QUALITY
    for _ in range(10):
        rate.frame_sent(2_000, rate.quality)
    assert rate.quality > MIN_QUALITY


def test_the_echo_of_a_key_overtakes_waiting_video() -> None:
    """On a slow link, video frames wait for the budget; a small update drawn meanwhile is
    sent at once, ahead of them."""
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz")
    viewer.machine.link_bandwidth = 1e6  # 1 Mbit/s
    now = 0.0
    for i in range(10):  # the stream starts
        display.put(40, 30, video_frame(i))
        viewer.send(50)
        display.tick(1 / 30)
    assert viewer.machine.streams
    sent_before = viewer.peer.messages
    # Spend the budget with a frame, then draw a key's echo beside the video.
    display.put(40, 30, video_frame(10))
    job = viewer.machine.next_job(now)
    assert job is not None and job.stream_id is not None
    viewer.machine.commit(job, display.images_for(job), now=now)
    viewer._exchange()
    display.put(40, 30, video_frame(11))  # the next frame waits for the budget...
    echo = _patch(np.random.default_rng(1), 12, 8, 0)
    display.put(250, 170, echo)  # ...and the echo does not
    job = viewer.machine.next_job(now + 0.001)
    assert job is not None and job.stream_id is None
    assert viewer.machine.wait_until is None
    viewer.machine.commit(job, display.images_for(job), now=now + 0.001)
    viewer._exchange()
    assert viewer.machine.next_job(now + 0.002) is None
    assert viewer.machine.wait_until is not None and viewer.machine.wait_until > now + 0.01
    assert viewer.peer.messages > sent_before
    shown = viewer.peer.pixels
    assert shown is not None
    assert np.array_equal(shown[170:182, 250:258, :3], echo[..., :3])


def test_probes_run_while_streams_do() -> None:
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz")
    play(display, [viewer], 10)
    assert viewer.machine.streams
    viewer.machine.next_job(100.0)
    pings = [
        part
        for part in viewer.machine.data_to_send()
        if len(part) >= 6 and int.from_bytes(bytes(part[:2]), "little") == 4
    ]
    assert pings, "a PING on the display channel while video flows"


def test_a_slow_drain_caps_the_rate() -> None:
    rate = RateController(bandwidth=100e6, now=0.0)
    rate.drained(10_000, 0.5, 1.0)  # too small to say anything
    assert rate.rate == 100e6 * START_SHARE
    rate.drained(1_000_000, 1.0, 1.0)  # 8 Mbit/s
    assert rate.rate == 8e6 * 0.9


def test_a_big_image_does_not_hold_video_back_for_long() -> None:
    rate = RateController(bandwidth=10e6, now=0.0)
    rate.sent(4_000_000, 0.0)  # a lossless photo: 4.6 s at this rate
    assert rate.frame_due(0.0) <= 0.25 + 1e-6


def _steer(rate: RateController, frame_bytes: Callable[[RateController], float], n: int) -> None:
    for _ in range(n):
        rate.frame_sent(int(frame_bytes(rate)), rate.quality, rate.scale_level)


def _bytes_at(full: float) -> Callable[[RateController], float]:
    """A frame's bytes: ``full`` at quality 70 and full size, less with quality and area."""
    return lambda r: full * (0.4 + r.quality / 120) * r.scale**2


def test_a_frame_holds_a_slow_link_for_at_most_frame_time() -> None:
    """A frame is a burst that a key's echo waits behind: it may take 10 ms of the link
    (12.5 KB at 10 Mbit/s), not a whole 30th of a second."""
    slow = RateController(bandwidth=10e6 / START_SHARE, now=0.0)
    assert slow.frame_budget() == 10e6 / 8 * 0.010


def test_a_scalable_stream_travels_smaller_before_it_gets_blurry() -> None:
    """On a slow link, frames too big at a middling quality go smaller (spice-gtk scales them
    up); a client that cannot scale only loses quality. Room again brings the size back."""
    scalable = RateController(bandwidth=10e6 / START_SHARE, now=0.0, scalable=True)
    plain = RateController(bandwidth=10e6 / START_SHARE, now=0.0)
    big = _bytes_at(40_000)  # 720p natural video at quality 70: about 40 KB
    _steer(scalable, big, 60)
    _steer(plain, big, 60)
    assert plain.scale_level == 0 and plain.quality == MIN_QUALITY
    assert scalable.scale_level > 0
    assert scalable.quality > SCALE_QUALITY - 10  # smaller, not blurrier
    assert big(scalable) <= scalable.frame_budget() * 1.15
    _steer(scalable, _bytes_at(4_000), 100)  # the content got simple
    assert scalable.scale_level == 0 and scalable.scale == SCALES[0]


def test_the_rate_climbs_to_the_measured_capacity_while_frames_are_held_back() -> None:
    """A network test read in TCP slow start (6 Mbit/s on a 50 Mbit/s path) must not keep the
    stream's quality at the bottom: with the kernel's delivery-rate samples reading the path's
    capacity and the delay low, the rate climbs to 0.9 of it, and no further."""
    rc = RateController(6e6 / 0.7, 0.0)
    rc.quality = MIN_QUALITY  # held back by the budget
    now = 0.0
    for _ in range(200):
        now += 0.25
        rc.delivery_sample(48e6, now)
        rc.round_trip(0.081, now)
    assert rc.rate == pytest.approx(48e6 * CAPACITY_SHARE)
    # Within 10 s (far below capacity it climbs by a quarter a step).
    rc2 = RateController(6e6 / 0.7, 0.0)
    rc2.quality = MIN_QUALITY
    for i in range(1, 41):
        rc2.delivery_sample(48e6, i * 0.25)
        rc2.round_trip(0.081, i * 0.25)
    assert rc2.rate > 0.8 * 48e6


def test_without_capacity_samples_or_when_not_held_back_the_rate_needs_use_to_climb() -> None:
    rc = RateController(6e6 / 0.7, 0.0)
    rc.quality = 20
    for i in range(1, 41):
        rc.round_trip(0.081, i * 0.25)  # no delivery samples, nothing sent
    assert rc.rate == pytest.approx(6e6)
    full = RateController(6e6 / 0.7, 0.0)
    full.quality = MAX_QUALITY  # frames already at the top quality: no need for more
    for i in range(1, 41):
        full.delivery_sample(48e6, i * 0.25)
        full.round_trip(0.081, i * 0.25)
    assert full.rate == pytest.approx(6e6)
