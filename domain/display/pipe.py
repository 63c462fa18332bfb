"""What one client's display channel still has to be told, and how to say it.

The display worker applies every drawing operation to the surface at once and records, per
client, an operation here. Damage is recorded as an area, not as pixels: its pixels are read
from the surface when the message is built, so a client that lags simply receives the newest
content. That makes the pipe boundable: past ``limit`` operations the drawing ones collapse into
one damaged area (the C server's pipe merges by region the same way).

Ordering rule that keeps this exact: COPY_BITS moves whatever the client has, so it is only sent
while no damage is pending or being built for that client; otherwise it becomes damage of its
destination. FILL is absolute and may always be sent as such.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence

import attrs

from spice.domain.geometry import Box

#: Pipe length past which pending drawing collapses (reference display pipe: 50 items).
PIPE_LIMIT = 50


@attrs.frozen
class CreatePrimary:
    width: int
    height: int


@attrs.frozen
class DestroyPrimary:
    pass


@attrs.frozen
class Damage:
    box: Box


@attrs.frozen
class Fill:
    box: Box
    color: int


@attrs.frozen
class CopyBits:
    src_x: int
    src_y: int
    box: Box


@attrs.frozen
class MonitorsConfig:
    """The monitors (heads) the primary shows, each a rectangle of it, in monitor id order."""

    heads: tuple[Box, ...]


@attrs.frozen
class Mark:
    pass


@attrs.frozen
class StreamCreate:
    id: int
    box: Box


@attrs.frozen
class StreamFrame:
    """The stream's area as it is on the surface when sent (a JPEG frame)."""

    id: int
    box: Box


@attrs.frozen
class StreamClip:
    id: int
    rects: tuple[Box, ...]


@attrs.frozen
class StreamDestroy:
    id: int


DrawOp = Damage | Fill | CopyBits | StreamFrame
PipeOp = (
    CreatePrimary
    | DestroyPrimary
    | MonitorsConfig
    | Mark
    | StreamCreate
    | StreamClip
    | StreamDestroy
    | DrawOp
)


