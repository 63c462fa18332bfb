"""Display channel message bodies (spice.proto ``channel DisplayChannel``): surfaces, monitors,
the drawing messages a framebuffer server needs (DRAW_FILL, DRAW_COPY, COPY_BITS), image-cache
invalidation, the images DRAW_COPY carries, and what the client sends back.

Drawing messages start with a DisplayBase (surface id, destination box, clip). A pointer field
is a uint32 offset from the start of the body; like the reference marshaller we put the pointee
(the image) right after the fixed part, so with no clip ``src_bitmap`` is 57.

Images are the one place where size matters: a full-HD BITMAP is 8 MB. ``encode_parts()``
returns the body as a list of buffers in which the pixel data is the caller's own object,
uncopied, so a writer that sends parts one by one never copies the pixels; ``encode()`` joins
the parts and so copies them exactly once.

Values are checked when a message is built (``ValueError``): a message that exists encodes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, Self, TypeAlias

import attrs

from spice.domain.enums import (
    BitmapFlags,
    BitmapFmt,
    BrushType,
    ClipType,
    ImageType,
    MsgcDisplay,
    MsgDisplay,
    Ropd,
    SurfaceFlags,
    SurfaceFmt,
)
from spice.domain.errors import MessageDecodeError
from spice.domain.messages.codec import Fixed, Layout, int_check, registry, uint_check, unpack_exact

#: What image payloads may be given as. Anything not ``bytes`` is kept as a flat ``memoryview``
#: of the caller's buffer, which must not change until the message has been written.
BytesLike: TypeAlias = bytes | bytearray | memoryview

_RECT = struct.Struct("<iiii")
_DESCRIPTOR = struct.Struct("<QBBII")  # SpiceImage descriptor: id, type, flags, width, height
_BITMAP = struct.Struct("<BBIIII")  # format, flags, x, y, stride, palette pointer
_COPY_TAIL = struct.Struct("<I4iHBBiiI")  # src_bitmap, src_area, rop, scale_mode, QMask
_FILL_TAIL = struct.Struct("<BIHBiiI")  # Brush SOLID, rop, QMask
_HEAD = struct.Struct("<7I")
_RESOURCE = struct.Struct("<BQ")
_WAIT = struct.Struct("<BBQ")

#: spice.proto ``resource_type``: the only kind INVAL_LIST names.
_RES_TYPE_PIXMAP = 1


_U8, _U16, _U32, _U64 = uint_check(8), uint_check(16), uint_check(32), uint_check(64)
_I32 = int_check(32)


def _flat_buffer(data: BytesLike) -> BytesLike:
    """Keep ``bytes`` as is; view anything else as one flat run of bytes, without copying."""
    if isinstance(data, bytes):
        return data
    view = memoryview(data)
    if not view.c_contiguous:
        raise ValueError("image data must be C-contiguous")
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


# -- common structures -------------------------------------------------------------------


@attrs.frozen
class Rect:
    """spice.proto ``Rect``: top, left, bottom, right (bottom and right exclusive)."""

    top: int = attrs.field(validator=_I32)
    left: int = attrs.field(validator=_I32)
    bottom: int = attrs.field(validator=_I32)
    right: int = attrs.field(validator=_I32)

    def __attrs_post_init__(self) -> None:
        if self.bottom < self.top or self.right < self.left:
            raise ValueError(f"inverted rectangle {self!r}")

    @classmethod
    def from_xywh(cls, x: int, y: int, w: int, h: int) -> Self:
        return cls(y, x, y + h, x + w)

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def encode(self) -> bytes:
        return _RECT.pack(self.top, self.left, self.bottom, self.right)


def encode_clip(rects: Sequence[Rect]) -> bytes:
    """spice.proto ``Clip``: no rectangles means NONE (the whole box is drawn); otherwise
    RECTS with the rectangles inline. (RECTS with zero rectangles, "draw nothing", is of no
    use to a drawing message and is not expressible here.)"""
    if not rects:
        return bytes((ClipType.NONE,))
    return struct.pack("<BI", ClipType.RECTS, len(rects)) + b"".join(r.encode() for r in rects)


def _display_base(surface_id: int, box: Rect, clip: Sequence[Rect]) -> bytes:
    return struct.pack("<I", surface_id) + box.encode() + encode_clip(clip)


# -- images ------------------------------------------------------------------------------


class Image(Protocol):
    """A SpiceImage: an 18-byte descriptor and the payload its type calls for."""

    @property
    def id(self) -> int: ...
    @property
    def type(self) -> ImageType: ...
    @property
    def image_flags(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...

    def encode_parts(self) -> list[BytesLike]:
        """The encoded image as buffers to be sent in order; pixel data is not copied."""
        ...

    def encode(self) -> bytes: ...


def _descriptor(image_id: int, image_type: int, flags: int, width: int, height: int) -> bytes:
    return _DESCRIPTOR.pack(image_id, image_type, flags, width, height)


#: Bytes per pixel of the bitmap formats we can send. Paletted formats are left out: they need
#: a palette (pointer or cache) and a framebuffer server has no use for them.
_BITMAP_BPP = {
    BitmapFmt.BIT16: 2,
    BitmapFmt.BIT24: 3,
    BitmapFmt.BIT32: 4,
    BitmapFmt.RGBA: 4,
    BitmapFmt.BIT8_A: 1,
}
_PALETTE_FLAGS = BitmapFlags.PAL_CACHE_ME | BitmapFlags.PAL_FROM_CACHE


@attrs.frozen
class BitmapImage:
    """An uncompressed image (type BITMAP). ``data`` holds ``height`` rows of ``stride`` bytes,
    top row first unless ``bitmap_flags`` lacks TOP_DOWN; for 32-bit formats the pixels are
    bytes B, G, R, X (or A)."""

    id: int = attrs.field(validator=_U64)
    width: int = attrs.field(validator=_U32)
    height: int = attrs.field(validator=_U32)
    data: BytesLike = attrs.field(converter=_flat_buffer)
    stride: int = attrs.field(validator=_U32)
    fmt: BitmapFmt = BitmapFmt.BIT32
    image_flags: int = attrs.field(default=0, validator=_U8)
    bitmap_flags: int = attrs.field(default=BitmapFlags.TOP_DOWN, validator=_U8)

    def __attrs_post_init__(self) -> None:
        bpp = _BITMAP_BPP.get(self.fmt)
        if bpp is None:
            raise ValueError(f"unsupported bitmap format {self.fmt!r}")
        if self.bitmap_flags & _PALETTE_FLAGS:
            raise ValueError("palette flags on a bitmap without a palette")
        if self.stride < bpp * self.width:
            raise ValueError(f"stride {self.stride} < {bpp} * width {self.width}")
        if len(self.data) != self.stride * self.height:
            raise ValueError(
                f"data is {len(self.data)} bytes, stride * height is {self.stride * self.height}"
            )

    @property
    def type(self) -> ImageType:
        return ImageType.BITMAP

    def encode_parts(self) -> list[BytesLike]:
        head = _descriptor(self.id, ImageType.BITMAP, self.image_flags, self.width, self.height)
        head += _BITMAP.pack(self.fmt, self.bitmap_flags, self.width, self.height, self.stride, 0)
        return [head, self.data]

    def encode(self) -> bytes:
        return b"".join(self.encode_parts())


@attrs.frozen
class FromCacheImage:
    """A reference to an image the client was told to keep (sent earlier with CACHE_ME)."""

    id: int = attrs.field(validator=_U64)
    width: int = attrs.field(validator=_U32)
    height: int = attrs.field(validator=_U32)

    @property
    def type(self) -> ImageType:
        return ImageType.FROM_CACHE

    @property
    def image_flags(self) -> int:
        return 0

    def encode_parts(self) -> list[BytesLike]:
        return [self.encode()]

    def encode(self) -> bytes:
        return _descriptor(self.id, ImageType.FROM_CACHE, 0, self.width, self.height)


#: Image types whose payload is ``uint32 data_size; uint8 data[data_size]`` (BinaryData).
_BINARY_DATA_TYPES = frozenset(
    {ImageType.QUIC, ImageType.LZ_RGB, ImageType.GLZ_RGB, ImageType.JPEG, ImageType.LZ4}
)


@attrs.frozen
class CompressedImage:
    """An image whose payload is one length-prefixed blob (QUIC, LZ_RGB, GLZ_RGB, JPEG, LZ4);
    ``payload`` is the codec's output, without the length."""

    type: ImageType = attrs.field()
    id: int = attrs.field(validator=_U64)
    width: int = attrs.field(validator=_U32)
    height: int = attrs.field(validator=_U32)
    payload: BytesLike = attrs.field(converter=_flat_buffer)
    image_flags: int = attrs.field(default=0, validator=_U8)

    @type.validator
    def _check_type(self, _attribute: attrs.Attribute[ImageType], value: ImageType) -> None:
        if value not in _BINARY_DATA_TYPES:
            raise ValueError(f"{value!r} is not an image type with a data_size; data payload")

    def __attrs_post_init__(self) -> None:
        if len(self.payload) > 0xFFFFFFFF:
            raise ValueError("payload too large for uint32 data_size")

    def encode_parts(self) -> list[BytesLike]:
        head = _descriptor(self.id, self.type, self.image_flags, self.width, self.height)
        return [head + struct.pack("<I", len(self.payload)), self.payload]

    def encode(self) -> bytes:
        return b"".join(self.encode_parts())


