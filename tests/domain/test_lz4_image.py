"""The LZ4 image payload, byte by byte."""

from __future__ import annotations

import struct

import lz4.block
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spice.domain.codecs.lz4_image import ROWS_PER_BLOCK, decode_lz4_bgrx, encode_lz4_bgrx


def test_layout_top_down_32bit_then_big_endian_sized_blocks() -> None:
    width, height = 3, ROWS_PER_BLOCK + 1
    rows = bytes(range(256)) * (width * 4 * height // 256) + bytes(width * 4 * height % 256)
    payload = encode_lz4_bgrx(rows, width, height)
    assert payload[:2] == b"\x01\x08"  # top_down 1, SPICE_BITMAP_FMT_32BIT 8
    (first,) = struct.unpack_from(">I", payload, 2)
    block = payload[6 : 6 + first]
    stride = width * 4
    assert (
        lz4.block.decompress(block, uncompressed_size=ROWS_PER_BLOCK * stride)
        == rows[: ROWS_PER_BLOCK * stride]
    )
    (second,) = struct.unpack_from(">I", payload, 6 + first)
    assert 6 + first + 4 + second == len(payload)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(1, 150), st.integers(0, 2**32 - 1), st.integers(1, 255))
def test_round_trip(width: int, height: int, seed: int, spread: int) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, spread + 1, (height, width, 4), dtype=np.uint8).tobytes()
    assert decode_lz4_bgrx(encode_lz4_bgrx(rows, width, height), width, height) == rows


def test_size_mismatch_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_lz4_bgrx(bytes(10), 2, 2)
