"""Which codec carries an image, and the encoding itself: pixels in, an :class:`EncodedImage`
out. Pure and thread-safe; the display worker runs it in worker threads (every codec here
releases the GIL) and caches the result per (area, generation, policy) so that viewers with the
same policy share one encode.

The modes are the C server's ``image-compression`` values. GLZ (a dictionary shared across a
client's images) is not implemented: ``glz`` encodes as ``lz`` and ``auto_glz`` as ``auto_lz``.
- ``off``: BITMAP.
- ``lz``, ``glz``: LZ_RGB.
- ``lz4``: LZ4 for clients that announce it, else LZ_RGB.
- ``quic``: QUIC.
- ``auto_lz``, ``auto_glz`` (the default): QUIC for photographic content, LZ_RGB for the rest.
With lossy allowed (``jpeg`` in the policy), photographic content goes as JPEG in every mode
but ``off``. A ``volatile`` policy (an area redrawn many times a second, on a link with
room) sends the auto modes' lossless images as LZ_RGB without the photographic check, and a
``fast`` one (the compact codec would fall behind) as LZ4 to clients that take it. Whatever
the choice, an encoding larger than the bitmap is replaced by the bitmap.
"""

from __future__ import annotations

import hashlib
from typing import Final

import attrs
import numpy as np

from spice.domain.codecs import lz, quic, scale, yuv
from spice.domain.codecs.classify import is_photographic
from spice.domain.codecs.jpeg import DEFAULT_QUALITY, encode_jpeg_bgrx
from spice.domain.codecs.lz import encode_lz_rgb32
from spice.domain.codecs.lz4_image import encode_lz4_bgrx
from spice.domain.codecs.quic import encode_quic_rgb32
from spice.domain.codecs.scale import downscale_bgrx
from spice.domain.display import surface
from spice.domain.display.surface import Pixels
from spice.domain.enums import ImageCompression, ImageType

#: The server's modes, as the C server and QEMU name them.
MODES: Final = ("auto_glz", "auto_lz", "quic", "glz", "lz", "lz4", "off")
DEFAULT_MODE: Final = "auto_glz"
#: ``jpeg_wan_compression`` values: lossy for photographic areas never, always, or when the
#: client's link is slow (the C server's ``auto``).
JPEG_WAN: Final = ("auto", "never", "always")

#: What a client's PREFERRED_COMPRESSION asks for, as a mode.
PREFERRED: Final = {
    ImageCompression.OFF: "off",
    ImageCompression.AUTO_GLZ: "auto_glz",
    ImageCompression.AUTO_LZ: "auto_lz",
    ImageCompression.QUIC: "quic",
    ImageCompression.GLZ: "glz",
    ImageCompression.LZ: "lz",
    ImageCompression.LZ4: "lz4",
}


