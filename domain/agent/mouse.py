"""Client mouse mode through the agent: VD_AGENT_MOUSE_STATE to input events.

In libspice-server, when the session is in client mouse mode and an agent with mouse support
is attached, the inputs channel does not hand absolute positions to a tablet device: it writes
a MOUSE_STATE (``uint32 x, y, buttons; uint8 display_id``) to the agent, whose button mask is
the inputs channel's shifted left by one (LBUTTON = 2 ... EBUTTON = 128). Our agent is the app,
so :class:`AgentMouse` turns those states back into the events the inputs machine produces:
a :class:`MousePositionEvent` when the pointer moved, a :class:`MouseButtonEvent` per button
that changed, and a :class:`MouseWheelEvent` when UP or DOWN goes down (a notch is a press and
a release). Masks in the events are the inputs channel's (``MouseButtonMask``).
"""

from __future__ import annotations

from spice.domain.agent.messages import AgentButtonMask, MouseState
from spice.domain.enums import MouseButton
from spice.domain.input_events import (
    InputEvent,
    MouseButtonEvent,
    MousePositionEvent,
    MouseWheelEvent,
)

_BUTTONS: tuple[tuple[AgentButtonMask, MouseButton], ...] = (
    (AgentButtonMask.LBUTTON, MouseButton.LEFT),
    (AgentButtonMask.MBUTTON, MouseButton.MIDDLE),
    (AgentButtonMask.RBUTTON, MouseButton.RIGHT),
    (AgentButtonMask.SBUTTON, MouseButton.SIDE),
    (AgentButtonMask.EBUTTON, MouseButton.EXTRA),
)
_WHEEL: tuple[tuple[AgentButtonMask, int], ...] = (
    (AgentButtonMask.UBUTTON, -1),
    (AgentButtonMask.DBUTTON, 1),
)
_KNOWN = 0xFE


class AgentMouse:
    """Successive MOUSE_STATEs of one session to input events."""

    def __init__(self) -> None:
        self._pos: tuple[int, int, int] | None = None
        self._buttons = 0

    def feed(self, state: MouseState) -> list[InputEvent]:
        buttons = state.buttons & _KNOWN
        spice_mask = buttons >> 1
        events: list[InputEvent] = []
        pos = (state.x, state.y, state.display_id)
        if pos != self._pos:
            self._pos = pos
            events.append(
                MousePositionEvent(state.x, state.y, self._buttons >> 1, state.display_id)
            )
        changed = buttons ^ self._buttons
        for bit, button in _BUTTONS:
            if changed & bit:
                events.append(MouseButtonEvent(button, bool(buttons & bit), spice_mask))
        for bit, dy in _WHEEL:
            if changed & bit and buttons & bit:
                events.append(MouseWheelEvent(dy, spice_mask))
        self._buttons = buttons
        return events