class DisplayPipe:
    def __init__(self, limit: int = PIPE_LIMIT) -> None:
        self._ops: deque[PipeOp] = deque()
        self._limit = limit
        self._inflight: PipeOp | None = None
        self.collapses = 0

    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[PipeOp]:
        return iter(self._ops)

    # -- recording -------------------------------------------------------------------------
    def new_primary(
        self, width: int, height: int, *, replace: bool, heads: Sequence[Box] = ()
    ) -> None:
        """The primary was (re)created: everything pending is obsolete. ``heads``: its
        monitors (default: one showing all of it)."""
        self._ops.clear()
        if replace:
            self._ops.append(DestroyPrimary())
        self._ops.extend(
            [
                CreatePrimary(width, height),
                Damage(Box(0, 0, width, height)),
                MonitorsConfig(tuple(heads) or (Box(0, 0, width, height),)),
                Mark(),
            ]
        )

    def monitors(self, heads: Sequence[Box]) -> None:
        """The monitor layout changed: it supersedes any layout still pending."""
        kept = [op for op in self._ops if not isinstance(op, MonitorsConfig)]
        if len(kept) != len(self._ops):
            self._ops = deque(kept)
        self._ops.append(MonitorsConfig(tuple(heads)))

    def destroy_primary(self) -> None:
        self._ops.clear()
        self._ops.append(DestroyPrimary())

    def damage(self, box: Box) -> None:
        if box.empty:
            return
        if self._ops and isinstance(self._ops[-1], Damage) and self._ops[-1].box.contains(box):
            return
        if not self._copy_pending():
            # Earlier damage inside the new one is redundant: its pixels are read at send time.
            kept = [op for op in self._ops if not (isinstance(op, Damage) and box.contains(op.box))]
            if len(kept) != len(self._ops):
                self._ops = deque(kept)
        self._append(Damage(box))

    def fill(self, box: Box, color: int) -> None:
        if not box.empty:
            self._append(Fill(box, color))

    def copy_bits(self, src_x: int, src_y: int, box: Box) -> None:
        if box.empty:
            return
        if self._damage_pending():
            self._append(Damage(box))
        else:
            self._append(CopyBits(src_x, src_y, box))

    def stream_frame(self, stream_id: int, box: Box) -> None:
        """A new frame of a stream: one pending frame of it stands for every newer one (its
        pixels are read at send time), so a lagging client skips frames, not queues them."""
        if any(isinstance(op, StreamFrame) and op.id == stream_id for op in self._ops):
            return
        self._append(StreamFrame(stream_id, box))

    def stream_op(
        self, op: StreamCreate | StreamClip | StreamDestroy, *, first: bool = False
    ) -> None:
        if first:
            self._ops.appendleft(op)
        else:
            self._ops.append(op)

    def _damage_pending(self) -> bool:
        reads = (Damage, StreamFrame)
        return isinstance(self._inflight, reads) or any(isinstance(op, reads) for op in self._ops)

    def _copy_pending(self) -> bool:
        return any(isinstance(op, CopyBits) for op in self._ops)

    def _append(self, op: PipeOp) -> None:
        self._ops.append(op)
        if len(self._ops) > self._limit:
            self._collapse()

    def _collapse(self) -> None:
        """Fold the drawing after the last structural op into one damaged area."""
        head: list[PipeOp] = []
        area = Box(0, 0, 0, 0)
        for op in self._ops:
            if isinstance(op, (Damage, Fill, CopyBits, StreamFrame)):
                area = area.union(op.box)
            else:
                if not area.empty:
                    head.append(Damage(area))
                    area = Box(0, 0, 0, 0)
                head.append(op)
        if not area.empty:
            head.append(Damage(area))
        self._ops = deque(head)
        self.collapses += 1

    # -- taking ----------------------------------------------------------------------------
    def pop(self) -> PipeOp | None:
        """The next op to send. Call :meth:`done` once its messages are built."""
        if not self._ops:
            return None
        self._inflight = self._ops.popleft()
        return self._inflight

    def pop_damage(self) -> Damage | None:
        """The next op when it is damage too, taken into the job of the damage in flight
        (one frame's changes travel together); None when the next op is anything else."""
        if not self._ops or not isinstance(self._ops[0], Damage):
            return None
        op = self._ops.popleft()
        assert isinstance(op, Damage)
        return op

    def head_is_frame(self) -> bool:
        return bool(self._ops) and isinstance(self._ops[0], StreamFrame)

    def pop_past_frames(self) -> PipeOp | None:
        """The first Damage or Fill behind the waiting stream frames at the head, if it does
        not overlap them (then it may go first: the two touch different pixels); None when
        something else comes first. Call :meth:`done` once its messages are built."""
        frames: list[Box] = []
        for i, op in enumerate(self._ops):
            if isinstance(op, StreamFrame):
                frames.append(op.box)
                continue
            if isinstance(op, (Damage, Fill)) and not any(op.box.overlaps(f) for f in frames):
                del self._ops[i]
                self._inflight = op
                return op
            return None
        return None

    def take_fills_ahead(self, busy: Sequence[Box]) -> list[Fill]:
        """While the op in flight (``busy``: its areas) is still being built, the Fills that
        may go out before it and before everything queued ahead of them: each touches none
        of those areas. Stops at the first op that is not plain drawing (a surface or stream
        change) and at a COPY_BITS (its source must not change first)."""
        taken: list[Fill] = []
        ahead: list[Box] = list(busy)
        kept: list[PipeOp] = []
        ops = list(self._ops)
        for i, op in enumerate(ops):
            if isinstance(op, Fill) and not any(op.box.overlaps(b) for b in ahead):
                taken.append(op)
                continue
            if not isinstance(op, (Damage, Fill, StreamFrame)):
                kept.extend(ops[i:])
                break
            ahead.append(op.box)
            kept.append(op)
        if taken:
            self._ops = deque(kept)
        return taken

    def done(self) -> None:
        self._inflight = None
