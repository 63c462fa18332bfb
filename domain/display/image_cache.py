"""The server's model of one client's image (pixmap) cache.

The client keeps every image the server sends with CACHE_ME under the image's id and never
evicts on its own; the server owns the accounting: the pixels of what it asked the client to
keep stay within the size the client announced in DISPLAY_INIT, and what the server evicts it
tells the client with INVAL_LIST. A FROM_CACHE for an id the client does not hold hangs
spice-gtk's display channel, so the model must never claim an id the client was not sent or
was told to drop: ids are handed out here, only here, and an id is never reused.

Content is named by a digest of its pixels, so the same picture drawn anywhere (a repeated
tile, a window moved back, a blinking cursor's two states) is sent once and then referenced.
Ids stay below 2**31: spice-html5 reads the 64-bit id with a helper that loses the high word.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

#: The most pixels the model will account for, whatever the client announced (about 1 GiB of
#: client memory at 4 bytes a pixel): an absurd announcement cannot make either side grow
#: without bound.
MAX_CACHE_PIXELS = 256 * 1024 * 1024
#: The most images the model tracks; past this the oldest are evicted as if the cache were
#: full, which bounds the server's memory per client.
MAX_ENTRIES = 4096
#: Images smaller than this are not worth a cache slot (the reference for a hit is 18 bytes
#: of descriptor, the image itself barely more).
MIN_CACHED_PIXELS = 256
_ID_LIMIT = 1 << 31


@attrs.frozen
class CacheHit:
    id: int


@attrs.frozen
class CacheAdd:
    """Send the image with CACHE_ME under ``id``, after an INVAL_LIST of ``evicted`` (if any)."""

    id: int
    evicted: tuple[int, ...]


@attrs.frozen
class NotCached:
    """Send the image plainly under ``id`` (not kept by the client)."""

    id: int


Placement = CacheHit | CacheAdd | NotCached


class ImageCache:
    def __init__(self, size_pixels: int) -> None:
        if size_pixels < 0:
            raise ValueError(f"negative image cache size {size_pixels}")
        self.capacity = min(size_pixels, MAX_CACHE_PIXELS)
        self._entries: OrderedDict[bytes, tuple[int, int]] = OrderedDict()  # digest -> id, px
        self._used = 0
        self._next_id = 1
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def used(self) -> int:
        return self._used

    def held_ids(self) -> set[int]:
        return {image_id for image_id, _ in self._entries.values()}

    def _new_id(self) -> int:
        image_id = self._next_id
        self._next_id += 1
        if self._next_id >= _ID_LIMIT:
            raise OverflowError("image ids exhausted for this connection")
        return image_id

    def place(self, digest: bytes, pixels: int, *, cacheable: bool = True) -> Placement:
        """Decide how an image with this content digest and pixel count goes to the client,
        and update the model as if it was sent so."""
        held = self._entries.get(digest)
        if held is not None:
            self._entries.move_to_end(digest)
            self.hits += 1
            return CacheHit(held[0])
        image_id = self._new_id()
        if not cacheable or pixels < MIN_CACHED_PIXELS or pixels > self.capacity:
            return NotCached(image_id)
        evicted: list[int] = []
        while self._entries and (
            self._used + pixels > self.capacity or len(self._entries) >= MAX_ENTRIES
        ):
            _, (old_id, old_pixels) = self._entries.popitem(last=False)
            self._used -= old_pixels
            evicted.append(old_id)
        self._entries[digest] = (image_id, pixels)
        self._used += pixels
        return CacheAdd(image_id, tuple(evicted))

    def uncached(self) -> NotCached:
        """An image the client is not to keep (no digest names its content)."""
        return NotCached(self._new_id())

    def clear(self) -> None:
        """The client dropped everything (INVAL_ALL_PIXMAPS was sent)."""
        self._entries.clear()
        self._used = 0
