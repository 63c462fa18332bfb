"""trio-spice: a SPICE remote-display server on Trio.

Embed it::

    import spice, trio

    async def main():
        server = spice.Server(port=5900, disable_ticketing=True)
        display = server.add_display(800, 600)
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            await display.fill(0, 0, 800, 600, 0x336699)
            async with server.input_events() as events:
                async for event in events:
                    print(event)

    trio.run(main)

From a plain thread, see :class:`spice.ServerThread`.
"""

from spice.clipboard import Clipboard, ClipboardType
from spice.display import Display
from spice.domain.agent.app_events import (
    AgentAppEvent,
    ClipboardCleared,
    ClipboardOffered,
    DisplayResizeRequested,
    FileReceived,
    FileTransferAborted,
    FileTransferProgress,
)
from spice.domain.input_events import (
    InputEvent,
    KeyboardModifiersEvent,
    KeyEvent,
    MouseButtonEvent,
    MouseMotionEvent,
    MousePositionEvent,
    MouseWheelEvent,
)
from spice.server import Server
from spice.threaded import ServerThread

__all__ = [
    "AgentAppEvent",
    "Clipboard",
    "ClipboardCleared",
    "ClipboardOffered",
    "ClipboardType",
    "Display",
    "DisplayResizeRequested",
    "FileReceived",
    "FileTransferAborted",
    "FileTransferProgress",
    "InputEvent",
    "KeyEvent",
    "KeyboardModifiersEvent",
    "MouseButtonEvent",
    "MouseMotionEvent",
    "MousePositionEvent",
    "MouseWheelEvent",
    "Server",
    "ServerThread",
]
