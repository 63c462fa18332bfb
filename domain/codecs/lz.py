"""The SPICE LZ image stream (image type LZ_RGB, 101): pixels in, the bytes both spice-gtk and
spice-html5 decode, and back. An LZ stream is a 28-byte big-endian header (magic, version, LZ
image type, width, height, stride, top_down) followed by tokens that rebuild the pixels in row
order as one array: a control byte below 32 starts a run of up to 32 literal pixels (B, G, R
for RGB32, one byte for an alpha pass); anything else is a back-reference, 3 bits of length
and 13 bits of distance, with 255-terminated length extensions and a 2-byte "far" distance
for references more than 8191 pixels back (spice-common ``common/lz_compress_tmpl.c`` and
``lz_decompress_tmpl.c`` define it; PROTOCOL.md §4.7 paraphrases). The display pipe calls the
encoders from a worker thread: the token loops are numba-compiled with ``nogil``, so they run
beside the event loop, and they weigh more candidates per pixel than the C server's encoder
(the previous pixel, the pixel above, and the last 6 positions with the same 3-pixel
context, where it keeps 1), which makes text-heavy screens about 30 % smaller. The
caller adds the image's ``uint32 data_size`` in front; :func:`decode_lz` is the inverse used
by the tests.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

import numpy as np
import numpy.typing as npt
from numba import njit

#: ASCII "LZ  " read as a big-endian word.
LZ_MAGIC: Final = 0x20205A4C
#: Major 1, minor 1: the only version either client accepts.
LZ_VERSION: Final = 0x00010001
HEADER = struct.Struct(">7I")
HEADER_SIZE: Final = 28


class LzImageType(enum.IntEnum):
    """``LzImageType`` of spice-common ``lz_common.h`` (only RGB32, RGBA and XXXA are made here)."""

    PLT1_LE = 1
    PLT1_BE = 2
    PLT4_LE = 3
    PLT4_BE = 4
    PLT8 = 5
    RGB16 = 6
    RGB24 = 7
    RGB32 = 8
    RGBA = 9
    XXXA = 10
    A8 = 11


#: A control byte below this starts a literal run of ``c + 1`` pixels.
MAX_COPY: Final = 32
#: Distances 1..8191 fit the 13 bits of a near reference; 8192..73727 need the far form.
MAX_NEAR_DISTANCE: Final = 8191
MAX_FAR_DISTANCE: Final = 8191 + 65535 + 1
#: Match lengths are stored minus this bias: a 1-pixel RGB match is worth it (2 bytes for a
#: 3-byte pixel), an alpha match only from 3 bytes on.
RGB_BIAS: Final = 0
ALPHA_BIAS: Final = 2

#: The hash table: 2^15 contexts x the 6 newest positions for each (768 KiB of int32), and
#: the positions a match covers that get indexed: all of a match up to 64 pixels (glyph rows
#: repeat there), the last 32 of a longer one (mostly rows repeating the row above). Measured
#: on the test suite's 1080p terminal desktop: the C server's encoder (one 2^13 slot) makes
#: 256 KB; 4 ways 182 KB, 6 ways 176 KB, 8 ways 172 KB for 1.3x the time of 6. Indexing every
#: position of long matches too gained 0.1 % for 1.4x the time on a lighter text image.
HASH_BITS: Final = 15
HASH_WAYS: Final = 6
INDEX_WHOLE_MATCH: Final = 64
INDEX_MATCH_TAIL: Final = 32
#: After 2^SKIP_SHIFT literals in a row the search steps 2 pixels, after twice that 3, ...:
#: random pixels encode 8x faster, a photo-like region grows by 0.3 %.
SKIP_SHIFT: Final = 5

#: The decoder refuses a header that claims more pixels than its tokens could produce: the
#: longest run costs 1 byte per 255 pixels, so this bounds the allocation by the input size.
_MAX_PIXELS_PER_BYTE: Final = 256

Pixels = npt.NDArray[np.uint8]
_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(*, inline: bool = False) -> Callable[[_F], _F]:
    """numba's ``njit`` without the GIL, cached on disk when numba finds somewhere to write.

    numba caches next to this file, else under the user's cache directory; when neither is
    writable (a read-only install run by a user without a home) asking for a cache raises,
    so compile on every start instead.
    """
    options: dict[str, Any] = {"nogil": True, "inline": "always" if inline else "never"}

    def wrap(fn: _F) -> _F:
        try:
            return cast(_F, njit(cache=True, **options)(fn))
        except RuntimeError:
            return cast(_F, njit(**options)(fn))

    return wrap


@_jit(inline=True)
def _put_literals(
    vals: npt.NDArray[np.uint32], start: int, stop: int, lit_bytes: int, out: Pixels, o: int
) -> int:
    """Write pixels ``start..stop`` as literal runs of at most 32; return the new offset."""
    i = start
    while i < stop:
        count = min(stop - i, MAX_COPY)
        out[o] = count - 1
        o += 1
        for k in range(i, i + count):
            v = vals[k]
            if lit_bytes == 3:
                out[o] = v & 0xFF
                out[o + 1] = (v >> 8) & 0xFF
                out[o + 2] = (v >> 16) & 0xFF
                o += 3
            else:
                out[o] = v & 0xFF
                o += 1
        i += count
    return o


@_jit(inline=True)
def _match_cost(length: int, distance: int, bias: int) -> int:
    """Bytes a reference of ``length`` pixels ``distance`` back takes in the stream."""
    field = length - bias
    cost = 2 if distance <= MAX_NEAR_DISTANCE else 4
    if field >= 7:
        cost += 1 + (field - 7) // 255
    return cost


@_jit(inline=True)
def _put_match(out: Pixels, o: int, length: int, distance: int, bias: int) -> int:
    """Write one back-reference; ``distance`` 1 repeats the previous pixel."""
    field = length - bias
    d = distance - 1
    far = d >= MAX_NEAR_DISTANCE
    high = 31 if far else d >> 8
    if field < 7:
        out[o] = (field << 5) | high
        o += 1
    else:
        out[o] = (7 << 5) | high
        o += 1
        rest = field - 7
        while rest >= 255:
            out[o] = 255
            o += 1
            rest -= 255
        out[o] = rest
        o += 1
    if far:
        d -= MAX_NEAR_DISTANCE
        out[o] = 255
        out[o + 1] = d >> 8
        out[o + 2] = d & 0xFF
        o += 3
    else:
        out[o] = d & 0xFF
        o += 1
    return o


@_jit(inline=True)
def _hash3(vals: npt.NDArray[np.uint32], i: int, mask: int) -> int:
    x = (
        np.int64(vals[i]) * 0x9E3779B1
        + np.int64(vals[i + 1]) * 0x85EBCA77
        + np.int64(vals[i + 2]) * 0xC2B2AE3D
    )
    return int((x >> 29) & mask)


@_jit(inline=True)
def _remember(table: npt.NDArray[np.int32], h: int, i: int) -> None:
    """Make position ``i`` the newest of the HASH_WAYS kept for context hash ``h``."""
    for way in range(HASH_WAYS - 1, 0, -1):
        table[h, way] = table[h, way - 1]
    table[h, 0] = i


@_jit()
def _compress(
    vals: npt.NDArray[np.uint32], width: int, bias: int, lit_bytes: int, out: Pixels, o: int
) -> int:
    """Append the tokens for ``vals`` (one value per pixel) to ``out`` at ``o``; return the end.

    Greedy parsing: at each position the candidates are the previous pixel (a run), the pixel
    one row up and the last HASH_WAYS positions with the same 3-pixel context; the one that
    saves the most bytes wins.
    """
    n = vals.size
    table = np.full((1 << HASH_BITS, HASH_WAYS), -1, np.int32)
    mask = (1 << HASH_BITS) - 1
    i = 0
    pending = 0  # first pixel not yet written
    while i < n:
        p = vals[i]
        best_len = 0
        best_dist = 0
        best_gain = 0
        if i > 0 and vals[i - 1] == p:
            length = 1
            while i + length < n and vals[i + length] == p:
                length += 1
            gain = length * lit_bytes - _match_cost(length, 1, bias)
            if length > bias and gain > 0:
                best_len, best_dist, best_gain = length, 1, gain
        if 1 < width <= i and width <= MAX_FAR_DISTANCE and vals[i - width] == p:
            length = 1
            while i + length < n and vals[i + length - width] == vals[i + length]:
                length += 1
            gain = length * lit_bytes - _match_cost(length, width, bias)
            if length > bias and gain > best_gain:
                best_len, best_dist, best_gain = length, width, gain
        if i + 2 < n:
            h = _hash3(vals, i, mask)
            for way in range(HASH_WAYS):
                cand = int(table[h, way])
                dist = i - cand
                if cand < 0 or dist > MAX_FAR_DISTANCE:
                    break  # older ways are further back still
                # Cheap rejections first: the pixel itself, then the one that would make
                # this candidate longer than the best so far.
                if (
                    dist == best_dist
                    or vals[cand] != p
                    or (i + best_len < n and vals[cand + best_len] != vals[i + best_len])
                ):
                    continue
                length = 1
                while i + length < n and vals[cand + length] == vals[i + length]:
                    length += 1
                gain = length * lit_bytes - _match_cost(length, dist, bias)
                if length > bias and gain > best_gain:
                    best_len, best_dist, best_gain = length, dist, gain
            _remember(table, h, i)
        if best_len == 0:
            # Nothing here: step faster the longer the literal stretch gets, so incompressible
            # areas (photos, noise) cost a fraction of the lookups.
            i += 1 + ((i - pending) >> SKIP_SHIFT)
            continue
        o = _put_literals(vals, pending, i, lit_bytes, out, o)
        o = _put_match(out, o, best_len, best_dist, bias)
        stop = i + best_len
        # Index the positions the match covered: all of a short one (glyph rows repeat
        # there), the tail of a long one, a run's last pixel only (all its contexts are one).
        if best_dist == 1:
            i = stop - 1
        elif best_len > INDEX_WHOLE_MATCH:
            i = stop - INDEX_MATCH_TAIL
        else:
            i += 1
        while i < stop and i + 2 < n:
            _remember(table, _hash3(vals, i, mask), i)
            i += 1
        i = stop
        pending = stop
    return _put_literals(vals, pending, n, lit_bytes, out, o)


@_jit()
def _encode(words: npt.NDArray[np.uint32], width: int, rgb: bool, alpha: bool) -> Pixels:
    """Room for the header, then the token streams for BGRX/BGRA words: RGB, alpha or both."""
    n = words.size
    # The worst case is all literals: 3 bytes (RGB) + 1 byte (alpha) a pixel, plus the
    # control bytes.
    out = np.empty(HEADER_SIZE + 4 * n + 2 * (n // MAX_COPY + 1), np.uint8)
    o = HEADER_SIZE
    if rgb:
        o = _compress(words & np.uint32(0xFFFFFF), width, RGB_BIAS, 3, out, o)
    if alpha:
        o = _compress(words >> np.uint32(24), width, ALPHA_BIAS, 1, out, o)
    return out[:o]


def _stream(kind: LzImageType, pixels: Pixels, rgb: bool, alpha: bool) -> bytes:
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 4:
        raise ValueError(f"expected (h, w, 4) uint8 pixels, got {pixels.dtype} {pixels.shape}")
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    if width == 0 or height == 0:
        raise ValueError("an LZ image needs at least one pixel")
    # One array type for the jitted code whatever the caller holds (a read-only or unaligned
    # buffer would otherwise compile a second specialisation, seconds on the first frame).
    words = np.require(
        np.ascontiguousarray(pixels).reshape(-1).view("<u4"), np.uint32, ["C", "A", "W"]
    )
    out: Pixels = _encode(words, width, rgb, alpha)
    out[:HEADER_SIZE] = np.frombuffer(
        HEADER.pack(LZ_MAGIC, LZ_VERSION, kind, width, height, 4 * width, 1), np.uint8
    )
    return out.tobytes()


def encode_lz_rgb32(pixels: Pixels) -> bytes:
    """The LZ stream of type RGB32 for (h, w, 4) B,G,R,X pixels (the X byte is not sent)."""
    return _stream(LzImageType.RGB32, pixels, rgb=True, alpha=False)


def encode_lz_rgba(pixels: Pixels) -> bytes:
    """The LZ stream of type RGBA: the RGB32 tokens, then an alpha pass of 1-byte pixels."""
    return _stream(LzImageType.RGBA, pixels, rgb=True, alpha=True)


def encode_lz_xxxa(pixels: Pixels) -> bytes:
    """The LZ stream of type XXXA (only the alpha pass of B,G,R,A pixels): JPEG_ALPHA's tail."""
    return _stream(LzImageType.XXXA, pixels, rgb=False, alpha=True)


