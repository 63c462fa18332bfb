"""VP8 and H.264 streams: the codecs through PyAV's libvpx and libx264, the choice of codec per
client, preference and server option, the size frames travel at, and the keyframes each client
needs (spice-html5's WebM clusters; H.264's IDR with SPS and PPS), checked by a peer that
decodes every frame."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from display_peer import client_message
from test_display_machine import GTK_CAPS
from test_streams import FPS, StreamingDisplay, exact, finish, video_frame

from spice.domain.caps import CapabilitySet
from spice.domain.codecs import h264
from spice.domain.codecs.h264 import H264Encoder
from spice.domain.codecs.jpeg import psnr
from spice.domain.codecs.video import VideoDecoder, VideoEncoder, parse_video_codecs
from spice.domain.codecs.vp8 import Vp8Encoder, available
from spice.domain.display import video_stream
from spice.domain.display.video_stream import H264, VP8, VideoStream
from spice.domain.enums import DisplayCap
from spice.domain.geometry import Box

#: What spice-html5 announces in Chromium (spiceconn.js): no COMPOSITE, VP8 through MSE.
HTML5_CAPS = CapabilitySet.of(
    DisplayCap.SIZED_STREAM,
    DisplayCap.STREAM_REPORT,
    DisplayCap.MULTI_CODEC,
    DisplayCap.CODEC_MJPEG,
    DisplayCap.CODEC_VP8,
)
GTK_VP8_CAPS = CapabilitySet.of(
    *(cap for cap in DisplayCap if cap in GTK_CAPS), DisplayCap.CODEC_MJPEG, DisplayCap.CODEC_VP8
)


def test_encoder_round_trip_and_keyframes() -> None:
    assert available()  # the av wheel this project installs carries libvpx
    enc = Vp8Encoder(160, 120, 1_000_000)
    dec = VideoDecoder("vp8")
    keys = []
    for i in range(8):
        data, key = enc.encode(video_frame(i), i * 33, keyframe=i == 5)
        keys.append(key)
        # A VP8 frame tag's bit 0 is clear on keyframes (RFC 6386, 9.1).
        assert key == (not data[0] & 1)
        out = dec.decode(data)
        assert out.shape == (120, 160, 4)
        assert psnr(out, video_frame(i)) > 28
    assert keys[0] and keys[5] and not any(keys[1:5]) and not any(keys[6:])


def test_encoder_refuses_odd_sizes_and_wrong_frames() -> None:
    with pytest.raises(ValueError):
        Vp8Encoder(161, 120, 1_000_000)
    enc = Vp8Encoder(160, 120, 1_000_000)
    with pytest.raises(ValueError):
        enc.encode(video_frame(0, 100, 100), 0)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("mjpeg", ("mjpeg",)),
        ("vp8,mjpeg", ("vp8", "mjpeg")),
        ("spice:mjpeg;gstreamer:vp8", ("mjpeg", "vp8")),
        (" VP8 ; vp8 ", ("vp8",)),
        ("spice:mjpeg;gstreamer:h264", ("mjpeg", "h264")),
    ],
)
def test_parse_video_codecs(text: str, names: tuple[str, ...]) -> None:
    assert parse_video_codecs(text) == names


@pytest.mark.parametrize("text", ["", ";", "h265", "gstreamer:vp9,mjpeg"])
def test_parse_video_codecs_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_video_codecs(text)


def _play(display: StreamingDisplay, viewer: object, frames: int, start: int = 0) -> None:
    for i in range(start, start + frames):
        display.put(40, 30, video_frame(i))
        display.mm_time = int(display.now * 1000)
        viewer.send(50)  # type: ignore[attr-defined]
        display.tick(1 / FPS)


def _streamed(
    caps: CapabilitySet,
    codecs: tuple[str, ...],
    *,
    preferred: tuple[int, ...] = (),
    link: float | None = None,
) -> tuple[StreamingDisplay, Any]:
    """One viewer with these caps on a server allowing ``codecs``, after 30 video frames; it
    sent ``preferred`` as PREFERRED_VIDEO_CODEC_TYPE, and ``link`` is what the main
    channel's network test measured."""
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz", caps, 1 << 20, codecs)
    viewer.machine.link_bandwidth = link
    if preferred:
        body = struct.pack("<B", len(preferred)) + bytes(preferred)
        viewer.machine.receive_data(client_message(105, body))
        viewer._drain()
    viewer.send(50)
    _play(display, viewer, 30)
    return display, viewer


