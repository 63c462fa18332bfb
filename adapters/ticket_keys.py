"""Fresh RSA ticket keys for every link, made ahead of time in another process.

The client encrypts its password under the key the server sent in this link's reply. With one
key for the server's whole life, a ticket captured once (on the plain port, say) links again
later without the password, also on the TLS port; the C server therefore makes a key per link
(``reds_handle_read_link_done``), and so does this. Making an RSA-1024 key takes about 16 ms of
CPU with the GIL held (a worker thread would stall the event loop just the same: measured, the
first frame came 40% later), so :class:`KeyPool` has short-lived child processes, at a lower
CPU priority, make batches whenever the pool is not full, and loads them without re-validating
(10 us each: the child is ours). Each link takes one; only when a burst has emptied the pool is
one made there and then.
"""

from __future__ import annotations

import collections
import logging
import struct
import subprocess
import sys

import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from spice.domain.enums import SPICE_TICKET_KEY_PAIR_LENGTH
from spice.domain.ticket import TicketKey

log = logging.getLogger(__name__)

#: Keys kept ready: one client links 4 to 7 channels at once (each key made costs CPU at start).
POOL_SIZE = 16
#: Keys one child makes (16 ms of CPU each; after the first batch at a lower priority than the
#: server's, so that a client's first frame goes first).
BATCH = 8
NICE = 5

#: The child: argv[1] keys of argv[2] bits as length-prefixed PKCS#8 DER on stdout.
_CHILD = """
import os, struct, sys
os.nice(int(sys.argv[3]))
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
out = sys.stdout.buffer
for _ in range(int(sys.argv[1])):
    key = rsa.generate_private_key(public_exponent=65537, key_size=int(sys.argv[2]))
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    out.write(struct.pack("!H", len(der)) + der)
"""


def generate_key() -> TicketKey:
    return TicketKey(
        rsa.generate_private_key(public_exponent=65537, key_size=SPICE_TICKET_KEY_PAIR_LENGTH)
    )


def load_keys(data: bytes) -> list[TicketKey]:
    """The keys in the child's output."""
    keys = []
    offset = 0
    while offset + 2 <= len(data):
        (size,) = struct.unpack_from("!H", data, offset)
        der = data[offset + 2 : offset + 2 + size]
        offset += 2 + size
        key = serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != SPICE_TICKET_KEY_PAIR_LENGTH:
            raise ValueError("the key maker sent something else than an RSA-1024 key")
        keys.append(TicketKey(key))
    return keys


async def make_batch(count: int, nice: int = 0) -> list[TicketKey]:
    """``count`` keys made by a child process (off this process's GIL)."""
    result = await trio.run_process(
        [sys.executable, "-c", _CHILD, str(count), str(SPICE_TICKET_KEY_PAIR_LENGTH), str(nice)],
        capture_stdout=True,
        capture_stderr=True,
        stdin=subprocess.DEVNULL,
    )
    return load_keys(result.stdout)


class KeyPool:
    def __init__(self, size: int = POOL_SIZE, *, batch: int = BATCH) -> None:
        self.size = size
        self.batch = batch
        self._keys: collections.deque[TicketKey] = collections.deque()
        self._taken = trio.Event()
        self._filled = False

    def __len__(self) -> int:
        return len(self._keys)

    async def take(self) -> TicketKey:
        """A key no other link has seen."""
        self._taken.set()
        if self._keys:
            key = self._keys.popleft()  # before yielding: another link may want the last one
            await trio.lowlevel.checkpoint()
            return key
        return await trio.to_thread.run_sync(generate_key)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the pool filled, until cancelled. Started at once; fills in the background."""
        task_status.started()
        while True:
            if len(self._keys) >= self.size:
                self._taken = trio.Event()
                await self._taken.wait()
                continue
            missing = self.size - len(self._keys)
            first = not self._filled
            try:
                self._keys.extend(
                    await make_batch(
                        missing if first else min(self.batch, missing), 0 if first else NICE
                    )
                )
                self._filled = True
            except (OSError, subprocess.CalledProcessError, ValueError) as exc:
                # No child process (out of descriptors, say): make keys here, more slowly.
                log.warning("cannot make ticket keys in a child process (%s); using a thread", exc)
                while len(self._keys) < self.size:
                    self._keys.append(await trio.to_thread.run_sync(generate_key))
                await trio.sleep(1)
