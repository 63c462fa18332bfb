"""Where a change on the surface goes, for every client of the display: a frame of a video
stream, a cover over a stream (its clip), ordinary damage, or the start or end of a stream.
The display worker applies the records this returns to each client's display machine; tests
do the same without a worker."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from spice.domain.channels.display import DisplayChannel
from spice.domain.codecs.classify import is_natural_motion
from spice.domain.display.streams import StreamDetector
from spice.domain.display.surface import Surface
from spice.domain.geometry import Box

Record = Callable[[DisplayChannel], None]


def route(
    detector: StreamDetector,
    surface: Surface,
    box: Box,
    now: float,
    *,
    too_big_lossless: Callable[[Box], bool] | None = None,
) -> list[Record]:
    """The records for one changed box of ``surface`` at time ``now`` (seconds).
    ``too_big_lossless(area)``: whether a viewer's link cannot carry the area lossless at
    video rates; such an area streams in ``filter`` mode too (see :func:`_consider`)."""
    routed = detector.route(box, now)
    records: list[Record] = []
    for stream_id in routed.frames:
        stream = detector.streams[stream_id]
        records.append(partial(DisplayChannel.stream_frame, stream_id=stream.id, box=stream.box))
    for stream_id in routed.covered:
        stream = detector.streams[stream_id]
        clip = stream.clip
        if clip:
            records.append(partial(DisplayChannel.stream_clip, stream_id=stream.id, rects=clip))
    for damaged in routed.damage:
        records.append(partial(DisplayChannel.damage, box=damaged))
    if routed.candidate is not None:
        records += _consider(detector, surface, routed.candidate, now, too_big_lossless)
    return records


def _consider(
    detector: StreamDetector,
    surface: Surface,
    box: Box,
    now: float,
    too_big_lossless: Callable[[Box], bool] | None,
) -> list[Record]:
    """A candidate at video rate: in ``filter`` mode it streams when its content is natural
    motion, or when a viewer's link cannot carry it lossless (flat animation over a slow link
    would otherwise fill the link with lossless images at a few frames a second, with a key's
    echo queued behind them; the stream's end sends it lossless once more)."""
    area = surface.clip(box)
    if area.empty:
        return []
    if detector.mode == "filter":
        pixels = surface.view(area)
        natural = is_natural_motion(pixels)  # samples a few rows: cheap
        if not natural and not (too_big_lossless is not None and too_big_lossless(area)):
            detector.refuse(box, now)
            return []
    stream = detector.start(area, now)
    if stream is None:
        return []
    return [partial(DisplayChannel.stream_create, stream_id=stream.id, box=stream.box)]


def end_idle(detector: StreamDetector, now: float) -> list[Record]:
    """Records that end the streams which stopped moving (destroy, then the area lossless)."""
    return [
        partial(DisplayChannel.stream_destroy, stream_id=s.id, box=s.box)
        for s in detector.expired(now)
    ]


def joined(detector: StreamDetector) -> list[Record]:
    """Records that tell a client who just attached about the running streams."""
    records: list[Record] = []
    for stream in detector.streams.values():
        records.append(partial(DisplayChannel.stream_create, stream_id=stream.id, box=stream.box))
        if stream.covered and stream.clip:
            records.append(
                partial(DisplayChannel.stream_clip, stream_id=stream.id, rects=stream.clip)
            )
    return records
