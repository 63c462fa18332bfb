"""The playback channel's runner and the application's side of every playback client
(:class:`PlaybackHub`, the C server's playback interface).

The application pushes S16 PCM; the hub cuts it into 10 ms frames, encodes each frame once
(RAW for every client, plus one Opus packet shared by the clients in OPUS mode) and hands
the frames to each client's bounded queue, from which that client's writer sends them.
Pacing follows the multimedia clock: a frame is stamped with the mm time at which it is due,
and :meth:`PlaybackHub.write` returns only when what it was given is at most ``AHEAD``
seconds ahead of real time, so an application that pushes faster than it plays is slowed to
real time, not buffered without bound. A client that falls behind loses its oldest frames.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import trio

from spice.adapters.connection import Wakeup
from spice.domain.channels.playback import PlaybackChannel
from spice.domain.channels.registry import KINDS, ChannelSetup
from spice.domain.codecs.opus import OpusEncoder, frame_samples, opus_capable
from spice.domain.enums import AudioDataMode, ChannelType, PlaybackCap

if TYPE_CHECKING:
    from spice.adapters.channels.context import ChannelContext
    from spice.adapters.link import Linked

log = logging.getLogger(__name__)

#: How far ahead of real time the application may push (the client's buffer covers it).
AHEAD = 0.1
#: Frames a client may have queued (500 ms) before its oldest are dropped.
CLIENT_QUEUE = 50
RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)


@attrs.frozen
class _Start:
    frequency: int
    channels: int
    mm_time: int


@attrs.frozen
class _Data:
    raw: bytes
    opus: bytes | None
    mm_time: int


@attrs.frozen
class _Stop:
    pass


@attrs.frozen
class _Setting:
    what: str
    value: Any


class PlaybackClient:
    def __init__(self, machine: PlaybackChannel) -> None:
        self.machine = machine
        self.queue: deque[Any] = deque()
        self.wake = Wakeup()
        self.dropped = 0

    def push(self, item: Any) -> None:
        if isinstance(item, _Data) and len(self.queue) >= CLIENT_QUEUE:
            # The oldest frame goes (never a START/STOP or a setting).
            for i, old in enumerate(self.queue):
                if isinstance(old, _Data):
                    del self.queue[i]
                    self.dropped += 1
                    break
        self.queue.append(item)
        self.wake.set()


class PlaybackHub:
    """What ``server.playback`` drives: one audio stream, sent to every playback client."""

    def __init__(self, mm_time: Callable[[], int], compression: bool = True) -> None:
        self._mm_time = mm_time
        self.compression = compression
        self.clients: list[PlaybackClient] = []
        self.frequency = 48000
        self.channels = 2
        self.playing = False
        self.volume: tuple[int, ...] | None = None
        self.mute: bool | None = None
        self.latency_ms: int | None = None
        #: Called with the stream's start mm time (the core pushes MULTI_MEDIA_TIME on main).
        self.on_start: Callable[[int], None] | None = None
        self._partial = b""
        self._next_due: float | None = None
        self._encoder: OpusEncoder | None = None
        self._start_mm = 0
        #: Frames sent since the stream started (for the benchmark and tests).
        self.frames = 0

    # -- the application's side ------------------------------------------------------------------
    def start(self, frequency: int = 48000, channels: int = 2) -> None:
        if frequency not in RATES:
            raise ValueError(f"playback at {frequency} Hz: use one of {RATES}")
        if channels not in (1, 2):
            raise ValueError(f"playback with {channels} channels: use 1 or 2")
        if self.playing:
            if (frequency, channels) == (self.frequency, self.channels):
                return
            self.stop()
        self.frequency, self.channels = frequency, channels
        self.playing = True
        self._partial = b""
        self._next_due = None
        self._encoder = None
        self.frames = 0
        self._start_mm = self._mm_time()
        for client in self.clients:
            client.push(_Start(frequency, channels, self._start_mm))
        if self.on_start is not None:
            self.on_start(self._start_mm)

    def stop(self) -> None:
        """End the stream (what was pushed and not sent yet is dropped)."""
        if not self.playing:
            return
        self.playing = False
        self._partial = b""
        for client in self.clients:
            client.push(_Stop())

    async def write(self, pcm: bytes | np.ndarray[Any, Any]) -> None:
        """Push interleaved S16 PCM (bytes, or an int16 array of shape (n,) or (n, channels));
        starts a 48 kHz stereo stream if none plays. Returns once the audio is at most
        ``AHEAD`` seconds ahead of real time."""
        if not self.playing:
            self.start()
        data = _pcm_bytes(pcm, self.channels)
        buf = self._partial + data
        size = frame_samples(self.frequency) * self.channels * 2
        whole = len(buf) - len(buf) % size
        self._partial = buf[whole:]
        for offset in range(0, whole, size):
            await self._frame(buf[offset : offset + size])
            if not self.playing:
                return

    async def _frame(self, raw: bytes) -> None:
        duration = frame_samples(self.frequency) / self.frequency
        now = trio.current_time()
        if self._next_due is None or self._next_due < now:
            self._next_due = now  # an underrun (or the first frame): play from now
        if self._next_due > now + AHEAD:
            await trio.sleep_until(self._next_due - AHEAD)
            now = trio.current_time()
        stamp = (self._mm_time() + round((self._next_due - now) * 1000)) & 0xFFFFFFFF
        self._next_due += duration
        opus = None
        wanted = (self.frequency, self.channels)
        if any(c.machine.mode_for(*wanted) == AudioDataMode.OPUS for c in self.clients):
            if self._encoder is None:
                self._encoder = OpusEncoder(self.frequency, self.channels)
            opus = self._encoder.encode(raw)
        self.frames += 1
        item = _Data(raw, opus, stamp)
        for client in self.clients:
            client.push(item)

    def _setting(self, what: str, value: Any) -> None:
        for client in self.clients:
            client.push(_Setting(what, value))

    def set_volume(self, volume: int | tuple[int, ...]) -> None:
        """0 to 65535, one for all channels or one per channel."""
        levels = (volume,) * self.channels if isinstance(volume, int) else tuple(volume)
        if not levels or not all(0 <= v <= 0xFFFF for v in levels):
            raise ValueError(f"volume {volume!r}: 0 to 65535 per channel")
        self.volume = levels
        self._setting("volume", levels)

    def set_mute(self, mute: bool) -> None:
        self.mute = bool(mute)
        self._setting("mute", self.mute)

    def set_latency(self, latency_ms: int) -> None:
        if not 0 <= latency_ms <= 10_000:
            raise ValueError(f"latency {latency_ms} ms: 0 to 10000")
        self.latency_ms = latency_ms
        self._setting("latency", latency_ms)

    # -- a client's side --------------------------------------------------------------------------
    def attach(self, client: PlaybackClient) -> None:
        machine = client.machine
        machine.start_link(self._mm_time(), self.frequency, self.channels)
        if self.volume is not None:
            machine.set_volume(self.volume)
        if self.mute is not None:
            machine.set_mute(self.mute)
        if self.latency_ms is not None:
            machine.set_latency(self.latency_ms)
        if self.playing:
            client.push(_Start(self.frequency, self.channels, self._mm_time()))
        self.clients.append(client)

    def detach(self, client: PlaybackClient) -> None:
        if client in self.clients:
            self.clients.remove(client)


def _pcm_bytes(pcm: bytes | np.ndarray[Any, Any], channels: int) -> bytes:
    if isinstance(pcm, np.ndarray):
        if pcm.dtype != np.int16:
            raise TypeError(f"PCM arrays must be int16, not {pcm.dtype}")
        if pcm.ndim == 2 and pcm.shape[1] != channels:
            raise ValueError(f"PCM of shape {pcm.shape} for a {channels}-channel stream")
        if pcm.ndim not in (1, 2):
            raise ValueError(f"PCM of shape {pcm.shape}")
        data = np.ascontiguousarray(pcm, dtype="<i2").tobytes()
    else:
        data = bytes(pcm)
    if len(data) % (2 * channels):
        raise ValueError(f"{len(data)} bytes are not whole {channels}-channel S16 samples")
    return data


def _apply(machine: PlaybackChannel, item: Any) -> None:
    if isinstance(item, _Start):
        if machine.playing:
            machine.stop()
        machine.start(frequency=item.frequency, channels=item.channels, mm_time=item.mm_time)
    elif isinstance(item, _Data):
        if not machine.playing:
            return  # a frame queued before this client's START; nothing to play it in
        if machine.mode == AudioDataMode.OPUS and item.opus is not None:
            machine.data(item.opus, item.mm_time)
        elif machine.mode == AudioDataMode.RAW:
            machine.data(item.raw, item.mm_time)
    elif isinstance(item, _Stop):
        if machine.playing:
            machine.stop()
    elif isinstance(item, _Setting):
        getattr(machine, f"set_{item.what}")(item.value)


async def run_playback(
    ctx: ChannelContext, stream: trio.abc.Stream, linked: Linked, label: str
) -> None:
    hub = ctx.playback
    req = linked.request
    machine = KINDS[ChannelType.PLAYBACK].make(
        ChannelSetup(
            mini_header=linked.mini_header,
            client_caps=req.channel_caps,
            server_caps=KINDS[ChannelType.PLAYBACK].caps,
            compression=hub.compression,
        )
    )
    assert isinstance(machine, PlaybackChannel)
    conn = ctx.connection(stream, machine, label, ChannelType.PLAYBACK)
    machine.receive_data(linked.trailing)
    client = PlaybackClient(machine)
    hub.attach(client)
    log.info(
        "%s: playback linked (%s)",
        label,
        "opus" if PlaybackCap.OPUS in req.channel_caps and hub.compression else "raw",
    )

    async def writer() -> None:
        while True:
            if not client.queue:
                await client.wake.wait()
                continue
            while client.queue:
                _apply(machine, client.queue.popleft())
            await conn.flush()

    async def ignore(event: Any) -> None:
        pass

    try:
        await ctx.run_pair(conn, ignore, writer)
    finally:
        hub.detach(client)
        if client.dropped:
            log.info("%s: %d audio frames dropped (client behind)", label, client.dropped)


__all__ = ["PlaybackHub", "opus_capable", "run_playback"]
