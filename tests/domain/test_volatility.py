"""Per-tile send rates: which areas a client keeps getting images of."""

from __future__ import annotations

import pytest

from spice.domain.display.volatility import QUICK_REDRAW, TAU, VOLATILE_RATE, Volatility
from spice.domain.geometry import Box


def _send(v: Volatility, box: Box, fps: float, seconds: float, start: float = 0.0) -> float:
    t = start
    for i in range(round(fps * seconds)):
        t = start + i / fps
        v.sent(box, t)
    return t


def test_thirty_images_a_second_read_as_about_thirty() -> None:
    v = Volatility(640, 480)
    box = Box(64, 64, 256, 128)
    t = _send(v, box, 30.0, 2.0)
    assert 28.0 <= v.rate(box, t + 1 / 30) <= 33.0
    assert v.volatile(box, t)


@pytest.mark.parametrize("fps", [1.0, 2.0, 4.0])
def test_a_blinking_cursor_or_a_clock_is_not_volatile(fps: float) -> None:
    v = Volatility(640, 480)
    box = Box(0, 0, 16, 16)
    t = _send(v, box, fps, 5.0)
    assert not v.volatile(box, t)


def test_the_rate_decays_once_the_redraws_stop() -> None:
    v = Volatility(640, 480)
    box = Box(0, 0, 128, 128)
    t = _send(v, box, 30.0, 1.0)
    assert v.volatile(box, t)
    # e^(-t/TAU) * 15 (the count at 30/s) falls under the threshold's count within ~2 TAU.
    assert not v.volatile(box, t + 3 * TAU)


def test_an_area_is_judged_by_the_mean_of_its_tiles() -> None:
    v = Volatility(640, 480)
    hot = Box(0, 0, 64, 64)
    t = _send(v, hot, 30.0, 1.0)
    assert v.volatile(hot, t)
    # One hot tile among 16 (a 256x256 area): mean 1/16 of ~30/s, under the threshold.
    assert v.rate(Box(0, 0, 256, 256), t) < VOLATILE_RATE
    assert not v.volatile(Box(0, 0, 256, 256), t)


def test_boxes_off_the_surface_are_ignored() -> None:
    v = Volatility(100, 100)
    v.sent(Box(500, 500, 10, 10), 0.0)
    v.sent(Box(0, 0, 0, 0), 0.0)
    assert v.rate(Box(500, 500, 10, 10), 0.0) == 0.0
    assert v.rate(Box(-50, -50, 60, 60), 0.0) == 0.0
    v.sent(Box(-50, -50, 60, 60), 0.0)  # clipped to the corner tile
    assert v.rate(Box(0, 0, 10, 10), 0.0) == pytest.approx(1 / TAU)


def test_an_area_asked_for_again_while_its_last_image_is_fresh_is_redrawn_quickly() -> None:
    v = Volatility(640, 480)
    box = Box(0, 0, 320, 240)
    assert not v.redrawn_quickly(box, 1.0)  # never sent
    v.sent(box, 1.0)
    assert not v.volatile(box, 1.0 + 1 / 30)  # one image is no rate yet
    assert v.redrawn_quickly(box, 1.0 + 1 / 30)
    assert not v.redrawn_quickly(box, 1.0 + 1.01 * QUICK_REDRAW)
    assert not v.redrawn_quickly(box, 1.25)  # a 4 Hz blinker's next image
    # Every tile counts: half the area fresh is not the area redrawn.
    assert not v.redrawn_quickly(Box(0, 0, 640, 240), 1.0 + 1 / 30)


def test_the_pixel_rate_counts_every_image_over_the_surface_and_decays() -> None:
    v = Volatility(1920, 1080)
    t = _send(v, Box(320, 192, 1280, 704), 30.0, 2.0)  # tile-aligned: 20 x 11 tiles
    assert 0.95 <= v.pixel_rate(t) / (30 * 1280 * 704) <= 1.1
    small = Volatility(1920, 1080)
    t = _send(small, Box(0, 0, 64, 64), 30.0, 2.0)
    assert small.pixel_rate(t) == pytest.approx(v.pixel_rate(t) / 220)
    assert v.pixel_rate(t + 3 * TAU) < v.pixel_rate(t) / 15