# -- server messages ---------------------------------------------------------------------


@attrs.frozen
class SurfaceCreate(Fixed):
    MSG_TYPE: ClassVar[int] = MsgDisplay.SURFACE_CREATE
    LAYOUT: ClassVar[Layout] = Layout("5I", "SURFACE_CREATE")
    surface_id: int = attrs.field(validator=_U32)
    width: int = attrs.field(validator=_U32)
    height: int = attrs.field(validator=_U32)
    format: SurfaceFmt = SurfaceFmt.FMT_32_xRGB
    flags: int = attrs.field(default=SurfaceFlags.PRIMARY, validator=_U32)


@attrs.frozen
class SurfaceDestroy(Fixed):
    MSG_TYPE: ClassVar[int] = MsgDisplay.SURFACE_DESTROY
    LAYOUT: ClassVar[Layout] = Layout("I", "SURFACE_DESTROY")
    surface_id: int = attrs.field(validator=_U32)


@attrs.frozen
class Mark(Fixed):
    """The surface now has meaningful content; spice-gtk shows nothing before it."""

    MSG_TYPE: ClassVar[int] = MsgDisplay.MARK
    LAYOUT: ClassVar[Layout] = Layout("", "MARK")


@attrs.frozen
class Reset(Fixed):
    MSG_TYPE: ClassVar[int] = MsgDisplay.RESET
    LAYOUT: ClassVar[Layout] = Layout("", "RESET")


