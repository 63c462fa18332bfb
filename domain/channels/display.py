"""The display channel of one client connection: one machine for everything that decides what
the client is sent.

Everything that affects what this client sees lives here: the DISPLAY_INIT gate (nothing is
drawn before the client said how big its image cache is), the pipe of pending drawing
(:mod:`domain.display.pipe`), the codec policy (server mode, client caps, the client's
PREFERRED_COMPRESSION, whether lossy is allowed), the model of the client's image cache with
its ids, and the ack window (from :class:`~domain.channel.ChannelConnection`).

The adapter's loop around it is short: :meth:`next_job` frames every cheap operation (surface
creation, fills, COPY_BITS, monitors, mark) and stops at the first one that needs pixels,
returning a :class:`DrawJob` that names the areas and the policy; the adapter gets the encoded
images (from the display's shared encode cache, or by encoding them in a thread), hands them
to :meth:`commit`, and writes what :meth:`data_to_send` returns. Only one job is out at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from spice.domain.caps import CapabilitySet
from spice.domain.channel import ACK_WINDOW, ChannelConnection
from spice.domain.codecs import h264, vp8
from spice.domain.codecs.select import JPEG_WAN, PREFERRED, CodecPolicy, EncodedImage
from spice.domain.codecs.video import VideoFrame
from spice.domain.display import video_stream
from spice.domain.display.image_cache import CacheAdd, CacheHit, ImageCache
from spice.domain.display.pipe import (
    PIPE_LIMIT,
    CopyBits,
    CreatePrimary,
    Damage,
    DestroyPrimary,
    DisplayPipe,
    Fill,
    Mark,
    MonitorsConfig,
    PipeOp,
    StreamClip,
    StreamCreate,
    StreamDestroy,
    StreamFrame,
)
from spice.domain.display.rate import DEFAULT_RATE, PROBE_INTERVAL, RateController
from spice.domain.display.video_stream import VideoStream
from spice.domain.display.volatility import Volatility
from spice.domain.enums import DisplayCap, ImageCompression, ImageFlags, ImageType
from spice.domain.errors import LocalProtocolError, RemoteProtocolError
from spice.domain.geometry import Box
from spice.domain.messages import display as m

PRIMARY_SURFACE_ID = 0
#: Bytes a client may owe acks for (past two windows of messages): 1 MiB carries 100 Mbit/s
#: over an 80 ms round trip; the pacing keeps what is really out far smaller.
BYTE_WINDOW = 1 << 20
#: Largest image in raw bytes; bigger areas go as horizontal bands. A whole 4K frame in one
#: message would be 32 MiB; clients such as spicy-screenshot treat the first drawing after the
#: primary's creation as the picture, so a full HD frame stays one image.
MAX_IMAGE_BYTES = 16 * 1024 * 1024
#: A link at least this fast (bits/s, as measured) has room for LZ4's larger images where an
#: area is redrawn many times a second (see :mod:`domain.display.volatility`).
FAST_LINK = 100_000_000.0
#: Volatile areas go as LZ4 (on a fast link) only when the compact codec would fall behind:
#: when a client's images lately came to this many pixels a second (LZ_RGB encodes about 40
#: million a second on a core here, and its images are about 0.75x LZ4's), or for an area of
#: at least ``LZ4_AREA`` pixels asked for again at once (a video's second frame).
LZ4_PIXEL_RATE = 20e6
LZ4_AREA = 512 * 512
#: Images over this many pixels go as two bands, which the adapter encodes at once on two
#: threads (a 1280x720 lossless frame takes 20-70 ms on one core). Not the first image after
#: a surface is created: clients such as spicy-screenshot take that one as the picture.
SPLIT_PIXELS = 512 * 512
#: Bytes in flight allowed before a job is written: this share of the path's
#: bandwidth-delay product, and never less than this many bytes.
IN_FLIGHT_GAIN = 1.25
MIN_IN_FLIGHT = 64 * 1024
#: The kernel paces this connection out at no more than this share of the path's measured
#: capacity (BBR's own probing gain) ...
PACING_HEADROOM = 1.25
#: ... or this share of the main channel's network test, whichever is more (BBR's start-up
#: gain: the test, 250 KiB in TCP slow start, reads below the path; 46% on 80 ms / 50 Mbit/s).
PACING_TEST_GAIN = 2.89
#: Paths with a smallest round trip under this (s) get no pacing ceiling: on loopback or a
#: LAN a bandwidth-delay product is a few packets, and a ceiling would only slow big frames.
PACING_MIN_RTT = 0.002
#: Damage queued back to back joins one job up to this many pixels and images.
BATCH_PIXELS = 1920 * 1080
BATCH_IMAGES = 32
#: JPEG quality of video stream frames (the C server's MJPEG encoder starts at 70).
VIDEO_QUALITY = 70
#: Ask for a STREAM_REPORT after this many frames or milliseconds.
REPORT_WINDOW = 10
REPORT_MS = 500
#: The stream id used once to give spice-html5 its stream table (see ``_prime_jpeg``); the
#: protocol allows ids below 64 and the reference server uses at most 50.
_PRIMING_STREAM_ID = 63
_MJPEG = 1
_VP8 = 2
_H264 = 3
_TOP_DOWN = 1
#: spice-gtk gets H.264 rather than MJPEG for a stream whose pacing rate, when it starts, is
#: below this many bits per pixel of its area per frame at 30 fps (13.8 Mbit/s for 720p): there
#: MJPEG must send smaller frames. Measured on 720p clips at 3-4 Mbit/s: MJPEG at half size,
#: quality 40-55, natural 21.4-21.7 dB, synthetic 24.6-24.9; H.264 at full size 22.7-23.3 and
#: 34-36 dB, at 3-4x MJPEG's CPU a frame (13-19 ms against 3-4 here).
H264_BELOW_BITS_PER_PIXEL = 0.5
#: What a lossless image of flat, synthetic motion takes, in bits a pixel (LZ4 of a 720p test
#: pattern: 1.2; LZ_RGB about 0.8); see :meth:`DisplayChannel.lossless_too_big`.
LOSSLESS_BITS_PER_PIXEL = 1.0
#: INVAL_LIST holds at most this many ids (its count is a uint16).
_INVAL_CHUNK = 0xFFFF


def _link_limited(box: Box, rate: float) -> bool:
    """Whether a stream of ``box`` on a link paced at ``rate`` is worth H.264's CPU."""
    return rate < H264_BELOW_BITS_PER_PIXEL * box.w * box.h * video_stream.FPS


