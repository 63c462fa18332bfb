"""The record channel's runner and the application's side of every record client
(:class:`RecordHub`, the C server's record interface).

The application starts and stops recording and sets the clients' microphone volume and
mute; every record client (present or later) follows. Frames from the clients come out as
:mod:`spice.domain.audio_events` to each subscriber's bounded queue: a subscriber that does
not keep up loses frames (counted), never the client's connection or memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from spice.adapters.connection import Wakeup
from spice.domain.audio_events import RecordData, RecordEvent, RecordStarted, RecordStopped
from spice.domain.channels.record import (
    DataWhileStopped,
    RecordChannel,
    RecordFrames,
)
from spice.domain.channels.record import RecordStarted as MarkEvent
from spice.domain.channels.registry import KINDS, ChannelSetup
from spice.domain.enums import ChannelType

if TYPE_CHECKING:
    from spice.adapters.channels.context import ChannelContext
    from spice.adapters.link import Linked

log = logging.getLogger(__name__)

RECORD_QUEUE = 256


class RecordClient:
    def __init__(self, machine: RecordChannel, handle: Any) -> None:
        self.machine = machine
        self.handle = handle
        self.wake = Wakeup()
        #: The state the hub wants; the writer brings the machine there.
        self.started_by_app = False


class RecordHub:
    """What ``server.record`` drives."""

    def __init__(self) -> None:
        self.clients: list[RecordClient] = []
        self.recording = False
        self.frequency = 48000
        self.channels = 2
        self.volume: tuple[int, ...] | None = None
        self.mute: bool | None = None
        self._subscribers: list[trio.MemorySendChannel[RecordEvent]] = []
        self._callbacks: list[Callable[[RecordEvent], None]] = []
        #: Events a full subscriber queue did not take.
        self.lost = 0

    def start(self, frequency: int = 48000, channels: int = 2) -> None:
        if channels not in (1, 2) or not 8000 <= frequency <= 48000:
            raise ValueError(f"record at {frequency} Hz x {channels} channels")
        if self.recording and (frequency, channels) != (self.frequency, self.channels):
            self.stop()
        self.frequency, self.channels = frequency, channels
        self.recording = True
        for client in self.clients:
            client.wake.set()

    def stop(self) -> None:
        self.recording = False
        for client in self.clients:
            client.wake.set()

    def set_volume(self, volume: int | tuple[int, ...]) -> None:
        levels = (volume,) * self.channels if isinstance(volume, int) else tuple(volume)
        if not levels or not all(0 <= v <= 0xFFFF for v in levels):
            raise ValueError(f"volume {volume!r}: 0 to 65535 per channel")
        self.volume = levels
        for client in self.clients:
            client.machine.set_volume(levels)
            client.wake.set()

    def set_mute(self, mute: bool) -> None:
        self.mute = bool(mute)
        for client in self.clients:
            client.machine.set_mute(self.mute)
            client.wake.set()

    def subscribe(self, size: int = RECORD_QUEUE) -> trio.MemoryReceiveChannel[RecordEvent]:
        send, receive = trio.open_memory_channel[RecordEvent](size)
        self._subscribers.append(send)
        return receive

    def on_event(self, callback: Callable[[RecordEvent], None]) -> None:
        self._callbacks.append(callback)

    def publish(self, event: RecordEvent) -> None:
        for callback in self._callbacks:
            try:
                callback(event)
            except Exception:
                log.exception("record callback failed")
        for send in list(self._subscribers):
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                self.lost += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(send)

    def close(self) -> None:
        for send in self._subscribers:
            send.close()
        self._subscribers.clear()


async def run_record(
    ctx: ChannelContext, stream: trio.abc.Stream, linked: Linked, label: str
) -> None:
    hub = ctx.record
    kind = KINDS[ChannelType.RECORD]
    machine = kind.make(
        ChannelSetup(
            mini_header=linked.mini_header,
            client_caps=linked.request.channel_caps,
            server_caps=kind.caps,
        )
    )
    assert isinstance(machine, RecordChannel)
    conn = ctx.connection(stream, machine, label, ChannelType.RECORD)
    machine.receive_data(linked.trailing)
    client = RecordClient(machine, ctx.handle)
    if hub.volume is not None:
        machine.set_volume(hub.volume)
    if hub.mute is not None:
        machine.set_mute(hub.mute)
    hub.clients.append(client)
    announced = False

    async def on_event(event: Any) -> None:
        nonlocal announced
        if isinstance(event, RecordFrames):
            if not announced:
                # A client that skipped START_MARK still gets its frames delivered.
                announced = True
                hub.publish(RecordStarted(ctx.handle, event.frequency, event.channels, "raw"))
            hub.publish(
                RecordData(ctx.handle, event.pcm, event.frequency, event.channels, event.time)
            )
        elif isinstance(event, MarkEvent):
            if machine.recording and not announced:
                announced = True
                hub.publish(
                    RecordStarted(
                        ctx.handle, machine.frequency, machine.channels, event.mode.name.lower()
                    )
                )
        elif isinstance(event, DataWhileStopped):
            log.info("%s: record data while no recording is open; dropped", label)

    async def writer() -> None:
        nonlocal announced
        while True:
            if hub.recording and not machine.recording:
                machine.start(frequency=hub.frequency, channels=hub.channels)
            elif not hub.recording and machine.recording:
                machine.stop()
                if announced:
                    announced = False
                    hub.publish(RecordStopped(ctx.handle, "stopped"))
            await conn.flush()
            await client.wake.wait()

    try:
        await ctx.run_pair(conn, on_event, writer)
    finally:
        hub.clients.remove(client)
        if announced:
            hub.publish(RecordStopped(ctx.handle, "disconnected"))