@attrs.frozen
class MonitorHead:
    monitor_id: int = attrs.field(validator=_U32)
    surface_id: int = attrs.field(validator=_U32)
    width: int = attrs.field(validator=_U32)
    height: int = attrs.field(validator=_U32)
    x: int = attrs.field(validator=_U32)
    y: int = attrs.field(validator=_U32)
    flags: int = attrs.field(default=0, validator=_U32)

    def encode(self) -> bytes:
        return _HEAD.pack(
            self.monitor_id, self.surface_id, self.width, self.height, self.x, self.y, self.flags
        )


@attrs.frozen
class MonitorsConfig:
    MSG_TYPE: ClassVar[int] = MsgDisplay.MONITORS_CONFIG
    heads: tuple[MonitorHead, ...]
    max_allowed: int = attrs.field(validator=_U16)

    def __attrs_post_init__(self) -> None:
        if len(self.heads) > 0xFFFF:
            raise ValueError("too many heads")

    def encode(self) -> bytes:
        return struct.pack("<HH", len(self.heads), self.max_allowed) + b"".join(
            h.encode() for h in self.heads
        )


def _check_clip(
    _inst: Any, _attribute: attrs.Attribute[tuple[Rect, ...]], value: tuple[Rect, ...]
) -> None:
    if len(value) > 0xFFFFFFFF:
        raise ValueError("too many clip rectangles")


