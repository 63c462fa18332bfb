"""VP8 streams: the codec through PyAV's libvpx, the choice of codec per client, and the
keyframes spice-html5's WebM clusters need (checked by a peer that decodes every frame)."""

from __future__ import annotations

import numpy as np
import pytest
from test_display_machine import GTK_CAPS
from test_streams import FPS, StreamingDisplay, exact, finish, video_frame

from spice.domain.caps import CapabilitySet
from spice.domain.codecs.jpeg import psnr
from spice.domain.codecs.vp8 import Vp8Decoder, Vp8Encoder, available, parse_video_codecs
from spice.domain.display import vp8_stream
from spice.domain.display.vp8_stream import Vp8Stream, wire_size
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
    dec = Vp8Decoder()
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
    ],
)
def test_parse_video_codecs(text: str, names: tuple[str, ...]) -> None:
    assert parse_video_codecs(text) == names


@pytest.mark.parametrize("text", ["", ";", "h264", "gstreamer:h264,mjpeg"])
def test_parse_video_codecs_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_video_codecs(text)


def _play(display: StreamingDisplay, viewer: object, frames: int, start: int = 0) -> None:
    for i in range(start, start + frames):
        display.put(40, 30, video_frame(i))
        display.mm_time = int(display.now * 1000)
        viewer.send(50)  # type: ignore[attr-defined]
        display.tick(1 / FPS)


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
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz", caps, 1 << 20, codecs)
    viewer.send(50)
    _play(display, viewer, 30)
    assert viewer.peer.stream_codecs == expected
    if expected:
        assert viewer.peer.stream_frames >= 20
    finish(display, [viewer])
    assert viewer.peer.streams == {}
    assert exact(display, viewer)


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


def test_a_frame_that_was_not_sent_makes_the_next_a_keyframe() -> None:
    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz", HTML5_CAPS, 1 << 20, ("mjpeg", "vp8"))
    viewer.send(50)
    _play(display, viewer, 20)
    machine = viewer.machine
    display.put(40, 30, video_frame(20))
    display.mm_time += 33
    job = machine.next_job()
    assert job is not None and job.video is not None
    display.images_for(job)  # encoded...
    machine.commit(job, [None])  # ...but its area was gone: nothing sent
    keys = viewer.peer.vp8_keyframes
    display.put(40, 30, video_frame(21))
    display.mm_time += 33
    viewer.send(50)
    assert viewer.peer.vp8_keyframes == keys + 1
    assert viewer.peer.vp8_bad_cluster_starts == 0


def test_frames_travel_at_half_size_on_a_slow_link_and_the_encoder_is_remade_rarely() -> None:
    box = Box(0, 0, 1280, 720)
    assert wire_size(box, 8e6) == (640, 360)
    assert wire_size(box, 100e6) == (1280, 720)
    made: list[tuple[int, int, int]] = []

    def factory(w: int, h: int, bits: int) -> Vp8Encoder:
        made.append((w, h, bits))
        return Vp8Encoder(w, h, bits)

    stream = Vp8Stream(box, factory)
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
    assert made[-1][2] <= 1280 * 720 * FPS * vp8_stream.MAX_BITS_PER_PIXEL


def test_vp8_picture_quality_on_a_natural_clip() -> None:
    """At the rate a 10 Mbit/s link gets, half-size VP8 scaled back up stays recognisable."""
    stream = Vp8Stream(Box(0, 0, 320, 240))
    stream.plan(6e6, 0.0)
    dec = Vp8Decoder()
    scores = []
    for i in range(30):
        src = video_frame(i, 240, 320)
        frame = stream.encode(src, i * 33)
        small = dec.decode(frame.payload)
        up = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
        scores.append(psnr(up, src))
    assert min(scores[5:]) > 24


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
        ((3, 2), ("mjpeg", "vp8"), [2]),  # H.264 is not ours: the next one
        ((2,), ("mjpeg",), [1]),  # VP8 not allowed by the server: the usual choice
        ((1,), ("mjpeg", "vp8"), [1]),
    ],
)
def test_the_clients_preferred_video_codec_comes_first(
    preferred: tuple[int, ...], codecs: tuple[str, ...], expected: list[int]
) -> None:
    import struct

    from display_peer import client_message

    display = StreamingDisplay(320, 200)
    viewer = display.join("auto_glz", GTK_VP8_CAPS, 1 << 20, codecs)
    body = struct.pack("<B", len(preferred)) + bytes(preferred)
    viewer.machine.receive_data(client_message(105, body))  # PREFERRED_VIDEO_CODEC_TYPE
    viewer._drain()
    viewer.send(50)
    _play(display, viewer, 30)
    assert viewer.peer.stream_codecs == expected
    finish(display, [viewer])
    assert exact(display, viewer)
