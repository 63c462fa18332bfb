"""The display worker: one task per display that owns its surface and cursor (the C server's
RedWorker thread, as a Trio task).

The application's commands arrive on a bounded memory channel, so a producer faster than the
worker waits instead of growing a queue. The worker applies each command to the surface (large
pixel work in a thread: numpy releases the GIL) and records what changed in every attached
client's display machine (:class:`~domain.channels.display.DisplayChannel`), then wakes that
client's writer.

The worker also builds the images its clients' jobs ask for (:meth:`DisplayWorker.images_for`):
an image is named by (area, generation, codec policy), looked up in one encode cache shared by
all viewers, and encoded at most once, in a worker thread, however many viewers want it at the
same time. The surface lock is held only to read generations and copy the pixels of a miss,
never while encoding.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import trio

from spice.adapters.connection import Wakeup
from spice.adapters.quick_lock import QuickLock
from spice.adapters.thread_hop import run_in_thread
from spice.domain.channels.display import DisplayChannel, DrawJob, ImageRequest
from spice.domain.codecs.select import CodecPolicy, EncodedImage, encode
from spice.domain.codecs.video import VideoFrame
from spice.domain.display.encode_cache import EncodeCache, EncodeKey
from spice.domain.display.monitors import kept_on_resize
from spice.domain.display.routing import end_idle, joined, route
from spice.domain.display.streams import StreamDetector
from spice.domain.display.surface import Pixels, Surface
from spice.domain.display.video_stream import VideoStream
from spice.domain.geometry import Box
from spice.domain.messages.cursor import CursorShape

log = logging.getLogger(__name__)

#: Pixel counts above which a copy runs in a worker thread rather than on the event loop.
THREAD_PIXELS = 64 * 1024
COMMAND_QUEUE = 16
#: Pixel bytes that may wait in the command queue (about four full-HD frames); a producer
#: beyond that waits, so a fast application cannot queue hundreds of megabytes.
QUEUE_BYTES = 32 * 1024 * 1024
CURSOR_QUEUE = 8
#: How often idle streams are looked for (they end after streams.IDLE_END).
STREAM_TICK = 0.1
#: Images up to this many pixels are encoded on the event loop: a thread hop costs more.
INLINE_ENCODE_PIXELS = 4096
#: Encoder threads per display: this project's machines have two cores.
ENCODE_THREADS = 2


@attrs.frozen
class UpdateCmd:
    x: int
    y: int
    pixels: Pixels


@attrs.frozen
class FillCmd:
    box: Box
    color: int


@attrs.frozen
class CopyBitsCmd:
    src_x: int
    src_y: int
    box: Box


@attrs.frozen
class ResizeCmd:
    width: int
    height: int
    #: The monitors on the new primary (checked); None keeps the layout if it still fits.
    heads: tuple[Box, ...] | None = None


@attrs.frozen
class MonitorsCmd:
    """A new monitor layout on the current primary (checked against its size)."""

    heads: tuple[Box, ...]


@attrs.frozen
class CursorSetCmd:
    shape: CursorShape | None
    x: int
    y: int
    visible: bool


@attrs.frozen
class CursorMoveCmd:
    x: int
    y: int


@attrs.frozen
class CursorHideCmd:
    pass


@attrs.frozen
class BarrierCmd:
    """Sets ``done`` once every command before it has been applied."""

    done: trio.Event


Command = (
    UpdateCmd
    | FillCmd
    | CopyBitsCmd
    | ResizeCmd
    | MonitorsCmd
    | CursorSetCmd
    | CursorMoveCmd
    | CursorHideCmd
    | BarrierCmd
)


@attrs.define
class CursorState:
    shape: CursorShape | None = None
    x: int = 0
    y: int = 0
    visible: bool = True


class DisplayClient:
    """One client's display connection as the worker sees it: its machine, and how to wake
    its writer."""

    def __init__(self, machine: DisplayChannel) -> None:
        self.machine = machine
        self.wake = Wakeup()
        #: The client's display connection (for its statistics), once linked.
        self.connection: Any = None


@attrs.define
class _Pending:
    """An encode in progress that other viewers wait for."""

    done: trio.Event = attrs.Factory(trio.Event)
    image: EncodedImage | None = None


class CursorClient:
    """One client's cursor connection: a short queue of cursor commands; a new shape makes
    everything queued before it obsolete, so the queue stays bounded."""

    def __init__(self) -> None:
        self.queue: deque[CursorSetCmd | CursorMoveCmd | CursorHideCmd] = deque()
        self.wake = Wakeup()

    def push(self, cmd: CursorSetCmd | CursorMoveCmd | CursorHideCmd) -> None:
        if isinstance(cmd, CursorSetCmd) or len(self.queue) >= CURSOR_QUEUE:
            self.queue.clear()
        elif (
            isinstance(cmd, CursorMoveCmd)
            and self.queue
            and isinstance(self.queue[-1], CursorMoveCmd)
        ):
            self.queue.pop()
        self.queue.append(cmd)
        self.wake.set()


class DisplayWorker:
    def __init__(
        self, display_id: int, width: int, height: int, streaming_video: str = "filter"
    ) -> None:
        self.display_id = display_id
        self.streams = StreamDetector(streaming_video)
        self.surface = Surface(width, height)
        self.cursor = CursorState(x=width // 2, y=height // 2)
        #: The monitors on the primary; empty: one showing all of it.
        self.heads: tuple[Box, ...] = ()
        self.commands, self._receive = trio.open_memory_channel[Command](COMMAND_QUEUE)
        self._queued_bytes = 0
        self._drained = trio.Event()
        #: Commands submitted and not yet applied (queued, handed over, or being applied),
        #: and the lock an apply holds: :meth:`apply_at_once` may go only when none is.
        self._unapplied = 0
        self._applying = QuickLock()
        #: Held while pixels move within the surface (COPY_BITS) until the move is recorded in
        #: every pipe, and by a writer while it reads pixels: a read must not see a move that
        #: its pipe does not know about yet, or the client would get the move twice.
        self.surface_lock = QuickLock()
        self.clients: set[DisplayClient] = set()
        self.cursor_clients: set[CursorClient] = set()
        self.encode_cache = EncodeCache()
        self._encoding: dict[EncodeKey, _Pending] = {}
        self._encoders = trio.CapacityLimiter(ENCODE_THREADS)
        #: How many images were encoded (not taken from the cache), and the CPU seconds the
        #: encoding took (in whichever thread ran it), for tests and benchmarks.
        self.encodes = 0
        self.encode_cpu = 0.0

    # -- clients ---------------------------------------------------------------------------
    def attach(self, client: DisplayClient) -> None:
        """A display connection got DISPLAY_INIT: send it the whole primary."""
        client.machine.new_primary(
            self.surface.width, self.surface.height, replace=False, heads=self.heads
        )
        for record in joined(self.streams):
            record(client.machine)
        self.clients.add(client)
        client.wake.set()

    def detach(self, client: DisplayClient) -> None:
        self.clients.discard(client)

    def attach_cursor(self, client: CursorClient) -> None:
        self.cursor_clients.add(client)

    def detach_cursor(self, client: CursorClient) -> None:
        self.cursor_clients.discard(client)

    async def submit(self, cmd: Command) -> None:
        """Queue a command, waiting while the queue is full by count or by pixel bytes."""
        size = cmd.pixels.nbytes if isinstance(cmd, UpdateCmd) else 0
        self._unapplied += 1
        try:
            while self._queued_bytes and self._queued_bytes + size > QUEUE_BYTES:
                await self._drained.wait()
            self._queued_bytes += size
            try:
                await self.commands.send(cmd)
            except BaseException:
                self._release(size)
                raise
        except BaseException:
            self._unapplied -= 1
            raise

    async def apply_at_once(self, cmd: Command) -> bool:
        """Apply ``cmd`` in the caller's task when no other command is queued or being
        applied (so order is kept), and return True; else return False and do nothing. An
        update applied this way is copied into the surface straight from the caller's pixels,
        without the owned copy a queued update needs."""
        if self._unapplied:
            return False
        self._unapplied += 1
        try:
            async with self._applying:
                await self.apply(cmd)
        finally:
            self._unapplied -= 1
        return True

    def _release(self, size: int) -> None:
        if size:
            self._queued_bytes -= size
            self._drained.set()
            self._drained = trio.Event()

    # -- the task ----------------------------------------------------------------------------
    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._end_idle_streams)
            await self._run_commands()
            nursery.cancel_scope.cancel()

    async def _end_idle_streams(self) -> None:
        """Streams that stopped moving end: destroyed, and their area sent once more as a
        lossless image, so every client ends exact."""
        while True:
            await trio.sleep(STREAM_TICK)
            for record in end_idle(self.streams, trio.current_time()):
                self._each_client(record)

    async def _run_commands(self) -> None:
        async with self._receive:
            async for cmd in self._receive:
                try:
                    async with self._applying:
                        await self.apply(cmd)
                finally:
                    self._release(cmd.pixels.nbytes if isinstance(cmd, UpdateCmd) else 0)
                    self._unapplied -= 1

    async def apply(self, cmd: Command) -> None:
        stamp = self.surface.stamp
        drawn = await self._apply(cmd)
        if self.surface.stamp != stamp:
            surface = self.surface
            near = None if drawn is None else [surface.tile_cover(box) for box in drawn]
            self.encode_cache.prune(surface.generation, near)

    async def _apply(self, cmd: Command) -> list[Box] | None:
        """Apply ``cmd``. An update returns the boxes it changed (the encode cache then
        looks only at its entries near them); other commands return None."""
        surface = self.surface
        if isinstance(cmd, UpdateCmd):
            h, w = cmd.pixels.shape[:2]
            area = Box(cmd.x, cmd.y, w, h)
            # A frame of a running stream changes all of it: no need to scan for what did.
            stream = next((s for s in self.streams.streams.values() if s.box == area), None)
            put = functools.partial(surface.put, cmd.x, cmd.y, cmd.pixels, whole=stream is not None)
            async with self.surface_lock:
                if h * w <= THREAD_PIXELS:
                    boxes = put()
                elif stream is None or (ahead := self._frame_ahead(stream.id)) is None:
                    boxes = await run_in_thread(put)
                else:
                    boxes, image, cpu = await run_in_thread(
                        functools.partial(_put_and_encode, put, surface, ahead),
                        limiter=self._encoders,
                    )
                    if image is not None:
                        generation = surface.generation(ahead.box)
                        self._encoded(EncodeKey(ahead.box, generation, ahead.policy), image, cpu)
            for box in boxes:
                self._route(box)
            return boxes
        elif isinstance(cmd, FillCmd):
            async with self.surface_lock:
                if cmd.box.area > THREAD_PIXELS:
                    box = await trio.to_thread.run_sync(surface.fill, cmd.box, cmd.color)
                else:
                    box = surface.fill(cmd.box, cmd.color)
            if not box.empty:
                self._each_client(lambda c: c.fill(box, cmd.color))
        elif isinstance(cmd, CopyBitsCmd):
            async with self.surface_lock:
                if cmd.box.area > THREAD_PIXELS:
                    box = await trio.to_thread.run_sync(
                        surface.copy_bits, cmd.src_x, cmd.src_y, cmd.box
                    )
                else:
                    box = surface.copy_bits(cmd.src_x, cmd.src_y, cmd.box)
                # Recorded before the lock is released: a pixel read must not see a move
                # that its client's pipe does not know about yet.
                self._each_client(lambda c: c.copy_bits(cmd.src_x, cmd.src_y, box))
        elif isinstance(cmd, ResizeCmd):
            heads = (
                kept_on_resize(self.heads, cmd.width, cmd.height)
                if cmd.heads is None
                else cmd.heads
            )
            if (cmd.width, cmd.height) != (surface.width, surface.height):
                self.streams.end_all()  # each client's machine destroys its streams
                async with self.surface_lock:
                    self.surface = await trio.to_thread.run_sync(
                        surface.resized, cmd.width, cmd.height
                    )
                    self.heads = heads
                    self._each_client(
                        lambda c: c.new_primary(cmd.width, cmd.height, replace=True, heads=heads)
                    )
            elif heads != self.heads:
                self._set_heads(heads)
        elif isinstance(cmd, MonitorsCmd):
            if cmd.heads != self.heads:
                self._set_heads(cmd.heads)
        elif isinstance(cmd, CursorSetCmd):
            self.cursor = CursorState(cmd.shape, cmd.x, cmd.y, cmd.visible)
            self._each_cursor(cmd)
        elif isinstance(cmd, CursorMoveCmd):
            self.cursor.x, self.cursor.y, self.cursor.visible = cmd.x, cmd.y, True
            self._each_cursor(cmd)
        elif isinstance(cmd, CursorHideCmd):
            self.cursor.visible = False
            self._each_cursor(cmd)
        elif isinstance(cmd, BarrierCmd):
            cmd.done.set()
        return None

    def _frame_ahead(self, stream_id: int) -> ImageRequest | None:
        """The image of a stream's next frame that the clients who would send it at once
        will ask for (:meth:`DisplayChannel.frame_request_now`), when they agree on one: it
        is then encoded in the same thread hop as the frame is copied in, while its pixels
        are still in the cache, instead of in a second hop when the job asks for it."""
        now = trio.current_time()
        requests = {client.machine.frame_request_now(stream_id, now) for client in self.clients}
        requests.discard(None)
        return requests.pop() if len(requests) == 1 else None

    def _set_heads(self, heads: tuple[Box, ...]) -> None:
        self.heads = heads
        full = (Box(0, 0, self.surface.width, self.surface.height),)
        self._each_client(lambda c: c.monitors(heads or full))

    def _route(self, box: Box) -> None:
        """Record changed pixels: as stream frames, covers of streams, or damage."""
        now = trio.current_time()

        def too_big_lossless(area: Box) -> bool:
            return any(c.machine.lossless_too_big(area, now) for c in self.clients)

        for record in route(
            self.streams, self.surface, box, now, too_big_lossless=too_big_lossless
        ):
            self._each_client(record)

    def _each_client(self, record: Callable[[DisplayChannel], object]) -> None:
        for client in self.clients:
            record(client.machine)
            client.wake.set()

    # -- images ------------------------------------------------------------------------------
    async def images_for(
        self, job: DrawJob, *, mm_time: int = 0
    ) -> list[EncodedImage | VideoFrame | None]:
        """The encoded images of ``job``, in order; None where the area no longer lies on
        the surface (it shrank since the job was made). A VP8 or H.264 stream's frame
        (``job.video``) is encoded by its own encoder, shown at ``mm_time``."""
        if job.video is not None:
            return [await self._video_frame(job.video, mm_time)]
        results: list[EncodedImage | VideoFrame | None] = [None] * len(job.requests)
        keys: list[tuple[int, EncodeKey]] = []
        misses: list[tuple[int, EncodeKey, Pixels]] = []
        waits: list[tuple[int, _Pending]] = []
        try:
            async with self.surface_lock:
                surface = self.surface
                for i, request in enumerate(job.requests):
                    if not surface.box.contains(request.box):
                        continue
                    key = EncodeKey(request.box, surface.generation(request.box), request.policy)
                    cached = self.encode_cache.get(key)
                    if cached is not None:
                        results[i] = cached
                        continue
                    pending = self._encoding.get(key)
                    if pending is not None:
                        waits.append((i, pending))
                        continue
                    self._encoding[key] = _Pending()
                    keys.append((i, key))
                if len(keys) == 1 and not waits and keys[0][1].policy.video:
                    # A stream's frame: JPEG reads the surface's rows in place, so it is
                    # encoded under the lock without a snapshot (the next put waits a few ms).
                    i, key = keys[0]
                    await self._encode_one(key, surface.view(key.box), results, i)
                    return results
                # Every area's copy in one go (one hand-off to a thread for all of them).
                boxes = [key.box for _, key in keys]
                if sum(box.area for box in boxes) > THREAD_PIXELS:
                    snapshots = await run_in_thread(functools.partial(_snapshots, surface, boxes))
                else:
                    snapshots = _snapshots(surface, boxes)
                misses = [(i, key, px) for (i, key), px in zip(keys, snapshots, strict=True)]
            if len(misses) == 1 and not waits:  # the common case: no nursery to pay for
                await self._encode_one(misses[0][1], misses[0][2], results, misses[0][0])
            elif misses or waits:
                async with trio.open_nursery() as nursery:
                    for i, key, pixels in misses:
                        nursery.start_soon(self._encode_one, key, pixels, results, i)
                    for i, pending in waits:
                        nursery.start_soon(self._await_other, pending, results, i)
        finally:
            for _, key in keys:  # released even if this task was cancelled
                leftover = self._encoding.pop(key, None)
                if leftover is not None:
                    leftover.done.set()
        if any(results[i] is None for i, _ in waits):
            raise EncodeAbandoned("an encode another viewer started did not finish")
        return results

    async def _video_frame(self, video: VideoStream, mm_time: int) -> VideoFrame | None:
        async with self.surface_lock:
            surface = self.surface
            if not surface.box.contains(video.box):
                return None
            pixels = await run_in_thread(functools.partial(surface.snapshot, video.box))
        frame, cpu = await run_in_thread(
            functools.partial(_timed_video, video, pixels, mm_time), limiter=self._encoders
        )
        self.encodes += 1
        self.encode_cpu += cpu
        return frame

    async def _encode_one(
        self,
        key: EncodeKey,
        pixels: Pixels,
        results: list[EncodedImage | VideoFrame | None],
        i: int,
    ) -> None:
        if key.box.area <= INLINE_ENCODE_PIXELS:
            image, cpu = _timed_encode(pixels, key.policy)
        else:
            image, cpu = await run_in_thread(
                functools.partial(_timed_encode, pixels, key.policy), limiter=self._encoders
            )
        self._encoded(key, image, cpu)
        results[i] = image
        pending = self._encoding.pop(key, None)
        if pending is not None:
            pending.image = image
            pending.done.set()

    def _encoded(self, key: EncodeKey, image: EncodedImage, cpu: float) -> None:
        """Count an encode that took ``cpu`` seconds and keep its image for every viewer."""
        self.encodes += 1
        self.encode_cpu += cpu
        self.encode_cache.put(key, image)

    @staticmethod
    async def _await_other(
        pending: _Pending, results: list[EncodedImage | VideoFrame | None], i: int
    ) -> None:
        await pending.done.wait()
        results[i] = pending.image

    def _each_cursor(self, cmd: CursorSetCmd | CursorMoveCmd | CursorHideCmd) -> None:
        for client in self.cursor_clients:
            client.push(cmd)


def _snapshots(surface: Surface, boxes: list[Box]) -> list[Pixels]:
    return [surface.snapshot(box) for box in boxes]


def _put_and_encode(
    put: Callable[[], list[Box]], surface: Surface, request: ImageRequest
) -> tuple[list[Box], EncodedImage | None, float]:
    """``put()``, then the image ``request`` asks for when the put changed pixels."""
    boxes = put()
    if not boxes or not surface.box.contains(request.box):
        return boxes, None, 0.0
    image, cpu = _timed_encode(surface.view(request.box), request.policy)
    return boxes, image, cpu


def _timed_video(video: VideoStream, pixels: Pixels, mm_time: int) -> tuple[VideoFrame, float]:
    started = time.thread_time()
    frame = video.encode(pixels, mm_time)
    return frame, time.thread_time() - started


def _timed_encode(pixels: Pixels, policy: CodecPolicy) -> tuple[EncodedImage, float]:
    started = time.thread_time()
    image = encode(pixels, policy)
    return image, time.thread_time() - started


class EncodeAbandoned(Exception):
    """An image this job waited for was being encoded for a viewer that went away; the job's
    areas go back into the pipe and are asked for again."""
