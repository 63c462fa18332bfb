"""Fresh RSA ticket keys for every link, made ahead of time.

The client encrypts its password under the key the server sent in this link's reply. With one
key for the server's whole life, a ticket captured once (on the plain port, say) links again
later without the password, also on the TLS port; the C server therefore makes a key per link
(``reds_handle_read_link_done``), and so does this. Making an RSA-1024 key takes about 16 ms of
CPU with the GIL held, so doing it on the connect path would cost every channel of every client
that much: :class:`KeyPool` keeps a few made in a worker thread while the server is idle, and
each link takes one (making one there and then only when a burst has emptied the pool).
"""

from __future__ import annotations

import collections
import logging

import trio
from cryptography.hazmat.primitives.asymmetric import rsa

from spice.domain.enums import SPICE_TICKET_KEY_PAIR_LENGTH
from spice.domain.ticket import TicketKey

log = logging.getLogger(__name__)

#: Keys kept ready: one client links 4 to 7 channels at once.
POOL_SIZE = 8
#: Seconds to wait after a take before refilling, so a client's connect burst (its channels
#: and first frame) is not slowed by key making, which holds the GIL.
REFILL_DELAY = 0.5


def generate_key() -> TicketKey:
    return TicketKey(
        rsa.generate_private_key(public_exponent=65537, key_size=SPICE_TICKET_KEY_PAIR_LENGTH)
    )


class KeyPool:
    def __init__(self, size: int = POOL_SIZE, *, refill_delay: float = REFILL_DELAY) -> None:
        self.size = size
        self.refill_delay = refill_delay
        self._keys: collections.deque[TicketKey] = collections.deque()
        self._taken = trio.Event()

    def __len__(self) -> int:
        return len(self._keys)

    async def take(self) -> TicketKey:
        """A key no other link has seen."""
        self._taken.set()
        if self._keys:
            key = self._keys.popleft()
            await trio.lowlevel.checkpoint()
            return key
        return await trio.to_thread.run_sync(generate_key)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the pool full, until cancelled. Started at once; fills in the background."""
        task_status.started()
        while True:
            while len(self._keys) < self.size:
                self._keys.append(await trio.to_thread.run_sync(generate_key))
            self._taken = trio.Event()
            await self._taken.wait()
            # Wait for the burst to end: refill once nothing was taken for refill_delay.
            while self.refill_delay > 0:
                self._taken = trio.Event()
                with trio.move_on_after(self.refill_delay) as quiet:
                    await self._taken.wait()
                if quiet.cancelled_caught:
                    break
