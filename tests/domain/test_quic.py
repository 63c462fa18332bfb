"""The QUIC image stream: the header and first codewords by hand, digests of the C encoder's
output, round trips through our decoder, and spice-html5's decoder run under Node.js."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spice.domain.codecs.quic import (
    QUIC_MAGIC,
    QuicImageType,
    decode_quic,
    encode_quic_rgb32,
    encode_quic_rgba,
    warm_up,
)

Pixels = npt.NDArray[np.uint8]

ROOT = Path(__file__).resolve().parents[2]
HTML5_SCRIPT = ROOT / "tests" / "html5_quic.mjs"
#: spice-html5's decoder: npm's copy (scripts/setup.sh), else Debian's spice-html5 package.
HTML5_QUIC_CANDIDATES = (
    ROOT / "node_modules" / "@spice-project" / "spice-html5" / "src" / "quic.js",
    Path("/usr/share/spice-html5/quic.js"),
)


def bgrx(*pixels: tuple[int, int, int, int]) -> Pixels:
    """One row of B, G, R, X/A pixels."""
    return np.array([pixels], np.uint8)


def hashed(height: int, width: int) -> npt.NDArray[np.uint32]:
    """Integer noise that does not depend on numpy's random streams."""
    y, x = np.mgrid[0:height, 0:width].astype(np.uint32)
    h: npt.NDArray[np.uint32] = (x * np.uint32(73856093)) ^ (y * np.uint32(19349663))
    h ^= h >> np.uint32(13)
    h *= np.uint32(0x5BD1E995)
    h ^= h >> np.uint32(15)
    return h


