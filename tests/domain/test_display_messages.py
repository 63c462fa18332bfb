"""Display channel bodies against layouts written out by hand from spice.proto."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spice.domain.enums import BitmapFmt, ImageFlags, ImageType, MsgcDisplay, MsgDisplay, SurfaceFmt
from spice.domain.errors import MessageDecodeError
from spice.domain.messages import display as m


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- common structures -------------------------------------------------------------------


def test_rect_is_top_left_bottom_right() -> None:
    r = m.Rect.from_xywh(x=3, y=5, w=2, h=1)
    assert r == m.Rect(top=5, left=3, bottom=6, right=5)
    assert (r.width, r.height) == (2, 1)
    assert r.encode() == h("05000000 03000000 06000000 05000000")


def test_rect_negative_coordinates_are_int32() -> None:
    assert m.Rect(-1, -2, 0, 0).encode() == h("ffffffff feffffff 00000000 00000000")


@pytest.mark.parametrize(
    "args",
    [(0, 0, -1, 0), (0, 5, 1, 4), (0, 0, 1 << 31, 1)],
    ids=["inverted-v", "inverted-h", "overflow"],
)
def test_rect_rejects_bad_values(args: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        m.Rect(*args)


def test_clip_none_and_rects() -> None:
    assert m.encode_clip(()) == h("00")
    assert m.encode_clip((m.Rect(1, 2, 3, 4),)) == h(
        "01 01000000 01000000 02000000 03000000 04000000"
    )


# -- surfaces, monitors, mark --------------------------------------------------------------


def test_surface_create() -> None:
    msg = m.SurfaceCreate(0, 1024, 768)
    assert msg.MSG_TYPE == MsgDisplay.SURFACE_CREATE
    assert msg.MSG_TYPE == 314
    assert msg.encode() == h("00000000 00040000 00030000 20000000 01000000")
    assert len(msg.encode()) == 20


def test_surface_create_other_format_and_flags() -> None:
    msg = m.SurfaceCreate(3, 16, 8, format=SurfaceFmt.FMT_32_ARGB, flags=0)
    assert msg.encode() == h("03000000 10000000 08000000 60000000 00000000")


def test_surface_destroy() -> None:
    assert m.SurfaceDestroy(7).encode() == h("07000000")
    assert m.SurfaceDestroy.MSG_TYPE == 315


@pytest.mark.parametrize(
    ("cls", "number"),
    [(m.Mark, 102), (m.Reset, 103), (m.InvalAllPalettes, 108)],
)
def test_empty_messages(cls: type[m.Mark], number: int) -> None:
    assert cls.MSG_TYPE == number
    assert cls().encode() == b""


def test_monitors_config_one_head() -> None:
    msg = m.MonitorsConfig((m.MonitorHead(0, 0, 1024, 768, 0, 0),), max_allowed=1)
    assert msg.MSG_TYPE == 317
    body = msg.encode()
    assert body == h("0100 0100 00000000 00000000 00040000 00030000 00000000 00000000 00000000")
    assert len(body) == 4 + 28


def test_monitor_head_fields_in_order() -> None:
    head = m.MonitorHead(1, 2, 3, 4, 5, 6, 7)
    assert head.encode() == h("01000000 02000000 03000000 04000000 05000000 06000000 07000000")


# -- drawing ---------------------------------------------------------------------------------


def test_draw_fill_is_41_bytes() -> None:
    msg = m.DrawFill(0, m.Rect.from_xywh(1, 2, 3, 4), 0x00112233)
    assert msg.MSG_TYPE == 302
    body = msg.encode()
    assert body == h(
        "00000000"  # surface_id
        " 02000000 01000000 06000000 04000000"  # box: top, left, bottom, right
        " 00"  # clip NONE
        " 01 33221100"  # brush SOLID, color
        " 0800"  # rop OP_PUT
        " 00 00000000 00000000 00000000"  # QMask: flags, pos, bitmap
    )
    assert len(body) == 41


def test_draw_fill_with_clip_rects() -> None:
    clip = (m.Rect(2, 1, 3, 2),)
    body = m.DrawFill(1, m.Rect(2, 1, 6, 4), 0xFF, clip=clip).encode()
    assert len(body) == 41 + 4 + 16
    assert body[20:41] == h("01 01000000 02000000 01000000 03000000 02000000")
    assert body[41:46] == h("01 ff000000")


DRAW_COPY_2X1 = h(
    "00000000"  # surface_id
    " 05000000 03000000 06000000 05000000"  # box (y=5, x=3, 2x1)
    " 00"  # clip NONE
    " 39000000"  # src_bitmap = 57
    " 00000000 00000000 01000000 02000000"  # src_area (0, 0, h=1, w=2)
    " 0800"  # rop OP_PUT
    " 00"  # scale_mode
    " 00 00000000 00000000 00000000"  # QMask
    # offset 57: SpiceImage descriptor
    " 0700000000000000 00 00 02000000 01000000"  # id 7, BITMAP, flags 0, 2x1
    # BitmapData
    " 08 04 02000000 01000000 08000000 00000000"  # 32BIT, TOP_DOWN, x, y, stride, palette 0
    " 0102030405060708"  # pixels
)


def test_draw_copy_bitmap_2x1() -> None:
    pixels = bytes(range(1, 9))
    image = m.BitmapImage(id=7, width=2, height=1, data=pixels, stride=8)
    msg = m.DrawCopy(0, m.Rect.from_xywh(3, 5, 2, 1), image)
    assert msg.MSG_TYPE == 304
    body = msg.encode()
    assert len(body) == 93 + 8
    assert int.from_bytes(body[21:25], "little") == 57
    assert body == DRAW_COPY_2X1


def test_draw_copy_parts_join_to_body_and_keep_pixels_uncopied() -> None:
    pixels = bytearray(range(1, 9))
    image = m.BitmapImage(7, 2, 1, pixels, 8)
    parts = m.DrawCopy(0, m.Rect.from_xywh(3, 5, 2, 1), image).encode_parts()
    assert b"".join(parts) == DRAW_COPY_2X1
    last = parts[-1]
    assert isinstance(last, memoryview)
    assert last.obj is pixels  # a view of the caller's buffer, not a copy


def test_draw_copy_accepts_numpy_rows() -> None:
    frame = np.arange(1, 9, dtype=np.uint8).reshape(1, 2, 4)
    image = m.BitmapImage(7, 2, 1, frame.data, 8)
    assert m.DrawCopy(0, m.Rect.from_xywh(3, 5, 2, 1), image).encode() == DRAW_COPY_2X1


def test_draw_copy_rejects_non_contiguous_views() -> None:
    frame = np.zeros((2, 4, 4), dtype=np.uint8)
    with pytest.raises(ValueError):
        m.BitmapImage(1, 2, 2, frame[:, :2].data, 8)


def test_draw_copy_with_clip_moves_the_image() -> None:
    image = m.BitmapImage(7, 2, 1, bytes(8), 8)
    clip = (m.Rect(5, 3, 6, 4), m.Rect(5, 4, 6, 5))
    body = m.DrawCopy(0, m.Rect.from_xywh(3, 5, 2, 1), image, clip=clip).encode()
    offset = 57 + 4 + 2 * 16
    assert int.from_bytes(body[21 + 36 : 25 + 36], "little") == offset
    assert body[offset : offset + 8] == h("0700000000000000")
    assert len(body) == offset + 18 + 18 + 8


def test_draw_copy_explicit_src_area() -> None:
    image = m.BitmapImage(7, 2, 1, bytes(8), 8)
    body = m.DrawCopy(0, m.Rect(0, 0, 1, 1), image, src_area=m.Rect(0, 1, 1, 2)).encode()
    assert body[25:41] == h("00000000 01000000 01000000 02000000")


def test_draw_copy_padded_stride_and_bottom_up() -> None:
    image = m.BitmapImage(
        1, 1, 2, bytes(16), stride=8, bitmap_flags=0, image_flags=ImageFlags.CACHE_ME
    )
    encoded = image.encode()
    assert encoded[:18] == h("0100000000000000 00 01 01000000 02000000")
    assert encoded[18:36] == h("08 00 01000000 02000000 08000000 00000000")
    assert len(encoded) == 36 + 16


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": bytes(7), "stride": 8},  # wrong size
        {"data": bytes(4), "stride": 4},  # stride < 4 * width
        {"data": bytes(8), "stride": 8, "fmt": BitmapFmt.BIT8},  # paletted: no palette
        {"data": bytes(8), "stride": 8, "bitmap_flags": 4 | 2},  # PAL_FROM_CACHE
        {"data": bytes(8), "stride": 8, "id": -1},
    ],
)
def test_bitmap_image_validation(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"id": 1, "width": 2, "height": 1} | kwargs
    with pytest.raises(ValueError):
        m.BitmapImage(**args)  # type: ignore[arg-type]


def test_bitmap_24bit_stride() -> None:
    image = m.BitmapImage(1, 2, 1, bytes(6), 6, fmt=BitmapFmt.BIT24)
    assert image.encode()[18:20] == h("07 04")


def test_from_cache_image() -> None:
    image = m.FromCacheImage(0x1234, 64, 32)
    assert image.type == ImageType.FROM_CACHE
    assert image.encode() == h("3412000000000000 67 00 40000000 20000000")
    body = m.DrawCopy(0, m.Rect.from_xywh(0, 0, 64, 32), image).encode()
    assert len(body) == 57 + 18
    assert body[25:41] == h("00000000 00000000 20000000 40000000")


@pytest.mark.parametrize("kind", [ImageType.LZ_RGB, ImageType.LZ4, ImageType.JPEG, ImageType.QUIC])
def test_compressed_image(kind: ImageType) -> None:
    image = m.CompressedImage(kind, 9, 4, 3, b"\xaa\xbb\xcc", image_flags=ImageFlags.CACHE_ME)
    encoded = image.encode()
    assert encoded == h("0900000000000000") + bytes((kind, 1)) + h(
        "04000000 03000000 03000000 aabbcc"
    )
    assert image.encode_parts()[-1] == b"\xaa\xbb\xcc"


@pytest.mark.parametrize("kind", [ImageType.BITMAP, ImageType.LZ_PLT, ImageType.FROM_CACHE])
def test_compressed_image_rejects_other_kinds(kind: ImageType) -> None:
    with pytest.raises(ValueError):
        m.CompressedImage(kind, 1, 1, 1, b"")


def test_copy_bits_is_29_bytes() -> None:
    msg = m.CopyBits(0, m.Rect(10, 0, 20, 30), src_x=0, src_y=-5)
    assert msg.MSG_TYPE == 104
    assert msg.encode() == h("00000000 0a000000 00000000 14000000 1e000000 00 00000000 fbffffff")
    assert len(msg.encode()) == 29


def test_inval_list() -> None:
    msg = m.InvalList((5, 0x1_0000_0002))
    assert msg.MSG_TYPE == 105
    assert msg.encode() == h("0200 01 0500000000000000 01 0200000001000000")
    assert m.InvalList(()).encode() == h("0000")


def test_inval_all_pixmaps() -> None:
    assert m.InvalAllPixmaps().encode() == h("00")
    msg = m.InvalAllPixmaps((m.WaitForChannel(2, 0, 42),))
    assert msg.MSG_TYPE == 106
    assert msg.encode() == h("01 02 00 2a00000000000000")


# -- client messages ---------------------------------------------------------------------------


def test_display_init_html5() -> None:
    body = h("01 0000a00000000000 00 00000000")
    assert len(body) == 14
    assert m.DisplayInit.decode(body) == m.DisplayInit(1, 10 * 1024 * 1024, 0, 0)


def test_display_init_gtk() -> None:
    body = h("01 0000400100000000 01 00008000")
    assert m.DisplayInit.decode(body) == m.DisplayInit(1, 20971520, 1, 8388608)


def test_display_init_too_short() -> None:
    with pytest.raises(MessageDecodeError):
        m.DisplayInit.decode(bytes(13))


def test_stream_report() -> None:
    body = h("01000000 02000000 03000000 04000000 00000000 ffffffff fbffffff ffffffff")
    assert len(body) == 32
    assert m.StreamReport.decode(body) == m.StreamReport(1, 2, 3, 4, 0, 0xFFFFFFFF, -5, 0xFFFFFFFF)


def test_preferred_compression() -> None:
    assert m.PreferredCompression.decode(h("07")).image_compression == 7
    with pytest.raises(MessageDecodeError):
        m.PreferredCompression.decode(b"")


def test_preferred_video_codec_type() -> None:
    assert m.PreferredVideoCodecType.decode(h("02 03 01")).codecs == (3, 1)
    assert m.PreferredVideoCodecType.decode(h("00")).codecs == ()
    with pytest.raises(MessageDecodeError):
        m.PreferredVideoCodecType.decode(h("03 01 02"))
    with pytest.raises(MessageDecodeError):
        m.PreferredVideoCodecType.decode(b"")


def test_gl_draw_done() -> None:
    assert m.GlDrawDone.decode(b"") == m.GlDrawDone()


def test_client_registry() -> None:
    assert m.CLIENT_MESSAGES == {
        MsgcDisplay.INIT: m.DisplayInit,
        MsgcDisplay.STREAM_REPORT: m.StreamReport,
        MsgcDisplay.PREFERRED_COMPRESSION: m.PreferredCompression,
        MsgcDisplay.GL_DRAW_DONE: m.GlDrawDone,
        MsgcDisplay.PREFERRED_VIDEO_CODEC_TYPE: m.PreferredVideoCodecType,
    }


@pytest.mark.parametrize("cls", list(m.CLIENT_MESSAGES.values()), ids=lambda c: c.__name__)
@given(body=st.binary(max_size=64))
def test_client_decode_never_fails_otherwise(cls: Any, body: bytes) -> None:
    try:
        msg = cls.decode(body)
    except MessageDecodeError:
        return
    assert isinstance(msg, cls)


# -- properties of encoders --------------------------------------------------------------------


@given(
    x=st.integers(0, 5000),
    y=st.integers(0, 5000),
    w=st.integers(1, 64),
    hgt=st.integers(1, 64),
    pad=st.integers(0, 8),
    nclip=st.integers(0, 3),
)
def test_draw_copy_layout(x: int, y: int, w: int, hgt: int, pad: int, nclip: int) -> None:
    stride = 4 * w + pad
    data = bytes(i & 0xFF for i in range(stride * hgt))
    image = m.BitmapImage(1, w, hgt, data, stride)
    clip = tuple(m.Rect.from_xywh(x, y, 1, 1) for _ in range(nclip))
    body = m.DrawCopy(0, m.Rect.from_xywh(x, y, w, hgt), image, clip=clip).encode()
    clip_size = 1 + (4 + 16 * nclip if nclip else 0)
    fixed = 20 + clip_size + 36
    assert len(body) == fixed + 36 + stride * hgt
    assert int.from_bytes(body[20 + clip_size : 24 + clip_size], "little") == fixed
    assert body[fixed + 36 :] == data


def test_stream_create_layout() -> None:
    """spice.proto StreamCreate: surface_id, id, flags, codec_type, stamp (u64), stream and
    source sizes, dest Rect, Clip: 50 bytes with clip NONE's one byte making 51."""
    msg = m.StreamCreate(0, 63, 1, 1, 0x0102030405060708, 4, 3, 2, 1, m.Rect(10, 20, 30, 40))
    assert msg.MSG_TYPE == MsgDisplay.STREAM_CREATE == 122
    assert msg.encode() == bytes.fromhex(
        "00000000"  # surface_id
        "3f000000"  # id 63
        "01"  # flags TOP_DOWN
        "01"  # codec MJPEG
        "0807060504030201"  # stamp
        "04000000"
        "03000000"
        "02000000"
        "01000000"  # stream w, h; src w, h
        "0a000000"
        "14000000"
        "1e000000"
        "28000000"  # dest top, left, bottom, right
        "00"  # clip NONE
    )


def test_stream_destroy_layout() -> None:
    assert m.StreamDestroy(7).MSG_TYPE == MsgDisplay.STREAM_DESTROY == 125
    assert m.StreamDestroy(7).encode() == bytes.fromhex("07000000")