@attrs.frozen
class DrawFill:
    """Fill ``box`` with a solid ``color`` (in the surface's format: 0x00RRGGBB for 32-bit)."""

    MSG_TYPE: ClassVar[int] = MsgDisplay.DRAW_FILL
    surface_id: int = attrs.field(validator=_U32)
    box: Rect
    color: int = attrs.field(validator=_U32)
    clip: tuple[Rect, ...] = attrs.field(default=(), validator=_check_clip)

    def encode(self) -> bytes:
        return _display_base(self.surface_id, self.box, self.clip) + _FILL_TAIL.pack(
            BrushType.SOLID, self.color, Ropd.OP_PUT, 0, 0, 0, 0
        )


@attrs.frozen
class DrawCopy:
    """Copy ``src_area`` of ``image`` to ``box``. ``src_area`` defaults to the whole image;
    keep it so (and the image box-sized): spice-html5 ignores it."""

    MSG_TYPE: ClassVar[int] = MsgDisplay.DRAW_COPY
    surface_id: int = attrs.field(validator=_U32)
    box: Rect
    image: Image
    src_area: Rect | None = None
    clip: tuple[Rect, ...] = attrs.field(default=(), validator=_check_clip)

    @property
    def source_area(self) -> Rect:
        if self.src_area is not None:
            return self.src_area
        return Rect(0, 0, self.image.height, self.image.width)

    def encode_parts(self) -> list[BytesLike]:
        """The body as buffers, in order; the image's pixel data is the caller's, uncopied."""
        base = _display_base(self.surface_id, self.box, self.clip)
        area = self.source_area
        fixed = base + _COPY_TAIL.pack(
            len(base) + _COPY_TAIL.size,  # src_bitmap: the image follows the fixed part
            area.top,
            area.left,
            area.bottom,
            area.right,
            Ropd.OP_PUT,
            0,  # scale_mode INTERPOLATE; used only if src_area and box differ in size
            0,  # QMask: none
            0,
            0,
            0,
        )
        parts = self.image.encode_parts()
        # Glue the small image header onto the fixed part: one buffer fewer to write.
        return [fixed + parts[0], *parts[1:]] if isinstance(parts[0], bytes) else [fixed, *parts]

    def encode(self) -> bytes:
        return b"".join(self.encode_parts())


@attrs.frozen
class CopyBits:
    """Copy the area of ``box``'s size whose top-left is (src_x, src_y) to ``box``, on the
    same surface (scrolling, window moves)."""

    MSG_TYPE: ClassVar[int] = MsgDisplay.COPY_BITS
    surface_id: int = attrs.field(validator=_U32)
    box: Rect
    src_x: int = attrs.field(validator=_I32)
    src_y: int = attrs.field(validator=_I32)
    clip: tuple[Rect, ...] = attrs.field(default=(), validator=_check_clip)

    def encode(self) -> bytes:
        return _display_base(self.surface_id, self.box, self.clip) + struct.pack(
            "<ii", self.src_x, self.src_y
        )


@attrs.frozen
class InvalList:
    """Make the client drop these cached images (pixmap ids)."""

    MSG_TYPE: ClassVar[int] = MsgDisplay.INVAL_LIST
    ids: tuple[int, ...]

    def __attrs_post_init__(self) -> None:
        if len(self.ids) > 0xFFFF:
            raise ValueError("too many ids for one INVAL_LIST")
        for i in self.ids:
            if not 0 <= i < 1 << 64:
                raise ValueError(f"image id {i!r} does not fit in uint64")

    def encode(self) -> bytes:
        return struct.pack("<H", len(self.ids)) + b"".join(
            _RESOURCE.pack(_RES_TYPE_PIXMAP, i) for i in self.ids
        )


@attrs.frozen
class WaitForChannel:
    """spice.proto ``WaitForChannel``: wait until that channel has processed that serial."""

    channel_type: int = attrs.field(validator=_U8)
    channel_id: int = attrs.field(validator=_U8)
    message_serial: int = attrs.field(validator=_U64)

    def encode(self) -> bytes:
        return _WAIT.pack(self.channel_type, self.channel_id, self.message_serial)