@attrs.frozen
class DisplayReady:
    """The client sent DISPLAY_INIT: it may now be attached to the display and drawn to."""

    init: m.DisplayInit


@attrs.frozen
class ImageRequest:
    """One image the next DRAW_COPY needs: the surface area and how to encode it."""

    box: Box
    policy: CodecPolicy


@attrs.frozen
class DrawJob:
    requests: tuple[ImageRequest, ...]
    #: Set when the job is a frame of this stream (one request) rather than images.
    stream_id: int | None = None
    #: An inter-frame (VP8, H.264) stream's encoder state: the frame is encoded by it (not by
    #: the shared encode cache), and must be sent or reported lost.
    video: VideoStream | None = None


@attrs.define
class DisplayStats:
    images: int = 0
    image_bytes: int = 0
    cache_hits: int = 0
    stream_frames: int = 0
    stream_bytes: int = 0
    #: Stream frames sent smaller than their area (STREAM_DATA_SIZED).
    scaled_frames: int = 0
    by_type: dict[str, int] = attrs.Factory(dict)


class DisplayChannel(ChannelConnection):
    CLIENT_MESSAGES = m.CLIENT_MESSAGES
    #: Bytes queued since the pacing last counted (SET_ACK is queued during __init__).
    _queued_bytes = 0

    def __init__(
        self,
        *,
        mini_header: bool,
        client_caps: CapabilitySet,
        server_caps: CapabilitySet,
        image_compression: str = "auto_glz",
        jpeg_wan_compression: str = "auto",
        low_bandwidth: bool = False,
        codecs_warm: bool = True,
        pipe_limit: int = PIPE_LIMIT,
        video_codecs: Iterable[str] = ("mjpeg",),
    ) -> None:
        super().__init__(mini_header=mini_header, ack_window=ACK_WINDOW)
        if jpeg_wan_compression not in JPEG_WAN:
            raise ValueError(f"jpeg_wan_compression must be one of {JPEG_WAN}")
        self.client_caps = client_caps
        self.server_caps = server_caps
        self.init: m.DisplayInit | None = None
        self.preferred_compression: int | None = None
        self.image_compression = image_compression
        self.jpeg_wan_compression = jpeg_wan_compression
        self.low_bandwidth = low_bandwidth
        #: Whether the compiled codecs are loaded (see :attr:`CodecPolicy.warm`).
        self.codecs_warm = codecs_warm
        CodecPolicy(mode=image_compression)  # validates the mode now, not at the first image
        self.pipe = DisplayPipe(limit=pipe_limit)
        # Many small images (a busy UI over a long round trip) would stall on the reference
        # server's 40-message window; what matters is the bytes the client has not taken.
        self.byte_window = BYTE_WINDOW
        self.cache: ImageCache | None = None
        self.stats = DisplayStats()
        self._job: DrawJob | None = None
        self._size: tuple[int, int] | None = None
        #: No image was drawn on the primary since it was created.
        self._fresh_primary = False
        self._jpeg_primed = False
        #: Which areas this client keeps getting lossless images of (None: no surface).
        self._volatility: Volatility | None = None
        #: Streams this client was told about: id -> area.
        self._streams: dict[int, Box] = {}
        #: The stream codecs the server allows ("mjpeg", "vp8", "h264"; VP8 and H.264 only
        #: where PyAV has libvpx and libx264);
        #: which one a stream uses depends on the client (:meth:`_stream_codec`).
        self.video_codecs = frozenset(video_codecs)
        #: The client's PREFERRED_VIDEO_CODEC_TYPE (codec types, best first), if it sent one.
        self.preferred_video_codecs: tuple[int, ...] = ()
        #: The inter-frame (VP8, H.264) streams among them: id -> encoder state.
        self._video: dict[int, VideoStream] = {}
        self.video_quality = VIDEO_QUALITY
        #: Bits per second the main channel's network test measured (None: not yet).
        self.link_bandwidth: float | None = None
        self._rate: RateController | None = None
        self._last_probe = -1e9
        #: Whether the round trip that paces video comes from our own PINGs. An adapter that
        #: reads the path's round trip from elsewhere (the kernel's TCP) clears it and calls
        #: :meth:`on_round_trip` itself.
        self.probe_with_pings = True
        #: When next_job returned None only because video waits for the pacing budget.
        self.wait_until: float | None = None
        #: The client said it cannot play our streams: it gets images.
        self.streams_refused = False
        self._report_ids: dict[int, int] = {}
        self._next_report_id = 0
        self._reports: list[m.StreamReport] = []

    # -- what the client told us -------------------------------------------------------------
    @property
    def monitors_config(self) -> bool:
        """Whether MONITORS_CONFIG must follow each primary (spice-gtk waits for it then)."""
        return (
            DisplayCap.MONITORS_CONFIG in self.server_caps
            and DisplayCap.MONITORS_CONFIG in self.client_caps
        )

    @property
    def ready(self) -> bool:
        return self.init is not None

    @property
    def policy(self) -> CodecPolicy:
        """How this client's images are encoded now."""
        mode = self.image_compression
        preferred = self.preferred_compression
        if preferred is not None and preferred in PREFERRED:
            mode = PREFERRED[ImageCompression(preferred)]
        jpeg = self.jpeg_wan_compression == "always" or (
            self.jpeg_wan_compression == "auto" and self.low_bandwidth
        )
        return CodecPolicy(
            mode=mode,
            lz4=DisplayCap.LZ4_COMPRESSION in self.client_caps,
            jpeg=jpeg and mode != "off",
            warm=self.codecs_warm,
        )

    def _handle(self, msg: Any) -> Any:
        if isinstance(msg, m.DisplayInit):
            if self.init is not None:
                return None  # a repeated INIT changes nothing (the reference ignores it too)
            if msg.pixmap_cache_size < 0:
                raise RemoteProtocolError(
                    f"DISPLAY_INIT with a negative image cache size {msg.pixmap_cache_size}"
                )
            self.init = msg
            self.cache = ImageCache(msg.pixmap_cache_size)
            return DisplayReady(msg)
        if isinstance(msg, m.StreamReport):
            self._stream_report(msg)
            return None
        if isinstance(msg, m.PreferredCompression):
            self.preferred_compression = msg.image_compression
            return None
        if isinstance(msg, m.PreferredVideoCodecType):
            # For streams created from now on (as the reference server does).
            self.preferred_video_codecs = msg.codecs
            return None
        return None

    # -- what the display tells us (recorded in the pipe) ------------------------------------
    def new_primary(
        self, width: int, height: int, *, replace: bool, heads: Sequence[Box] = ()
    ) -> None:
        """The primary is (re)created at this size; ``heads``: the monitors it shows (default:
        one showing all of it). Clients without MONITORS_CONFIG show the whole primary."""
        self.pipe.new_primary(width, height, replace=replace, heads=heads)
        for stream_id in list(self._streams):
            # Ahead of the surface's destruction: streams live on the surface.
            self.pipe.stream_op(StreamDestroy(stream_id), first=True)

    def monitors(self, heads: Sequence[Box]) -> None:
        """The monitor layout on the current primary changed."""
        self.pipe.monitors(heads)

    def stream_create(self, stream_id: int, box: Box) -> None:
        self.pipe.stream_op(StreamCreate(stream_id, box))

    def stream_frame(self, stream_id: int, box: Box) -> None:
        self.pipe.stream_frame(stream_id, box)

    def stream_clip(self, stream_id: int, rects: Sequence[Box]) -> None:
        self.pipe.stream_op(StreamClip(stream_id, tuple(rects)))

    def stream_destroy(self, stream_id: int, box: Box) -> None:
        """The stream ended: destroy it, then the area once more as a lossless image."""
        self.pipe.stream_op(StreamDestroy(stream_id))
        self.pipe.damage(box)

    def damage(self, box: Box) -> None:
        self.pipe.damage(box)

    def fill(self, box: Box, color: int) -> None:
        self.pipe.fill(box, color)

    def copy_bits(self, src_x: int, src_y: int, box: Box) -> None:
        self.pipe.copy_bits(src_x, src_y, box)

    @property
    def has_work(self) -> bool:
        return self.ready and len(self.pipe) > 0

    # -- sending -----------------------------------------------------------------------------
    def next_job(self, now: float | None = None) -> DrawJob | None:
        """Frame what needs no pixels, up to the next area that does; return that as a job
        (None: nothing to do now: the pipe is empty, the ack window is full, or only video
        frames wait and the pacing budget says when: :attr:`wait_until`). With ``now`` (s,
        monotonic) video is paced to the link and probed; without it, nothing is paced."""
        if self._job is not None:
            raise LocalProtocolError("next_job while a job is out: commit it first")
        self.wait_until = None
        try:
            return self._next_job(now)
        finally:
            self._count_sent(now)

    def _next_job(self, now: float | None) -> DrawJob | None:
        if now is not None and self._reports:
            for report in self._reports:
                late = report.last_frame_delay < 0
                self.pacing(now).client_report(report.num_frames, report.num_drops, late, now)
            self._reports.clear()
        if now is not None and self._streams and self.probe_with_pings:
            self._probe(now)
        while self.ready and self.may_send:
            if now is not None and self.pipe.head_is_frame():
                due = self.pacing(now).frame_due(now)
                if due > now:
                    op = self.pipe.pop_past_frames()
                    if op is None:
                        self.wait_until = due
                        return None
                else:
                    op = self.pipe.pop()
            else:
                op = self.pipe.pop()
            if op is None:
                return None
            if isinstance(op, StreamFrame) and op.id in self._video:
                video = self._video[op.id]
                rate = self.pacing(now).rate if now is not None else self._start_rate
                video.plan(rate, now if now is not None else 0.0)
                policy = attrs.evolve(self.policy, video=True)
                self._job = DrawJob((ImageRequest(video.box, policy),), op.id, video)
                return self._job
            if isinstance(op, StreamFrame) and op.id in self._streams:
                box = self._streams[op.id]
                policy = self._frame_policy(box, now)
                self._job = DrawJob((ImageRequest(box, policy),), stream_id=op.id)
                return self._job
            if isinstance(op, (Damage, StreamFrame)):
                requests = self._requests(op.box, now)
                if isinstance(op, Damage) and now is not None and self._fast_link(now):
                    requests += self._more_damage(requests, now)
                if requests:
                    self._job = DrawJob(requests)
                    return self._job
            else:
                self._frame(op)
            self.pipe.done()
        return None

    def _frame_policy(self, box: Box, now: float | None) -> CodecPolicy:
        """How a frame of the MJPEG stream over ``box`` is encoded: the pacing's quality
        and scale (without ``now``, unpaced: the configured quality, full size)."""
        quality, size = self.video_quality, None
        if now is not None:
            pacing = self.pacing(now)
            quality = pacing.quality
            if pacing.scale_level:
                size = _scaled(box, pacing.scale)
        return attrs.evolve(self.policy, video=True, jpeg_quality=quality, video_size=size)

    def frame_request_now(self, stream_id: int, now: float) -> ImageRequest | None:
        """The image a frame of MJPEG stream ``stream_id`` would be asked for with (its
        area and policy) if it reached the pipe at ``now``, when it would go out at once:
        no job out, nothing queued ahead of it, the ack window open and the pacing budget
        spent no further than ``now``. None otherwise, or when the stream is not this
        client's MJPEG stream (a VP8 or H.264 stream encodes its frames itself). The
        display's worker uses it to encode the frame in the same step as it copies it in,
        and only then: a frame the client would not take at once may be superseded before
        it goes."""
        box = self._streams.get(stream_id)
        if (
            box is None
            or stream_id in self._video
            or self._job is not None
            or not self.ready
            or len(self.pipe) > 0
            or not self.may_send
            or self.pacing(now).frame_due(now) > now
        ):
            return None
        return ImageRequest(box, self._frame_policy(box, now))

    def _more_damage(
        self, requests: tuple[ImageRequest, ...], now: float
    ) -> tuple[ImageRequest, ...]:
        """The damage queued right behind a job's, up to ``BATCH_PIXELS`` and
        ``BATCH_IMAGES`` in all: one update's changed areas go as one job, encoded at once
        and written together, so the client draws them in one go instead of showing a mix
        of frames (and each job's hand-offs are paid once). Only on a fast link: on a slow
        one a key's echo may go between two jobs, not inside one being written, so jobs
        stay small there (80 ms / 10 Mbit/s, synthetic video in ``filter`` mode: batched,
        the echo took 227 ms at the median and 385 at p90)."""
        pixels = sum(r.box.area for r in requests)
        more: tuple[ImageRequest, ...] = ()
        while len(requests) + len(more) < BATCH_IMAGES and pixels < BATCH_PIXELS:
            op = self.pipe.pop_damage()
            if op is None:
                break
            extra = self._requests(op.box, now)
            more += extra
            pixels += sum(r.box.area for r in extra)
        return more

    def _requests(self, box: Box, now: float | None) -> tuple[ImageRequest, ...]:
        if self._size is None:
            return ()
        area = box.intersect(Box(0, 0, *self._size))
        if area.empty:
            return ()
        policy = self.policy
        if now is not None and self._volatility is not None:
            volatile, fast = self._volatile(self._volatility, area, now)
            if volatile:
                policy = attrs.evolve(policy, volatile=True, fast=fast)
        rows = max(1, MAX_IMAGE_BYTES // (area.w * 4))
        if self._fresh_primary:
            self._fresh_primary = False
        elif area.area > SPLIT_PIXELS and area.h >= 64:
            rows = min(rows, -(-area.h // 2))
        return tuple(ImageRequest(band, policy) for band in area.bands(rows))

    def frame_fills_ahead(self, now: float | None = None) -> int:
        """While a job is out (its images encoding), frame the fills that may overtake it
        (they touch none of its areas nor anything queued before them: the echo of a key
        beside a video): input is answered before bulk output. Returns how many."""
        if self._job is None or self._size is None or not self.may_send:
            return 0
        fills = self.pipe.take_fills_ahead([r.box for r in self._job.requests])
        screen = Box(0, 0, *self._size)
        for fill in fills:
            area = fill.box.intersect(screen)
            if not area.empty:
                self.send(m.DrawFill(PRIMARY_SURFACE_ID, _rect(area), fill.color))
        self._count_sent(now)
        return len(fills)

    def commit(
        self,
        job: DrawJob,
        images: Sequence[EncodedImage | VideoFrame | None],
        *,
        mm_time: int = 0,
        now: float | None = None,
    ) -> None:
        """Frame the DRAW_COPY messages of ``job`` with its encoded images, in order, or the
        STREAM_DATA of a stream frame (shown at ``mm_time`` on the session clock). An image
        given as None (its area no longer exists: the surface shrank meanwhile) is skipped."""
        if job is not self._job:
            raise LocalProtocolError("commit of a job that is not the one out")
        if len(images) != len(job.requests):
            raise LocalProtocolError("one image per request")
        self._job = None
        self.pipe.done()
        try:
            self._commit(job, images, mm_time, now)
        finally:
            self._count_sent(now)

    def _commit(
        self,
        job: DrawJob,
        images: Sequence[EncodedImage | VideoFrame | None],
        mm_time: int,
        now: float | None,
    ) -> None:
        if job.video is not None:
            (frame,) = images
            if not isinstance(frame, VideoFrame) or job.stream_id not in self._video:
                job.video.lost()
                return
            job.video.sent()
            self.stats.stream_frames += 1
            self.stats.stream_bytes += len(frame.payload)
            box, mm = job.video.box, frame.mm_time & 0xFFFFFFFF
            if (frame.width, frame.height) == (box.w, box.h) or not self._scales_streams:
                # spice-html5's <video> scales a smaller frame up by itself.
                self.send(m.StreamData(job.stream_id, mm, frame.payload))
            else:
                self.stats.scaled_frames += 1
                self.send(
                    m.StreamDataSized(
                        job.stream_id, mm, frame.width, frame.height, _rect(box), frame.payload
                    )
                )
            return
        if job.stream_id is not None:
            (image,) = images
            if image is not None and job.stream_id in self._streams:
                self.stats.stream_frames += 1
                self.stats.stream_bytes += len(image.payload)
                box = self._streams[job.stream_id]
                mm = mm_time & 0xFFFFFFFF
                if (image.width, image.height) == (box.w, box.h):
                    self.send(m.StreamData(job.stream_id, mm, image.payload))
                else:
                    self.stats.scaled_frames += 1
                    self.send(
                        m.StreamDataSized(
                            job.stream_id, mm, image.width, image.height, _rect(box),
                            image.payload,
                        )
                    )  # fmt: skip
                if now is not None:
                    policy = job.requests[0].policy
                    level = 0 if policy.video_size is None else self.pacing(now).scale_level
                    self.pacing(now).frame_sent(len(image.payload), policy.jpeg_quality, level)
            return
        for request, image in zip(job.requests, images, strict=True):
            if image is None:
                continue
            if isinstance(image, VideoFrame):
                raise LocalProtocolError("a video frame for a drawing")
            box = request.box
            if (image.width, image.height) != (box.w, box.h):
                raise LocalProtocolError(f"image {image.width}x{image.height} for {box}")
            self.send(m.DrawCopy(PRIMARY_SURFACE_ID, _rect(box), self._image(image)))
            if now is not None and self._volatility is not None:
                self._volatility.sent(box, now)

    def _volatile(self, volatility: Volatility, area: Box, now: float) -> tuple[bool, bool]:
        """Whether ``area``'s images take a ``volatile`` policy (it is redrawn at video
        rates, and the link has room), and whether they go as LZ4 (``fast``: the compact
        codec would fall behind, see ``LZ4_PIXEL_RATE``)."""
        quick = volatility.redrawn_quickly(area, now)
        if not (quick or volatility.volatile(area, now)) or not self._fast_link(now):
            # On a slower link bytes count more than the encoder's time: the codec is
            # chosen by content (QUIC for photographic areas), as for any image.
            return False, False
        # A large area asked for again at once needs no rate to go by (a video's second
        # frame; the rate over the surface takes a second to build up).
        big = quick and area.area >= LZ4_AREA
        return True, big or volatility.pixel_rate(now) >= LZ4_PIXEL_RATE

    def _fast_link(self, now: float) -> bool:
        """Whether the link is measured fast enough for LZ4 in volatile areas and for
        joined jobs (:meth:`_more_damage`): by the main channel's network test, or the
        path's capacity where the kernel's delivery rate gave it (on a long path the test's
        250 KiB in TCP slow start reads far below the link)."""
        return self._measured_link(now) >= FAST_LINK

    def _measured_link(self, now: float) -> float:
        """The link's rate as measured (bits/s; 0: not yet): the larger of the main
        channel's network test and the path's capacity from delivery-rate samples."""
        measured = self.link_bandwidth or 0.0
        if self._rate is not None:
            measured = max(measured, self._rate.capacity(now) or 0.0)
        return measured

    def lossless_too_big(self, box: Box, now: float) -> bool:
        """Whether this client's link, as measured, cannot carry ``box`` as lossless images
        at video rates (``LOSSLESS_BITS_PER_PIXEL`` a pixel, 30 frames a second): then even
        flat content in ``box`` goes better as a stream. Unmeasured: no."""
        measured = self._measured_link(now)
        return 0 < measured < LOSSLESS_BITS_PER_PIXEL * box.area * video_stream.FPS

    def pacing_ceiling(self, min_rtt: float, now: float) -> float | None:
        """The fastest the kernel should pace this connection out (bits/s; None: no
        ceiling). Our writes are held to about a bandwidth-delay product in flight
        (:meth:`in_flight_cap`), so TCP sees an application-limited flow, and BBR then never
        leaves its start-up phase: it paces each write out at 2.9 times the rate it
        measured, into the bottleneck's queue (an emulated 50 Mbit/s path with a 128 KB
        queue dropped 1,000-2,300 packets in 5 s of unpaced lossless frames). The ceiling is
        a little over the capacity measured, and never below start-up's pace over the
        network test: a capacity measured while little was sent reads far below the path,
        and a ceiling from it alone would hold the connection there. No test, or a path
        shorter than ``PACING_MIN_RTT``: no ceiling."""
        if not self.link_bandwidth or min_rtt < PACING_MIN_RTT:
            return None
        floor = PACING_TEST_GAIN * self.link_bandwidth
        capacity = self._rate.capacity(now) if self._rate is not None else None
        return floor if capacity is None else max(floor, PACING_HEADROOM * capacity)

    def in_flight_cap(self, min_rtt: float, now: float) -> float | None:
        """How many bytes may be unacknowledged on the path before the next job's are
        written (None: no measure of the path yet). A little over one bandwidth-delay
        product keeps the link busy while the bottleneck's queue stays short, so a key's
        echo written meanwhile waits behind little. TCP alone keeps more in flight (BBR up
        to twice the product, CUBIC the whole queue)."""
        capacity = self._rate.capacity(now) if self._rate is not None else None
        if capacity is None:
            return None
        return max(MIN_IN_FLIGHT, IN_FLIGHT_GAIN * capacity / 8 * min_rtt)

    # -- pacing ------------------------------------------------------------------------------
    def pacing(self, now: float) -> RateController:
        """The rate controller of this connection (made at first use, from the measured
        bandwidth)."""
        if self._rate is None:
            self._rate = RateController(self.link_bandwidth, now, scalable=self._scales_streams)
        return self._rate

    def send_body(self, msg_type: int, *parts: bytes | memoryview) -> None:
        super().send_body(msg_type, *parts)
        self._queued_bytes += 6 + sum(len(p) for p in parts)

    def _count_sent(self, now: float | None) -> None:
        if now is not None and self._queued_bytes:
            self.pacing(now).sent(self._queued_bytes, now)
        self._queued_bytes = 0

    def _probe(self, now: float) -> None:
        """PING through our own output while video flows: its round trip shows queueing."""
        if self.pings_outstanding == 0 and now - self._last_probe >= PROBE_INTERVAL:
            self._last_probe = now
            self.ping(int(now * 1e9))

    def drained(self, nbytes: int, seconds: float, now: float) -> None:
        """The adapter wrote ``nbytes`` in ``seconds`` (see :meth:`RateController.drained`)."""
        self.pacing(now).drained(nbytes, seconds, now)

    def on_round_trip(self, rtt: float, now: float) -> None:
        self.pacing(now).round_trip(rtt, now)

    def on_delivery_rate(self, bits_per_second: float, now: float) -> None:
        """A delivery-rate sample of the path (the kernel's; see ``RateController.capacity``)."""
        self.pacing(now).delivery_sample(bits_per_second, now)

    def abandon(self, job: DrawJob) -> None:
        """The job could not be built: put its area back as damage."""
        if job is not self._job:
            raise LocalProtocolError("abandon of a job that is not the one out")
        self._job = None
        self.pipe.done()
        if job.video is not None:
            job.video.lost()
        for request in job.requests:
            self.pipe.damage(request.box)

    def _image(self, image: EncodedImage) -> m.Image:
        """The image as this client gets it: from its cache when it holds the content, else
        the encoding itself (kept by the client when lossless and worth a slot)."""
        stats = self.stats
        assert self.cache is not None
        placement = self.cache.place(
            image.digest, image.width * image.height, cacheable=not image.lossy
        )
        if isinstance(placement, CacheHit):
            stats.cache_hits += 1
            return m.FromCacheImage(placement.id, image.width, image.height)
        flags = 0
        if isinstance(placement, CacheAdd):
            flags = ImageFlags.CACHE_ME
            for start in range(0, len(placement.evicted), _INVAL_CHUNK):
                self.send(m.InvalList(placement.evicted[start : start + _INVAL_CHUNK]))
        if image.type == ImageType.JPEG:
            self._prime_jpeg()
        stats.images += 1
        stats.image_bytes += len(image.payload)
        name = image.type.name
        stats.by_type[name] = stats.by_type.get(name, 0) + 1
        if image.type == ImageType.BITMAP:
            return m.BitmapImage(
                id=placement.id,
                width=image.width,
                height=image.height,
                data=image.payload,
                stride=image.width * 4,
                image_flags=flags,
            )
        return m.CompressedImage(
            image.type, placement.id, image.width, image.height, image.payload, image_flags=flags
        )

    def _stream_report(self, report: m.StreamReport) -> None:
        if self._report_ids.get(report.stream_id) != report.unique_id:
            return  # about a stream that is gone, or not ours: nothing to do
        if report.num_frames == 0 and report.num_drops == 0xFFFFFFFF:
            # The client cannot play it: images from now on.
            self.streams_refused = True
            if report.stream_id in self._streams:
                box = self._streams[report.stream_id]
                self.stream_destroy(report.stream_id, box)
            return
        self._reports.append(report)

    @property
    def _scales_streams(self) -> bool:
        """Whether the client draws a frame smaller than its stream scaled up to the stream's
        area: spice-gtk does (its canvas scales any image to the destination); spice-html5
        draws images at their own size, so it only gets frames of the full size."""
        return (
            DisplayCap.SIZED_STREAM in self.client_caps and DisplayCap.COMPOSITE in self.client_caps
        )

    def _stream_codec(self, box: Box) -> int | None:
        """The codec of this client's streams (None: it gets images), among those both sides
        allow. A client's PREFERRED_VIDEO_CODEC_TYPE (spicy's menu, or the API) comes first.
        Else VP8 goes to a client that plays it and cannot scale MJPEG frames (spice-html5,
        which plays VP8 in a ``<video>`` of the stream's size that scales smaller frames up,
        but draws MJPEG frames at their own size, so on a slow link they could only get
        blurrier, not smaller). spice-gtk scales MJPEG and keeps it on a fast link; on a
        link paced below ``H264_BELOW_BITS_PER_PIXEL`` for the area (:func:`_link_limited`)
        it gets H.264 when it plays it. Without MJPEG, H.264 before VP8 (a better picture for
        the bytes, at less CPU)."""
        mjpeg = "mjpeg" in self.video_codecs
        plays_vp8 = (
            "vp8" in self.video_codecs
            and DisplayCap.CODEC_VP8 in self.client_caps
            and vp8.available()
        )
        plays_h264 = (
            "h264" in self.video_codecs
            and DisplayCap.CODEC_H264 in self.client_caps
            and h264.available()
        )
        playable = {_MJPEG: mjpeg, _VP8: plays_vp8, _H264: plays_h264}
        for wanted in self.preferred_video_codecs:  # the client's choice first, where we can
            if playable.get(wanted):
                return wanted
        if mjpeg and self._scales_streams:
            if plays_h264 and _link_limited(box, self._start_rate):
                return _H264
            return _MJPEG
        if plays_h264:
            return _H264
        if plays_vp8:
            return _VP8
        return _MJPEG if mjpeg else None

    @property
    def _start_rate(self) -> float:
        return self._rate.rate if self._rate is not None else self.link_bandwidth or DEFAULT_RATE

    @property
    def _draws_clips(self) -> bool:
        """Whether the client clips stream frames (spice-gtk does; spice-html5, which lacks
        the COMPOSITE cap spice-gtk always sends, ignores STREAM_CLIP when it draws)."""
        return DisplayCap.COMPOSITE in self.client_caps

    def _create_stream(self, op: StreamCreate) -> None:
        if self._size is None or op.id in self._streams or self.streams_refused:
            return
        box = op.box.intersect(Box(0, 0, *self._size))
        codec = self._stream_codec(box)
        if box.empty or codec is None:
            return
        self._streams[op.id] = box
        self._jpeg_primed = True  # html5's stream table exists from now on
        if codec == _VP8:
            self._video[op.id] = VideoStream(box, video_stream.VP8)
        elif codec == _H264:
            self._video[op.id] = VideoStream(box, video_stream.H264)
        self.send(
            m.StreamCreate(
                PRIMARY_SURFACE_ID, op.id, _TOP_DOWN, codec, 0, box.w, box.h, box.w, box.h,
                _rect(box),
            )
        )  # fmt: skip
        if (
            DisplayCap.STREAM_REPORT in self.client_caps
            and DisplayCap.STREAM_REPORT in self.server_caps
        ):
            self._next_report_id += 1
            self._report_ids[op.id] = self._next_report_id
            self.send(m.StreamActivateReport(op.id, self._next_report_id, REPORT_WINDOW, REPORT_MS))

    @property
    def streams(self) -> dict[int, Box]:
        """The streams this client has been told about (id -> area)."""
        return dict(self._streams)

    def _prime_jpeg(self) -> None:
        """spice-html5 draws a JPEG image in the image's onload handler, which then reads its
        stream table; that table exists only once a STREAM_CREATE has arrived, so without one
        every JPEG image throws in the page. An empty stream created and destroyed at once
        makes the table. Only for clients without the COMPOSITE cap (spice-gtk always has it
        and needs nothing)."""
        if self._jpeg_primed or DisplayCap.COMPOSITE in self.client_caps:
            return
        self._jpeg_primed = True
        one = m.Rect(0, 0, 1, 1)
        sid, stream = PRIMARY_SURFACE_ID, _PRIMING_STREAM_ID
        self.send(m.StreamCreate(sid, stream, 1, _MJPEG, 0, 1, 1, 1, 1, one))
        self.send(m.StreamDestroy(stream))

    def _end_stream(self, stream_id: int) -> Box:
        """STREAM_DESTROY for a stream this client has, and forget it; returns its area."""
        box = self._streams.pop(stream_id)
        self._video.pop(stream_id, None)
        self._report_ids.pop(stream_id, None)
        self.send(m.StreamDestroy(stream_id))
        return box

    def _frame(self, op: PipeOp) -> None:
        sid = PRIMARY_SURFACE_ID
        if isinstance(op, StreamCreate):
            self._create_stream(op)
        elif isinstance(op, StreamClip):
            if op.id in self._streams:
                if self._draws_clips:
                    self.send(m.StreamClip(op.id, tuple(_rect(b) for b in op.rects)))
                else:
                    # spice-html5 keeps a stream's clip but draws every frame whole: this
                    # client gets the area as images while something covers it.
                    self.pipe.damage(self._end_stream(op.id))
        elif isinstance(op, StreamDestroy):
            if op.id in self._streams:
                self._end_stream(op.id)
        elif isinstance(op, CreatePrimary):
            self._size = (op.width, op.height)
            self._volatility = Volatility(op.width, op.height)
            self._fresh_primary = True
            self.send(m.SurfaceCreate(sid, op.width, op.height))
        elif isinstance(op, DestroyPrimary):
            self._size = None
            self._volatility = None
            self.send(m.SurfaceDestroy(sid))
        elif isinstance(op, Mark):
            self.send(m.Mark())
        elif isinstance(op, MonitorsConfig):
            if self.monitors_config and op.heads:
                heads = tuple(
                    m.MonitorHead(i, sid, box.w, box.h, box.x, box.y)
                    for i, box in enumerate(op.heads)
                )
                self.send(m.MonitorsConfig(heads, len(heads)))
        elif self._size is not None:
            area = op.box.intersect(Box(0, 0, *self._size))
            if area.empty:
                return
            if isinstance(op, Fill):
                self.send(m.DrawFill(sid, _rect(area), op.color))
            elif isinstance(op, CopyBits):
                if area == op.box:
                    self.send(m.CopyBits(sid, _rect(op.box), op.src_x, op.src_y))
                else:  # cannot happen while the worker clips moves; stay exact if it does
                    self.pipe.damage(area)


def _scaled(box: Box, scale: float) -> tuple[int, int]:
    """The size a frame of ``box`` travels at, at ``scale`` (even, and at least 16 x 16)."""
    w = max(16, round(box.w * scale / 2) * 2)
    h = max(16, round(box.h * scale / 2) * 2)
    return min(w, box.w), min(h, box.h)


def _rect(box: Box) -> m.Rect:
    return m.Rect(top=box.y, left=box.x, bottom=box.bottom, right=box.right)
