"""Pacing a display channel to its link, the way a video call does.

Everything a client is sent crosses the same path; what makes a remote screen feel slow is
bulk (video frames) queued ahead of a small update (the echo of a key). So bulk is paced below
what the link carries, and the queue on the path stays short:

- A PING on the display channel every ``PROBE_INTERVAL`` while video flows measures the round
  trip *through* our own output (its PONG waits behind whatever we queued); the smallest
  recent round trip is the path's own, and anything above it is queueing delay.
- The sending rate for video starts from the main channel's network test and then follows the
  delay: queueing delay above ``HIGH_DELAY`` cuts it (at most once per round trip), delay
  below ``LOW_DELAY`` while the rate is in use raises it a little at a time.
- A video frame is sent only when the pacing budget allows (a token bucket at the rate); the
  pipe meanwhile keeps only the newest frame, so the frame rate falls before latency grows.
  Everything else (ordinary drawing, the echo of a key) is sent at once, ahead of waiting
  frames, and is counted against the budget afterwards.
- Where the kernel reports delivery-rate samples (a frame leaves as a burst, so a sample reads
  the bottleneck's rate), their recent maximum is the path's capacity: while the delay stays low
  and the frames are held back by the budget (quality below the top, or a smaller size), the
  rate climbs towards ``CAPACITY_SHARE`` of it, quickly while far below. Without it the rate
  only climbs when the stream uses most of it, and the main channel's network test (250 KiB
  in TCP slow start) can read a 50 Mbit/s, 80 ms path as 6 Mbit/s.
- The JPEG quality follows the budget per frame at the wanted frame rate. A frame's budget is
  also capped at ``FRAME_TIME`` seconds of the rate: a big frame is a burst that a key's echo
  waits behind at the bottleneck, so on a slow link frames stay small. For a client that
  scales frames up (spice-gtk), a frame over budget at a middling quality travels smaller
  (``SCALES``) rather than blurrier, which keeps the frame rate up.

Time is passed in (seconds, any monotonic clock).
"""

from __future__ import annotations

from collections import deque

#: Seconds between display-channel PINGs while video flows.
PROBE_INTERVAL = 0.25
#: Queueing delay (s) that cuts the rate, and below which the rate may grow.
HIGH_DELAY = 0.040
LOW_DELAY = 0.015
#: Bits per second: the rate's bounds, and where it starts without a measurement.
MIN_RATE = 500_000.0
MAX_RATE = 2_000_000_000.0
DEFAULT_RATE = 20_000_000.0
#: Share of the network test's bandwidth to start at.
START_SHARE = 0.7
DECREASE = 0.8
INCREASE = 1.06
#: How long the smallest round trip is remembered (the path's own delay).
BASE_WINDOW = 10.0
#: The most a frame waits for the budget, in seconds of the rate.
MAX_DEBT = 0.25
#: Tokens may build up to this many seconds of rate (a short burst after idle).
BURST = 0.05
#: A write counts as a drain-rate sample when it took at least this long, for this much.
DRAIN_MIN_SECONDS = 0.03
DRAIN_MIN_BYTES = 64 * 1024
#: Frames per second the quality aims at.
TARGET_FPS = 30.0
MIN_QUALITY, MAX_QUALITY, START_QUALITY = 20, 80, 70
#: The longest a frame may hold the link, in seconds of the rate (10 Mbit/s: 12.5 KB).
FRAME_TIME = 0.010
#: The share of the path's measured capacity the rate may climb to, how long a capacity
#: sample counts (s), and the steps: ``FAST_INCREASE`` while under ``FAST_SHARE`` of it.
CAPACITY_SHARE = 0.9
CAPACITY_WINDOW = 10.0
FAST_SHARE = 0.6
FAST_INCREASE = 1.25
#: Sizes a frame may travel at, as a share of its area's width and height.
SCALES = (1.0, 0.75, 0.5, 0.375)
#: Over budget at or below this quality, a scalable stream goes one size down (and its
#: quality up by ``SCALE_QUALITY_STEP``); under budget at ``UNSCALE_QUALITY`` or above, one up.
SCALE_QUALITY, UNSCALE_QUALITY, SCALE_QUALITY_STEP = 45, 70, 15


