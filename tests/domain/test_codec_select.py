"""Which codec an image gets: the C server's modes, the client's caps, lossy allowed or not,
and the content (photographic or flat)."""

from __future__ import annotations

import numpy as np
import pytest

from spice.domain.caps import CapabilitySet
from spice.domain.channels.display import DisplayChannel
from spice.domain.codecs.classify import is_natural_motion, is_photographic
from spice.domain.codecs.jpeg import encode_jpeg_bgrx
from spice.domain.codecs.select import CodecPolicy, choose, encode
from spice.domain.enums import DisplayCap, ImageType


def flat(h: int = 200, w: int = 300) -> np.ndarray:
    img = np.full((h, w, 4), 230, np.uint8)
    img[20:40, 10:200, :3] = 30  # a "text line"
    img[..., 3] = 0
    return img


def photo(h: int = 200, w: int = 300, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 4), np.uint8)
    for c in range(3):
        base = 120 + 60 * np.sin(xx / (20 + 7 * c)) * np.cos(yy / (25 + 3 * c))
        img[..., c] = np.clip(base + rng.normal(0, 3, (h, w)), 0, 255).astype(np.uint8)
    return img


def test_the_classifier_tells_photos_from_flat_content() -> None:
    assert is_photographic(photo())
    assert not is_photographic(flat())
    noise = np.random.default_rng(2).integers(0, 256, (200, 300, 4), np.uint8)
    assert not is_photographic(noise)  # no gradual structure: a lossless codec's business
    assert not is_photographic(photo(20, 20))  # too small to judge


def test_natural_motion_is_looser_than_photographic() -> None:
    """A fractal zoom has flat areas between its gradients: video, not a photo; flat
    synthetic animation is neither."""
    zoom = photo()
    zoom[:, :120] = (0, 0, 0, 0)  # the set's flat interior
    assert is_natural_motion(zoom)
    assert not is_photographic(zoom)
    assert not is_natural_motion(flat())


@pytest.mark.parametrize(
    ("policy", "content", "expected"),
    [
        (CodecPolicy("off"), photo, ImageType.BITMAP),
        (CodecPolicy("lz"), photo, ImageType.LZ_RGB),
        (CodecPolicy("glz"), flat, ImageType.LZ_RGB),
        (CodecPolicy("lz4", lz4=True), flat, ImageType.LZ4),
        (CodecPolicy("lz4", lz4=False), flat, ImageType.LZ_RGB),
        (CodecPolicy("quic"), flat, ImageType.QUIC),
        (CodecPolicy("auto_glz"), flat, ImageType.LZ_RGB),
        (CodecPolicy("auto_glz"), photo, ImageType.QUIC),
        (CodecPolicy("auto_lz"), photo, ImageType.QUIC),
        (CodecPolicy("auto_glz", jpeg=True), photo, ImageType.JPEG),
        (CodecPolicy("auto_glz", jpeg=True), flat, ImageType.LZ_RGB),
        (CodecPolicy("lz", jpeg=True), photo, ImageType.JPEG),
        (CodecPolicy("auto_glz", warm=False, lz4=True), photo, ImageType.LZ4),
        (CodecPolicy("auto_glz", warm=False), photo, ImageType.BITMAP),
    ],
)
def test_choice(policy: CodecPolicy, content: object, expected: ImageType) -> None:
    assert choose(content(), policy) == expected  # type: ignore[operator]


def test_an_encoding_larger_than_the_bitmap_becomes_the_bitmap() -> None:
    noise = np.random.default_rng(3).integers(0, 256, (64, 64, 4), np.uint8)
    image = encode(noise, CodecPolicy("lz4", lz4=True))
    assert image.type == ImageType.BITMAP
    assert image.payload == noise.tobytes()


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="image compression"):
        CodecPolicy("zlib")


def test_jpeg_wan_auto_follows_the_measured_link() -> None:
    caps = CapabilitySet.of(DisplayCap.LZ4_COMPRESSION)
    machine = DisplayChannel(mini_header=True, client_caps=caps, server_caps=CapabilitySet())
    assert not machine.policy.jpeg
    machine.low_bandwidth = True
    assert machine.policy.jpeg
    never = DisplayChannel(
        mini_header=True,
        client_caps=caps,
        server_caps=CapabilitySet(),
        jpeg_wan_compression="never",
        low_bandwidth=True,
    )
    assert not never.policy.jpeg
    always = DisplayChannel(
        mini_header=True,
        client_caps=caps,
        server_caps=CapabilitySet(),
        jpeg_wan_compression="always",
    )
    assert always.policy.jpeg
    off = DisplayChannel(
        mini_header=True,
        client_caps=caps,
        server_caps=CapabilitySet(),
        image_compression="off",
        jpeg_wan_compression="always",
    )
    assert not off.policy.jpeg


def test_a_fast_policy_sends_lossless_as_lz4_in_the_auto_modes_only() -> None:
    rng = np.random.default_rng(4)
    flat = np.zeros((64, 96, 4), np.uint8)
    flat[::4, ::3] = rng.integers(0, 256, 4, dtype=np.uint8)
    for mode in ("auto_glz", "auto_lz", "lz4"):
        image = encode(flat, CodecPolicy(mode=mode, lz4=True, fast=True))
        assert image.type == ImageType.LZ4
    # A client without LZ4, or a codec the user chose, is not overridden.
    assert encode(flat, CodecPolicy(mode="auto_glz", fast=True)).type == ImageType.LZ_RGB
    assert encode(flat, CodecPolicy(mode="quic", lz4=True, fast=True)).type == ImageType.QUIC
    assert encode(flat, CodecPolicy(mode="lz", lz4=True, fast=True)).type == ImageType.LZ_RGB


def test_a_volatile_policy_skips_the_photographic_check_for_lz_rgb() -> None:
    """A photo-like area redrawn many times a second, under the LZ4 budget: LZ_RGB in the
    auto modes (no QUIC, and no classifier run per frame); JPEG still where lossy is allowed
    and the content is photographic."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:96, 0:128]
    photo = np.zeros((96, 128, 4), np.uint8)
    photo[..., :3] = ((xx * 2 + yy)[..., None] + rng.integers(0, 24, (96, 128, 3))) % 256
    assert encode(photo, CodecPolicy(mode="auto_glz")).type == ImageType.QUIC
    for mode in ("auto_glz", "auto_lz"):
        policy = CodecPolicy(mode=mode, lz4=True, volatile=True)
        assert encode(photo, policy).type == ImageType.LZ_RGB
    lossy = CodecPolicy(mode="auto_glz", lz4=True, jpeg=True, volatile=True)
    assert encode(photo, lossy).type == ImageType.JPEG
    assert encode(photo, CodecPolicy(mode="quic", volatile=True)).type == ImageType.QUIC


def test_jpeg_reads_an_area_of_the_surface_in_place() -> None:
    """A stream's frame is encoded from a view of the surface (rows apart, with their pitch):
    the same file as from a packed copy; a view whose pixels are not packed is copied first."""
    rng = np.random.default_rng(9)
    surface = rng.integers(0, 256, (120, 200, 4), dtype=np.uint8)
    area = surface[10:74, 30:126]
    assert not area.flags.c_contiguous
    assert encode_jpeg_bgrx(area, 70) == encode_jpeg_bgrx(area.copy(), 70)
    every_other = surface[:64, ::2]
    assert encode_jpeg_bgrx(every_other, 70) == encode_jpeg_bgrx(every_other.copy(), 70)
    video = CodecPolicy(video=True, jpeg_quality=70)
    assert encode(area, video).payload == encode(area.copy(), video).payload