def _ends_exact(display: StreamingDisplay, viewer: Any) -> None:
    finish(display, [viewer])
    assert viewer.peer.streams == {}
    assert exact(display, viewer)


@pytest.mark.parametrize(
    ("caps", "codecs", "expected"),
    [
        (HTML5_CAPS, ("mjpeg", "vp8"), [2]),  # spice-html5: VP8
        (GTK_VP8_CAPS, ("mjpeg", "vp8"), [1]),  # spice-gtk scales MJPEG: keeps it
        (HTML5_CAPS, ("mjpeg",), [1]),
        (GTK_VP8_CAPS, ("vp8",), [2]),
        (GTK_CAPS, ("vp8",), []),  # plays no allowed codec: images
    ],
)
def test_the_codec_follows_the_client_and_the_server(
    caps: CapabilitySet, codecs: tuple[str, ...], expected: list[int]
) -> None:
    display, viewer = _streamed(caps, codecs)
    assert viewer.peer.stream_codecs == expected
    if expected:
        assert viewer.peer.stream_frames >= 20
    _ends_exact(display, viewer)


def test_vp8_frames_start_every_html5_cluster_with_a_keyframe() -> None:
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz", HTML5_CAPS, 1 << 20, ("mjpeg", "vp8"))
    viewer.send(50)
    _play(display, viewer, 4 * FPS)
    peer = viewer.peer
    assert peer.stream_codecs == [2]
    assert peer.stream_frames > 3 * FPS
    assert peer.vp8_bad_cluster_starts == 0
    assert 4 <= peer.vp8_keyframes <= 6  # one a second, not more


def _lose_a_frame(display: StreamingDisplay, machine: Any, index: int) -> None:
    """Frame ``index`` is encoded, but its job commits nothing (its area was gone)."""
    display.put(40, 30, video_frame(index))
    display.mm_time += 33
    job = machine.next_job()
    assert job is not None and job.video is not None
    display.images_for(job)
    machine.commit(job, [None])


def test_a_frame_that_was_not_sent_makes_the_next_a_keyframe() -> None:
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz", HTML5_CAPS, 1 << 20, ("mjpeg", "vp8"))
    viewer.send(50)
    _play(display, viewer, 20)
    machine = viewer.machine
    _lose_a_frame(display, machine, 20)
    keys = viewer.peer.vp8_keyframes
    display.put(40, 30, video_frame(21))
    display.mm_time += 33
    viewer.send(50)
    assert viewer.peer.vp8_keyframes == keys + 1
    assert viewer.peer.vp8_bad_cluster_starts == 0


def _recording(
    encoder: Callable[[int, int, int], VideoEncoder],
) -> tuple[list[tuple[int, int, int]], Callable[[int, int, int], VideoEncoder]]:
    """An encoder factory that records each encoder's (width, height, bit rate)."""
    made: list[tuple[int, int, int]] = []

    def factory(w: int, h: int, bits: int) -> VideoEncoder:
        made.append((w, h, bits))
        return encoder(w, h, bits)

    return made, factory


def test_frames_travel_at_half_size_on_a_slow_link_and_the_encoder_is_remade_rarely() -> None:
    box = Box(0, 0, 1280, 720)
    assert VP8.wire_size(box, 8e6) == (640, 360)
    assert VP8.wire_size(box, 100e6) == (1280, 720)
    made, factory = _recording(Vp8Encoder)

    stream = VideoStream(box, VP8, factory)
    stream.plan(5e6, 0.0)
    stream.plan(3e6, 1.0)  # too soon to remake
    stream.plan(4.9e6, 5.0)  # too small a change
    stream.plan(2e6, 6.0)
    assert [m[:2] for m in made] == [(640, 360), (640, 360)]
    assert made[0][2] > made[1][2]
    frame = stream.encode(video_frame(0, 720, 1280), 0)
    assert (frame.width, frame.height) == (640, 360) and frame.keyframe
    stream.plan(150e6, 9.0)
    assert made[-1][:2] == (1280, 720)
    assert made[-1][2] <= 1280 * 720 * FPS * video_stream.MAX_BITS_PER_PIXEL


def test_vp8_picture_quality_on_a_natural_clip() -> None:
    """At the rate a 10 Mbit/s link gets, half-size VP8 scaled back up stays recognisable."""
    stream = VideoStream(Box(0, 0, 320, 240), VP8)
    stream.plan(6e6, 0.0)
    dec = VideoDecoder("vp8")
    scores = []
    for i in range(30):
        src = video_frame(i, 240, 320)
        frame = stream.encode(src, i * 33)
        small = dec.decode(frame.payload)
        up = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
        scores.append(psnr(up, src))
    assert min(scores[5:]) > 24