@attrs.frozen
class InvalAllPixmaps:
    """Clear the client's image cache, after the listed waits."""

    MSG_TYPE: ClassVar[int] = MsgDisplay.INVAL_ALL_PIXMAPS
    waits: tuple[WaitForChannel, ...] = ()

    def __attrs_post_init__(self) -> None:
        if len(self.waits) > 0xFF:
            raise ValueError("too many waits")

    def encode(self) -> bytes:
        return bytes((len(self.waits),)) + b"".join(w.encode() for w in self.waits)


@attrs.frozen
class InvalAllPalettes(Fixed):
    MSG_TYPE: ClassVar[int] = MsgDisplay.INVAL_ALL_PALETTES
    LAYOUT: ClassVar[Layout] = Layout("", "INVAL_ALL_PALETTES")


@attrs.frozen
class StreamCreate:
    """A video stream: a rectangle of a surface fed with encoded frames (STREAM_DATA).
    ``flags`` TOP_DOWN (1) for ordinary top-row-first frames; ``codec_type`` MJPEG 1, VP8 2,
    H264 3, VP9 4, H265 5."""

    MSG_TYPE: ClassVar[int] = MsgDisplay.STREAM_CREATE
    surface_id: int = attrs.field(validator=_U32)
    id: int = attrs.field(validator=_U32)
    flags: int = attrs.field(validator=_U8)
    codec_type: int = attrs.field(validator=_U8)
    stamp: int = attrs.field(validator=_U64)
    stream_width: int = attrs.field(validator=_U32)
    stream_height: int = attrs.field(validator=_U32)
    src_width: int = attrs.field(validator=_U32)
    src_height: int = attrs.field(validator=_U32)
    dest: Rect
    clip: tuple[Rect, ...] = attrs.field(default=(), validator=_check_clip)

    def encode(self) -> bytes:
        return (
            struct.pack(
                "<IIBBQIIII",
                self.surface_id,
                self.id,
                self.flags,
                self.codec_type,
                self.stamp,
                self.stream_width,
                self.stream_height,
                self.src_width,
                self.src_height,
            )
            + self.dest.encode()
            + encode_clip(self.clip)
        )


@attrs.frozen
class StreamDestroy(Fixed):
    MSG_TYPE: ClassVar[int] = MsgDisplay.STREAM_DESTROY
    LAYOUT: ClassVar[Layout] = Layout("I", "STREAM_DESTROY")
    id: int = attrs.field(validator=_U32)


@attrs.frozen
class StreamData:
    """One frame of a stream, shown at ``multi_media_time`` on the session clock."""

    MSG_TYPE: ClassVar[int] = MsgDisplay.STREAM_DATA
    id: int = attrs.field(validator=_U32)
    multi_media_time: int = attrs.field(validator=_U32)
    data: BytesLike = attrs.field(converter=_flat_buffer)

    def encode_parts(self) -> list[BytesLike]:
        return [struct.pack("<III", self.id, self.multi_media_time, len(self.data)), self.data]

    def encode(self) -> bytes:
        return b"".join(self.encode_parts())


@attrs.frozen
class StreamDataSized:
    """One frame of a stream at its own size, drawn scaled onto ``dest`` (clients with the
    SIZED_STREAM cap): lets a frame travel smaller than the area it covers."""

    MSG_TYPE: ClassVar[int] = MsgDisplay.STREAM_DATA_SIZED
    id: int = attrs.field(validator=_U32)
    multi_media_time: int = attrs.field(validator=_U32)
    width: int = attrs.field(validator=_U32)
    height: int = attrs.field(validator=_U32)
    dest: Rect
    data: BytesLike = attrs.field(converter=_flat_buffer)

    def encode_parts(self) -> list[BytesLike]:
        d = self.dest
        head = struct.pack(
            "<IIIIiiiiI", self.id, self.multi_media_time, self.width, self.height,
            d.top, d.left, d.bottom, d.right, len(self.data),
        )  # fmt: skip
        return [head, self.data]

    def encode(self) -> bytes:
        return b"".join(self.encode_parts())


