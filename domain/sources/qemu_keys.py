"""From the inputs channel's PC/XT set-1 scan codes to the key numbers of QEMU's D-Bus display.

``org.qemu.Display1.Keyboard.Press`` and ``Release`` take a "QEMU key number" (qnum): the set-1
make code for the main block (0x01..0x7F) and, for the ``E0``-prefixed keys, the second byte
with the high bit set (``E0 1C`` keypad Enter is 0x9C; QEMU ignores numbers it has no key
for). Pause, which the keyboard sends as the
six bytes ``E1 1D 45 E1 9D C5``, is 0xC6 in QEMU's numbering (Ctrl+Break's ``E0 46``). QEMU
turns the number into its own key code and from there into whatever its guest keyboard speaks
(PS/2 set 1 or 2, USB HID, virtio-input), so the guest sees the key the client pressed.

Also here: which lock keys to tap so the guest's Caps/Num/Scroll Lock follow the client's.
"""

from __future__ import annotations

from collections.abc import Mapping

from spice.domain.scancodes import PAUSE

#: QEMU's key number for Pause.
QNUM_PAUSE = 0xC6


def _table() -> dict[int, int]:
    # Every make code a KeyEvent can hold: 0x60 and 0x61 are not keys (their break codes
    # would be the prefixes E0 and E1), with or without E0.
    lows = [low for low in range(0x01, 0x80) if low not in (0x60, 0x61)]
    table = {low: low for low in lows}
    table.update({0xE000 | low: 0x80 | low for low in lows})
    table[PAUSE] = QNUM_PAUSE
    return table


#: Set-1 make code (``0xE0xx`` extended, :data:`~spice.domain.scancodes.PAUSE`) to QEMU key
#: number.
SCANCODE_TO_QNUM: Mapping[int, int] = _table()


def qnum_for(scancode: int) -> int | None:
    """QEMU's key number for ``scancode``, or None for a code no PC keyboard sends."""
    return SCANCODE_TO_QNUM.get(scancode)


#: Lock bits, the same in SPICE's KEY_MODIFIERS and QEMU's ``Keyboard.Modifiers``, and the
#: key that toggles each.
SCROLL_LOCK, NUM_LOCK, CAPS_LOCK = 1, 2, 4
_LOCK_KEYS = ((SCROLL_LOCK, 0x46), (NUM_LOCK, 0x45), (CAPS_LOCK, 0x3A))


def lock_keys_to_tap(guest: int, wanted: int) -> list[int]:
    """The scan codes of the lock keys to press and release once so that lock state ``guest``
    becomes ``wanted`` (Scroll, Num, Caps order)."""
    return [key for bit, key in _LOCK_KEYS if (guest ^ wanted) & bit]


__all__ = [
    "CAPS_LOCK",
    "NUM_LOCK",
    "QNUM_PAUSE",
    "SCANCODE_TO_QNUM",
    "SCROLL_LOCK",
    "lock_keys_to_tap",
    "qnum_for",
]
