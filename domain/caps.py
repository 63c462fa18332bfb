"""Capability sets and the negotiation rules.

On the wire a capability set is an array of little-endian uint32 words; capability ``n`` is bit
``n % 32`` of word ``n // 32`` and missing words read as zero. Every link carries two sets:
"common" capabilities (shared by all channels) and "channel" capabilities (per channel type).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import attrs


@attrs.frozen
class CapabilitySet:
    """An immutable set of capability numbers."""

    bits: frozenset[int] = attrs.field(factory=frozenset)

    @classmethod
    def of(cls, *caps: int) -> CapabilitySet:
        return cls(frozenset(int(c) for c in caps))

    @classmethod
    def from_words(cls, words: Iterable[int]) -> CapabilitySet:
        bits: set[int] = set()
        for index, word in enumerate(words):
            for bit in range(32):
                if word >> bit & 1:
                    bits.add(index * 32 + bit)
        return cls(frozenset(bits))

    def words(self) -> tuple[int, ...]:
        if not self.bits:
            return ()
        out = [0] * (max(self.bits) // 32 + 1)
        for cap in self.bits:
            out[cap // 32] |= 1 << (cap % 32)
        return tuple(out)

    def encode(self) -> bytes:
        w = self.words()
        return struct.pack(f"<{len(w)}I", *w)

    def __contains__(self, cap: object) -> bool:
        return cap in self.bits

    def __and__(self, other: CapabilitySet) -> CapabilitySet:
        return CapabilitySet(self.bits & other.bits)


@attrs.frozen
class NegotiatedCaps:
    """What both ends of one channel connection support. A feature is used only when it is in
    both sets, except where the protocol says one side's announcement alone decides (the data
    header kind follows the client's MINI_HEADER; auth selection follows the client's cap)."""

    client_common: CapabilitySet
    client_channel: CapabilitySet
    server_common: CapabilitySet
    server_channel: CapabilitySet

    def common(self, cap: int) -> bool:
        return cap in self.client_common and cap in self.server_common

    def channel(self, cap: int) -> bool:
        return cap in self.client_channel and cap in self.server_channel

    def client_has(self, cap: int) -> bool:
        return cap in self.client_channel
