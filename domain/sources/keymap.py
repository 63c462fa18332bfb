"""From the inputs channel's PC/XT set-1 scan codes to the keycodes of an X server.

A scan code names a key by its place on the keyboard, and so does an X keycode; the X server's
layout then gives the character. So the first choice maps place to place: Linux's evdev
numbering (which is set 1's make code for the main block, and a table for the ``E0`` keys) plus
8, the keycodes of every X server that uses the evdev rules (Xorg, Xvfb, Xspice on Debian).
Whether a server does is read from its own keymap: Escape, Return and space at their evdev
places. A server with another numbering (the old ``xfree86`` keycodes, a VNC server's
synthetic map) gets the keysym the key carries on a US keyboard looked up in its keymap
instead; a key that has no keycode there is dropped and the adapter logs it once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from spice.domain.scancodes import PAUSE

#: X keycodes are evdev codes plus this, on servers that use the evdev rules.
EVDEV_OFFSET = 8


def _main_block() -> dict[int, int]:
    # Set 1 make codes 0x01..0x53 are evdev codes 1..83 (Esc .. keypad '.'); then the
    # 102nd key (between left Shift and Z) and F11, F12.
    table = {code: code for code in range(0x01, 0x54)}
    table.update({0x56: 86, 0x57: 87, 0x58: 88})
    return table


#: Set-1 make code (``0xE0xx`` for extended keys, :data:`~spice.domain.scancodes.PAUSE`) to
#: Linux evdev key code (linux/input-event-codes.h).
SCANCODE_TO_EVDEV: Mapping[int, int] = {
    **_main_block(),
    0xE01C: 96,  # KEY_KPENTER
    0xE01D: 97,  # KEY_RIGHTCTRL
    0xE020: 113,  # KEY_MUTE
    0xE02E: 114,  # KEY_VOLUMEDOWN
    0xE030: 115,  # KEY_VOLUMEUP
    0xE035: 98,  # KEY_KPSLASH
    0xE037: 99,  # KEY_SYSRQ (Print Screen)
    0xE038: 100,  # KEY_RIGHTALT
    0xE047: 102,  # KEY_HOME
    0xE048: 103,  # KEY_UP
    0xE049: 104,  # KEY_PAGEUP
    0xE04B: 105,  # KEY_LEFT
    0xE04D: 106,  # KEY_RIGHT
    0xE04F: 107,  # KEY_END
    0xE050: 108,  # KEY_DOWN
    0xE051: 109,  # KEY_PAGEDOWN
    0xE052: 110,  # KEY_INSERT
    0xE053: 111,  # KEY_DELETE
    0xE05B: 125,  # KEY_LEFTMETA
    0xE05C: 126,  # KEY_RIGHTMETA
    0xE05D: 127,  # KEY_COMPOSE (Menu)
    PAUSE: 119,  # KEY_PAUSE
}


def _us_keysyms() -> dict[int, int]:
    table: dict[int, int] = {}
    rows = (
        (0x02, "1234567890-="),
        (0x10, "qwertyuiop[]"),
        (0x1E, "asdfghjkl;'`"),
        (0x2B, "\\zxcvbnm,./"),
    )
    for start, chars in rows:
        for i, ch in enumerate(chars):
            table[start + i] = ord(ch)  # Latin-1 keysyms are the characters' code points
    table[0x39] = ord(" ")
    for i in range(10):  # F1..F10
        table[0x3B + i] = 0xFFBE + i
    table.update({0x57: 0xFFC8, 0x58: 0xFFC9})  # F11, F12
    table.update(
        {
            0x01: 0xFF1B,  # Escape
            0x0E: 0xFF08,  # BackSpace
            0x0F: 0xFF09,  # Tab
            0x1C: 0xFF0D,  # Return
            0x1D: 0xFFE3,  # Control_L
            0x2A: 0xFFE1,  # Shift_L
            0x36: 0xFFE2,  # Shift_R
            0x37: 0xFFAA,  # KP_Multiply
            0x38: 0xFFE9,  # Alt_L
            0x3A: 0xFFE5,  # Caps_Lock
            0x45: 0xFF7F,  # Num_Lock
            0x46: 0xFF14,  # Scroll_Lock
            0x47: 0xFFB7,  # KP_7
            0x48: 0xFFB8,
            0x49: 0xFFB9,
            0x4A: 0xFFAD,  # KP_Subtract
            0x4B: 0xFFB4,
            0x4C: 0xFFB5,
            0x4D: 0xFFB6,
            0x4E: 0xFFAB,  # KP_Add
            0x4F: 0xFFB1,
            0x50: 0xFFB2,
            0x51: 0xFFB3,
            0x52: 0xFFB0,  # KP_0
            0x53: 0xFFAE,  # KP_Decimal
            0x56: ord("<"),  # the 102nd key
            0xE01C: 0xFF8D,  # KP_Enter
            0xE01D: 0xFFE4,  # Control_R
            0xE035: 0xFFAF,  # KP_Divide
            0xE037: 0xFF61,  # Print
            0xE038: 0xFFEA,  # Alt_R
            0xE047: 0xFF50,  # Home
            0xE048: 0xFF52,  # Up
            0xE049: 0xFF55,  # Prior
            0xE04B: 0xFF51,  # Left
            0xE04D: 0xFF53,  # Right
            0xE04F: 0xFF57,  # End
            0xE050: 0xFF54,  # Down
            0xE051: 0xFF56,  # Next
            0xE052: 0xFF63,  # Insert
            0xE053: 0xFFFF,  # Delete
            0xE05B: 0xFFEB,  # Super_L
            0xE05C: 0xFFEC,  # Super_R
            0xE05D: 0xFF67,  # Menu
            PAUSE: 0xFF13,  # Pause
        }
    )
    return table


#: The keysym each key carries unshifted on a US keyboard: the fallback for servers whose
#: keycodes are not evdev's.
SCANCODE_TO_US_KEYSYM: Mapping[int, int] = _us_keysyms()

#: (evdev code, keysym) pairs an evdev keymap has whatever its layout: Escape, Return, space.
_EVDEV_WITNESSES = ((1, 0xFF1B), (28, 0xFF0D), (57, 0x20))


@attrs.frozen
class XKeymap:
    """An X server's core keyboard mapping (GetKeyboardMapping): ``keysyms[i]`` lists the
    keysyms of keycode ``min_keycode + i``, 0 for none."""

    min_keycode: int
    keysyms: Sequence[Sequence[int]]

    @classmethod
    def from_flat(cls, min_keycode: int, per_keycode: int, flat: Sequence[int]) -> XKeymap:
        """From the reply's flat list of ``per_keycode`` keysyms per keycode."""
        if per_keycode <= 0:
            return cls(min_keycode, ())
        rows = [tuple(flat[i : i + per_keycode]) for i in range(0, len(flat), per_keycode)]
        return cls(min_keycode, tuple(rows))

    def syms(self, keycode: int) -> Sequence[int]:
        i = keycode - self.min_keycode
        if 0 <= i < len(self.keysyms):
            return self.keysyms[i]
        return ()

    def find(self, keysym: int) -> int | None:
        """The lowest keycode carrying ``keysym`` without a modifier (first or second column),
        else anywhere; None when no key has it."""
        for columns in ((0, 1), None):
            for i, syms in enumerate(self.keysyms):
                picked = syms[:2] if columns else syms
                if keysym in picked:
                    return self.min_keycode + i
        return None


class KeyMapper:
    """Scan code to X keycode for one X server's keymap."""

    def __init__(self, keymap: XKeymap) -> None:
        self.keymap = keymap
        self.evdev = all(
            keysym in keymap.syms(code + EVDEV_OFFSET) for code, keysym in _EVDEV_WITNESSES
        )
        self._cache: dict[int, int | None] = {}

    def keycode(self, scancode: int) -> int | None:
        """The X keycode for set-1 key ``scancode``, or None when this server has none."""
        if scancode not in self._cache:
            self._cache[scancode] = self._lookup(scancode)
        return self._cache[scancode]

    def _lookup(self, scancode: int) -> int | None:
        if self.evdev:
            evdev = SCANCODE_TO_EVDEV.get(scancode)
            if evdev is not None and any(self.keymap.syms(evdev + EVDEV_OFFSET)):
                return evdev + EVDEV_OFFSET
        keysym = SCANCODE_TO_US_KEYSYM.get(scancode)
        return None if keysym is None else self.keymap.find(keysym)
