"""A budget on one inputs channel's events, so that one client cannot make everyone's input
(and the application) wait behind a flood of its own.

Each inputs connection gets ``rate`` events a second with bursts of ``burst`` (a person makes
a few dozen; key repeat 30). Above that, mouse motion is coalesced into the latest position
(relative motion summed), and other events (keys, buttons, wheel) are paced: this client's
reader waits for its budget, so its own socket fills and TCP slows it down, while other
clients' input goes on. Nothing a person types is dropped; the first time a client goes over
its budget is logged in one line, and how much was coalesced when it leaves.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from spice.domain.input_events import InputEvent, MouseMotionEvent, MousePositionEvent

log = logging.getLogger(__name__)

Deliver = Callable[[InputEvent], Awaitable[None]]


class InputGate:
    def __init__(self, deliver: Deliver, *, rate: float, burst: int, label: str) -> None:
        self.deliver = deliver
        self.rate = rate
        self.burst = float(burst)
        self.label = label
        self._tokens = float(burst)
        self._refilled = trio.current_time()
        self._held: MouseMotionEvent | MousePositionEvent | None = None
        self.coalesced = 0
        self.paced = 0
        self._warned = False

    def _refill(self) -> None:
        now = trio.current_time()
        self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now

    async def __call__(self, event: InputEvent) -> None:
        self._refill()
        if isinstance(event, (MouseMotionEvent, MousePositionEvent)):
            if self._tokens < 1:
                self._hold(event)
                return
            event = self._merged(event)
            self._tokens -= 1
            await self.deliver(event)
            return
        if self._held is not None:
            held, self._held = self._held, None
            await self._spend()
            await self.deliver(held)
        await self._spend()
        await self.deliver(event)

    async def _spend(self) -> None:
        """Take one event's budget, waiting for it if there is none."""
        self._refill()
        if self._tokens < 1:
            self._over_budget()
            self.paced += 1
            await trio.sleep((1 - self._tokens) / self.rate)
            self._refill()
        self._tokens -= 1

    def _hold(self, event: MouseMotionEvent | MousePositionEvent) -> None:
        self._over_budget()
        self.coalesced += 1
        self._held = self._merged(event)

    def _merged(
        self, event: MouseMotionEvent | MousePositionEvent
    ) -> MouseMotionEvent | MousePositionEvent:
        """``event`` with the motion held before it folded in."""
        held, self._held = self._held, None
        if isinstance(held, MouseMotionEvent) and isinstance(event, MouseMotionEvent):
            return MouseMotionEvent(held.dx + event.dx, held.dy + event.dy, event.buttons)
        return event

    def _over_budget(self) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "%s: input over %.0f events/s: motion coalesced, other input slowed down",
                self.label,
                self.rate,
            )

    async def flush(self) -> None:
        """Deliver the motion still held (when the channel ends)."""
        if self._held is not None:
            held, self._held = self._held, None
            await self.deliver(held)
        if self.coalesced or self.paced:
            log.info(
                "%s: %d motion events coalesced, %d events slowed down",
                self.label,
                self.coalesced,
                self.paced,
            )
