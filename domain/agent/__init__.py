"""The SPICE guest agent (VD_AGENT) spoken by the server itself.

In libspice-server the guest's vdagent talks VD_AGENT through a virtio port and the server
relays it over the main channel. In trio-spice the application is the guest, so the agent is
emulated in-process: :mod:`.messages` holds the byte-exact VD_AGENT messages, :mod:`.stream`
the AGENT_DATA reassembly, chunking and tokens, :mod:`.clipboard`, :mod:`.file_xfer` and
:mod:`.mouse` the three features, and :mod:`.machine` the sans-I/O :class:`AgentMachine` that
the main channel's adapter drives. Nothing here does I/O or reads a clock.
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