# Decoder error codes (numba cannot raise with a formatted message from a nogil loop).
_E_TRUNCATED: Final = -1
_E_OVERRUN: Final = -2
_E_BEFORE_START: Final = -3
_ERRORS: Final = {
    _E_TRUNCATED: "the stream ends before the last pixel",
    _E_OVERRUN: "a token writes past the last pixel",
    _E_BEFORE_START: "a reference points before the first pixel",
}


@_jit()
def _decompress(data: Pixels, at: int, out: Pixels, channel0: int, nchan: int, bias: int) -> int:
    """Decode one pass into ``out`` (n, 4), channels ``channel0..+nchan``; return the offset
    after its last token or a negative error code."""
    n = out.shape[0]
    end = data.size
    op = 0
    while op < n:
        if at >= end:
            return _E_TRUNCATED
        ctrl = int(data[at])
        at += 1
        if ctrl < MAX_COPY:
            count = ctrl + 1
            if op + count > n:
                return _E_OVERRUN
            if at + count * nchan > end:
                return _E_TRUNCATED
            for _ in range(count):
                for c in range(nchan):
                    out[op, channel0 + c] = data[at + c]
                at += nchan
                op += 1
            continue
        length = ctrl >> 5
        dist = (ctrl & 31) << 8
        if length == 7:
            while True:
                if at >= end:
                    return _E_TRUNCATED
                code = int(data[at])
                at += 1
                length += code
                if code != 255:
                    break
        if at >= end:
            return _E_TRUNCATED
        code = int(data[at])
        at += 1
        dist += code
        if code == 255 and dist == (31 << 8) + 255:
            if at + 2 > end:
                return _E_TRUNCATED
            dist = (int(data[at]) << 8 | int(data[at + 1])) + MAX_NEAR_DISTANCE
            at += 2
        length += bias
        dist += 1
        if op + length > n:
            return _E_OVERRUN
        if dist > op:
            return _E_BEFORE_START
        for _ in range(length):
            for c in range(nchan):
                out[op, channel0 + c] = out[op - dist, channel0 + c]
            op += 1
    return at