@attrs.frozen
class StreamClip:
    """Show only these rectangles of the stream (none: all of it)."""

    MSG_TYPE: ClassVar[int] = MsgDisplay.STREAM_CLIP
    id: int = attrs.field(validator=_U32)
    clip: tuple[Rect, ...] = attrs.field(default=(), validator=_check_clip)

    def encode(self) -> bytes:
        return struct.pack("<I", self.id) + encode_clip(self.clip)


@attrs.frozen
class StreamActivateReport:
    """Ask the client for STREAM_REPORTs on a stream: after ``max_window_size`` frames or
    ``timeout_ms``, whichever comes first."""

    MSG_TYPE: ClassVar[int] = MsgDisplay.STREAM_ACTIVATE_REPORT
    stream_id: int = attrs.field(validator=_U32)
    unique_id: int = attrs.field(validator=_U32)
    max_window_size: int = attrs.field(validator=_U32)
    timeout_ms: int = attrs.field(validator=_U32)

    def encode(self) -> bytes:
        return struct.pack(
            "<4I", self.stream_id, self.unique_id, self.max_window_size, self.timeout_ms
        )


# -- client messages ---------------------------------------------------------------------


@attrs.frozen
class DisplayInit(Fixed):
    """The client's cache sizes, in pixels; both clients send it right after linking."""

    MSG_TYPE: ClassVar[int] = MsgcDisplay.INIT
    LAYOUT: ClassVar[Layout] = Layout("BqBi", "DISPLAY_INIT")
    pixmap_cache_id: int
    pixmap_cache_size: int
    glz_dictionary_id: int
    glz_dictionary_window_size: int


@attrs.frozen
class StreamReport(Fixed):
    """``num_frames == 0 and num_drops == 0xFFFFFFFF`` means the client cannot play it."""

    MSG_TYPE: ClassVar[int] = MsgcDisplay.STREAM_REPORT
    LAYOUT: ClassVar[Layout] = Layout("6IiI", "STREAM_REPORT")
    stream_id: int
    unique_id: int
    start_frame_mm_time: int
    end_frame_mm_time: int
    num_frames: int
    num_drops: int
    last_frame_delay: int
    audio_delay: int


@attrs.frozen
class PreferredCompression(Fixed):
    """``image_compression``: INVALID 0, OFF 1, AUTO_GLZ 2, AUTO_LZ 3, QUIC 4, GLZ 5, LZ 6,
    LZ4 7 (kept as the number: a newer client may send one we do not know)."""

    MSG_TYPE: ClassVar[int] = MsgcDisplay.PREFERRED_COMPRESSION
    LAYOUT: ClassVar[Layout] = Layout("B", "PREFERRED_COMPRESSION")
    image_compression: int


@attrs.frozen
class GlDrawDone(Fixed):
    MSG_TYPE: ClassVar[int] = MsgcDisplay.GL_DRAW_DONE
    LAYOUT: ClassVar[Layout] = Layout("", "GL_DRAW_DONE")


@attrs.frozen
class PreferredVideoCodecType:
    """Video codec types (MJPEG 1, VP8 2, H264 3, VP9 4, H265 5) in order of preference."""

    MSG_TYPE: ClassVar[int] = MsgcDisplay.PREFERRED_VIDEO_CODEC_TYPE
    codecs: tuple[int, ...]

    @classmethod
    def decode(cls, body: bytes) -> Self:
        (count,) = unpack_exact("B", body, "PREFERRED_VIDEO_CODEC_TYPE")
        if len(body) < 1 + count:
            raise MessageDecodeError(
                f"PREFERRED_VIDEO_CODEC_TYPE: {count} codecs announced, {len(body) - 1} present"
            )
        return cls(tuple(body[1 : 1 + count]))


CLIENT_MESSAGES = registry(
    DisplayInit, StreamReport, PreferredCompression, GlDrawDone, PreferredVideoCodecType
)
