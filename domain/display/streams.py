"""Video detection: which areas of a display change at video rates, and so go to clients as
MJPEG streams instead of one lossless image per change.

The display worker reports every damaged box with the time (:meth:`StreamDetector.route`).
A box that falls inside a running stream is a frame of that stream (the part outside goes
on as ordinary damage). Other boxes are matched to candidates by overlap; a candidate that
was updated ``START_FRAMES`` times within ``START_WINDOW`` seconds, and is at least
``MIN_AREA`` pixels, becomes a stream: at 30 frames a second that is about 0.15 s after the
motion starts (the C server waits for 20 frames, about 1.3 s at its rates). In ``filter`` mode
(the C server's default) only photographic content becomes a stream, which the worker checks
with :func:`domain.codecs.classify.is_natural_motion` before it calls :meth:`start`; flat,
synthetic animation stays lossless, unless a viewer's link cannot carry it so (see
:func:`domain.display.routing._consider`). A stream that gets no frame for ``IDLE_END``
seconds ends; the clients then get the area once more as a lossless image, so they end exact.

Drawing that crosses a stream's edge is something on top of the video (a window, a menu):
its part inside the stream is clipped out of the stream (STREAM_CLIP) and sent lossless.
"""

from __future__ import annotations

from collections import deque
from typing import Final

import attrs

from spice.domain.geometry import Box

MODES: Final = ("off", "all", "filter")
MIN_AREA = 96 * 96
START_FRAMES = 5
START_WINDOW = 0.4
IDLE_END = 0.5
#: Stream ids the protocol allows (SPICE_MAX_NUM_STREAMS is 64; the C server uses 50).
MAX_STREAMS = 50
MAX_CANDIDATES = 16
#: A stream clipped into more rectangles than this ends (it is mostly covered anyway).
MAX_CLIP_RECTS = 16
#: After a candidate was refused (filter mode, flat content), it is not looked at again for
#: this long.
REFUSED_FOR = 0.5


@attrs.define
class Stream:
    id: int
    box: Box
    last_frame: float
    #: Parts of ``box`` covered by other drawing; the stream does not paint them.
    covered: list[Box] = attrs.Factory(list)
    frames: int = 0

    @property
    def clip(self) -> list[Box]:
        """The visible parts of the stream, as disjoint rectangles (empty: all of it)."""
        if not self.covered:
            return []
        return subtract(self.box, self.covered)


@attrs.define
class _Candidate:
    box: Box
    times: deque[float]
    refused_until: float = 0.0


@attrs.frozen
class Routed:
    """How one damaged box goes on: frames of streams, covers of streams, ordinary damage."""

    frames: tuple[int, ...] = ()
    covered: tuple[int, ...] = ()
    damage: tuple[Box, ...] = ()
    #: A candidate that just reached video rate: the worker decides whether it streams.
    candidate: Box | None = None


def subtract(box: Box, holes: list[Box]) -> list[Box]:
    """``box`` minus every box in ``holes``, as disjoint rectangles."""
    parts = [box]
    for hole in holes:
        out: list[Box] = []
        for part in parts:
            out.extend(_minus(part, hole))
        parts = out
    return parts


def _minus(a: Box, b: Box) -> list[Box]:
    cut = a.intersect(b)
    if cut.empty:
        return [a]
    out = []
    if cut.y > a.y:
        out.append(Box(a.x, a.y, a.w, cut.y - a.y))
    if cut.bottom < a.bottom:
        out.append(Box(a.x, cut.bottom, a.w, a.bottom - cut.bottom))
    if cut.x > a.x:
        out.append(Box(a.x, cut.y, cut.x - a.x, cut.h))
    if cut.right < a.right:
        out.append(Box(cut.right, cut.y, a.right - cut.right, cut.h))
    return out


class StreamDetector:
    def __init__(self, mode: str = "filter") -> None:
        if mode not in MODES:
            raise ValueError(f"streaming video must be one of {', '.join(MODES)}: {mode!r}")
        self.mode = mode
        self.streams: dict[int, Stream] = {}
        self._candidates: list[_Candidate] = []

    def route(self, box: Box, now: float) -> Routed:
        """Where the damage of ``box`` goes."""
        if self.mode == "off" or box.empty:
            return Routed(damage=(box,))
        for stream in self.streams.values():
            inside = box.intersect(stream.box)
            if inside.empty:
                continue
            if inside == box:
                stream.last_frame = now
                stream.frames += 1
                return Routed(frames=(stream.id,))
            # Crossing the stream's edge: something on top of the video.
            stream.covered.append(inside)
            return Routed(covered=(stream.id,), damage=(box,))
        return Routed(damage=(box,), candidate=self._observe(box, now))

    def _observe(self, box: Box, now: float) -> Box | None:
        if box.area < MIN_AREA:
            return None
        match = None
        for cand in self._candidates:
            both = cand.box.intersect(box)
            if not both.empty and both.area * 2 >= min(cand.box.area, box.area):
                match = cand
                break
        if match is None:
            if len(self._candidates) >= MAX_CANDIDATES:
                self._candidates.pop(0)
            match = _Candidate(box, deque(maxlen=START_FRAMES))
            self._candidates.append(match)
        else:
            match.box = match.box.union(box)
        if not match.times or now - match.times[-1] > 0.005:
            match.times.append(now)  # one count per push, however many boxes it made
        if match.refused_until > now:
            return None
        recent = [t for t in match.times if now - t <= START_WINDOW]
        if len(recent) >= START_FRAMES:
            return match.box
        return None

    def refuse(self, box: Box, now: float) -> None:
        """The worker decided ``box`` does not stream (filter mode, flat content)."""
        for cand in self._candidates:
            if cand.box == box:
                cand.refused_until = now + REFUSED_FOR
                cand.times.clear()

    def start(self, box: Box, now: float) -> Stream | None:
        """Make ``box`` a stream (None: every id is taken)."""
        free = next((i for i in range(MAX_STREAMS) if i not in self.streams), None)
        if free is None:
            return None
        self._candidates = [c for c in self._candidates if not c.box.overlaps(box)]
        stream = Stream(free, box, now)
        self.streams[free] = stream
        return stream

    def expired(self, now: float) -> list[Stream]:
        """Streams that got no frame for ``IDLE_END`` s or are clipped to pieces: they end."""
        done = [
            s
            for s in self.streams.values()
            if now - s.last_frame > IDLE_END
            or len(s.covered) > MAX_CLIP_RECTS
            or (s.covered and not s.clip)  # covered entirely
        ]
        for stream in done:
            del self.streams[stream.id]
        return done

    def end_all(self) -> list[Stream]:
        done = list(self.streams.values())
        self.streams.clear()
        self._candidates.clear()
        return done