class RateController:
    def __init__(
        self, bandwidth: float | None = None, now: float = 0.0, *, scalable: bool = False
    ) -> None:
        #: The client draws frames scaled (STREAM_DATA_SIZED): the size may adapt too.
        self.scalable = scalable
        self.scale_level = 0
        self.rate = DEFAULT_RATE
        if bandwidth:
            self.rate = min(MAX_RATE, max(MIN_RATE, bandwidth * START_SHARE))
        self._tokens = 0.0
        self._last = now
        self._rtts: deque[tuple[float, float]] = deque()
        self._last_cut = -1e9
        self._last_rise = now
        self.quality = START_QUALITY
        self.rtt: float | None = None
        self.queue_delay = 0.0
        self._sent_recently: deque[tuple[float, int]] = deque()
        self._deliveries: deque[tuple[float, float]] = deque()

    # -- the budget --------------------------------------------------------------------------
    def _refill(self, now: float) -> None:
        self._tokens = min(self._tokens + (now - self._last) * self.rate / 8, self._burst)
        self._last = now

    @property
    def _burst(self) -> float:
        return max(self.rate / 8 * BURST, 16_384.0)

    def sent(self, nbytes: int, now: float) -> None:
        """Anything was sent (video or not): it uses the link. The debt is capped at
        ``MAX_DEBT`` seconds of the rate: a big lossless image is already paced by the
        socket it waits on, and must not hold the video back for seconds after."""
        self._refill(now)
        self._tokens = max(self._tokens - nbytes, -self.rate / 8 * MAX_DEBT)
        self._sent_recently.append((now, nbytes))
        while self._sent_recently and now - self._sent_recently[0][0] > 1.0:
            self._sent_recently.popleft()

    def frame_due(self, now: float) -> float:
        """When the next video frame may go (``<= now``: at once)."""
        self._refill(now)
        if self._tokens >= 0:
            return now
        return now + -self._tokens * 8 / self.rate

    def used_rate(self, now: float) -> float:
        """Bits per second sent over the last second."""
        return sum(n for t, n in self._sent_recently if now - t <= 1.0) * 8

    # -- what the path says ------------------------------------------------------------------
    def round_trip(self, rtt: float, now: float) -> None:
        """A PONG on the display channel came back after ``rtt`` seconds."""
        self.rtt = rtt
        self._rtts.append((now, rtt))
        while self._rtts and now - self._rtts[0][0] > BASE_WINDOW:
            self._rtts.popleft()
        base = min(r for _, r in self._rtts)
        self.queue_delay = rtt - base
        if self.queue_delay > HIGH_DELAY:
            if now - self._last_cut > max(rtt, 0.05):
                self.rate = max(MIN_RATE, self.rate * DECREASE)
                self._last_cut = now
        elif self.queue_delay < LOW_DELAY and now - self._last_rise >= PROBE_INTERVAL:
            capacity = self.capacity(now)
            if capacity is not None and self.budget_limited:
                ceiling = capacity * CAPACITY_SHARE
                step = FAST_INCREASE if self.rate < capacity * FAST_SHARE else INCREASE
                if self.rate < ceiling:
                    self.rate = min(ceiling, MAX_RATE, self.rate * step)
            elif self.used_rate(now) >= 0.6 * self.rate:
                self.rate = min(MAX_RATE, self.rate * INCREASE)
            self._last_rise = now

    def delivery_sample(self, bits_per_second: float, now: float) -> None:
        """A delivery-rate sample of the path (bits/s)."""
        self._deliveries.append((now, bits_per_second))
        while self._deliveries and now - self._deliveries[0][0] > CAPACITY_WINDOW:
            self._deliveries.popleft()

    def capacity(self, now: float) -> float | None:
        """The largest delivery rate sampled over the last ``CAPACITY_WINDOW`` s, if any."""
        recent = [r for t, r in self._deliveries if now - t <= CAPACITY_WINDOW]
        return max(recent) if recent else None

    @property
    def budget_limited(self) -> bool:
        """Frames are held back by the budget: below the top quality, or sent smaller."""
        return self.quality < MAX_QUALITY or self.scale_level > 0

    def drained(self, nbytes: int, seconds: float, now: float) -> None:
        """A write of ``nbytes`` took ``seconds`` to leave (the kernel keeps only a little
        unsent, so a blocked write drains at what the path takes). A write that blocked for
        a while and drained slower than the rate caps the rate there."""
        if seconds < DRAIN_MIN_SECONDS or nbytes < DRAIN_MIN_BYTES:
            return
        drain = nbytes * 8 / seconds
        if drain < self.rate:
            self.rate = max(MIN_RATE, drain * 0.9)
            self._last_cut = now

    def client_report(self, frames: int, drops: int, late: bool, now: float) -> None:
        """The client's STREAM_REPORT: frames it dropped mean the stream asks more than the
        path (or the client) can take. A late frame alone cuts nothing: spice-gtk drops late
        frames (they count as drops), spice-html5 still shows them, and it reports a frame
        late when its own decoding took longer than the playout margin, which a lower rate
        does not cure."""
        troubled = drops and drops * 10 >= frames + drops
        if troubled and now - self._last_cut > 0.25:
            self.rate = max(MIN_RATE, self.rate * DECREASE)
            self._last_cut = now

    # -- video quality -----------------------------------------------------------------------
    @property
    def scale(self) -> float:
        """The share of its area's width and height a frame travels at."""
        return SCALES[self.scale_level]

    def frame_budget(self) -> float:
        """Bytes a frame may take: its share of the rate at ``TARGET_FPS``, and at most
        ``FRAME_TIME`` of the link."""
        return self.rate / 8 * min(1 / TARGET_FPS, FRAME_TIME)

    def frame_sent(self, nbytes: int, quality: int, scale_level: int = 0) -> None:
        """Steer the JPEG quality (and a scalable stream's size) so that a frame fits
        :meth:`frame_budget`."""
        budget = self.frame_budget()
        if quality != self.quality or scale_level != self.scale_level:
            return  # a frame encoded before the last change: says nothing new
        if nbytes > budget * 1.15:
            if (
                self.scalable
                and self.quality <= SCALE_QUALITY
                and self.scale_level < len(SCALES) - 1
            ):
                self.scale_level += 1
                self.quality = min(MAX_QUALITY, self.quality + SCALE_QUALITY_STEP)
                return
            step = 10 if nbytes > budget * 2 else 4
            self.quality = max(MIN_QUALITY, self.quality - step)
        elif nbytes < budget * 0.6:
            if self.scale_level > 0 and self.quality >= UNSCALE_QUALITY:
                self.scale_level -= 1
                self.quality = max(MIN_QUALITY, self.quality - SCALE_QUALITY_STEP)
                return
            self.quality = min(MAX_QUALITY, self.quality + 2)
