"""The agent machine: one client's VD_AGENT conversation with the app playing the guest.

Everything that affects the agent conversation lives here; :mod:`.stream` does the framing and
tokens, :mod:`.messages` the bytes. Sans-I/O in the manner of h11: the adapter feeds it the
client's main-channel agent messages, takes events with :meth:`AgentMachine.next_event`, and
writes what :meth:`AgentMachine.data_to_send` returns on the main channel.

How the main channel's adapter wires it (the contract):

* MAIN_INIT carries ``agent_connected=1, agent_tokens=AgentMachine.window`` (or, later,
  AGENT_CONNECTED_TOKENS(window) to clients with that main cap, AGENT_CONNECTED otherwise).
* Client AGENT_START, AGENT_DATA and AGENT_TOKEN go to :meth:`AgentMachine.handle` (or
  :meth:`agent_start`, :meth:`receive_data`, :meth:`add_tokens`). Then drain
  :meth:`next_event` until it returns ``NEED_DATA``, then write every message of
  :meth:`data_to_send` (``ServerAgentData`` and ``ServerAgentToken``) in order. Call
  :meth:`data_to_send` also after every app call below.
* An :class:`~.errors.AgentProtocolError` from any of those: log its message once with the
  peer and session, close this client's main channel (libspice-server does the same); other
  clients are untouched. Later calls raise :class:`~spice.domain.errors.LocalProtocolError`.
* Events to app calls: :class:`~.events.ResizeRequest` -> resize the display, then
  :meth:`accept_resize` (or :meth:`refuse_resize`). :class:`~.events.ClipboardGrabbed` ->
  tell the app what the client offers; the app asks with :meth:`request_clipboard` and gets
  :class:`~.events.ClipboardData`. :class:`~.events.ClipboardRequested` -> the app answers with
  :meth:`send_clipboard`. :class:`~.events.ClipboardReleased`, :class:`~.events.ClipboardRefused`
  -> tell the app / log a line. App clipboard: :meth:`set_clipboard` (text, PNG or any types;
  the machine answers the client's pastes itself), :meth:`grab_clipboard` (answer on demand),
  :meth:`release_clipboard`.
* File transfer: :class:`~.events.FileTransferStarted` -> create a temporary file (e.g.
  ``.name.XXXX.part`` in the download directory), then :meth:`accept_transfer` (or
  :meth:`refuse_transfer`); :class:`~.events.FileTransferData` -> append, report progress;
  :class:`~.events.FileTransferCompleted` -> flush, close, rename to the final name, then
  :meth:`finish_transfer` with the outcome; :class:`~.events.FileTransferFailed` and
  :class:`~.events.FileTransferCancelled` -> close and delete the temporary file. When the
  connection ends, delete the temporary file of every id in :attr:`transfers`. No partial
  file is ever left under its final name.
* Mouse: in client mouse mode, an app that wants the agent's view feeds MOUSE_STATEs it builds
  from the inputs channel to :class:`~.mouse.AgentMouse` (libspice-server's agent mouse).

Switches keep QEMU/Xspice's meaning (``disable-copy-paste``, ``disable-agent-file-xfer``):
with copy-paste off no clipboard capability is announced and the client's clipboard messages
are dropped unread; with file transfer off FILE_XFER_DISABLED is announced, a START is answered
DISABLED and other transfer messages are dropped unread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

import attrs

from spice.domain.agent import messages as am
from spice.domain.agent.errors import AgentDecodeError, AgentProtocolError
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
from spice.domain.agent.file_xfer import BadStart, Transfer, TransferState, parse_start
from spice.domain.agent.messages import (
    AgentCap,
    AgentMessageType,
    ClipboardSelection,
    ClipboardType,
    FileXferStatus,
    ReplyError,
)
from spice.domain.agent.stream import (
    AGENT_WINDOW,
    ClientTokens,
    Complete,
    Reassembler,
    Sender,
    Skipped,
)
from spice.domain.caps import CapabilitySet
from spice.domain.errors import LocalProtocolError
from spice.domain.link import NEED_DATA, NeedData
from spice.domain.messages.main import (
    AgentStart,
    ClientAgentData,
    ClientAgentToken,
    ServerAgentData,
    ServerAgentToken,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_T = AgentMessageType
_SELECTIONS = frozenset(int(s) for s in ClipboardSelection)
#: Largest payloads kept for the small client messages.
_SMALL_LIMITS: dict[int, int] = {
    _T.MONITORS_CONFIG: 8 + am.MAX_MONITORS * (am.MonConfig.SIZE + 4),
    _T.ANNOUNCE_CAPABILITIES: 4 + 4 * am.MAX_CAP_WORDS,
    _T.MAX_CLIPBOARD: 64,
    _T.FILE_XFER_START: 4096,
}
_CLIPBOARD_LIMITS: dict[int, int] = {
    _T.CLIPBOARD_GRAB: 1024,
    _T.CLIPBOARD_REQUEST: 64,
    _T.CLIPBOARD_RELEASE: 64,
}


@attrs.frozen
class AgentConfig:
    """What the emulated agent allows. Sizes in bytes."""

    #: Clipboard both ways (QEMU ``disable-copy-paste`` is ``copy_paste=False``).
    copy_paste: bool = True
    #: File transfer from the client (QEMU ``disable-agent-file-xfer``).
    file_transfer: bool = True
    #: The largest clipboard content accepted from the client or sent to it.
    clipboard_limit: int = 16 << 20
    #: Announce CLIPBOARD_SELECTION (PRIMARY and SECONDARY besides CLIPBOARD).
    clipboard_selections: bool = True
    #: The largest file accepted; bigger offers are answered NOT_ENOUGH_SPACE.
    file_size_limit: int = 1 << 40
    #: The largest FILE_XFER_DATA payload (both clients send 64 KiB).
    file_chunk_limit: int = 1 << 20
    #: Transfers open at once (offered, receiving or completing).
    max_transfers: int = 8
    #: Outgoing bytes waiting for client tokens beyond which the client gets no more tokens
    #: (and paste answers shrink to NONE): a client that never lets us speak cannot make us
    #: queue without bound. Real clients grant ~0 tokens, so this never binds them.
    backlog_limit: int = 4 << 20


class AgentMachine:
    """One client's agent. See the module docstring for the adapter's side of the contract."""

    def __init__(self, config: AgentConfig | None = None, *, window: int = AGENT_WINDOW) -> None:
        self.config = config or AgentConfig()
        self.window = window
        self.client_caps = CapabilitySet()
        self.caps_received = False
        self.started = False
        #: The client's MAX_CLIPBOARD; -1 is no limit.
        self.client_max_clipboard = -1
        #: Messages not queued because the client withheld tokens past twice the backlog limit.
        self.dropped = 0
        self._tokens = ClientTokens(window)
        #: A client agent message ended since tokens were last granted.
        self._message_ended = False
        self._sender = Sender()
        self._stream = Reassembler(self._limit_for)
        self._events: deque[AgentEvent] = deque()
        self._error: str | None = None
        # clipboard: what the app offers per selection (None = answer on demand), whether the
        # GRAB went out, what the client offers, and the app's / client's requests in flight
        self._ours: dict[int, dict[int, bytes | None]] = {}
        self._grab_sent: set[int] = set()
        self._theirs: dict[int, tuple[int, ...]] = {}
        self._our_requests: dict[int, int] = {}
        self._their_requests: dict[int, int] = {}
        # resize
        self._resize_serial = 0
        self._resize_pending: int | None = None
        # file transfer
        self.transfers: dict[int, Transfer] = {}

    # ---- capabilities -------------------------------------------------------------------

    @property
    def caps(self) -> CapabilitySet:
        """What this agent announces."""
        caps = [
            AgentCap.MOUSE_STATE,
            AgentCap.MONITORS_CONFIG,
            AgentCap.REPLY,
            AgentCap.GUEST_LINEEND_LF,
            AgentCap.FILE_XFER_DETAILED_ERRORS,
        ]
        if self.config.copy_paste:
            caps += [
                AgentCap.CLIPBOARD_BY_DEMAND,
                AgentCap.MAX_CLIPBOARD,
                AgentCap.CLIPBOARD_NO_RELEASE_ON_REGRAB,
            ]
            if self.config.clipboard_selections:
                caps.append(AgentCap.CLIPBOARD_SELECTION)
        if not self.config.file_transfer:
            caps.append(AgentCap.FILE_XFER_DISABLED)
        return CapabilitySet.of(*caps)

    def _both(self, cap: AgentCap) -> bool:
        return cap in self.caps and cap in self.client_caps

    @property
    def _selection_prefix(self) -> bool:
        return self._both(AgentCap.CLIPBOARD_SELECTION)

    @property
    def clipboard_available(self) -> bool:
        """Whether clipboard traffic can flow with this client now."""
        return self.config.copy_paste and self._both(AgentCap.CLIPBOARD_BY_DEMAND)

    # ---- input from the client ----------------------------------------------------------

    def handle(self, msg: AgentStart | ClientAgentData | ClientAgentToken) -> None:
        """Take one of the client's main-channel agent messages."""
        if isinstance(msg, AgentStart):
            self.agent_start(msg.num_tokens)
        elif isinstance(msg, ClientAgentData):
            self.receive_data(msg.data)
        elif isinstance(msg, ClientAgentToken):
            self.add_tokens(msg.num_tokens)
        else:
            raise LocalProtocolError(f"not an agent message: {type(msg).__name__}")

    def agent_start(self, num_tokens: int) -> None:
        """Client AGENT_START: it may now get ``num_tokens`` AGENT_DATA messages from us."""
        self._check()
        self.started = True
        self._sender.set_tokens(num_tokens)

    def add_tokens(self, num_tokens: int) -> None:
        """Client AGENT_TOKEN."""
        self._check()
        self._sender.add_tokens(num_tokens)

    def receive_data(self, body: bytes) -> None:
        """One client AGENT_DATA body. Raises :class:`AgentProtocolError` on bad input."""
        self._check()
        try:
            if not self.started:
                raise AgentProtocolError("AGENT_DATA before AGENT_START")
            self._tokens.spend()
            for frame in self._stream.feed(body):
                if isinstance(frame, Complete):
                    self._message_ended = True
                    self._dispatch(frame.header.type, frame.payload)
                else:
                    self._skipped(frame)
        except AgentProtocolError as exc:
            self._error = str(exc)
            self._sender.clear()
            raise

    def next_event(self) -> AgentEvent | NeedData:
        if self._events:
            return self._events.popleft()
        return NEED_DATA

    def data_to_send(self) -> list[ServerAgentData | ServerAgentToken]:
        """Main-channel messages to write now, in order."""
        if self._error is not None:
            return []
        out: list[ServerAgentData | ServerAgentToken] = []
        if self._sender.backlog <= self.config.backlog_limit:
            granted = self._tokens.grant(now=self._message_ended)
            self._message_ended = False
            if granted:
                out.append(ServerAgentToken(granted))
        out += [ServerAgentData(body) for body in self._sender.take()]
        return out

    @property
    def backlog(self) -> int:
        """Outgoing bytes waiting for the client's tokens."""
        return self._sender.backlog

    @property
    def failed(self) -> str | None:
        """The protocol error that ended this machine, if any."""
        return self._error

    def _check(self) -> None:
        if self._error is not None:
            raise LocalProtocolError(f"agent machine failed earlier: {self._error}")

    def _limit_for(self, type_: int) -> int | None:
        config = self.config
        if type_ in _SMALL_LIMITS:
            return _SMALL_LIMITS[type_]
        if type_ in _CLIPBOARD_LIMITS:
            return _CLIPBOARD_LIMITS[type_] if config.copy_paste else None
        if type_ == _T.CLIPBOARD:
            return config.clipboard_limit + 8 if config.copy_paste else None
        if type_ == _T.FILE_XFER_STATUS:
            return 1024 if config.file_transfer else None
        if type_ == _T.FILE_XFER_DATA:
            return 12 + config.file_chunk_limit if config.file_transfer else None
        return None  # unknown, or nothing a client sends us that we act on

    def _skipped(self, frame: Skipped) -> None:
        if not frame.oversized:
            return
        header = frame.header
        if header.type == _T.CLIPBOARD:
            self._our_requests.clear()
            self._events.append(
                ClipboardRefused(
                    None,
                    f"client clipboard of {header.size} bytes over the limit of "
                    f"{self.config.clipboard_limit}",
                )
            )
            return
        limit = self._limit_for(header.type)
        raise AgentProtocolError(
            f"agent message type {header.type} of {header.size} bytes, limit {limit}"
        )

    def _dispatch(self, type_: int, payload: bytes) -> None:
        msg = am.decode_payload(
            type_, payload, selection_prefix=self._selection_prefix, grab_serial=False
        )
        if isinstance(msg, am.AnnounceCapabilities):
            self._on_caps(msg)
        elif isinstance(msg, am.MonitorsConfig):
            self._on_monitors(msg)
        elif isinstance(msg, am.MaxClipboard):
            self.client_max_clipboard = msg.max
        elif isinstance(msg, am.ClipboardGrab):
            self._on_grab(msg)
        elif isinstance(msg, am.ClipboardRequest):
            self._on_request(msg)
        elif isinstance(msg, am.Clipboard):
            self._on_clipboard(msg)
        elif isinstance(msg, am.ClipboardRelease):
            self._on_release(msg)
        elif isinstance(msg, am.FileXferStart):
            self._on_xfer_start(msg)
        elif isinstance(msg, am.FileXferStatusMessage):
            self._on_xfer_status(msg)
        elif isinstance(msg, am.FileXferData):
            self._on_xfer_data(msg)
        else:  # pragma: no cover - _limit_for keeps only the types above
            raise AgentDecodeError(f"unexpected agent message type {type_}")

    def _send(self, msg: am.AgentMessage) -> None:
        if self._error is not None:
            return
        if self._sender.backlog > 2 * self.config.backlog_limit:
            self.dropped += 1
            return
        try:
            data = am.encode_message(msg, selection_prefix=self._selection_prefix)
        except ValueError:
            # a selection the client stopped supporting by re-announcing its caps
            self.dropped += 1
            return
        self._sender.queue(data)

    # ---- capabilities exchange ----------------------------------------------------------

    def _on_caps(self, msg: am.AnnounceCapabilities) -> None:
        self.client_caps = msg.caps
        self.caps_received = True
        if msg.request:
            self._send(am.AnnounceCapabilities(request=False, caps=self.caps))
        # grabs the app made before the client could hear them
        for selection in sorted(self._ours):
            self._send_grab(selection)

    # ---- resize -------------------------------------------------------------------------

    def _on_monitors(self, msg: am.MonitorsConfig) -> None:
        if self._resize_pending is not None:
            self._reply_resize(ReplyError.ERROR)
        self._resize_serial += 1
        self._resize_pending = self._resize_serial
        self._events.append(ResizeRequest(self._resize_serial, msg.monitors, msg.flags))

    def accept_resize(self, request_id: int) -> None:
        """The display now has the size of :class:`ResizeRequest` ``request_id``."""
        if request_id == self._resize_pending:
            self._reply_resize(ReplyError.SUCCESS)

    def refuse_resize(self, request_id: int) -> None:
        """The app keeps its size; a stale ``request_id`` is ignored."""
        if request_id == self._resize_pending:
            self._reply_resize(ReplyError.ERROR)

    def _reply_resize(self, error: ReplyError) -> None:
        self._resize_pending = None
        if AgentCap.REPLY in self.client_caps:
            self._send(am.Reply(_T.MONITORS_CONFIG, error))

    # ---- clipboard, client side ---------------------------------------------------------

    def _on_grab(self, msg: am.ClipboardGrab) -> None:
        sel = msg.selection
        if sel not in _SELECTIONS:
            return
        self._ours.pop(sel, None)
        self._grab_sent.discard(sel)
        self._their_requests.pop(sel, None)
        self._our_requests.pop(sel, None)
        self._theirs[sel] = msg.types
        self._events.append(ClipboardGrabbed(sel, msg.types))

    def _on_release(self, msg: am.ClipboardRelease) -> None:
        sel = msg.selection
        if self._theirs.pop(sel, None) is not None:
            self._our_requests.pop(sel, None)
            self._events.append(ClipboardReleased(sel))

    def _on_clipboard(self, msg: am.Clipboard) -> None:
        if self._our_requests.pop(msg.selection, None) is None:
            return  # nobody asked: vdagent drops it too
        self._events.append(ClipboardData(msg.selection, msg.type, msg.data))

    def _on_request(self, msg: am.ClipboardRequest) -> None:
        sel, type_ = msg.selection, msg.type
        offer = self._ours.get(sel)
        if offer is None or type_ not in offer or sel not in self._grab_sent:
            self._send_clipboard(sel, ClipboardType.NONE, b"")
            return
        data = offer[type_]
        if data is None:
            if sel in self._their_requests:
                # the client asked again before the app answered: the earlier paste gets nothing
                self._send_clipboard(sel, ClipboardType.NONE, b"")
            self._their_requests[sel] = type_
            self._events.append(ClipboardRequested(sel, type_))
        else:
            self._answer(sel, type_, data)

    def _answer(self, sel: int, type_: int, data: bytes) -> None:
        limit = self.client_max_clipboard
        if limit >= 0 and len(data) > limit:
            reason = f"{len(data)} bytes of clipboard over the client's limit of {limit}"
        elif self._sender.backlog > self.config.backlog_limit:
            reason = "the client is not reading the agent stream"
        else:
            self._send_clipboard(sel, type_, data)
            return
        self._events.append(ClipboardRefused(sel, reason))
        self._send_clipboard(sel, ClipboardType.NONE, b"")

    def _send_clipboard(self, sel: int, type_: int, data: bytes) -> None:
        self._send(am.Clipboard(type=type_, data=data, selection=sel))

    # ---- clipboard, app side ------------------------------------------------------------

    def _check_selection(self, selection: int) -> None:
        if selection not in _SELECTIONS:
            raise LocalProtocolError(f"no clipboard selection {selection}")

    def set_clipboard(
        self, contents: Mapping[int, bytes], selection: int = ClipboardSelection.CLIPBOARD
    ) -> None:
        """Own ``selection`` with these contents by ClipboardType; the machine answers the
        client's pastes itself. Ignored when copy-paste is disabled."""
        self._check_selection(selection)
        if not contents or ClipboardType.NONE in contents:
            raise LocalProtocolError("clipboard contents need at least one real type")
        for type_, data in contents.items():
            if len(data) > self.config.clipboard_limit:
                raise LocalProtocolError(
                    f"clipboard type {type_} of {len(data)} bytes over the limit of "
                    f"{self.config.clipboard_limit}"
                )
        self._own(selection, {int(t): bytes(d) for t, d in contents.items()})

    def set_clipboard_text(self, text: str, selection: int = ClipboardSelection.CLIPBOARD) -> None:
        self.set_clipboard({ClipboardType.UTF8_TEXT: text.encode("utf-8")}, selection)

    def set_clipboard_image(
        self, png: bytes, selection: int = ClipboardSelection.CLIPBOARD
    ) -> None:
        """A PNG image (every client with image support reads PNG)."""
        if not png.startswith(PNG_SIGNATURE):
            raise LocalProtocolError("clipboard image is not a PNG")
        self.set_clipboard({ClipboardType.IMAGE_PNG: png}, selection)

    def grab_clipboard(
        self, types: Iterable[int], selection: int = ClipboardSelection.CLIPBOARD
    ) -> None:
        """Own ``selection`` offering ``types``; each paste comes as ClipboardRequested."""
        self._check_selection(selection)
        offer: dict[int, bytes | None] = {int(t): None for t in types}
        if not offer or ClipboardType.NONE in offer:
            raise LocalProtocolError("a clipboard grab needs at least one real type")
        self._own(selection, offer)

    def send_clipboard(self, selection: int, type: int, data: bytes) -> None:
        """Answer a :class:`ClipboardRequested`; an answer nobody waits for is ignored."""
        self._check_selection(selection)
        if len(data) > self.config.clipboard_limit:
            raise LocalProtocolError(f"clipboard of {len(data)} bytes over the limit")
        if self._their_requests.pop(selection, None) is None:
            return
        self._answer(selection, type, bytes(data))

    def release_clipboard(self, selection: int = ClipboardSelection.CLIPBOARD) -> None:
        """Stop owning ``selection``."""
        self._check_selection(selection)
        if self._ours.pop(selection, None) is None:
            return
        self._their_requests.pop(selection, None)
        if selection in self._grab_sent:
            self._grab_sent.discard(selection)
            self._send(am.ClipboardRelease(selection))

    def request_clipboard(self, selection: int, type: int) -> bool:
        """Ask the client for its ``selection`` as ``type``; the answer is a ClipboardData.
        False (nothing sent) when the client does not offer that type there or a request for
        that selection is already in flight."""
        self._check_selection(selection)
        offered = self._theirs.get(selection)
        if not self.clipboard_available or offered is None or type not in offered:
            return False
        if selection in self._our_requests:
            return False
        self._our_requests[selection] = type
        self._send(am.ClipboardRequest(type, selection))
        return True

    def _own(self, selection: int, offer: dict[int, bytes | None]) -> None:
        if not all(0 < t <= 0xFFFFFFFF for t in offer):
            raise LocalProtocolError(f"clipboard types {sorted(offer)} are not uint32 types")
        if not self.config.copy_paste:
            return
        self._ours[selection] = offer
        self._theirs.pop(selection, None)
        self._our_requests.pop(selection, None)
        self._their_requests.pop(selection, None)
        self._grab_sent.discard(selection)
        self._send_grab(selection)

    def _send_grab(self, selection: int) -> None:
        if not self.clipboard_available:
            return
        if selection != ClipboardSelection.CLIPBOARD and not self._selection_prefix:
            return
        self._grab_sent.add(selection)
        self._send(am.ClipboardGrab(tuple(self._ours[selection]), selection))

    # ---- file transfer ------------------------------------------------------------------

    def _status(self, id: int, result: int, data: bytes = b"") -> None:
        self._send(am.FileXferStatusMessage(id, result, data))

    def _on_xfer_start(self, msg: am.FileXferStart) -> None:
        if not self.config.file_transfer:
            self._status(msg.id, FileXferStatus.DISABLED)
            return
        if msg.id in self.transfers:
            raise AgentProtocolError(f"FILE_XFER_START for transfer {msg.id} already open")
        detailed = AgentCap.FILE_XFER_DETAILED_ERRORS in self.client_caps
        try:
            name, size = parse_start(msg.keyfile)
        except BadStart as exc:
            if exc.invalid_name and detailed:
                self._send(
                    am.FileXferStatusMessage.glib_io_error(msg.id, am.G_IO_ERROR_INVALID_FILENAME)
                )
            else:
                self._status(msg.id, FileXferStatus.ERROR)
            return
        if size > self.config.file_size_limit:
            self._status(msg.id, FileXferStatus.NOT_ENOUGH_SPACE)
            return
        if len(self.transfers) >= self.config.max_transfers:
            self._status(msg.id, FileXferStatus.ERROR)
            return
        self.transfers[msg.id] = Transfer(msg.id, name, size)
        self._events.append(FileTransferStarted(msg.id, name, size))

    def _on_xfer_status(self, msg: am.FileXferStatusMessage) -> None:
        if self.transfers.pop(msg.id, None) is not None:
            self._events.append(FileTransferCancelled(msg.id))

    def _on_xfer_data(self, msg: am.FileXferData) -> None:
        xfer = self.transfers.get(msg.id)
        if xfer is None:
            return  # finished, failed or cancelled: data still in flight is dropped
        n = len(msg.data)
        if xfer.state is TransferState.OFFERED:
            self._fail(xfer, "data before the transfer was accepted")
        elif xfer.state is TransferState.COMPLETING:
            if n:
                self._fail(xfer, f"more data than the {xfer.size} bytes announced")
        elif xfer.received + n > xfer.size:
            self._fail(xfer, f"more data than the {xfer.size} bytes announced")
        else:
            xfer.received += n
            if n:
                self._events.append(FileTransferData(xfer.id, msg.data, xfer.received, xfer.size))
            if xfer.received == xfer.size:
                self._complete(xfer)

    def _complete(self, xfer: Transfer) -> None:
        xfer.state = TransferState.COMPLETING
        self._events.append(FileTransferCompleted(xfer.id, xfer.name, xfer.size))

    def _fail(self, xfer: Transfer, reason: str) -> None:
        del self.transfers[xfer.id]
        self._status(xfer.id, FileXferStatus.ERROR)
        self._events.append(FileTransferFailed(xfer.id, reason))

    def _open(self, id: int, state: TransferState, call: str) -> Transfer | None:
        xfer = self.transfers.get(id)
        if xfer is not None and xfer.state is not state:
            raise LocalProtocolError(f"{call}({id}) while the transfer is {xfer.state!r}")
        return xfer

    def accept_transfer(self, id: int) -> None:
        """The temporary file is ready: let the client send. A transfer the client cancelled
        meanwhile is ignored."""
        xfer = self._open(id, TransferState.OFFERED, "accept_transfer")
        if xfer is None:
            return
        xfer.state = TransferState.RECEIVING
        self._status(id, FileXferStatus.CAN_SEND_DATA)
        if xfer.size == 0:
            self._complete(xfer)

    def refuse_transfer(
        self, id: int, status: int = FileXferStatus.ERROR, *, free_space: int | None = None
    ) -> None:
        """Refuse an offered transfer with a FileXferStatus (ERROR, NOT_ENOUGH_SPACE with the
        free bytes, SESSION_LOCKED, DISABLED...)."""
        if status in (FileXferStatus.CAN_SEND_DATA, FileXferStatus.SUCCESS):
            raise LocalProtocolError(f"refusing with status {status}")
        if self._open(id, TransferState.OFFERED, "refuse_transfer") is None:
            return
        del self.transfers[id]
        detailed = AgentCap.FILE_XFER_DETAILED_ERRORS in self.client_caps
        if status == FileXferStatus.NOT_ENOUGH_SPACE and free_space is not None and detailed:
            self._send(am.FileXferStatusMessage.not_enough_space(id, free_space))
        else:
            self._status(id, status)

    def cancel_transfer(self, id: int) -> None:
        """Stop a transfer at any stage; the client hears CANCELLED and a FileTransferFailed
        follows so the temporary file goes in one place."""
        if self.transfers.pop(id, None) is None:
            return
        self._status(id, FileXferStatus.CANCELLED)
        self._events.append(FileTransferFailed(id, "cancelled by the application"))

    def finish_transfer(self, id: int, ok: bool = True) -> None:
        """After FileTransferCompleted: the file is in place (``ok``) or could not be."""
        if self._open(id, TransferState.COMPLETING, "finish_transfer") is None:
            return
        del self.transfers[id]
        self._status(id, FileXferStatus.SUCCESS if ok else FileXferStatus.ERROR)
