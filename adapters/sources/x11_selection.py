"""The X selections CLIPBOARD and PRIMARY through xcffib: blocking calls only, meant to run in
worker threads (:mod:`adapters.sources.x11_clipboard` drives them from Trio).

Two connections, so that a slow X program never holds up the other direction:

- the *owner* connection has a small unmapped window that watches who owns each selection
  (XFixes SelectSelectionInput), takes ownership when a SPICE client copies, and answers
  other programs' SelectionRequest events (:meth:`XSelections.poll`, :meth:`answer`);
- the *reader* connection converts another program's selection into a property of its own
  window and reads it (:meth:`XSelections.read_owner`), INCR transfers included, each step
  bounded by a deadline and the whole by a byte limit, so an owner that never answers or
  sends garbage costs one bounded wait and a log line.

What goes to X is written as one property (no INCR): at most the server's maximum request
size (16 MiB on Xvfb with BIG-REQUESTS) and the clipboard limit, whichever is smaller.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import time
from typing import Any

import attrs
import xcffib
import xcffib.xfixes
import xcffib.xproto as xp

from spice.adapters.sources.x11_screen import connect
from spice.domain.agent.messages import ClipboardType
from spice.domain.sources.selection import (
    META_TARGETS,
    PNG_TARGET,
    TEXT_TARGETS,
    X_SELECTIONS,
    png_from_x,
    spice_type_for,
    targets_for,
    text_from_x,
    text_target,
    x_value,
)

log = logging.getLogger(__name__)

_xp: Any = xp  # untyped
#: Seconds an X owner gets for each step of a conversion (its answer, each INCR chunk).
STEP_TIMEOUT = 2.0
#: The property the reader receives conversions in.
PROPERTY = "TRIO_SPICE_SELECTION"
_ATOMS = (*X_SELECTIONS.values(), *META_TARGETS, *TEXT_TARGETS, PNG_TARGET, "INCR", "ATOM",
          "MULTIPLE", PROPERTY)  # fmt: skip
_SELECTION_MASK = (
    xcffib.xfixes.SelectionEventMask.SetSelectionOwner
    | xcffib.xfixes.SelectionEventMask.SelectionWindowDestroy
    | xcffib.xfixes.SelectionEventMask.SelectionClientClose
)


@attrs.frozen
class OwnerChanged:
    """Another X program owns ``selection`` (a SPICE selection number) now; ``owner`` 0:
    nobody does."""

    selection: int
    owner: int
    timestamp: int


@attrs.frozen
class Request:
    """An X program asks for our selection as ``target``: answer it with :meth:`answer`."""

    selection: int
    type: int  # the ClipboardType to read from the client
    target: str
    requestor: int
    property: int
    target_atom: int
    selection_atom: int
    time: int


Happening = OwnerChanged | Request


class XSelections:
    """Both connections to one X display; ``limit`` bounds what is read from X."""

    def __init__(
        self,
        display: str | None,
        *,
        xauthority: str | os.PathLike[str] | None = None,
        limit: int = 16 << 20,
        step_timeout: float = STEP_TIMEOUT,
    ) -> None:
        self.name = display or ""
        self.limit = limit
        self.step_timeout = step_timeout
        self.conn: Any = connect(display, xauthority)
        self.reader: Any = None
        try:
            self.reader = connect(display, xauthority)
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        conn = self.conn
        if not conn.core.QueryExtension(6, "XFIXES").reply().present:
            raise OSError("the X server has no XFIXES extension")
        cookies = {name: conn.core.InternAtom(False, len(name), name) for name in _ATOMS}
        self.atoms: dict[str, int] = {name: c.reply().atom for name, c in cookies.items()}
        self.names: dict[int, str] = {atom: name for name, atom in self.atoms.items()}
        root = conn.get_setup().roots[0].root
        self.window = self._window(conn, root)
        self.reader_window = self._window(self.reader, root)
        fixes = conn(xcffib.xfixes.key)
        fixes.QueryVersion(5, 0).reply()
        for x_name in X_SELECTIONS.values():
            fixes.SelectSelectionInput(self.window, self.atoms[x_name], _SELECTION_MASK)
        max_request = conn.get_maximum_request_length() * 4 - 64
        self.write_limit = min(self.limit, max_request)
        #: What we own, per SPICE selection: (the client's types, our ownership time).
        self.owned: dict[int, tuple[tuple[int, ...], int]] = {}
        self._backlog: list[Any] = []
        conn.flush()
        self.reader.flush()

    @staticmethod
    def _window(conn: Any, root: int) -> int:
        window = conn.generate_id()
        conn.core.CreateWindow(
            0, window, root, -10, -10, 1, 1, 0, xp.WindowClass.InputOnly, 0,
            xp.CW.EventMask, [xp.EventMask.PropertyChange],
        )  # fmt: skip
        return int(window)

    def fileno(self) -> int:
        return int(self.conn.get_file_descriptor())

    def close(self) -> None:
        for conn in (self.conn, self.reader):
            if conn is not None:
                with contextlib.suppress(xcffib.XcffibException, OSError):
                    conn.disconnect()

    def alive(self) -> bool:
        try:
            self.conn.invalid()
            self.reader.invalid()
        except (xcffib.ConnectionException, OSError):
            return False
        return True

    # -- the owner connection ---------------------------------------------------------------
    def _next_event(self) -> Any:
        """The next queued event of the owner connection (an X error reply to one of our
        unchecked requests, say to a requestor window that went away, is logged and
        skipped)."""
        if self._backlog:
            return self._backlog.pop(0)
        while True:
            try:
                return self.conn.poll_for_event()
            except xcffib.Error as exc:
                log.debug("X display %s: selection error %r", self.name, exc)

    def poll(self) -> list[Happening]:
        """Handle every queued event: TARGETS and TIMESTAMP are answered here, unknown
        targets refused; what needs a client's data comes back as a :class:`Request`."""
        happenings: list[Happening] = []
        while (event := self._next_event()) is not None:
            if isinstance(event, xcffib.xfixes.SelectionNotifyEvent):
                selection = self._selection_of(event.selection)
                if selection is None or event.owner == self.window:
                    continue  # our own ownership: never echoed back to the clients
                happenings.append(OwnerChanged(selection, event.owner, event.selection_timestamp))
            elif isinstance(event, xp.SelectionClearEvent):
                selection = self._selection_of(event.selection)
                if selection is not None:
                    self.owned.pop(selection, None)
            elif isinstance(event, xp.SelectionRequestEvent):
                request = self._request(event)
                if request is not None:
                    happenings.append(request)
        self.conn.flush()
        return happenings

    def _selection_of(self, atom: int) -> int | None:
        for selection, x_name in X_SELECTIONS.items():
            if self.atoms[x_name] == atom:
                return selection
        return None

    def _request(self, event: Any) -> Request | None:
        selection = self._selection_of(event.selection)
        owned = self.owned.get(selection) if selection is not None else None
        prop = event.property or event.target  # obsolete requestors name no property
        target = self.names.get(event.target)
        if selection is None or owned is None or target is None:
            self._notify(event.requestor, event.selection, event.target, 0, event.time)
            return None
        types, since = owned
        if target == "TARGETS":
            atoms = [self.atoms[name] for name in targets_for(types)]
            self._reply(event, prop, self.atoms["ATOM"], 32, atoms)
            return None
        if target == "TIMESTAMP":
            self._reply(event, prop, xp.Atom.INTEGER, 32, [since])
            return None
        spice_type = spice_type_for(target)
        if spice_type is None or spice_type not in types:
            self._notify(event.requestor, event.selection, event.target, 0, event.time)
            return None
        return Request(
            selection, spice_type, target, event.requestor, prop, event.target,
            event.selection, event.time,
        )  # fmt: skip

    def _reply(self, event: Any, prop: int, type_: int, fmt: int, values: list[int]) -> None:
        data = b"".join(v.to_bytes(4, "little") for v in values)
        self.conn.core.ChangeProperty(
            xp.PropMode.Replace, event.requestor, prop, type_, fmt, len(values), data
        )
        self._notify(event.requestor, event.selection, event.target, prop, event.time)

    def _notify(self, requestor: int, selection: int, target: int, prop: int, when: int) -> None:
        event = _xp.SelectionNotifyEvent.synthetic(when, requestor, selection, target, prop)
        self.conn.core.SendEvent(False, requestor, xp.EventMask.NoEvent, event.pack())

    def answer(self, request: Request, data: bytes | None) -> bool:
        """Write a client's ``data`` for ``request`` (None or too large: refused)."""
        ok = data is not None and request.selection in self.owned
        if data is not None and ok:
            type_name, value = x_value(request.target, data)
            if len(value) > self.write_limit:
                log.info(
                    "X display %s: %d bytes of clipboard are over the %d a property holds; "
                    "refused", self.name, len(value), self.write_limit,
                )  # fmt: skip
                ok = False
            else:
                type_atom = self.atoms.get(type_name) or self._intern(type_name)
                try:
                    self.conn.core.ChangePropertyChecked(
                        xp.PropMode.Replace, request.requestor, request.property, type_atom,
                        8, len(value), value,
                    ).check()  # fmt: skip
                except xcffib.Error as exc:  # the requestor's window is gone
                    log.info("X display %s: selection answer not written: %r", self.name, exc)
                    return False
        prop = request.property if ok else 0
        try:
            self._notify(
                request.requestor, request.selection_atom, request.target_atom, prop, request.time
            )
            self.conn.flush()
        except xcffib.Error:
            return False
        return ok

    def _intern(self, name: str) -> int:
        atom = int(self.conn.core.InternAtom(False, len(name), name).reply().atom)
        self.atoms[name] = atom
        self.names[atom] = name
        return atom

    def _server_time(self) -> int:
        """A timestamp from the X server (ICCCM: never CurrentTime for ownership): the time
        of a zero-length append to our window's property. Other events met meanwhile are kept
        for :meth:`poll`."""
        prop = self.atoms[PROPERTY]
        self.conn.core.ChangeProperty(
            xp.PropMode.Append, self.window, prop, xp.Atom.STRING, 8, 0, b""
        )
        self.conn.flush()
        deadline = time.monotonic() + self.step_timeout
        while True:
            event = self._wait(self.conn, deadline, self._next_event_raw)
            if event is None:
                return 0  # CurrentTime, as a last resort
            if isinstance(event, xp.PropertyNotifyEvent) and event.window == self.window:
                return int(event.time)
            self._backlog.append(event)

    def _next_event_raw(self) -> Any:
        try:
            return self.conn.poll_for_event()
        except xcffib.Error:
            return None

    def own(self, selection: int, types: tuple[int, ...]) -> bool:
        """Take ``selection`` for a client that copied ``types``; False if X did not give it."""
        atom = self.atoms[X_SELECTIONS[selection]]
        when = self._server_time()
        self.conn.core.SetSelectionOwner(self.window, atom, when)
        owner = self.conn.core.GetSelectionOwner(atom).reply().owner
        if owner != self.window:
            self.owned.pop(selection, None)
            return False
        self.owned[selection] = (types, when)
        return True

    def owner_of(self, selection: int) -> int:
        """The window that owns ``selection`` now (0: none)."""
        atom = self.atoms[X_SELECTIONS[selection]]
        return int(self.conn.core.GetSelectionOwner(atom).reply().owner)

    def disown(self, selection: int) -> None:
        """Give ``selection`` up if we still hold it (the client's copy is void)."""
        owned = self.owned.pop(selection, None)
        if owned is None:
            return
        atom = self.atoms[X_SELECTIONS[selection]]
        if self.conn.core.GetSelectionOwner(atom).reply().owner == self.window:
            self.conn.core.SetSelectionOwner(0, atom, owned[1])
        self.conn.flush()

    # -- the reader connection --------------------------------------------------------------
    def _wait(self, conn: Any, deadline: float, next_event: Any) -> Any:
        """The next event of ``conn``, or None at ``deadline``."""
        fd = conn.get_file_descriptor()
        while True:
            event = next_event()
            if event is not None:
                return event
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            select.select([fd], [], [], left)

    def _reader_event(self) -> Any:
        try:
            return self.reader.poll_for_event()
        except xcffib.Error as exc:
            log.debug("X display %s: reader error %r", self.name, exc)
            return None

    def read_owner(self, selection: int, when: int) -> dict[int, bytes] | None:
        """Another program's ``selection`` as clipboard contents (UTF-8 text and/or PNG);
        None when it offers neither, refuses, answers garbage or too slowly."""
        targets_reply = self._convert(selection, "TARGETS", when)
        targets: list[str] | None = None
        if targets_reply is not None and targets_reply[0] == "ATOM":
            raw = targets_reply[1]
            atoms = [int.from_bytes(raw[i : i + 4], "little") for i in range(0, len(raw) - 3, 4)]
            targets = [self.names[a] for a in atoms if a in self.names]
        contents: dict[int, bytes] = {}
        if targets is not None and PNG_TARGET in targets:
            got = self._convert(selection, PNG_TARGET, when)
            png = png_from_x(*got) if got is not None else None
            if png is not None:
                contents[ClipboardType.IMAGE_PNG] = png
        target = text_target(targets)
        if target is not None:
            got = self._convert(selection, target, when)
            text = text_from_x(*got) if got is not None else None
            if text is not None:
                contents[ClipboardType.UTF8_TEXT] = text
        return contents or None

    def _convert(self, selection: int, target: str, when: int) -> tuple[str, bytes] | None:
        """(property type name, bytes) of one conversion; None if refused, late or too big."""
        reader, window = self.reader, self.reader_window
        prop = self.atoms[PROPERTY]
        while self._reader_event() is not None:
            pass  # what an owner sent too late for an earlier conversion
        reader.core.DeleteProperty(window, prop)
        reader.core.ConvertSelection(
            window, self.atoms[X_SELECTIONS[selection]], self.atoms[target], prop, when
        )
        reader.flush()
        deadline = time.monotonic() + self.step_timeout
        while True:
            event = self._wait(reader, deadline, self._reader_event)
            if event is None:
                log.info(
                    "X display %s: the owner of %s did not answer %s in %.0f s",
                    self.name, X_SELECTIONS[selection], target, self.step_timeout,
                )  # fmt: skip
                return None
            if isinstance(event, xp.SelectionNotifyEvent) and event.requestor == window:
                break
        if event.property == 0:
            return None
        reply = reader.core.GetProperty(True, window, prop, xp.GetPropertyType.Any, 0,
                                        (self.limit + 3) // 4 + 1).reply()  # fmt: skip
        type_name = self.names.get(reply.type) or self._reader_name(reply.type)
        if type_name == "INCR":
            return self._incr(selection, target)
        if reply.bytes_after or reply.value_len * (reply.format // 8) > self.limit:
            self._too_big(selection, target)
            return None
        return type_name, reply.value.buf()

    def _reader_name(self, atom: int) -> str:
        if atom == 0:
            return ""
        try:
            name = self.reader.core.GetAtomName(atom).reply().name.to_string()
        except xcffib.Error:
            return ""
        self.names[atom] = name
        return str(name)

    def _incr(self, selection: int, target: str) -> tuple[str, bytes] | None:
        """ICCCM's INCR: the property was deleted when read; the owner now writes chunks,
        each read (and deleted) on its PropertyNotify, until an empty one."""
        reader, window, prop = self.reader, self.reader_window, self.atoms[PROPERTY]
        data = bytearray()
        type_name = ""
        while True:
            deadline = time.monotonic() + self.step_timeout
            while True:
                event = self._wait(reader, deadline, self._reader_event)
                if event is None:
                    log.info("X display %s: INCR transfer of %s stalled", self.name, target)
                    return None
                if (
                    isinstance(event, xp.PropertyNotifyEvent)
                    and event.window == window
                    and event.atom == prop
                    and event.state == xp.Property.NewValue
                ):
                    break
            reply = reader.core.GetProperty(True, window, prop, xp.GetPropertyType.Any, 0,
                                            (self.limit + 3) // 4 + 1).reply()  # fmt: skip
            chunk = reply.value.buf()
            if not chunk:
                return type_name, bytes(data)
            type_name = self.names.get(reply.type) or self._reader_name(reply.type)
            data += chunk
            if len(data) > self.limit:
                self._too_big(selection, target)
                return None

    def _too_big(self, selection: int, target: str) -> None:
        log.info(
            "X display %s: %s as %s is over the clipboard limit of %d bytes; not shared",
            self.name, X_SELECTIONS[selection], target, self.limit,
        )  # fmt: skip
