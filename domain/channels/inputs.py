"""The inputs channel: keyboard and mouse from the client, LEDs back to it.

Decoded input comes out as :mod:`domain.input_events`. The machine answers motion by itself:
a MOUSE_MOTION_ACK after every 4 motion or position messages (counted together), without which
both real clients freeze the pointer after 8 unacknowledged moves.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from spice.domain.channel import ChannelConnection
from spice.domain.enums import SPICE_INPUT_MOTION_ACK_BUNCH, MouseButton, MouseMode
from spice.domain.errors import MessageDecodeError
from spice.domain.input_events import (
    InputEvent,
    KeyboardModifiersEvent,
    MouseButtonEvent,
    MouseMotionEvent,
    MousePositionEvent,
    MouseWheelEvent,
)
from spice.domain.link import NEED_DATA
from spice.domain.messages import inputs as m
from spice.domain.scancodes import ScancodeDecoder

_WHEEL: dict[int, int] = {MouseButton.UP: -1, MouseButton.DOWN: 1}


class InputsChannel(ChannelConnection):
    CLIENT_MESSAGES = m.CLIENT_MESSAGES

    def __init__(self, *, mini_header: bool, mouse_mode: MouseMode = MouseMode.SERVER) -> None:
        super().__init__(mini_header=mini_header)
        #: The session's mouse mode. As in the reference server, relative motion counts only in
        #: server mode and absolute positions only in client mode (spice-gtk sends a stray
        #: position before a button press even in server mode); both are acked either way.
        self.mouse_mode = mouse_mode
        self._pending: deque[InputEvent] = deque()
        self._motions = 0
        # spice-gtk sends Pause in two KEY_DOWNs (E1 1D, then 45): decode across messages.
        self._keys = ScancodeDecoder()
        #: Key messages dropped because they did not decode (spice-html5 sends a lone E0
        #: for the Windows key); counted, not fatal.
        self.bad_keys = 0

    def start(self, modifiers: int) -> None:
        self.send(m.InputsInit(modifiers))

    def set_modifiers(self, modifiers: int) -> None:
        """Tell the client the keyboard LEDs (SCROLL 1, NUM 2, CAPS 4)."""
        self.send(m.InputsKeyModifiers(modifiers))

    def next_event(self) -> Any:
        if not self._pending:
            # Decodes every buffered message; _handle queues their events in order.
            super().next_event()
        return self._pending.popleft() if self._pending else NEED_DATA

    def _handle(self, msg: Any) -> Any:
        if isinstance(msg, (m.KeyDown, m.KeyUp, m.KeyScancode)):
            try:
                if isinstance(msg, m.KeyScancode):
                    self._pending.extend(self._keys.feed(msg.data))
                else:
                    self._pending.extend(self._keys.feed_code(msg.code))
            except MessageDecodeError:
                self.bad_keys += 1
        elif isinstance(msg, m.ClientKeyModifiers):
            self._pending.append(KeyboardModifiersEvent(msg.modifiers))
        elif isinstance(msg, m.MouseMotion):
            self._count_motion()
            if self.mouse_mode == MouseMode.SERVER:
                self._pending.append(MouseMotionEvent(msg.dx, msg.dy, msg.buttons))
        elif isinstance(msg, m.MousePosition):
            self._count_motion()
            if self.mouse_mode == MouseMode.CLIENT:
                self._pending.append(MousePositionEvent(msg.x, msg.y, msg.buttons, msg.display_id))
        elif isinstance(msg, (m.MousePress, m.MouseRelease)):
            pressed = isinstance(msg, m.MousePress)
            if msg.button in _WHEEL:
                # A notch is a press+release pair; report it once, on the press.
                if pressed:
                    self._pending.append(MouseWheelEvent(_WHEEL[msg.button], msg.buttons))
            else:
                self._pending.append(MouseButtonEvent(msg.button, pressed, msg.buttons))
        return None

    def _count_motion(self) -> None:
        self._motions += 1
        if self._motions % SPICE_INPUT_MOTION_ACK_BUNCH == 0:
            self.send(m.MouseMotionAck())