def decode_lz(data: bytes) -> Pixels:
    """Decode an LZ stream of type RGB32, RGBA or XXXA into (h, w, 4) B,G,R,A pixels.

    RGB32 leaves the fourth byte 0 and XXXA leaves B,G,R 0, as spice-common's decoder does; a
    ``top_down`` of 0 flips the rows. Anything malformed, truncated or followed by trailing
    bytes raises ValueError.
    """
    if len(data) < HEADER.size:
        raise ValueError(f"{len(data)} bytes is shorter than the LZ header")
    magic, version, kind, width, height, stride, top_down = HEADER.unpack_from(data)
    if magic != LZ_MAGIC:
        raise ValueError(f"bad LZ magic {magic:#010x}")
    if version != LZ_VERSION:
        raise ValueError(f"unsupported LZ version {version:#010x}")
    if kind not in (LzImageType.RGB32, LzImageType.RGBA, LzImageType.XXXA):
        raise ValueError(f"LZ image type {kind} is not decoded here")
    if width == 0 or height == 0:
        raise ValueError(f"empty LZ image {width}x{height}")
    if stride != 4 * width:
        raise ValueError(f"stride {stride} is not 4 x width {width}")
    if top_down not in (0, 1):
        raise ValueError(f"top_down {top_down} is not 0 or 1")
    if width * height > _MAX_PIXELS_PER_BYTE * len(data):
        raise ValueError(f"{width}x{height} pixels cannot come from {len(data)} bytes")
    buf = np.frombuffer(data, np.uint8)
    out = np.zeros((width * height, 4), np.uint8)
    at = HEADER.size
    if kind != LzImageType.XXXA:
        at = _decompress(buf, at, out, 0, 3, RGB_BIAS)
        if at < 0:
            raise ValueError(_ERRORS[at])
    if kind != LzImageType.RGB32:
        at = _decompress(buf, at, out, 3, 1, ALPHA_BIAS)
        if at < 0:
            raise ValueError(_ERRORS[at])
    if at != len(data):
        raise ValueError(f"{len(data) - at} bytes follow the last pixel")
    image = out.reshape(height, width, 4)
    return image if top_down else image[::-1].copy()


def warm_up() -> None:
    """Compile (or load from numba's cache) every jitted function, on a tiny image."""
    tiny = np.zeros((2, 3, 4), np.uint8)
    tiny[1, 2] = 7
    decode_lz(encode_lz_rgba(tiny))
    decode_lz(encode_lz_rgb32(tiny))
