"""The LZ image stream (LZ_RGB), byte by byte, round trips, and spice-html5's own decoder.

The vectors are written by hand from the token format (PROTOCOL.md §4.7, spice-common
``lz_decompress_tmpl.c``): a control byte below 32 starts ``c + 1`` literal pixels (B, G, R;
one byte in an alpha pass); otherwise length ``c >> 5`` (7: add bytes until one is not 255),
then the distance's low byte, with 31/255 escaping to a 2-byte far distance; lengths are
stored minus 0 (RGB) or 2 (alpha), distances minus 1.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFont

from spice.domain.codecs.lz import (
    LzImageType,
    decode_lz,
    encode_lz_rgb32,
    encode_lz_rgba,
    encode_lz_xxxa,
    warm_up,
)

Pixels = npt.NDArray[np.uint8]
ROOT = Path(__file__).resolve().parents[2]


def header(kind: int, width: int, height: int) -> bytes:
    return (
        b"\x20\x20\x5a\x4c"  # magic "LZ  " as a big-endian word
        + b"\x00\x01\x00\x01"  # version 1.1
        + kind.to_bytes(4, "big")
        + width.to_bytes(4, "big")
        + height.to_bytes(4, "big")
        + (4 * width).to_bytes(4, "big")  # stride
        + b"\x00\x00\x00\x01"  # top_down
    )


def row(*bgrx: tuple[int, int, int, int]) -> Pixels:
    return np.array([list(bgrx)], np.uint8)


# ---------------------------------------------------------------- the layout, by hand


def test_header_of_a_3x2_rgb32_image() -> None:
    stream = encode_lz_rgb32(np.zeros((2, 3, 4), np.uint8))
    assert stream[:28] == bytes.fromhex(
        "20205a4c 00010001 00000008 00000003 00000002 0000000c 00000001"
    )


def test_literal_run_is_b_g_r_without_the_pad_byte() -> None:
    pixels = row((1, 2, 3, 0xEE), (4, 5, 6, 0xEE), (7, 8, 9, 0xEE))
    assert encode_lz_rgb32(pixels) == header(8, 3, 1) + bytes(
        [0x02, 1, 2, 3, 4, 5, 6, 7, 8, 9]  # 3 literals
    )


def test_literal_runs_hold_at_most_32_pixels() -> None:
    pixels = np.array([[[k, 0, 0, 0] for k in range(33)]], np.uint8)
    body = bytes([0x1F]) + b"".join(bytes([k, 0, 0]) for k in range(32)) + b"\x00\x20\x00\x00"
    assert encode_lz_rgb32(pixels) == header(8, 33, 1) + body


def test_distance_1_repeats_the_previous_pixel() -> None:
    pixels = np.broadcast_to(np.array([10, 20, 30, 0], np.uint8), (1, 5, 4)).copy()
    assert encode_lz_rgb32(pixels) == (
        header(8, 5, 1)
        + bytes([0x00, 10, 20, 30])  # 1 literal
        + bytes([0x80, 0x00])  # length 4, distance 1 (stored as 0)
    )


@pytest.mark.parametrize(
    ("run", "length_bytes"),
    [
        (6, b"\xc0"),  # the longest length in the control byte
        (7, b"\xe0\x00"),  # 7 in the control byte, then 0 more
        (7 + 38, b"\xe0\x26"),
        (7 + 255, b"\xe0\xff\x00"),  # 255 says "more follows", so a 0 ends it
        (7 + 255 + 38, b"\xe0\xff\x26"),
    ],
)
def test_length_extension(run: int, length_bytes: bytes) -> None:
    pixels = np.zeros((1, 1 + run, 4), np.uint8)
    expected = header(8, 1 + run, 1) + b"\x00\x00\x00\x00" + length_bytes + b"\x00"
    assert encode_lz_rgb32(pixels) == expected


def test_a_reference_one_row_up_crosses_the_row_boundary() -> None:
    pixels = np.array([[[1, 1, 1, 0], [2, 2, 2, 0]]] * 2, np.uint8)
    assert encode_lz_rgb32(pixels) == (
        header(8, 2, 2)
        + bytes([0x01, 1, 1, 1, 2, 2, 2])  # 2 literals
        + bytes([0x40, 0x01])  # length 2, distance 2 (stored as 1)
    )


@pytest.mark.parametrize(
    ("distance", "reference"),
    [
        (8191, b"\x7f\xfe"),  # the farthest near reference: 5 high bits 31, low byte 254
        (8192, b"\x7f\xff\x00\x00"),  # 31/255 escape, then (8192 - 1 - 8191) big-endian
        (9000, b"\x7f\xff\x03\x28"),  # 9000 - 1 - 8191 = 808 = 0x0328
    ],
)
def test_far_distance(distance: int, reference: bytes) -> None:
    # P Q R, then (distance - 3) pixels of Z, then P Q R again: 4 literals, a run of Z and a
    # 3-pixel reference `distance` back.
    p, q, r, z = (1, 0, 0, 0), (2, 0, 0, 0), (3, 0, 0, 0), (9, 9, 9, 0)
    pixels = row(p, q, r, *[z] * (distance - 3), p, q, r)
    run = distance - 3 - 1
    extension = b"\xff" * ((run - 7) // 255) + bytes([(run - 7) % 255])
    literals = bytes([0x03, 1, 0, 0, 2, 0, 0, 3, 0, 0, 9, 9, 9])
    body = literals + b"\xe0" + extension + b"\x00" + reference
    assert encode_lz_rgb32(pixels) == header(8, pixels.shape[1], 1) + body


def test_rgba_appends_an_alpha_pass_whose_lengths_are_biased_by_2() -> None:
    pixels = row(*[(5, 6, 7, 0x80)] * 4)
    assert encode_lz_rgba(pixels) == (
        header(9, 4, 1)
        + bytes([0x00, 5, 6, 7, 0x60, 0x00])  # RGB: literal, then length 3 at distance 1
        + bytes([0x00, 0x80, 0x20, 0x00])  # alpha: literal, then length 1 + 2 = 3 at distance 1
    )


def test_alpha_matches_shorter_than_3_are_literals() -> None:
    pixels = row(*[(0, 0, 0, 0x42)] * 3)
    assert encode_lz_xxxa(pixels) == header(10, 3, 1) + bytes([0x02, 0x42, 0x42, 0x42])


def test_decoder_reads_the_hand_written_vectors() -> None:
    rgb = header(8, 5, 1) + bytes([0x00, 10, 20, 30, 0x80, 0x00])
    assert decode_lz(rgb).tolist() == [[[10, 20, 30, 0]] * 5]
    rgba = header(9, 4, 1) + bytes([0x00, 5, 6, 7, 0x60, 0x00, 0x00, 0x80, 0x20, 0x00])
    assert decode_lz(rgba).tolist() == [[[5, 6, 7, 0x80]] * 4]
    far = header(8, 9003, 1) + bytes([0x00, 1, 2, 3, 0xE0])
    far += b"\xff" * 35 + bytes([9001 - 7 - 35 * 255, 0x00])  # a run of 9001
    far += b"\x3f\xff\x03\x28"  # length 1, distance 9000
    assert decode_lz(far)[0, -1].tolist() == [1, 2, 3, 0]
    bottom_up = header(8, 1, 2)[:-4] + b"\x00\x00\x00\x00" + bytes([0x01, 1, 1, 1, 2, 2, 2])
    assert decode_lz(bottom_up)[:, 0, 0].tolist() == [2, 1]


# ---------------------------------------------------------------- refusing bad input


@pytest.mark.parametrize(
    ("stream", "why"),
    [
        (b"\x20\x20\x5a", "shorter than the LZ header"),
        (b"XXXX" + header(8, 1, 1)[4:] + b"\x00\x00\x00\x00", "magic"),
        (header(8, 1, 1)[:4] + b"\x00\x01\x00\x02" + header(8, 1, 1)[8:], "version"),
        (header(7, 1, 1) + b"\x00\x00\x00\x00", "not decoded here"),
        (header(8, 1, 1)[:20] + b"\x00\x00\x00\x03" + b"\x00\x00\x00\x01", "stride"),
        (header(8, 0, 1), "empty"),
        (header(8, 2, 1) + b"\x00\x01\x02\x03", "ends before"),
        (header(8, 2, 1) + b"\x01\x01\x02\x03", "ends before"),
        (header(8, 1, 1) + b"\x00\x01\x02\x03\x00", "follow the last pixel"),
        (header(9, 1, 1) + b"\x00\x01\x02\x03", "ends before"),
        (header(8, 2, 1) + b"\x20\x00\x00\x01\x02\x03", "before the first pixel"),
        (header(8, 2, 1) + b"\x00\x01\x02\x03\x40\x00", "past the last pixel"),
        (header(8, 2, 1) + b"\x02\x01\x02\x03", "past the last pixel"),
        (header(8, 2, 1) + b"\x00\x01\x02\x03\xff\xff\xff", "ends before"),
        (header(8, 60000, 60000) + b"\x00\x01\x02\x03", "cannot come from"),
    ],
)
def test_decoder_refuses(stream: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        decode_lz(stream)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40), st.integers(1, 8), st.sampled_from([8, 9, 10]), st.binary(max_size=64))
def test_decoder_garbage_raises_value_error_only(
    width: int, height: int, kind: int, body: bytes
) -> None:
    try:
        decoded = decode_lz(header(kind, width, height) + body)
    except ValueError:
        return
    assert decoded.shape == (height, width, 4)


# ---------------------------------------------------------------- round trips


@st.composite
def images(draw: st.DrawFn) -> Pixels:
    width = draw(st.integers(1, 300))
    height = draw(st.integers(1, 50))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    style = draw(st.sampled_from(["noise", "few colours", "blocks", "rows"]))
    if style == "noise":
        return rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    palette = rng.integers(0, 256, (draw(st.integers(1, 4)), 4), dtype=np.uint8)
    if style == "few colours":
        return palette[rng.integers(0, len(palette), (height, width))]
    if style == "blocks":
        block = palette[rng.integers(0, len(palette), (draw(st.integers(1, 8)),) * 2)]
        reps = (height // block.shape[0] + 1, width // block.shape[1] + 1, 1)
        return np.ascontiguousarray(np.tile(block, reps)[:height, :width])
    line = palette[rng.integers(0, len(palette), (1, width))]
    return np.repeat(line, height, axis=0)


@settings(max_examples=200, deadline=None)
@given(images())
def test_rgb32_round_trip(pixels: Pixels) -> None:
    decoded = decode_lz(encode_lz_rgb32(pixels))
    assert np.array_equal(decoded[..., :3], pixels[..., :3])
    assert not decoded[..., 3].any()


@settings(max_examples=200, deadline=None)
@given(images())
def test_rgba_and_xxxa_round_trip(pixels: Pixels) -> None:
    assert np.array_equal(decode_lz(encode_lz_rgba(pixels)), pixels)
    decoded = decode_lz(encode_lz_xxxa(pixels))
    assert np.array_equal(decoded[..., 3], pixels[..., 3])
    assert not decoded[..., :3].any()


def test_views_and_read_only_buffers_encode_like_a_contiguous_copy() -> None:
    surface = np.random.default_rng(7).integers(0, 4, (40, 60, 4), dtype=np.uint8)
    window = surface[5:30, 10:50]
    frozen = np.frombuffer(window.tobytes(), np.uint8).reshape(window.shape)
    expected = encode_lz_rgb32(window.copy())
    assert encode_lz_rgb32(window) == expected
    assert encode_lz_rgb32(frozen) == expected


@pytest.mark.parametrize("shape", [(0, 4, 4), (4, 0, 4), (4, 4, 3), (16, 4)])
def test_encoder_refuses_what_is_not_bgrx_pixels(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        encode_lz_rgb32(np.zeros(shape, np.uint8))


def test_warm_up_runs() -> None:
    warm_up()


# ---------------------------------------------------------------- a desktop, and spice-html5


VOCABULARY = (
    "def return import numpy self width height pixels encode decode trio spice async await for "
    "while if else"
)


def desktop_like(width: int = 1920, height: int = 1080, seed: int = 1) -> Pixels:
    """Terminals on flat backgrounds: a top bar, three windows of monospace text (B,G,R,0)."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), (46, 52, 64))
    draw = ImageDraw.Draw(img)
    try:
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.truetype(
            "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", 14
        )
    except OSError:
        font = ImageFont.load_default(14)
    words = VOCABULARY.split()
    words += ("decode", "trio", "spice", "async", "await", "for", "while", "if", "else")
    draw.rectangle((0, 0, width, 28), fill=(30, 30, 30))
    draw.text((10, 6), "Activities    Terminal    Wed 10:42", fill=(230, 230, 230), font=font)
    windows = [
        ((20, 50, 950, 1060), (0, 0, 0), (200, 200, 200)),
        ((970, 50, 1900, 520), (253, 246, 227), (88, 110, 117)),
        ((970, 540, 1900, 1060), (40, 42, 54), (80, 250, 123)),
    ]
    for (x0, y0, x1, y1), background, ink in windows:
        x0, x1 = x0 * width // 1920, x1 * width // 1920
        y0, y1 = y0 * height // 1080, y1 * height // 1080
        draw.rectangle((x0, y0 - 24, x1, y0), fill=(60, 60, 70))
        draw.text((x0 + 8, y0 - 20), "user@host: ~/trio-spice", fill=(220, 220, 220), font=font)
        draw.rectangle((x0, y0, x1, y1), fill=background)
        for y in range(y0 + 4, y1 - 17, 17):
            line = "$ " if rng.random() < 0.2 else " " * int(rng.integers(0, 9))
            target = int(rng.integers(10, 111))
            while len(line) < target:
                line += str(rng.choice(words)) + str(rng.choice(list(" (.,:=")))
            draw.text((x0 + 6, y), line[: (x1 - x0 - 12) // 8], fill=ink, font=font)
    rgb = np.asarray(img)
    out = np.zeros((height, width, 4), np.uint8)
    out[..., :3] = rgb[..., ::-1]
    return out


def html5_src() -> Path:
    for candidate in (
        ROOT / "node_modules/@spice-project/spice-html5/src",
        Path("/usr/share/spice-html5"),
    ):
        if (candidate / "lz.js").is_file():
            return candidate
    pytest.fail(
        "spice-html5 not found: run `npm ci` (node_modules/@spice-project/spice-html5) or "
        "install Debian's spice-html5 (/usr/share/spice-html5)"
    )


def html5_decode(images: list[bytes]) -> list[Pixels]:
    """Decode SpiceImages (descriptor + payload) with spice-html5; R,G,B,A canvas pixels."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js) is not installed; the html5 cross-checks need it")
    frames = b"".join(struct.pack("<I", len(image)) + image for image in images)
    done = subprocess.run(
        [node, str(ROOT / "tests/html5_codecs.mjs"), str(html5_src())],
        input=frames,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    out, at = [], 0
    while at < len(done.stdout):
        width, height = struct.unpack_from("<II", done.stdout, at)
        at += 8
        size = width * height * 4
        out.append(np.frombuffer(done.stdout, np.uint8, size, at).reshape(height, width, 4))
        at += size
    assert len(out) == len(images)
    return out


def lz_rgb_image(stream: bytes, width: int, height: int) -> bytes:
    """SpiceImage: descriptor (id, type LZ_RGB 101, flags, width, height), data_size, data."""
    return struct.pack("<QBBII", 1, 101, 0, width, height) + struct.pack("<I", len(stream)) + stream


def jpeg_alpha_image(alpha_stream: bytes, width: int, height: int) -> bytes:
    """SpiceImage JPEG_ALPHA (108): flags, jpeg_size, data_size, JPEG bytes, XXXA stream."""
    jpeg = b"\xff\xd8\xff\xd9"  # html5 hands these to the browser; only the alpha is read here
    return (
        struct.pack("<QBBII", 2, 108, 0, width, height)
        + struct.pack("<BII", 1, len(jpeg), len(jpeg) + len(alpha_stream))
        + jpeg
        + alpha_stream
    )


def test_spice_html5_decodes_our_streams() -> None:
    rng = np.random.default_rng(3)
    text = desktop_like()
    small = [
        rng.integers(0, 256, (37, 53, 4), dtype=np.uint8),
        np.tile(rng.integers(0, 3, (5, 7, 4), dtype=np.uint8), (20, 70, 1)),
        desktop_like(300, 50, seed=2),
    ]
    wide = np.zeros((3, 9000, 4), np.uint8)  # rows over 8191 pixels: "above" is a far reference
    wide[:, ::97] = 200
    cases = [("rgb32", text), ("rgb32", wide)]
    cases += [(kind, im) for im in small for kind in ("rgb32", "rgba", "xxxa")]
    encoders = {"rgb32": encode_lz_rgb32, "rgba": encode_lz_rgba, "xxxa": encode_lz_xxxa}
    images = []
    for kind, pixels in cases:
        height, width = pixels.shape[:2]
        stream = encoders[kind](pixels)
        if kind == "xxxa":
            images.append(jpeg_alpha_image(stream, width, height))
        else:
            images.append(lz_rgb_image(stream, width, height))
    for (kind, pixels), canvas in zip(cases, html5_decode(images), strict=True):
        # html5 writes R, G, B, A; RGB32 gets alpha 255, XXXA leaves R, G, B at 0.
        bgr_as_rgb = pixels[..., 2::-1]
        if kind == "rgb32":
            assert np.array_equal(canvas[..., :3], bgr_as_rgb)
            assert (canvas[..., 3] == 255).all()
        elif kind == "rgba":
            assert np.array_equal(canvas[..., :3], bgr_as_rgb)
            assert np.array_equal(canvas[..., 3], pixels[..., 3])
        else:
            assert np.array_equal(canvas[..., 3], pixels[..., 3])


def test_a_1080p_desktop_compresses_well() -> None:
    pixels = desktop_like()
    stream = encode_lz_rgb32(pixels)
    assert len(stream) < pixels.nbytes // 10
    assert LzImageType(int.from_bytes(stream[8:12], "big")) is LzImageType.RGB32
