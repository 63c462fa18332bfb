"""The display channel's runner: one client's view of one display. The machine plans what to
send (surfaces, draws, video streams, within the ACK window and the link's budget); the
display's worker encodes the images; the writer paces it and measures the path (TCP_INFO, or
pings where the socket cannot tell).
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any

import trio

from spice.adapters.channels.context import ChannelContext
from spice.adapters.connection import ClientGone, Connection
from spice.adapters.display_worker import DisplayClient, DisplayWorker, EncodeAbandoned
from spice.adapters.link import Linked
from spice.adapters.task_errors import single_error
from spice.adapters.tcp_info import (
    PathTiming,
    bytes_in_flight,
    path_timing,
    set_max_pacing,
    socket_under,
)
from spice.domain.channels.display import DisplayChannel, DisplayReady, DrawJob
from spice.domain.channels.registry import KINDS, ChannelSetup
from spice.domain.codecs.select import EncodedImage
from spice.domain.codecs.video import VideoFrame
from spice.domain.display.rate import PROBE_INTERVAL
from spice.domain.enums import ChannelType

log = logging.getLogger(__name__)

#: Bounds of one wait for the bytes in flight to drain below the cap (s).
DRAIN_POLL_MIN = 0.001
DRAIN_POLL_MAX = 0.02


async def run_display(
    ctx: ChannelContext, stream: trio.abc.Stream, linked: Linked, label: str
) -> None:
    worker = ctx.display_worker(linked.request.channel_id)
    config = ctx.config
    kind = KINDS[ChannelType.DISPLAY]
    machine = kind.make(
        ChannelSetup(
            mini_header=linked.mini_header,
            client_caps=linked.request.channel_caps,
            server_caps=kind.caps,
            image_compression=config.image_compression,
            jpeg_wan_compression=config.jpeg_wan_compression,
            low_bandwidth=ctx.low_bandwidth,
            codecs_warm=ctx.codecs_warm,
            video_codecs=frozenset(config.video_codecs),
        )
    )
    assert isinstance(machine, DisplayChannel)
    machine.link_bandwidth = ctx.bandwidth
    client = DisplayClient(machine)
    conn = ctx.connection(stream, machine, label, ChannelType.DISPLAY)
    conn.received = client.wake
    client.connection = conn
    ctx.displays.append(machine)
    machine.receive_data(linked.trailing)

    async def on_event(event: Any) -> None:
        if isinstance(event, DisplayReady):
            worker.attach(client)

    async def writer() -> None:
        with trio.move_on_after(config.display_init_timeout) as scope:
            while not machine.ready:
                await client.wake.wait()
        if scope.cancelled_caught:
            log.warning(
                "%s: no DISPLAY_INIT within %.0f s; closing", label, config.display_init_timeout
            )
            raise ClientGone(label)
        sock = socket_under(stream)
        machine.probe_with_pings = sock is None or path_timing(sock) is None
        last_timing = -math.inf
        paced: float | None = None  # the pacing ceiling set on the socket (inf: refused)
        while True:
            now = trio.current_time()
            if sock is not None and now - last_timing >= PROBE_INTERVAL:
                # The path's capacity always (it caps the bytes in flight); its round trip
                # while video runs (it paces the video).
                last_timing = now
                timing = path_timing(sock)
                if timing is not None:
                    if timing.delivery_rate is not None:
                        machine.on_delivery_rate(timing.delivery_rate, now)
                    ceiling = machine.pacing_ceiling(timing.min_rtt, now)
                    if ceiling is not None and _moved(ceiling, paced):
                        paced = ceiling if set_max_pacing(sock, ceiling) else math.inf
                    if machine.streams:
                        machine.on_round_trip(timing.rtt, now)
            job = machine.next_job(now)
            if job is None:
                await conn.flush()
                if machine.has_work and not machine.may_send:
                    await ctx.await_acks(conn, client.wake)
                    continue
                # Paced video waits for its budget; while streams run, their probes too.
                until = machine.wait_until if machine.wait_until is not None else math.inf
                if machine.streams:
                    until = min(until, trio.current_time() + PROBE_INTERVAL)
                with trio.move_on_at(until):
                    await client.wake.wait()
                continue
            stamp = 0
            if job.video is not None:
                # A VP8 or H.264 frame's time is part of its encoding (spice-html5's WebM
                # clusters start on keyframes): stamped before, from the last frame's size.
                stamp = ctx.mm_time() + ctx.playout_delay(job.video.last_bytes)
            try:
                images = await encode_while_writing(job, stamp, worker, client, conn, machine, sock)
            except BaseException:
                machine.abandon(job)
                raise
            if images is None:  # another viewer's encode it waited for was dropped
                machine.abandon(job)
                continue
            if job.video is None and job.stream_id is not None and images[0] is not None:
                stamp = ctx.mm_time() + ctx.playout_delay(len(images[0].payload))
            machine.commit(job, images, mm_time=stamp, now=trio.current_time())

    try:
        await ctx.run_pair(conn, on_event, writer)
    finally:
        worker.detach(client)
        ctx.displays.remove(machine)


async def encode_while_writing(
    job: DrawJob,
    stamp: int,
    worker: DisplayWorker,
    client: DisplayClient,
    conn: Connection,
    machine: DisplayChannel,
    sock: trio.socket.SocketType | None = None,
) -> list[EncodedImage | VideoFrame | None] | None:
    """The images of ``job``, encoded while what the last job framed is written: on a fast
    link the encoder and the socket work at once instead of taking turns (at most one job's
    bytes wait in the machine while the next encodes). Meanwhile a fill beside the job's
    areas (a key's echo) is framed and written at once, right behind what is being written,
    ahead of the job. None when an encode it waited for (another viewer's) was dropped."""
    if (
        (job.stream_id is not None or job.video is not None)
        and not machine.has_output
        and (sock is None or _in_flight_below(sock, machine))
    ):
        # One JPEG or video frame (a few ms), nothing left to write and the path not over its
        # cap: there is nothing to overlap. A fill that came meanwhile still goes ahead.
        try:
            images = await worker.images_for(job, mm_time=stamp)
        except EncodeAbandoned:
            return None
        if machine.frame_fills_ahead(trio.current_time()):
            await conn.flush()
        return images
    result: list[list[EncodedImage | VideoFrame | None]] = []
    encoded, flushed = trio.Event(), trio.Event()

    async def encode() -> None:
        try:
            with contextlib.suppress(EncodeAbandoned):
                result.append(await worker.images_for(job, mm_time=stamp))
        finally:
            encoded.set()
            client.wake.set()

    async def fills_ahead() -> None:
        while not (encoded.is_set() and flushed.is_set()):
            if machine.frame_fills_ahead(trio.current_time()):
                await conn.flush()
                continue
            await client.wake.wait()

    started, sent = trio.current_time(), conn.bytes_sent
    try:
        async with trio.open_nursery() as overlap:
            overlap.start_soon(encode)
            overlap.start_soon(fills_ahead)
            await conn.flush()
            now = trio.current_time()
            machine.drained(conn.bytes_sent - sent, now - started, now)
            if sock is not None:
                await _in_flight_below_cap(sock, machine)
            flushed.set()
            client.wake.set()
    except BaseExceptionGroup as group:
        # Both writes may see the client leave at once: that is the cause to raise.
        raise single_error(group, prefer=(ClientGone,)) from None
    return result[0] if result else None


def _moved(ceiling: float, paced: float | None) -> bool:
    """Whether a pacing ceiling differs enough from the one set to set it again (a socket
    that refused one is not asked again)."""
    if paced is None:
        return True
    return paced != math.inf and abs(ceiling - paced) > 0.05 * paced


def _in_flight_cap(
    sock: trio.socket.SocketType, machine: DisplayChannel
) -> tuple[PathTiming, float] | None:
    """The path's timing and :meth:`DisplayChannel.in_flight_cap` (None: no measure yet)."""
    timing = path_timing(sock)
    if timing is None:
        return None
    cap = machine.in_flight_cap(timing.min_rtt, trio.current_time())
    return None if cap is None else (timing, cap)


def _held_over(sock: trio.socket.SocketType, cap: float) -> float:
    """Bytes unacknowledged on the path beyond ``cap`` (0: within it, or no measure)."""
    held = bytes_in_flight(sock)
    return 0.0 if held is None else max(0.0, held - cap)


def _in_flight_below(sock: trio.socket.SocketType, machine: DisplayChannel) -> bool:
    """The path holds no more than its cap of bytes unacknowledged (or has no measure)."""
    capped = _in_flight_cap(sock, machine)
    return capped is None or not _held_over(sock, capped[1])


async def _in_flight_below_cap(sock: trio.socket.SocketType, machine: DisplayChannel) -> None:
    """Wait until the path holds no more than :meth:`DisplayChannel.in_flight_cap` bytes
    unacknowledged (fills that overtake the job still go meanwhile). Each wait lasts about
    as long as the excess takes to drain at the cap's own rate (one cap per smallest round
    trip): a fixed poll would leave the link idle for part of each poll, which for a frame
    that itself leaves in a few ms is a large share of the link."""
    capped = _in_flight_cap(sock, machine)
    if capped is None:
        return
    timing, cap = capped
    drain_rate = cap / max(timing.min_rtt, 0.001)  # bytes/s, at most the path's capacity
    deadline = trio.current_time() + max(1.0, 4 * timing.rtt)  # a stalled peer: do not wait on
    while trio.current_time() < deadline:
        excess = _held_over(sock, cap)
        if not excess:
            return
        await trio.sleep(min(max(excess / drain_rate, DRAIN_POLL_MIN), DRAIN_POLL_MAX))
