"""Who may connect and link, and how fast: per-address accounting, pure (time passed in).

The C server leaves this to its host (QEMU); a server of its own has to bound what one
address can make it do. :class:`Admission` counts open connections (in total and per peer
address), paces new connections and link attempts per address with token buckets, and slows
password guessing: after a failed ticket, the next ticket check from that address waits
:attr:`Limits.failed_ticket_delay`, doubling with every further failure up to
:attr:`Limits.max_failed_ticket_delay` (the adapter checks one ticket per address at a time,
so parallel connections gain nothing). Failures are forgotten after
:attr:`Limits.forget_failures_after` seconds without one, or on a good ticket.

Refusals come with whether to log them: one line per address per :data:`LOG_INTERVAL`,
carrying how many were not logged since, so a flood does not flood the log.
"""

from __future__ import annotations

import enum
import math

import attrs

#: Seconds between two log lines about refusals of one address (and of the total limit).
LOG_INTERVAL = 10.0
#: Above this many tracked addresses, idle entries are swept on the next connection.
SWEEP_ABOVE = 1024


@attrs.frozen
class Limits:
    #: Connections open at once, all addresses and ports together (each holds a descriptor).
    max_connections: int = 1000
    #: Connections open at once from one address (a client uses 4 to 8; a browser ~10).
    max_connections_per_address: int = 64
    #: Link attempts a second from one address, sustained, and the burst allowed above it.
    link_rate: float = 20.0
    link_burst: int = 60
    #: New connections a second from one address (twice the link rate: a browser's page
    #: files and WebSockets, or a TLS port after a plain one), and the burst.
    connection_rate: float = 40.0
    connection_burst: int = 120
    #: Seconds the next ticket check from an address waits after a failed one; doubles with
    #: each failure in a row, up to the maximum.
    failed_ticket_delay: float = 1.0
    max_failed_ticket_delay: float = 8.0
    forget_failures_after: float = 300.0

    def __attrs_post_init__(self) -> None:
        if self.max_connections < 1 or self.max_connections_per_address < 1:
            raise ValueError("connection limits must be at least 1")
        if (
            min(self.link_rate, self.connection_rate) <= 0
            or min(self.link_burst, self.connection_burst) < 1
        ):
            raise ValueError("the link rate must be positive and the burst at least 1")
        if self.failed_ticket_delay < 0 or self.max_failed_ticket_delay < 0:
            raise ValueError("ticket delays cannot be negative")


class Refusal(enum.Enum):
    TOO_MANY_CONNECTIONS = "too many connections to the server"
    TOO_MANY_FROM_ADDRESS = "too many connections from this address"
    LINK_RATE = "too many link attempts from this address"
    CONNECTION_RATE = "too many new connections from this address"


@attrs.frozen
class Verdict:
    """A refusal, and whether to log it (``suppressed``: refusals not logged since the last)."""

    refusal: Refusal
    log: bool
    suppressed: int


@attrs.define
class _Address:
    connections: int = 0
    tokens: float = 0.0
    refilled: float = -math.inf
    connection_tokens: float = 0.0
    connection_refilled: float = -math.inf
    failures: int = 0
    last_failure: float = -math.inf
    logged: float = -math.inf
    suppressed: int = 0


class Admission:
    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.connections = 0
        self._addresses: dict[str, _Address] = {}
        self._total_logged = -math.inf
        self._total_suppressed = 0

    def __len__(self) -> int:
        """Addresses tracked (bounded by sweeping idle ones)."""
        return len(self._addresses)

    def connection_opened(self, address: str, now: float) -> Verdict | None:
        """Count a new connection, or refuse it (then it is not counted)."""
        if len(self._addresses) > SWEEP_ABOVE:
            self._sweep(now)
        if self.connections >= self.limits.max_connections:
            log = now - self._total_logged >= LOG_INTERVAL
            suppressed = self._total_suppressed
            if log:
                self._total_logged, self._total_suppressed = now, 0
            else:
                self._total_suppressed += 1
            return Verdict(Refusal.TOO_MANY_CONNECTIONS, log, suppressed)
        entry = self._entry(address, now)
        if entry.connections >= self.limits.max_connections_per_address:
            return self._refuse(entry, Refusal.TOO_MANY_FROM_ADDRESS, now)
        limits = self.limits
        entry.connection_tokens = min(
            limits.connection_burst,
            entry.connection_tokens + (now - entry.connection_refilled) * limits.connection_rate,
        )
        entry.connection_refilled = now
        if entry.connection_tokens < 1:
            return self._refuse(entry, Refusal.CONNECTION_RATE, now)
        entry.connection_tokens -= 1
        entry.connections += 1
        self.connections += 1
        return None

    def connection_closed(self, address: str) -> None:
        entry = self._addresses.get(address)
        if entry is not None and entry.connections > 0:
            entry.connections -= 1
            self.connections -= 1

    def link_attempt(self, address: str, now: float) -> Verdict | None:
        """Take a token for a link attempt, or refuse it."""
        entry = self._entry(address, now)
        limits = self.limits
        entry.tokens = min(
            limits.link_burst, entry.tokens + (now - entry.refilled) * limits.link_rate
        )
        entry.refilled = now
        if entry.tokens < 1:
            return self._refuse(entry, Refusal.LINK_RATE, now)
        entry.tokens -= 1
        return None

    def ticket_delay(self, address: str, now: float) -> float:
        """Seconds to wait before checking a ticket from ``address``."""
        entry = self._addresses.get(address)
        if entry is None or not entry.failures:
            return 0.0
        if now - entry.last_failure >= self.limits.forget_failures_after:
            entry.failures = 0
            return 0.0
        delay = self.limits.failed_ticket_delay * 2 ** min(entry.failures - 1, 30)
        return float(min(delay, self.limits.max_failed_ticket_delay))

    def ticket_checked(self, address: str, ok: bool, now: float) -> None:
        entry = self._entry(address, now)
        if ok:
            entry.failures = 0
        else:
            entry.failures += 1
            entry.last_failure = now

    def failures(self, address: str) -> int:
        entry = self._addresses.get(address)
        return entry.failures if entry is not None else 0

    # -- internals -----------------------------------------------------------------------
    def _entry(self, address: str, now: float) -> _Address:
        entry = self._addresses.get(address)
        if entry is None:
            entry = self._addresses[address] = _Address(
                tokens=float(self.limits.link_burst),
                refilled=now,
                connection_tokens=float(self.limits.connection_burst),
                connection_refilled=now,
            )
        return entry

    def _refuse(self, entry: _Address, refusal: Refusal, now: float) -> Verdict:
        log = now - entry.logged >= LOG_INTERVAL
        suppressed = entry.suppressed
        if log:
            entry.logged, entry.suppressed = now, 0
        else:
            entry.suppressed += 1
        return Verdict(refusal, log, suppressed)

    def _sweep(self, now: float) -> None:
        """Forget addresses with nothing open, a full bucket and no failure to remember."""
        limits = self.limits
        refill_time = max(
            limits.link_burst / limits.link_rate,
            limits.connection_burst / limits.connection_rate,
        )
        idle = [
            address
            for address, entry in self._addresses.items()
            if entry.connections == 0
            and now - entry.refilled >= refill_time
            and (not entry.failures or now - entry.last_failure >= limits.forget_failures_after)
            and now - entry.logged >= LOG_INTERVAL
        ]
        for address in idle:
            del self._addresses[address]
