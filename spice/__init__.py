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

From a plain thread, see :class:`spice.ServerThread`. Errors raised on purpose derive from
:class:`spice.Error`.
"""

from importlib import metadata as _metadata

from spice.adapters.session import Client
from spice.audio import Playback, Record
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
from spice.domain.audio_events import RecordData, RecordEvent, RecordStarted, RecordStopped
from spice.domain.input_events import (
    InputClient,
    InputEvent,
    KeyboardModifiersEvent,
    KeyEvent,
    MouseButtonEvent,
    MouseMotionEvent,
    MousePositionEvent,
    MouseWheelEvent,
)
from spice.domain.port_events import PortClosed, PortEventReceived, PortOpened
from spice.errors import ConfigError, Error, ListenError, ServerFailed, ServerStateError
from spice.port import Port
from spice.server import Server
from spice.threaded import ServerThread, SyncDisplay

try:
    __version__ = _metadata.version("trio-spice")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "AgentAppEvent",
    "Client",
    "Clipboard",
    "ClipboardCleared",
    "ClipboardOffered",
    "ClipboardType",
    "ConfigError",
    "Display",
    "DisplayResizeRequested",
    "Error",
    "FileReceived",
    "FileTransferAborted",
    "FileTransferProgress",
    "InputClient",
    "InputEvent",
    "KeyEvent",
    "KeyboardModifiersEvent",
    "ListenError",
    "MouseButtonEvent",
    "MouseMotionEvent",
    "MousePositionEvent",
    "MouseWheelEvent",
    "Playback",
    "Port",
    "PortClosed",
    "PortEventReceived",
    "PortOpened",
    "Record",
    "RecordData",
    "RecordEvent",
    "RecordStarted",
    "RecordStopped",
    "Server",
    "ServerFailed",
    "ServerStateError",
    "ServerThread",
    "SyncDisplay",
    "__version__",
]
