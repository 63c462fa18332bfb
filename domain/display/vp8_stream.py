"""One client's VP8 stream: its encoder, made (and made again) at the size and bit rate the
link's pacing allows, and the keyframes spice-html5 needs.

spice-html5 plays VP8 through Media Source Extensions: it wraps the frames in WebM and starts
a new cluster, flagged as starting with a keyframe, with the first frame at least
``CLUSTER_MS`` after the previous cluster's start. The browser may seek to a cluster's start
when playback falls behind, so that frame must really be a keyframe: the stream tracks the
clusters the client will make from the frames' multimedia times and asks the encoder for a
keyframe there. A frame that was encoded but never sent (the job was dropped) makes the next
one a keyframe and forgets a cluster start it would have made.

The encoded size is the area's own, or half of it on a link paced below ``FULL_SIZE_RATE``: the
``<video>`` element spice-html5 makes has the stream's size and scales smaller frames up,
which is how a frame rate survives a slow link. Changing the size or the bit rate costs a
keyframe, so it happens only for a large change and at most every ``REMAKE_INTERVAL``.

Encoding runs in a worker thread (:meth:`encode`); the machine calls the other methods
between jobs, never while one is out.
"""

from __future__ import annotations

from collections.abc import Callable

from spice.domain.codecs.scale import downscale_bgrx
from spice.domain.codecs.vp8 import VideoFrame, Vp8Encoder
from spice.domain.display.surface import Pixels
from spice.domain.geometry import Box

#: spice-html5's WebM cluster length (webm.js MAX_CLUSTER_TIME), in ms.
CLUSTER_MS = 1000
#: Share of the pacing rate the encoder aims at (the rest: keyframes, drawing, the echo).
RATE_SHARE = 0.45
MIN_BIT_RATE = 200_000
#: The most bits per pixel per frame worth spending (above it the picture no longer gains).
MAX_BITS_PER_PIXEL = 0.35
FPS = 30
#: Pacing rates (bits/s) from which frames travel at the area's full size. A 720p frame costs
#: 20 ms of encoder CPU at full size and 4.3 ms at half here: on an 80 ms / 50 Mbit/s path
#: (rate 44 Mbit/s) full size gave spice-html5 24.7 fps where half size gives 29.4.
FULL_SIZE_RATE = 100_000_000.0
#: A new encoder for a rate at least this far from the current one (relative), and at
#: most this often (s).
REMAKE_CHANGE = 0.3
REMAKE_INTERVAL = 2.0

EncoderFactory = Callable[[int, int, int], Vp8Encoder]


def _down(n: float, step: int) -> int:
    return max(16, int(n) // step * step)


def wire_size(box: Box, rate: float) -> tuple[int, int]:
    """The size frames of ``box`` are encoded at, on a link paced at ``rate`` (an even
    width, a height a multiple of 4: what the I420 conversion takes)."""
    if rate >= FULL_SIZE_RATE:
        return _down(box.w, 2), _down(box.h, 4)
    return _down(box.w / 2, 2), _down(box.h / 2, 4)


def bit_rate(size: tuple[int, int], rate: float) -> int:
    cap = size[0] * size[1] * FPS * MAX_BITS_PER_PIXEL
    return int(max(MIN_BIT_RATE, min(rate * RATE_SHARE, cap)))


class Vp8Stream:
    def __init__(self, box: Box, factory: EncoderFactory = Vp8Encoder) -> None:
        self.box = box
        self._factory = factory
        self.encoder: Vp8Encoder | None = None
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
        size = wire_size(self.box, rate)
        bits = bit_rate(size, rate)
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
        cluster_start = self._cluster is None or mm - self._cluster >= CLUSTER_MS
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
        keyframe, and the cluster it would have started is not the client's."""
        if self._unsent:
            self._unsent = False
            self._need_key = True
            self._cluster = self._cluster_before
