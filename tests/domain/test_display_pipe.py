"""The per-client display pipe: whatever the interleaving of drawing and sending, and however
far a client lags, a client that applies what it is sent ends with the server's pixels."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.codecs.lz4_image import decode_lz4_bgrx
from domain.display_pipe import (
    CopyBits,
    CreatePrimary,
    Damage,
    DestroyPrimary,
    DisplayPipe,
    Fill,
    Mark,
    MonitorsConfig,
    messages_for,
)
from domain.enums import ImageType
from domain.geometry import Box
from domain.messages import display as dm
from domain.surface import Surface, color_to_bgrx

W, H = 24, 16


class FakeClient:
    """Applies display messages the way spice-gtk's canvas does."""

    def __init__(self) -> None:
        self.pixels: np.ndarray | None = None
        self.marked = False

    def apply(self, msg: object) -> None:
        if isinstance(msg, dm.SurfaceCreate):
            self.pixels = np.zeros((msg.height, msg.width, 4), dtype=np.uint8)
            self.marked = False
        elif isinstance(msg, dm.SurfaceDestroy):
            self.pixels = None
        elif isinstance(msg, dm.Mark):
            self.marked = True
        elif isinstance(msg, dm.DrawCopy):
            assert self.pixels is not None
            box, img = msg.box, msg.image
            if isinstance(img, dm.CompressedImage):
                assert img.type == ImageType.LZ4
                raw = decode_lz4_bgrx(bytes(img.payload), img.width, img.height)
            else:
                assert isinstance(img, dm.BitmapImage)
                raw = bytes(img.data)
            data = np.frombuffer(raw, dtype=np.uint8).reshape(img.height, img.width, 4)
            self.pixels[box.top : box.bottom, box.left : box.right] = data
        elif isinstance(msg, dm.DrawFill):
            assert self.pixels is not None
            b = msg.box
            self.pixels[b.top : b.bottom, b.left : b.right] = color_to_bgrx(msg.color)
        elif isinstance(msg, dm.CopyBits):
            assert self.pixels is not None
            b = msg.box
            h, w = b.bottom - b.top, b.right - b.left
            block = self.pixels[msg.src_y : msg.src_y + h, msg.src_x : msg.src_x + w].copy()
            self.pixels[b.top : b.bottom, b.left : b.right] = block


def send_one(
    pipe: DisplayPipe,
    surface: Surface,
    client: FakeClient,
    ids: itertools.count[int],
    lz4: bool = False,
) -> bool:
    op = pipe.pop()
    if op is None:
        return False
    scratch = np.empty(W * H * 4, dtype=np.uint8)
    messages = messages_for(
        op, surface, monitors_config=True, image_ids=ids, scratch=scratch, lz4=lz4
    )
    for msg in messages:
        client.apply(msg)
    pipe.done()
    return True


boxes = st.builds(
    Box,
    st.integers(-4, W),
    st.integers(-4, H),
    st.integers(0, W + 4),
    st.integers(0, H + 4),
)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("update"), boxes, st.integers(0, 255)),
        st.tuples(st.just("fill"), boxes, st.integers(0, 0xFFFFFF)),
        st.tuples(st.just("scroll"), st.integers(-5, 5), st.integers(-5, 5)),
        st.tuples(st.just("send"), st.integers(1, 4)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(actions, st.integers(2, 60), st.booleans())
def test_client_converges_to_the_surface(steps: list[tuple], limit: int, lz4: bool) -> None:
    surface = Surface(W, H)
    pipe = DisplayPipe(limit=limit)
    client = FakeClient()
    ids = itertools.count(1)
    pipe.new_primary(W, H, replace=False)
    for step in steps:
        if step[0] == "update":
            _, box, seed = step
            patch = np.full((max(box.h, 0), max(box.w, 0), 4), seed, dtype=np.uint8)
            patch[..., 3] = 0
            if box.w > 0 and box.h > 0:
                pipe.damage(surface.put(box.x, box.y, patch))
        elif step[0] == "fill":
            _, box, color = step
            pipe.fill(surface.fill(box, color), color)
        elif step[0] == "scroll":
            _, dx, dy = step
            dest = Box(0, 0, W, H).intersect(Box(dx, dy, W, H))
            if not dest.empty:
                done = surface.copy_bits(dest.x - dx, dest.y - dy, dest)
                pipe.copy_bits(dest.x - dx, dest.y - dy, done)
        else:
            for _ in range(step[1]):
                send_one(pipe, surface, client, ids, lz4)
        assert len(pipe) <= limit + 5
    while send_one(pipe, surface, client, ids, lz4):
        pass
    assert client.marked
    assert client.pixels is not None
    assert np.array_equal(client.pixels, surface.pixels)


def test_new_primary_sequence_is_create_draw_monitors_mark() -> None:
    pipe = DisplayPipe()
    pipe.new_primary(8, 4, replace=True)
    assert list(pipe) == [
        DestroyPrimary(),
        CreatePrimary(8, 4),
        Damage(Box(0, 0, 8, 4)),
        MonitorsConfig(8, 4),
        Mark(),
    ]


def test_copy_bits_behind_pending_damage_becomes_damage() -> None:
    pipe = DisplayPipe()
    pipe.damage(Box(0, 0, 4, 4))
    pipe.copy_bits(0, 0, Box(0, 2, 4, 2))
    assert list(pipe) == [Damage(Box(0, 0, 4, 4)), Damage(Box(0, 2, 4, 2))]
    pipe2 = DisplayPipe()
    pipe2.fill(Box(0, 0, 2, 2), 5)
    pipe2.copy_bits(0, 0, Box(0, 2, 4, 2))
    assert list(pipe2) == [Fill(Box(0, 0, 2, 2), 5), CopyBits(0, 0, Box(0, 2, 4, 2))]


def test_damage_in_flight_also_blocks_copy_bits() -> None:
    pipe = DisplayPipe()
    pipe.damage(Box(0, 0, 4, 4))
    assert pipe.pop() == Damage(Box(0, 0, 4, 4))
    pipe.copy_bits(0, 0, Box(0, 1, 4, 2))
    assert list(pipe) == [Damage(Box(0, 1, 4, 2))]
    pipe.done()


def test_pipe_is_bounded_when_the_client_never_reads() -> None:
    pipe = DisplayPipe(limit=50)
    for i in range(10_000):
        pipe.fill(Box(i % 100, i % 37, 3, 3), i)
        pipe.damage(Box(i % 90, 0, 5, 5))
    assert len(pipe) <= 51
    assert pipe.collapses > 0


def test_monitors_config_only_when_negotiated() -> None:
    ids = itertools.count(1)
    assert messages_for(MonitorsConfig(8, 4), None, monitors_config=False, image_ids=ids) == []
    (msg,) = messages_for(MonitorsConfig(8, 4), None, monitors_config=True, image_ids=ids)
    assert isinstance(msg, dm.MonitorsConfig)
    assert msg.encode() == bytes.fromhex(
        "0100 010000000000 00000000 08000000 04000000 00000000 00000000 00000000".replace(" ", "")
    )
