"""The LZ4 image payload (image type LZ4, 109), which spice-gtk decodes when it announces the
display capability LZ4_COMPRESSION.

Layout of ``data`` (after the image's ``uint32 data_size``): ``uint8 top_down``, ``uint8
bitmap_fmt``, then one or more blocks of ``uint32 compressed_size`` (big-endian) followed by a
raw LZ4 block (block format, not frame format). The client decompresses the blocks as one
stream into tightly packed rows of ``width * 4`` bytes; independent blocks are valid.

python-lz4 releases the GIL while it compresses, so this runs well in a worker thread.
"""

from __future__ import annotations

import struct

import lz4.block

from spice.domain.enums import BitmapFmt

#: Rows per LZ4 block: small enough that a decoder's window stays warm, large enough that
#: the per-block header is noise (the reference encoder also cuts by rows).
ROWS_PER_BLOCK = 64


def encode_lz4_bgrx(rows: bytes | bytearray | memoryview, width: int, height: int) -> bytes:
    """The LZ4 payload for ``height`` tightly packed rows of ``width`` BGRX pixels."""
    view = memoryview(rows).cast("B")
    stride = width * 4
    if len(view) != stride * height:
        raise ValueError(f"{len(view)} bytes is not {height} rows of {width} BGRX pixels")
    out = [bytes((1, BitmapFmt.BIT32))]
    for top in range(0, height, ROWS_PER_BLOCK):
        chunk = view[top * stride : min(height, top + ROWS_PER_BLOCK) * stride]
        block = lz4.block.compress(chunk, store_size=False)
        out.append(struct.pack(">I", len(block)))
        out.append(block)
    return b"".join(out)


def decode_lz4_bgrx(payload: bytes, width: int, height: int) -> bytes:
    """The inverse, as spice-gtk does it (used by tests and test clients)."""
    if payload[:2] != bytes((1, BitmapFmt.BIT32)):
        raise ValueError("not a top-down 32-bit LZ4 payload")
    out = bytearray()
    at = 2
    while at < len(payload):
        (size,) = struct.unpack_from(">I", payload, at)
        at += 4
        room = width * 4 * height - len(out)
        out += lz4.block.decompress(payload[at : at + size], uncompressed_size=room)
        at += size
    if len(out) != width * 4 * height:
        raise ValueError(f"decoded {len(out)} bytes, expected {width * 4 * height}")
    return bytes(out)
