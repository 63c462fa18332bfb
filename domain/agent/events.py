"""What the agent machine reports to its adapter: small frozen classes named for what happened.

Which event the adapter turns into what is written beside each class; :mod:`.machine` says in
which order they come and what the adapter must call back.
"""

from __future__ import annotations

import attrs

from spice.domain.agent.messages import ClipboardType, MonConfig


@attrs.frozen
class ClipboardGrabbed:
    """The client owns ``selection`` and offers ``types`` (ClipboardType numbers). The app may
    now ask for one with :meth:`AgentMachine.request_clipboard`; whatever the app put on that
    selection before is forgotten."""

    selection: int
    types: tuple[int, ...]


@attrs.frozen
class ClipboardData:
    """The client's answer to :meth:`AgentMachine.request_clipboard`. ``type`` is NONE (0) with
    empty data when the client had nothing of the type asked for."""

    selection: int
    type: int
    data: bytes

    @property
    def text(self) -> str | None:
        """UTF-8 text (a trailing NUL dropped), or ``None`` if this is not valid text."""
        if self.type != ClipboardType.UTF8_TEXT:
            return None
        try:
            return self.data.removesuffix(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            return None


@attrs.frozen
class ClipboardRequested:
    """The client pastes from a selection the app grabbed without data
    (:meth:`AgentMachine.grab_clipboard`); answer with :meth:`AgentMachine.send_clipboard`."""

    selection: int
    type: int


@attrs.frozen
class ClipboardReleased:
    """The client no longer owns ``selection``; its earlier offer is void."""

    selection: int


@attrs.frozen
class ClipboardRefused:
    """Clipboard traffic dropped without harm to the session, with the reason for one log
    line: the client sent more than the clipboard limit, or the app's request could not be
    answered. ``selection`` is ``None`` when the message was dropped before it was read."""

    selection: int | None
    reason: str


@attrs.frozen
class ResizeRequest:
    """The client's window wants these monitors (MONITORS_CONFIG). Answer with
    :meth:`AgentMachine.accept_resize` after resizing the display (the adapter recreates the
    primary surface) or :meth:`AgentMachine.refuse_resize`. A newer request supersedes this
    one: the machine answers the old one as refused, and a late answer to it is ignored."""

    request_id: int
    monitors: tuple[MonConfig, ...]
    flags: int

    @property
    def size(self) -> tuple[int, int]:
        """Width and height of the first monitor (the primary surface), (0, 0) if none."""
        if not self.monitors:
            return (0, 0)
        return (self.monitors[0].width, self.monitors[0].height)


@attrs.frozen
class FileTransferStarted:
    """The client offers a file. ``name`` is a plain base name (never a path: names with a
    separator, ``..`` or a NUL are refused before this event). The adapter opens a temporary
    file in the download directory and calls :meth:`AgentMachine.accept_transfer`, or
    :meth:`AgentMachine.refuse_transfer` (e.g. NOT_ENOUGH_SPACE)."""

    id: int
    name: str
    size: int


@attrs.frozen
class FileTransferData:
    """Bytes for transfer ``id`` to append to its temporary file; ``received`` of ``size``
    bytes have now arrived (progress)."""

    id: int
    data: bytes
    received: int
    size: int


@attrs.frozen
class FileTransferCompleted:
    """Every announced byte of ``id`` has arrived. The adapter flushes and closes the temporary
    file, renames it to ``name`` (choosing a free name if taken) and calls
    :meth:`AgentMachine.finish_transfer` with whether that worked; the client hears SUCCESS or
    ERROR only then."""

    id: int
    name: str
    size: int


@attrs.frozen
class FileTransferFailed:
    """Transfer ``id`` is over without a file: the client sent more than it announced, or the
    app cancelled it (:meth:`AgentMachine.cancel_transfer`). The adapter deletes the temporary
    file; the client has been told."""

    id: int
    reason: str


@attrs.frozen
class FileTransferCancelled:
    """The client cancelled transfer ``id`` (or reported an error on its side). The adapter
    deletes the temporary file."""

    id: int


AgentEvent = (
    ClipboardGrabbed
    | ClipboardData
    | ClipboardRequested
    | ClipboardReleased
    | ClipboardRefused
    | ResizeRequest
    | FileTransferStarted
    | FileTransferData
    | FileTransferCompleted
    | FileTransferFailed
    | FileTransferCancelled
)
