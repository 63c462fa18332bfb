"""Encoded images shared by every viewer of a display.

A surface's (box, generation) names one content exactly (see :mod:`domain.display.surface`),
so an image encoded for one viewer serves every other viewer that asks for the same box at the
same generation with the same codec policy: twenty viewers in step cost one encode. Viewers
always ask for the current generation of an area, so an entry whose area has changed since
can never be asked for again: :meth:`EncodeCache.prune` drops those after every change, and
what stays is about one screen of current content. The cache is also bounded by payload bytes
and then forgets the least recently used entries first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import attrs

from spice.domain.codecs.select import CodecPolicy, EncodedImage
from spice.domain.geometry import Box

#: Payload bytes kept; a few 1080p frames of the biggest (BITMAP) encoding.
DEFAULT_LIMIT = 48 * 1024 * 1024


@attrs.frozen
class EncodeKey:
    box: Box
    generation: int
    policy: CodecPolicy


class EncodeCache:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._entries: OrderedDict[EncodeKey, EncodedImage] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, key: EncodeKey) -> EncodedImage | None:
        image = self._entries.get(key)
        if image is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return image

    def put(self, key: EncodeKey, image: EncodedImage) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.payload)
        size = len(image.payload)
        if size > self.limit:
            return
        while self._entries and self._bytes + size > self.limit:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped.payload)
        self._entries[key] = image
        self._bytes += size

    def prune(self, generation: Callable[[Box], int], near: Sequence[Box] | None = None) -> None:
        """Drop the entries whose area has changed since they were encoded (``generation``
        gives an area's current generation). ``near``: only entries overlapping one of
        these boxes can have changed (the tile cover of what was drawn), so only those are
        looked at; None: all are."""
        stale = [
            key
            for key in self._entries
            if (near is None or any(key.box.overlaps(box) for box in near))
            and generation(key.box) != key.generation
        ]
        for key in stale:
            self._bytes -= len(self._entries.pop(key).payload)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
