"""PC/XT scan code set 1, as the inputs channel carries it, turned into key events.

KEY_DOWN and KEY_UP carry up to four set-1 bytes packed little-endian in a uint32 (read low
byte first up to a zero byte, as the reference server does); KEY_SCANCODE carries the bytes
themselves, possibly several keys. A byte ``b`` is key ``b & 0x7F``, pressed unless bit 7 is
set. ``E0 b`` is an extended key, written here as ``0xE000 | (b & 0x7F)`` (Up = 0xE048, Right
Ctrl = 0xE01D). Whether a key went down or up is read from the bytes, never from which
message carried them (also as the reference server does).

Pause is the one key that uses ``E1``. A real keyboard sends ``E1 1D 45 E1 9D C5`` on press
and nothing on release. Here ``E1 1D 45`` is Pause pressed and ``E1 9D C5`` Pause released,
both as key :data:`PAUSE` = 0xE11D45; so the keyboard's six bytes give a press and a release,
which is what the key means. spice-gtk splits the sequence differently: KEY_DOWN ``E1 1D``
then KEY_DOWN ``45`` on press, KEY_UP ``E1 9D`` then KEY_UP ``C5`` on release. Decoding those
messages one at a time would see a NumLock key in the second half, so a connection must use a
:class:`ScancodeDecoder`, which holds an unfinished Pause sequence (and only that) from one
message to the next. The plain functions decode one complete sequence.

Anything else (a lone ``E0`` or ``E1`` at the end, ``E0 E0``, byte 00, a broken Pause
sequence) raises :class:`~domain.errors.MessageDecodeError`. The fake shifts some keyboards
wrap around Print Screen (``E0 2A`` ... ``E0 AA``) come out as key 0xE02A events; key maps leave
them unmapped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from spice.domain.errors import MessageDecodeError

if TYPE_CHECKING:
    from spice.domain.input_events import InputClient

#: The Pause key (``E1 1D 45``).
PAUSE = 0xE11D45

_E0 = 0xE0
_E1 = 0xE1
_PAUSE_DOWN = b"\xe1\x1d\x45"
_PAUSE_UP = b"\xe1\x9d\xc5"
#: Unfinished Pause sequences a decoder may carry to the next message.
_PAUSE_PREFIXES = frozenset({b"\xe1", b"\xe1\x1d", b"\xe1\x9d"})


def _is_key(scancode: int) -> bool:
    """A make code that set 1 can carry. 0x60 and 0x61 are left out: their break codes would
    be the prefix bytes E0 and E1 (no keyboard uses them)."""
    if scancode == PAUSE:
        return True
    if scancode > 0xFF:
        if scancode >> 8 != 0xE0:
            return False
        scancode &= 0xFF
    return 0 < scancode < 0x80 and scancode not in (0x60, 0x61)


def _check_scancode(_inst: object, _attribute: object, value: int) -> None:
    if not (isinstance(value, int) and _is_key(value)):
        raise ValueError(f"not a set-1 make code: {value!r}")


@attrs.frozen
class KeyEvent:
    """Key ``scancode`` (set-1 make code; ``0xE0xx`` extended; :data:`PAUSE`) went down or up."""

    scancode: int = attrs.field(validator=_check_scancode)
    pressed: bool
    #: Who pressed it (see :class:`~domain.input_events.InputClient`); not part of equality.
    client: InputClient | None = attrs.field(default=None, eq=False, kw_only=True, repr=False)


def _decode(buf: bytes, *, keep_pause_prefix: bool) -> tuple[list[KeyEvent], bytes]:
    """Events for ``buf``, and the unfinished Pause prefix left at its end (only if allowed)."""
    events: list[KeyEvent] = []
    i, n = 0, len(buf)
    while i < n:
        b = buf[i]
        if b == _E0:
            if i + 1 == n:
                raise MessageDecodeError("scan codes: E0 prefix with no key after it")
            b = buf[i + 1]
            code = 0xE000 | (b & 0x7F)
            if not _is_key(code):  # also E0 E0 and E0 E1, whose keys 0x60, 0x61 don't exist
                raise MessageDecodeError(f"scan codes: E0 {b:02X} is not a key")
            events.append(KeyEvent(code, not b & 0x80))
            i += 2
        elif b == _E1:
            seq = buf[i : i + 3]
            if seq == _PAUSE_DOWN:
                events.append(KeyEvent(PAUSE, True))
            elif seq == _PAUSE_UP:
                events.append(KeyEvent(PAUSE, False))
            elif keep_pause_prefix and seq in _PAUSE_PREFIXES:
                return events, seq  # shorter than 3 bytes: it is the end of buf
            else:
                raise MessageDecodeError(f"scan codes: bad Pause sequence {seq.hex(' ')}")
            i += 3
        else:
            if not _is_key(b & 0x7F):
                raise MessageDecodeError(f"scan codes: {b:02X} is not a key")
            events.append(KeyEvent(b & 0x7F, not b & 0x80))
            i += 1
    return events, b""


def _code_bytes(code: int) -> bytes:
    if not 0 <= code <= 0xFFFFFFFF:
        raise ValueError(f"key code {code!r} is not a uint32")
    raw = code.to_bytes(4, "little")
    end = raw.find(0)
    return raw if end < 0 else raw[:end]


def key_events_from_bytes(data: bytes) -> list[KeyEvent]:
    """The key events of a complete set-1 byte sequence (a KEY_SCANCODE body)."""
    events, _ = _decode(bytes(data), keep_pause_prefix=False)
    return events


def key_events_from_code(code: int) -> list[KeyEvent]:
    """The key events of a complete KEY_DOWN / KEY_UP code (a uint32; 0 gives none). Bytes
    after the first zero byte are ignored, as the reference server ignores them."""
    return key_events_from_bytes(_code_bytes(code))


class ScancodeDecoder:
    """Per-connection decoder that accepts a Pause sequence split across messages (spice-gtk
    sends it so). Any error drops what was held, so the next message starts afresh."""

    def __init__(self) -> None:
        self._held = b""

    @property
    def held(self) -> bytes:
        """The unfinished Pause prefix carried to the next message (empty, E1, E1 1D, E1 9D)."""
        return self._held

    def feed(self, data: bytes) -> list[KeyEvent]:
        """The events of a KEY_SCANCODE body."""
        buf, self._held = self._held + bytes(data), b""
        events, self._held = _decode(buf, keep_pause_prefix=True)
        return events

    def feed_code(self, code: int) -> list[KeyEvent]:
        """The events of a KEY_DOWN / KEY_UP code."""
        return self.feed(_code_bytes(code))


def bytes_for(event: KeyEvent) -> bytes:
    """The set-1 bytes a keyboard would send for ``event``."""
    if event.scancode == PAUSE:
        return _PAUSE_DOWN if event.pressed else _PAUSE_UP
    release = 0 if event.pressed else 0x80
    if event.scancode > 0xFF:
        return bytes((_E0, (event.scancode & 0x7F) | release))
    return bytes((event.scancode | release,))


def code_for(event: KeyEvent) -> int:
    """The KEY_DOWN / KEY_UP code that carries ``event`` (the inverse of
    :func:`key_events_from_code`)."""
    return int.from_bytes(bytes_for(event), "little")