@attrs.frozen
class CodecPolicy:
    """How one client's images are encoded. Hashable: part of the encode cache's key."""

    mode: str = attrs.field(default=DEFAULT_MODE)
    #: The client decodes LZ4 (display cap LZ4_COMPRESSION).
    lz4: bool = False
    #: Lossy JPEG is allowed for photographic content.
    jpeg: bool = False
    jpeg_quality: int = DEFAULT_QUALITY
    #: The compiled codecs (LZ_RGB, QUIC) are loaded. Until then (the first seconds of a
    #: server's first run on a machine, while numba compiles them) images go as LZ4 or BITMAP.
    warm: bool = True
    #: A video stream's frame: always JPEG (MJPEG streams), at ``jpeg_quality``.
    video: bool = False
    #: A video frame's size on the wire (width, height) when smaller than its area: the
    #: client scales it back up (STREAM_DATA_SIZED). None: the area's own size.
    video_size: tuple[int, int] | None = None
    #: A volatile area (redrawn many times a second, on a link with room): its lossless
    #: images skip the photographic check and go as LZ_RGB, or LZ4 when ``fast`` (QUIC is
    #: for stills: slower than LZ_RGB to encode, and a frame is soon replaced).
    volatile: bool = False
    #: A volatile area's lossless images go as LZ4 where the client takes it (the compact
    #: codec would fall behind, and the link has room: encoding speed matters more).
    fast: bool = False

    @mode.validator
    def _check_mode(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if value not in MODES:
            raise ValueError(f"image compression must be one of {', '.join(MODES)}: {value!r}")


@attrs.frozen
class EncodedImage:
    """One image ready to be framed: its type and payload (BITMAP: the raw BGRX rows), and a
    digest of the source pixels that names the content in the clients' image caches."""

    type: ImageType
    width: int
    height: int
    #: Bytes, or (BITMAP) a flat view of the encoder's own copy of the pixels, never changed.
    payload: bytes | memoryview
    digest: bytes

    @property
    def lossy(self) -> bool:
        return self.type in (ImageType.JPEG, ImageType.JPEG_ALPHA)


def content_digest(pixels: Pixels) -> bytes:
    """A 128-bit digest of the pixels and their shape (SHA-256, which runs on the CPU's SHA
    instructions here, about 1.5 GB/s, and releases the GIL). The pad byte is part of it: the
    same picture with other pad bytes is only a cache miss."""
    h, w = pixels.shape[:2]
    digest = hashlib.sha256(b"%dx%d:" % (w, h))
    digest.update(np.ascontiguousarray(pixels).data)
    return digest.digest()[:16]


def choose(pixels: Pixels, policy: CodecPolicy) -> ImageType:
    """The codec for these pixels under ``policy``."""
    mode = policy.mode
    if policy.video:
        return ImageType.JPEG
    if mode == "off":
        return ImageType.BITMAP
    if not policy.warm:
        return ImageType.LZ4 if policy.lz4 else ImageType.BITMAP
    if (policy.volatile or policy.fast) and mode in ("auto_glz", "auto_lz", "lz4"):
        if policy.jpeg and is_photographic(pixels):
            return ImageType.JPEG
        return ImageType.LZ4 if policy.lz4 and (policy.fast or mode == "lz4") else ImageType.LZ_RGB
    photo = mode in ("auto_glz", "auto_lz", "quic") or policy.jpeg
    photo = photo and is_photographic(pixels)
    if photo and policy.jpeg:
        return ImageType.JPEG
    if mode == "quic" or (photo and mode in ("auto_glz", "auto_lz")):
        return ImageType.QUIC
    if mode == "lz4" and policy.lz4:
        return ImageType.LZ4
    return ImageType.LZ_RGB


def encode(pixels: Pixels, policy: CodecPolicy) -> EncodedImage:
    """Encode ``pixels`` ((h, w, 4) BGRX) as ``policy`` says. A BITMAP result is a view of
    ``pixels``: pass a copy nobody changes (the surface's snapshot is one). A video frame is
    read in place, so it may be a view of the surface (held still while it is encoded)."""
    if not policy.video:
        pixels = np.ascontiguousarray(pixels)
    elif policy.video_size is not None:
        pixels = downscale_bgrx(pixels, *policy.video_size)
    h, w = pixels.shape[:2]
    kind = choose(pixels, policy)
    raw_size = pixels.nbytes
    payload: bytes | memoryview
    if kind == ImageType.LZ_RGB:
        payload = encode_lz_rgb32(pixels)
    elif kind == ImageType.QUIC:
        payload = encode_quic_rgb32(pixels)
    elif kind == ImageType.LZ4:
        payload = encode_lz4_bgrx(pixels.data, w, h)
    elif kind == ImageType.JPEG:
        payload = encode_jpeg_bgrx(pixels, policy.jpeg_quality)
    else:
        payload = b""
    if kind == ImageType.BITMAP or (len(payload) >= raw_size and not policy.video):
        # The pixels are the snapshot's private copy: sent as they are, not copied again.
        kind, payload = ImageType.BITMAP, pixels.reshape(-1).data
    # A video frame is never cached by the client: no digest to pay for.
    digest = b"" if policy.video else content_digest(pixels)
    return EncodedImage(kind, w, h, payload, digest)


def warm_up() -> None:
    """Compile the numba codecs, or load them from numba's on-disk cache (a few ms): run once
    per process, in a thread, before :attr:`CodecPolicy.warm` is set."""
    lz.warm_up()
    quic.warm_up()
    scale.warm_up()
    yuv.warm_up()
    surface.warm_up()
