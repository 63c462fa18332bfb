"""File transfer from the client: the START key file, the name rule and one transfer's state.

spice-gtk sends FILE_XFER_START with a GLib key file (``g_key_file_to_data``)::

    [vdagent-file-xfer]
    name=<base name, GLib-escaped>
    size=<decimal bytes>

followed by a NUL; spice-html5 writes the same text itself, one byte per UTF-16 code unit (so
a non-ASCII name arrives as Latin-1, which is how it is read when it is not valid UTF-8).

The name must be a plain base name: empty, ``.``, ``..``, anything with ``/`` or ``\\`` (so
every ``../`` and every absolute path, POSIX or Windows), a NUL or another control character,
or more than 255 UTF-8 bytes is refused with :class:`BadStart`. The domain never touches a
file; the adapter writes into a temporary file and renames it at the end (see
:class:`~.events.FileTransferCompleted`).
"""

from __future__ import annotations

import enum

import attrs

#: Longest accepted name in UTF-8 bytes (NAME_MAX on Linux).
MAX_NAME_BYTES = 255
_GROUP = "vdagent-file-xfer"
_ESCAPES = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


class BadStart(ValueError):
    """A FILE_XFER_START the agent refuses; ``invalid_name`` tells the detailed error."""

    def __init__(self, reason: str, *, invalid_name: bool = False) -> None:
        super().__init__(reason)
        self.invalid_name = invalid_name


def _unescape(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, "")
        if nxt not in _ESCAPES:
            raise BadStart(f"bad escape \\{nxt} in the key file")
        out.append(_ESCAPES[nxt])
    return "".join(out)


def _text(raw: bytes) -> str:
    raw = raw.split(b"\0", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_start(keyfile: bytes) -> tuple[str, int]:
    """The checked ``(name, size)`` of a START key file, or :class:`BadStart`."""
    group: str | None = None
    values: dict[str, str] = {}
    for line in _text(keyfile).split("\n"):
        line = line.strip(" \t\r")
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise BadStart("a key file line without '='")
        if group == _GROUP:
            values.setdefault(key.rstrip(" \t"), value.lstrip(" \t"))
    if "name" not in values or "size" not in values:
        raise BadStart("the key file lacks name or size")
    size_text = values["size"]
    if not size_text.isascii() or not size_text.isdigit() or len(size_text) > 20:
        raise BadStart(f"size {size_text[:30]!r} is not a byte count")
    size = int(size_text)
    if size >= 1 << 64:
        raise BadStart("size beyond uint64")
    name = _unescape(values["name"])
    check_name(name)
    return name, size


def check_name(name: str) -> None:
    """Raise :class:`BadStart` unless ``name`` is a plain base name safe to create."""
    if name in ("", ".", ".."):
        raise BadStart(f"file name {name!r} is not a file", invalid_name=True)
    if "/" in name or "\\" in name:
        raise BadStart(f"file name {name[:80]!r} is a path", invalid_name=True)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise BadStart(f"file name {name[:80]!r} has control characters", invalid_name=True)
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadStart("file name is not encodable", invalid_name=True) from None
    if len(encoded) > MAX_NAME_BYTES:
        raise BadStart(f"file name of {len(encoded)} bytes", invalid_name=True)


class TransferState(enum.Enum):
    OFFERED = "OFFERED"  # FileTransferStarted out, waiting for accept/refuse
    RECEIVING = "RECEIVING"  # CAN_SEND_DATA sent
    COMPLETING = "COMPLETING"  # every byte in, waiting for finish_transfer

    def __repr__(self) -> str:
        return self.value


@attrs.define
class Transfer:
    id: int
    name: str
    size: int
    state: TransferState = TransferState.OFFERED
    received: int = 0
