"""Errors raised by the protocol machines.

As in h11: :class:`RemoteProtocolError` means the peer broke the protocol and carries what to
answer (a SPICE link error code, when the protocol defines one); :class:`LocalProtocolError`
means our own code misused a machine. Either moves the machine to a terminal state.
"""

from __future__ import annotations

from spice.domain.enums import LinkError


class ProtocolError(Exception):
    """Base of every protocol error."""


class LocalProtocolError(ProtocolError):
    """Our side asked a machine to do something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow.

    ``link_error`` is the SPICE link error to answer with during the link stage, or ``None``
    once framed messages are flowing (then the connection is simply closed).
    """

    def __init__(self, message: str, link_error: LinkError | None = None) -> None:
        super().__init__(message)
        self.link_error = link_error


class MessageDecodeError(RemoteProtocolError):
    """A framed message body does not parse as its type requires."""
