"""The cursor channel: the pointer's shape and position as the application sets them.

After the link the server sends SET_ACK and CURSOR_INIT with the current state; later SET,
MOVE and HIDE. spice-html5 ignores the shape in INIT, so a SET with the shape follows it.
"""

from __future__ import annotations

from spice.domain.channel import ACK_WINDOW, ChannelConnection
from spice.domain.messages import cursor as m


class CursorChannel(ChannelConnection):
    CLIENT_MESSAGES: dict[int, type] = {}

    def __init__(self, *, mini_header: bool) -> None:
        super().__init__(mini_header=mini_header, ack_window=ACK_WINDOW)

    def start(self, x: int, y: int, visible: bool, shape: m.CursorShape | None) -> None:
        self.send(m.CursorInit(x, y, visible, shape))
        if shape is not None:
            self.send(m.CursorSet(x, y, visible, shape))

    def set(self, x: int, y: int, visible: bool, shape: m.CursorShape | None) -> None:
        self.send(m.CursorSet(x, y, visible, shape))

    def move(self, x: int, y: int) -> None:
        self.send(m.CursorMove(x, y))

    def hide(self) -> None:
        self.send(m.CursorHide())
