"""The port channel of one client connection: a named byte pipe (the C server's spicevmc
channel for a port char device).

Everything that affects the state machine lives here. After the link the server sends
PORT_INIT with the name and whether the application has the port open; later the
application's bytes as DATA (at most :data:`DATA_CHUNK` bytes a message) and PORT_EVENT when
it opens or closes the port. The client's DATA (and COMPRESSED_DATA of type NONE) become
:class:`PortData` events; its PORT_EVENT comes out as the message itself. The connection is
the client's open/closed: the adapter turns its start and end into the application's events.
A message the client is not allowed to send (LZ4 we never offered, a short PORT_EVENT, an
unknown type, one over the size limit) is a RemoteProtocolError: the adapter logs it once and
closes this connection only.
"""

from __future__ import annotations

from typing import Any

import attrs

from spice.domain.channel import ChannelConnection
from spice.domain.enums import PortEvent
from spice.domain.errors import LocalProtocolError
from spice.domain.messages import port as m

#: Largest client message: spice-gtk sends each ``write_async`` buffer as one DATA message.
MAX_PORT_MESSAGE = 1024 * 1024
#: Application bytes per DATA message (the C server reads its char device in 64 KiB too).
DATA_CHUNK = 64 * 1024


@attrs.frozen
class PortData:
    """Bytes the client wrote to the port."""

    data: bytes


class PortChannel(ChannelConnection):
    CLIENT_MESSAGES = m.CLIENT_MESSAGES

    def __init__(self, *, mini_header: bool, max_message_size: int = MAX_PORT_MESSAGE) -> None:
        super().__init__(mini_header=mini_header, max_message_size=max_message_size)
        self.name: bytes | None = None
        self.opened = False

    def start(self, name: bytes, opened: bool) -> None:
        """Queue PORT_INIT; nothing else may be sent before it."""
        if self.name is not None:
            raise LocalProtocolError("PORT_INIT already sent")
        self.send(m.PortInit(name, opened))
        self.name, self.opened = name, opened

    def set_opened(self, opened: bool) -> None:
        """The application opened or closed the port: PORT_EVENT, if that changes anything."""
        self._require_started()
        if opened != self.opened:
            self.opened = opened
            self.send(m.PortEventMsg(PortEvent.OPENED if opened else PortEvent.CLOSED))

    def send_data(self, data: bytes | bytearray | memoryview) -> None:
        """Queue the application's bytes as DATA messages."""
        self._require_started()
        view = memoryview(data).cast("B")
        for start in range(0, len(view), DATA_CHUNK):
            self.send_body(m.SpicevmcData.MSG_TYPE, bytes(view[start : start + DATA_CHUNK]))

    def _require_started(self) -> None:
        if self.name is None:
            raise LocalProtocolError("nothing may go to a port client before PORT_INIT")

    def _handle(self, msg: Any) -> Any:
        if isinstance(msg, (m.ClientSpicevmcData, m.ClientSpicevmcCompressedData)):
            return PortData(msg.data) if msg.data else None
        return msg  # ClientPortEvent
