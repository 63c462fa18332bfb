"""Errors of the agent machine.

Both are :class:`~spice.domain.errors.RemoteProtocolError`: the client broke the VD_AGENT
protocol badly enough that the stream can no longer be trusted (a chunk over 2048 bytes, an
AGENT_DATA without a token, a header that is not VD_AGENT_PROTOCOL, a body that does not parse).
The machine is then in its terminal error state; the adapter logs the message once and closes
the client's main channel, as libspice-server does on ``AGENT_MSG_FILTER_PROTO_ERROR``.
Problems that leave the stream in step (a clipboard over the limit, a file transfer sending
more than it announced) are not errors: they come out as events and the session goes on.
"""

from __future__ import annotations

from spice.domain.errors import MessageDecodeError, RemoteProtocolError


class AgentProtocolError(RemoteProtocolError):
    """The client's agent stream broke the protocol; the machine is unusable."""


class AgentDecodeError(AgentProtocolError, MessageDecodeError):
    """A VD_AGENT message payload does not parse as its type requires."""
