"""The SPICE guest agent (VD_AGENT) spoken by the server itself.

In libspice-server the guest's vdagent talks VD_AGENT through a virtio port and the server
relays it over the main channel. In trio-spice the application is the guest, so the agent is
emulated in-process: :mod:`.messages` holds the byte-exact VD_AGENT messages, :mod:`.stream`
the AGENT_DATA reassembly, chunking and tokens, :mod:`.file_xfer` the START key file and the
name rule, :mod:`.mouse` MOUSE_STATE to input events, :mod:`.events` what the machine reports,
and :mod:`.machine` the sans-I/O :class:`AgentMachine` (clipboard, resize, file transfer) that
the main channel's adapter drives; its docstring is the adapter's contract. Nothing here does
I/O or reads a clock.
"""

from __future__ import annotations

from spice.domain.agent.events import (
    AgentEvent,
    ClipboardData,
    ClipboardGrabbed,
    ClipboardRefused,
    ClipboardReleased,
    ClipboardRequested,
    FileTransferCancelled,
    FileTransferCompleted,
    FileTransferData,
    FileTransferFailed,
    FileTransferStarted,
    ResizeRequest,
)
from spice.domain.agent.machine import AgentConfig, AgentMachine

__all__ = [
    "AgentConfig",
    "AgentEvent",
    "AgentMachine",
    "ClipboardData",
    "ClipboardGrabbed",
    "ClipboardRefused",
    "ClipboardReleased",
    "ClipboardRequested",
    "FileTransferCancelled",
    "FileTransferCompleted",
    "FileTransferData",
    "FileTransferFailed",
    "FileTransferStarted",
    "ResizeRequest",
]
