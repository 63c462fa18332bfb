"""What the application hears of the agent: the client's clipboard, resizes and received files.

The agent machine's own events (:mod:`.events`) are per client and carry protocol ids; the
server's adapter acts on them (answers, temporary files) and passes these small frozen events
to the application through ``Server.agent_events()``, the same way input events come from the
inputs channel (:mod:`spice.domain.input_events`).
"""

from __future__ import annotations

import attrs

from spice.domain.agent.messages import ClipboardType

__all__ = [
    "AgentAppEvent",
    "ClipboardCleared",
    "ClipboardOffered",
    "DisplayResizeRequested",
    "FileReceived",
    "FileTransferAborted",
    "FileTransferProgress",
]


@attrs.frozen
class ClipboardOffered:
    """A client copied something: it now owns ``selection`` (0 CLIPBOARD, 1 PRIMARY,
    2 SECONDARY) and offers these ClipboardType numbers. Read it with ``server.clipboard``."""

    selection: int
    types: tuple[int, ...]

    @property
    def has_text(self) -> bool:
        return ClipboardType.UTF8_TEXT in self.types

    @property
    def has_image(self) -> bool:
        return ClipboardType.IMAGE_PNG in self.types


@attrs.frozen
class ClipboardCleared:
    """The client that owned ``selection`` gave it up; its offer is void."""

    selection: int


@attrs.frozen
class DisplayResizeRequested:
    """A client's window asked for display ``display_id`` at ``width`` x ``height``;
    ``accepted`` tells what the server's resize handler decided."""

    display_id: int
    width: int
    height: int
    accepted: bool


@attrs.frozen
class FileTransferProgress:
    """``received`` of ``size`` bytes of ``name`` have arrived (reported about every MiB)."""

    name: str
    received: int
    size: int


@attrs.frozen
class FileReceived:
    """A file from a client is complete and in place at ``path`` (``name`` may have been
    changed to a free one, e.g. ``notes (1).txt``)."""

    name: str
    path: str
    size: int


@attrs.frozen
class FileTransferAborted:
    """A transfer ended without a file (the client cancelled, sent more than it announced,
    or the file could not be written); nothing of it is left in the directory."""

    name: str
    reason: str


AgentAppEvent = (
    ClipboardOffered
    | ClipboardCleared
    | DisplayResizeRequested
    | FileTransferProgress
    | FileReceived
    | FileTransferAborted
)
