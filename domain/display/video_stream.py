"""One client's inter-frame video stream (VP8 or H.264): its encoder, made (and made again) at
the size and bit rate the link's pacing allows, and the keyframes the client needs.

Frames of these codecs depend on the frames before them: a frame that was encoded but never
sent (its job was dropped) makes the next one a keyframe. Changing the size or the bit rate
costs a keyframe too (a new encoder), so it happens only for a large change and at most every
``REMAKE_INTERVAL``.

VP8 (:data:`VP8`) is what spice-html5 plays, through Media Source Extensions: it wraps the
frames in WebM and starts a new cluster, flagged as starting with a keyframe, with the first
frame at least ``CLUSTER_MS`` after the previous cluster's start. The browser may seek to a
cluster's start when playback falls behind, so that frame must really be a keyframe: the
stream tracks the clusters the client will make from the frames' multimedia times and asks the
encoder for a keyframe there (and a frame not sent forgets the cluster start it would have
made). H.264 (:data:`H264`, spice-gtk through GStreamer) needs no such rule.

The encoded size is the area's own or half of it (:meth:`StreamCodec.wire_size`): both clients
scale smaller frames up onto the stream's area (spice-html5's ``<video>`` element has the
stream's size; spice-gtk's canvas scales any frame to its destination), which is how a frame
rate survives a slow link.

Encoding runs in a worker thread (:meth:`VideoStream.encode`); the machine calls the other
methods between jobs, never while one is out.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from spice.domain.codecs.h264 import H264Encoder
from spice.domain.codecs.scale import downscale_bgrx
from spice.domain.codecs.video import VideoEncoder, VideoFrame
from spice.domain.codecs.vp8 import Vp8Encoder
from spice.domain.display.surface import Pixels
from spice.domain.geometry import Box

#: spice-html5's WebM cluster length (webm.js MAX_CLUSTER_TIME), in ms.
CLUSTER_MS = 1000
#: Share of the pacing rate the encoder aims at (the rest: keyframes, drawing, the echo).
RATE_SHARE = 0.45
MIN_BIT_RATE = 200_000
#: The most bits per pixel per frame worth spending (above it the picture no longer gains):
#: VP8's, and H.264's (on frames 150-210 of the 720p mandelbrot clip, ultrafast: 23.6 dB at
#: 0.35, 24.1 at 0.55, 24.4 at 1.0; the C server's MJPEG shows it at 23.9 dB).
MAX_BITS_PER_PIXEL = 0.35
H264_MAX_BITS_PER_PIXEL = 0.55
FPS = 30
#: VP8: pacing rates (bits/s) from which frames travel at the area's full size. A 720p frame
#: costs 20 ms of encoder CPU at full size and 4.3 ms at half here: on an 80 ms / 50 Mbit/s
#: path (rate 44 Mbit/s) full size gave spice-html5 24.7 fps where half size gives 29.4.
VP8_FULL_SIZE_RATE = 100_000_000.0
#: H.264: frames travel at full size while the encoder gets at least this many bits per pixel
#: of the full area per frame, for areas up to ``H264_FULL_SIZE_PIXELS``. Measured on the 720p
#: mandelbrot clip (ultrafast, PSNR of the frame shown at the area's size): full against half
#: 22.1 / 22.8 dB at 1 Mbit/s (0.036 bpp), 23.7 / 23.2 at 2 (0.072), 24.9 / 23.6 at 4.5,
#: 25.8 / 23.6 at 9; the CPU is 12-16 ms a frame at full size against 4-5 at half.
H264_FULL_SIZE_BPP = 0.06
#: Above this area a full-size frame costs more than a frame interval of one core (x264
#: ultrafast, one thread: ~13 ms for 720p here).
H264_FULL_SIZE_PIXELS = 1280 * 800
#: A new encoder for a rate at least this far from the current one (relative), and at
#: most this often (s).
REMAKE_CHANGE = 0.3
REMAKE_INTERVAL = 2.0

EncoderFactory = Callable[[int, int, int], VideoEncoder]


def _down(n: float, step: int) -> int:
    return max(16, int(n) // step * step)


def bit_rate(size: tuple[int, int], rate: float, max_bpp: float = MAX_BITS_PER_PIXEL) -> int:
    """The bit rate of an encoder for frames of ``size``, on a link paced at ``rate``."""
    cap = size[0] * size[1] * FPS * max_bpp
    return int(max(MIN_BIT_RATE, min(rate * RATE_SHARE, cap)))


def _vp8_full_size(box: Box, rate: float) -> bool:
    return rate >= VP8_FULL_SIZE_RATE


def _h264_full_size(box: Box, rate: float) -> bool:
    pixels = box.w * box.h
    return (
        pixels <= H264_FULL_SIZE_PIXELS and rate * RATE_SHARE >= H264_FULL_SIZE_BPP * pixels * FPS
    )


@attrs.frozen
class StreamCodec:
    """What a stream needs to know of its codec."""

    name: str
    #: Its SPICE_VIDEO_CODEC_TYPE.
    codec_type: int
    encoder: EncoderFactory
    #: Whether frames of ``box`` travel at its full size on a link paced at ``rate`` (else
    #: at half size).
    full_size: Callable[[Box, float], bool]
    #: Keyframes where spice-html5 starts a WebM cluster.
    webm_clusters: bool = False
    max_bits_per_pixel: float = MAX_BITS_PER_PIXEL

    def wire_size(self, box: Box, rate: float) -> tuple[int, int]:
        """The size frames of ``box`` are encoded at, on a link paced at ``rate`` (an even
        width, a height a multiple of 4: what the I420 conversion takes)."""
        if self.full_size(box, rate):
            return _down(box.w, 2), _down(box.h, 4)
        return _down(box.w / 2, 2), _down(box.h / 2, 4)


VP8 = StreamCodec("vp8", 2, Vp8Encoder, _vp8_full_size, webm_clusters=True)
H264 = StreamCodec(
    "h264", 3, H264Encoder, _h264_full_size, max_bits_per_pixel=H264_MAX_BITS_PER_PIXEL
)


class VideoStream:
    """The stream of ``box`` in ``codec``; ``factory`` makes its encoders (the codec's own
    unless given: tests watch what is made)."""

    def __init__(self, box: Box, codec: StreamCodec, factory: EncoderFactory | None = None) -> None:
        self.box = box
        self.codec = codec
        self._factory = factory or codec.encoder
        self.encoder: VideoEncoder | None = None
        self._made_at = -1e9
        #: Set when the next frame must be a keyframe (a frame was lost).
        self._need_key = False
        #: The multimedia time of the client's current WebM cluster (None: none yet), and
        #: the one before the last frame (to undo a frame that was not sent).
        self._cluster: int | None = None
        self._cluster_before: int | None = None
        self._last_mm = -1
        #: A frame was encoded and is neither sent nor reported lost yet.
        self._unsent = False
        self.last_bytes = 0
        self.keyframes = 0
        self.remakes = 0

    def plan(self, rate: float, now: float) -> None:
        """Before a frame's job: make the encoder, or make it again when the pacing rate
        moved far enough from what it was made for."""
        size = self.codec.wire_size(self.box, rate)
        bits = bit_rate(size, rate, self.codec.max_bits_per_pixel)
        enc = self.encoder
        if enc is not None:
            if now - self._made_at < REMAKE_INTERVAL:
                return
            same_size = (enc.width, enc.height) == size
            if same_size and abs(bits - enc.bit_rate) <= REMAKE_CHANGE * enc.bit_rate:
                return
            self.remakes += 1
        self.encoder = self._factory(size[0], size[1], bits)
        self._made_at = now

    def encode(self, pixels: Pixels, mm_time: int) -> VideoFrame:
        """Encode the area's ``pixels`` (its own size), shown at ``mm_time`` (ms; kept
        increasing). Runs in a worker thread."""
        enc = self.encoder
        if enc is None:
            raise RuntimeError("encode before plan")
        mm = max(mm_time, self._last_mm + 1)
        self._last_mm = mm
        self._cluster_before = self._cluster
        cluster_start = self.codec.webm_clusters and (
            self._cluster is None or mm - self._cluster >= CLUSTER_MS
        )
        if cluster_start:
            self._cluster = mm
        h, w = pixels.shape[:2]
        if (w, h) not in ((enc.width, enc.height), (2 * enc.width, 2 * enc.height)):
            # Not an exact half (an odd area): averaged down first.
            pixels = downscale_bgrx(pixels, enc.width, enc.height)
        data, key = enc.encode(pixels, mm, keyframe=cluster_start or self._need_key)
        self._need_key = False
        self._unsent = True
        self.last_bytes = len(data)
        self.keyframes += key
        return VideoFrame(enc.width, enc.height, data, keyframe=key, mm_time=mm)

    def sent(self) -> None:
        """The last frame encoded went to the client."""
        self._unsent = False

    def lost(self) -> None:
        """The job of a frame was dropped: if it had been encoded, the next frame is a
        keyframe (and a WebM cluster it would have started is not the client's)."""
        if self._unsent:
            self._unsent = False
            self._need_key = True
            self._cluster = self._cluster_before