@pytest.mark.parametrize("pad", [0, 255])
def test_i420_values_are_bt601_limited_range(pad: int) -> None:
    """Exact values from BT.601's 8-bit integer form: Y = ((66R + 129G + 25B + 128) >> 8) + 16,
    U = ((-38R - 74G + 112B + 128) >> 8) + 128, V = ((112R - 94G - 18B + 128) >> 8) + 128,
    chroma of each 2x2 block's rounded mean; halving takes each 2x2 block's rounded mean
    first. The pad byte never counts."""
    from spice.domain.codecs.yuv import bgrx_to_i420

    src = np.zeros((4, 4, 4), np.uint8)  # B, G, R, X
    src[:2, :2, :3] = (255, 255, 255)  # white: Y 235
    src[:2, 2:, :3] = (0, 0, 255)  # red: Y 82, U 90, V 240
    src[2:, :2, :3] = (0, 0, 0)  # black: Y 16
    src[2:, 2:, :3] = [[(10, 20, 30), (11, 21, 31)], [(12, 22, 32), (13, 23, 33)]]
    src[..., 3] = pad
    out = bgrx_to_i420(src)
    assert out[:4].tolist() == [
        [235, 235, 82, 82],
        [235, 235, 82, 82],
        [16, 16, 35, 36],
        [16, 16, 37, 37],
    ]
    # U then V, each 2x2, packed two rows to a row of four; the last block's mean is
    # (12, 22, 32).
    assert out[4:].tolist() == [[128, 90, 128, 122], [128, 240, 128, 133]]
    half = bgrx_to_i420(np.tile(src, (2, 1, 1)), halve=True)  # 8 high, 4 wide: to 4 by 2
    assert half[:4].tolist() == [[235, 82], [16, 37], [235, 82], [16, 37]]


