"""Data headers after the link stage: the 6-byte mini header and the 18-byte full header.

Which one a connection uses is fixed at link time (the client's MINI_HEADER capability). The
reader turns a byte stream into ``(type, body)`` messages with a size limit, so a hostile size
field never makes us buffer more than the limit; the writer frames bodies and numbers them.
"""

from __future__ import annotations

import struct

import attrs

from spice.domain.errors import RemoteProtocolError

MINI_HEADER = struct.Struct("<HI")
FULL_HEADER = struct.Struct("<QHII")

#: The largest client message we accept. Real clients send small messages; agent data is cut
#: into 2 KiB pieces and a KEY_SCANCODE holds a few bytes.
DEFAULT_MAX_CLIENT_MESSAGE = 64 * 1024


@attrs.frozen
class RawMessage:
    type: int
    body: bytes
    serial: int


class MessageReader:
    """Bytes in, framed messages out."""

    def __init__(self, *, mini_header: bool, max_size: int = DEFAULT_MAX_CLIENT_MESSAGE) -> None:
        self._mini = mini_header
        self.max_size = max_size
        self._buf = bytearray()
        self._serial = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def receive_data(self, data: bytes | bytearray) -> None:
        self._buf += data

    def next_message(self) -> RawMessage | None:
        header = MINI_HEADER if self._mini else FULL_HEADER
        if len(self._buf) < header.size:
            return None
        if self._mini:
            msg_type, size = MINI_HEADER.unpack_from(self._buf)
            serial = self._serial + 1
        else:
            serial, msg_type, size, sub_list = FULL_HEADER.unpack_from(self._buf)
            if sub_list:
                raise RemoteProtocolError("client sent a sub-message list")
        if size > self.max_size:
            raise RemoteProtocolError(
                f"message type {msg_type} announces {size} bytes, over the limit of {self.max_size}"
            )
        end = header.size + size
        if len(self._buf) < end:
            return None
        body = bytes(self._buf[header.size : end])
        del self._buf[:end]
        self._serial = serial
        return RawMessage(msg_type, body, serial)


class MessageWriter:
    """Frames message bodies; full headers carry a serial counted from 1."""

    def __init__(self, *, mini_header: bool) -> None:
        self._mini = mini_header
        self.last_serial = 0

    def header(self, msg_type: int, size: int) -> bytes:
        self.last_serial += 1
        if self._mini:
            return MINI_HEADER.pack(msg_type, size)
        return FULL_HEADER.pack(self.last_serial, msg_type, size, 0)