def textured(height: int, width: int) -> Pixels:
    """Every coder path at once: a gradient with a little noise, a triangle wave, full-range
    noise, and flat blocks that put the coder in run mode."""
    y, x = np.mgrid[0:height, 0:width]
    h = hashed(height, width)
    pix = np.empty((height, width, 4), np.uint8)
    pix[..., 0] = (x * 3 + y * 2 + (h & 7)) & 255
    pix[..., 1] = np.abs(((x + y) & 255) - 128)
    pix[..., 2] = h >> 24
    pix[..., 3] = (x // 5 + y) & 255
    pix[(x // 32 + y // 8) % 3 == 0] = (10, 20, 30, 40)
    return pix


def photo_like(height: int, width: int) -> Pixels:
    """Smooth shading at several scales with sensor-like noise, and some hard edges."""
    y, x = np.mgrid[0:height, 0:width]

    def wave(t: npt.NDArray[np.int64], period: int) -> npt.NDArray[np.int64]:
        t = t % period
        return np.minimum(t, period - t) * 255 // (period // 2)

    noise = (hashed(height, width) >> np.uint32(20)).astype(np.int64)
    pix = np.empty((height, width, 4), np.uint8)
    for c, (a, b) in enumerate(((1, 2), (3, -1), (-2, 5))):
        base = wave(a * x + b * y, 1021) // 2 + wave(x * b + y, 389) // 4 + wave(y, 97) // 8
        pix[..., c] = np.clip(base + (noise >> (4 * c)) % 9 - 4 + 20, 0, 255)
    pix[..., 3] = 0
    pix[height // 3 : height // 2, width // 4 : width // 3, :3] = (30, 200, 90)
    return pix


# --- the stream, written by hand -----------------------------------------------------------


def test_header_words_then_the_first_codewords() -> None:
    # One pixel B=255, G=0, R=1. Row 0, pixel 0 predicts 0; the errors fold to R 2, G 0, B 1
    # (0, -1, 1, -2 ... -> 0, 1, 2, 3 ...). Every bucket starts with code 7: a Golomb-Rice
    # codeword of value >> 7 zeros, a one, then the low 7 bits: 0x82, 0x80, 0x81 (R, G, B),
    # MSB-first in a little-endian word, padded; the encoder ends with one zero word.
    assert encode_quic_rgb32(bgrx((255, 0, 1, 99))) == bytes.fromhex(
        "51554943"  # magic "QUIC"
        "00000000"  # version 0.0
        "04000000"  # QUIC_IMAGE_TYPE_RGB32
        "01000000"  # width
        "01000000"  # height
        "00818082"  # 0x82808100: R, G, B codewords, then 8 padding bits
        "00000000"
    )
    assert QUIC_MAGIC.to_bytes(4, "little") == b"QUIC"


def test_rgba_codes_each_rows_alpha_after_its_colours() -> None:
    # Alpha 2 folds to 4: codeword 0x84 right after the colours of the same row.
    assert encode_quic_rgba(bgrx((255, 0, 1, 2))) == bytes.fromhex(
        "51554943 00000000 05000000 01000000 01000000 84818082 00000000"
    )


def test_second_row_predicts_from_above_and_left() -> None:
    # Pixel (1, 0) predicts from above; pixel (1, 1) from (left + above) >> 1. With all-zero
    # errors every codeword is 0x80 under code 7, until the model's first update.
    pix = np.zeros((2, 2, 4), np.uint8)
    stream = encode_quic_rgb32(pix)
    assert struct.unpack("<5I", stream[:20]) == (QUIC_MAGIC, 0, QuicImageType.RGB32, 2, 2)
    assert decode_quic(stream)[..., :3].tobytes() == bytes(12)


# Digests of spice-common's quic_encode (built from common/quic.c with gcc) on the same
# pixels: the encoder must match it bit for bit, as decoders replay its adaptive model.
C_ENCODER_DIGESTS = {
    ("textured", 40, 300, QuicImageType.RGB32): (
        17916,
        "bbd6135d818a625776c26bd4a323052b86d1276960ba685db31969064574e153",
    ),
    ("textured", 40, 300, QuicImageType.RGBA): (
        20464,
        "83cca8320f809c7ffdde7d563fc625ca1c42d5bc994199179cb035029474ee35",
    ),
    ("textured", 3, 2500, QuicImageType.RGB32): (
        10892,
        "cbf36e113f37d724987b5ba2bc10f6c37c12fccae4b4f6e4fb41fd9c3618f47b",
    ),
    ("textured", 3, 2500, QuicImageType.RGBA): (
        12608,
        "211d089b95f32ff432677981e0e992617e3695840a697cf9414fe3e0a6dbf707",
    ),
}


@pytest.mark.parametrize(("name", "height", "width", "kind"), sorted(C_ENCODER_DIGESTS))
def test_matches_the_c_encoder(name: str, height: int, width: int, kind: QuicImageType) -> None:
    encode = encode_quic_rgba if kind == QuicImageType.RGBA else encode_quic_rgb32
    stream = encode(textured(height, width))
    assert (len(stream), hashlib.sha256(stream).hexdigest()) == C_ENCODER_DIGESTS[
        name, height, width, kind
    ]


# --- round trips through our decoder -------------------------------------------------------


@st.composite
def images(draw: st.DrawFn) -> Pixels:
    width = draw(st.integers(1, 200))
    height = draw(st.integers(1, 40))
    kind = draw(st.sampled_from(["noise", "flat", "gradient", "blocks", "sparse"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "noise":
        spread = draw(st.sampled_from([1, 2, 4, 16, 256]))
        return rng.integers(0, spread, (height, width, 4), dtype=np.uint8)
    if kind == "flat":
        return np.full((height, width, 4), rng.integers(0, 256, 4), np.uint8)
    if kind == "gradient":
        y, x = np.mgrid[0:height, 0:width]
        dx, dy = draw(st.integers(-9, 9)), draw(st.integers(-9, 9))
        ramp = (x * dx + y * dy + rng.integers(0, 256)) & 255
        return np.stack([ramp, ramp >> 1, 255 - ramp, ramp // 3], -1).astype(np.uint8)
    if kind == "blocks":  # runs of a few colours, in bands that repeat row to row or not
        palette = rng.integers(0, 256, (3, 4), dtype=np.uint8)
        block = draw(st.integers(1, 12))
        index = np.repeat(rng.integers(0, 3, (height, width // block + 1)), block, axis=1)
        return palette[index[:, :width]]
    pix = np.full((height, width, 4), rng.integers(0, 256, 4), np.uint8)
    speckles = rng.random((height, width)) < 0.05
    pix[speckles] = rng.integers(0, 256, (int(speckles.sum()), 4), dtype=np.uint8)
    return pix


@settings(max_examples=150, deadline=None)
@given(images())
def test_round_trip_rgb32(pix: Pixels) -> None:
    decoded = decode_quic(encode_quic_rgb32(pix))
    assert decoded.shape == pix.shape
    assert np.array_equal(decoded[..., :3], pix[..., :3])
    assert not decoded[..., 3].any()  # the pad byte is not coded; decoders write 0


@settings(max_examples=100, deadline=None)
@given(images())
def test_round_trip_rgba(pix: Pixels) -> None:
    assert np.array_equal(decode_quic(encode_quic_rgba(pix)), pix)


def test_round_trip_across_wait_mask_steps_and_long_runs() -> None:
    # Rows longer than the 2048-pixel wait-mask step split into segments, and runs end at
    # segment ends; the model's sampling grows sparser over the first 6 * 2048 pixels.
    pix = textured(9, 4500)
    pix[4, 100:4400] = pix[3, 100:4400] = (1, 2, 3, 4)
    for encode in (encode_quic_rgb32, encode_quic_rgba):
        decoded = decode_quic(encode(pix))
        assert np.array_equal(decoded[..., :3], pix[..., :3])


def test_strided_input_codes_like_its_copy() -> None:
    pix = textured(20, 64)[:, 7:50]
    assert encode_quic_rgb32(pix) == encode_quic_rgb32(np.ascontiguousarray(pix))


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_quic_rgb32(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        encode_quic_rgb32(np.zeros((0, 4, 4), np.uint8))
    stream = encode_quic_rgb32(textured(10, 30))
    for bad in (b"", stream[:19], stream[:-1], b"XUIC" + stream[4:], stream[: len(stream) // 2]):
        with pytest.raises(ValueError):
            decode_quic(bad)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 30), st.integers(1, 30), st.binary(max_size=400).map(lambda b: b[: len(b) & ~3])
)
def test_garbage_after_a_header_decodes_or_is_refused(width: int, height: int, body: bytes) -> None:
    header = struct.pack("<5I", QUIC_MAGIC, 0, QuicImageType.RGBA, width, height)
    try:
        pix = decode_quic(header + body)
    except ValueError:
        return
    assert pix.shape == (height, width, 4)


def test_warm_up() -> None:
    warm_up()


# --- spice-html5's decoder -----------------------------------------------------------------


def html5_decode(streams: list[bytes]) -> list[tuple[int, Pixels]]:
    """Decode with spice-html5's quic.js under Node.js: (QUIC type, pixels) per stream."""
    node = shutil.which("node")
    quic_js = next((p for p in HTML5_QUIC_CANDIDATES if p.is_file()), None)
    if node is None or quic_js is None:
        pytest.fail(
            "the spice-html5 cross-check needs Node.js and spice-html5's quic.js "
            f"(looked in {', '.join(map(str, HTML5_QUIC_CANDIDATES))}); "
            "run scripts/setup.sh --test or install the Debian packages nodejs and spice-html5"
        )
    frames = b""
    for stream in streams:
        data = struct.pack("<I", len(stream)) + stream  # SpiceQuic: uint32 data_size, data
        frames += struct.pack("<I", len(data)) + data
    done = subprocess.run(
        [node, str(HTML5_SCRIPT), str(quic_js)], input=frames, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    out, at, decoded = done.stdout, 0, []
    for _ in streams:
        kind, width, height = struct.unpack_from("<3I", out, at)
        at += 12
        pix = np.frombuffer(out, np.uint8, width * height * 4, at).reshape(height, width, 4)
        at += width * height * 4
        decoded.append((kind, pix))
    assert at == len(out)
    return decoded


def test_spice_html5_decodes_every_pixel() -> None:
    rng = np.random.default_rng(7)
    cases = [
        rng.integers(0, 256, (1, 1, 4), dtype=np.uint8),
        rng.integers(0, 256, (5, 7, 4), dtype=np.uint8),
        rng.integers(0, 3, (40, 200, 4), dtype=np.uint8),
        np.full((30, 70, 4), 200, np.uint8),
        textured(40, 300),
        textured(3, 2500),
        photo_like(1080, 1920),
    ]
    streams, expected = [], []
    for pix in cases:
        streams += [encode_quic_rgb32(pix), encode_quic_rgba(pix)]
        expected += [(QuicImageType.RGB32, pix), (QuicImageType.RGBA, pix)]
    for (kind, got), (want_kind, want) in zip(html5_decode(streams), expected, strict=True):
        assert kind == want_kind
        assert got.shape == want.shape
        channels = 4 if kind == QuicImageType.RGBA else 3
        mismatched = np.argwhere((got[..., :channels] != want[..., :channels]).any(-1))
        assert not len(mismatched), (
            f"{want_kind.name} {want.shape}: first bad pixel {mismatched[0]}"
        )