@pytest.mark.parametrize("halve", [False, True])
def test_i420_matches_ffmpeg(halve: bool) -> None:
    """The one-pass conversion agrees with FFmpeg's BT.601 limited-range conversion (of the
    area-averaged half, when halving) to within rounding on smooth content."""
    import av

    from spice.domain.codecs.scale import downscale_bgrx
    from spice.domain.codecs.yuv import bgrx_to_i420

    src = video_frame(3, 240, 320)
    ours = bgrx_to_i420(src, halve=halve)
    ref_src = downscale_bgrx(src, 160, 120) if halve else src
    ref = av.VideoFrame.from_ndarray(ref_src, format="bgra").reformat(format="yuv420p")
    diff = np.abs(ours.astype(int) - ref.to_ndarray().astype(int))
    assert ours.shape == ((120 if halve else 240) * 3 // 2, 160 if halve else 320)
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 3


@pytest.mark.parametrize(
    ("preferred", "codecs", "expected"),
    [
        ((2, 1), ("mjpeg", "vp8"), [2]),  # spice-gtk asks for VP8 first: it gets it
        ((3, 2), ("mjpeg", "vp8"), [2]),  # H.264 not allowed by the server: the next one
        ((2,), ("mjpeg",), [1]),  # VP8 not allowed by the server: the usual choice
        ((1,), ("mjpeg", "vp8"), [1]),
    ],
)
def test_the_clients_preferred_video_codec_comes_first(
    preferred: tuple[int, ...], codecs: tuple[str, ...], expected: list[int]
) -> None:
    display, viewer = _streamed(GTK_VP8_CAPS, codecs, preferred=preferred)
    assert viewer.peer.stream_codecs == expected
    _ends_exact(display, viewer)


# ------------------------------------------------------------------------------ H.264
GTK_H264_CAPS = CapabilitySet.of(
    *(cap for cap in DisplayCap if cap in GTK_VP8_CAPS), DisplayCap.CODEC_H264
)
ALL_CODECS = ("mjpeg", "vp8", "h264")


def test_nal_types_of_an_annex_b_stream() -> None:
    """Start codes of three and four bytes; nal_unit_type is the low 5 bits of the byte
    after (H.264 7.3.1): 0x67 SPS, 0x68 PPS, 0x65 IDR slice, 0x41 non-IDR slice."""
    au = b"\x00\x00\x00\x01\x67\x42\x00\x1f" + b"\x00\x00\x01\x68\xce\x38\x80"
    au += b"\x00\x00\x01\x65\x88\x84\x00"
    assert h264.nal_types(au) == [7, 8, 5]
    assert h264.is_keyframe(au)
    assert h264.nal_types(b"\x00\x00\x00\x01\x41\x9a\x02") == [1]
    assert not h264.is_keyframe(b"\x00\x00\x00\x01\x41\x9a\x02")
    assert not h264.is_keyframe(b"\x00\x00\x01\x65\x88" + b"\x00\x00\x01\x67\x42")  # no PPS
    assert h264.nal_types(b"") == [] and h264.nal_types(b"\x00\x00\x01") == []


def test_h264_round_trip_keyframes_only_when_asked_with_sps_and_pps() -> None:
    assert h264.available()  # the av wheel this project installs carries libx264
    enc = H264Encoder(160, 120, 1_000_000)
    dec = VideoDecoder("h264")
    keys = []
    for i in range(8):
        data, key = enc.encode(video_frame(i), i * 33, keyframe=i == 5)
        types = h264.nal_types(data)
        keys.append(key)
        # The encoder's flag is what the bitstream says: IDR slices after SPS and PPS, or
        # only non-IDR slices; one access unit per frame, led by its delimiter.
        assert key == h264.is_keyframe(data), types
        assert types[0] == h264.NAL_AUD and types.count(h264.NAL_AUD) == 1, types
        if not key:
            assert set(types) == {h264.NAL_AUD, h264.NAL_SLICE}, types
        # A frame out per frame in: each decodes on its own packet, at once.
        out = dec.decode(data)
        assert out.shape == (120, 160, 4)
        assert psnr(out, video_frame(i)) > 28
    assert keys == [True, False, False, False, False, True, False, False]


def test_h264_says_its_colours_are_bt601_limited_range() -> None:
    """The SPS's VUI carries what the I420 conversion makes (H.264 Table E-5
    matrix_coefficients 6, SMPTE 170M; video_full_range_flag 0): GStreamer, in spice-gtk,
    would otherwise take a 720p stream for BT.709."""
    import av

    enc = H264Encoder(160, 120, 500_000)
    data, _ = enc.encode(video_frame(0), 0)
    frame = av.CodecContext.create("h264", "r").decode(av.Packet(data))[0]
    assert (frame.colorspace, frame.color_primaries, frame.color_trc) == (6, 6, 6)
    assert frame.color_range == 1  # MPEG (limited)


def test_h264_encoder_takes_twice_its_size_and_refuses_others() -> None:
    with pytest.raises(ValueError):
        H264Encoder(160, 122, 1_000_000)
    enc = H264Encoder(160, 120, 1_000_000)
    data, key = enc.encode(video_frame(0, 240, 320), 0)  # halved on the way
    assert key and VideoDecoder("h264").decode(data).shape == (120, 160, 4)
    with pytest.raises(ValueError):
        enc.encode(video_frame(1, 100, 100), 33)


def test_h264_frames_keep_to_about_one_frame_of_the_rate() -> None:
    """A VBV of one frame: not even the keyframe bursts far over a frame's budget."""
    bits = 2_000_000
    enc = H264Encoder(320, 240, bits)
    sizes = [len(enc.encode(video_frame(i, 240, 320), i * 33)[0]) for i in range(30)]
    budget = bits / 8 / 30
    assert max(sizes) < 1.5 * budget, (sizes, budget)
    assert sum(sizes) < 1.1 * budget * len(sizes)


def test_h264_travels_at_full_size_unless_the_rate_is_too_low_or_the_area_too_big() -> None:
    box = Box(0, 0, 1280, 720)
    assert H264.wire_size(box, 10e6) == (1280, 720)  # 4.5 Mbit/s of 720p: full size wins
    assert H264.wire_size(box, 2e6) == (640, 360)  # 0.9 Mbit/s: half size wins
    assert H264.wire_size(Box(0, 0, 1920, 1080), 200e6) == (960, 540)  # CPU
    assert H264.wire_size(Box(0, 0, 321, 243), 10e6) == (320, 240)
    made, factory = _recording(H264Encoder)

    stream = VideoStream(box, H264, factory)
    stream.plan(10e6, 0.0)
    stream.plan(2e6, 1.0)  # too soon
    stream.plan(2e6, 3.0)
    assert [m[:2] for m in made] == [(1280, 720), (640, 360)]
    assert made[0][2] == int(10e6 * video_stream.RATE_SHARE)
    frame = stream.encode(video_frame(0, 720, 1280), 0)
    assert (frame.width, frame.height) == (640, 360) and frame.keyframe
    assert h264.is_keyframe(frame.payload)
    stream.plan(200e6, 9.0)  # a fast link: full size, the bit rate capped
    assert made[-1] == (1280, 720, int(1280 * 720 * FPS * video_stream.H264_MAX_BITS_PER_PIXEL))


@pytest.mark.parametrize(
    ("caps", "codecs", "preferred", "link", "expected"),
    [
        (GTK_H264_CAPS, ALL_CODECS, (), None, [1]),  # spice-gtk on a fast link: MJPEG
        (GTK_H264_CAPS, ALL_CODECS, (), 250_000.0, [3]),  # on a slow link: H.264
        (GTK_H264_CAPS, ALL_CODECS, (), 350_000.0, [1]),  # 160x120 at 0.5 bits: 288 kbit/s
        (GTK_VP8_CAPS, ALL_CODECS, (), 250_000.0, [1]),  # no CODEC_H264: MJPEG even so
        (GTK_H264_CAPS, ("mjpeg", "vp8"), (), 250_000.0, [1]),  # not allowed
        (GTK_H264_CAPS, ALL_CODECS, (1,), 250_000.0, [1]),  # it asks for MJPEG
        (GTK_H264_CAPS, ALL_CODECS, (3, 1), None, [3]),  # it asks for H.264
        (GTK_H264_CAPS, ("mjpeg", "vp8"), (3, 2), None, [2]),  # the server does not allow it
        (GTK_VP8_CAPS, ALL_CODECS, (3, 1), None, [1]),  # no CODEC_H264: not H.264
        (GTK_H264_CAPS, ("h264",), (), None, [3]),  # --video-codecs h264
        (GTK_H264_CAPS, ("vp8", "h264"), (), None, [3]),  # H.264 before VP8
        (GTK_H264_CAPS, ("h264",), (1, 2), None, [3]),  # asks for what is not allowed
        (HTML5_CAPS, ALL_CODECS, (), None, [2]),  # spice-html5: VP8
        (HTML5_CAPS, ALL_CODECS, (), 250_000.0, [2]),
    ],
)
def test_the_h264_choice_per_caps_preference_link_and_server_option(
    caps: CapabilitySet,
    codecs: tuple[str, ...],
    preferred: tuple[int, ...],
    link: float | None,
    expected: list[int],
) -> None:
    display, viewer = _streamed(caps, codecs, preferred=preferred, link=link)
    assert viewer.peer.stream_codecs == expected
    assert viewer.peer.stream_frames >= 10
    _ends_exact(display, viewer)


def test_an_h264_stream_has_one_keyframe_and_a_lost_frame_makes_another() -> None:
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz", GTK_H264_CAPS, 1 << 20, ("h264",))
    viewer.send(50)
    _play(display, viewer, 2 * FPS)
    peer = viewer.peer
    assert peer.stream_codecs == [3]
    assert peer.h264_frames > FPS and peer.h264_keyframes == 1  # no WebM clusters here
    machine = viewer.machine
    _lose_a_frame(display, machine, 100)
    _play(display, viewer, 5, start=101)
    assert peer.h264_keyframes == 2
    finish(display, [viewer])
    assert exact(display, viewer)


def test_half_size_h264_goes_to_spice_gtk_as_sized_frames(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Below the full-size rate spice-gtk gets STREAM_DATA_SIZED frames of half the area,
    which it scales up (the peer as its canvas does); the picture stays recognisable."""
    # 0.06 bits a pixel makes a 160x120 area full size from 77 kbit/s: never here.
    monkeypatch.setattr(video_stream, "H264_FULL_SIZE_BPP", 1e9)
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz", GTK_H264_CAPS, 1 << 20, ("h264",))
    viewer.send(50)
    _play(display, viewer, 20)
    assert viewer.peer.stream_codecs == [3]
    assert viewer.peer.scaled_frames == viewer.peer.stream_frames >= 10
    shown = viewer.peer.pixels
    assert shown is not None
    assert psnr(shown[30:150, 40:200], display.surface.pixels[30:150, 40:200]) > 20
    finish(display, [viewer])
    assert exact(display, viewer)


def test_no_frame_is_named_ahead_for_a_vp8_stream() -> None:
    # A VP8 stream encodes its frames itself: the worker encodes none in the copy's hop.
    display, viewer = _streamed(HTML5_CAPS, ("vp8",))
    ((stream_id, _),) = viewer.machine.streams.items()
    assert viewer.peer.stream_codecs == [2]
    assert viewer.machine.frame_request_now(stream_id, display.now) is None
