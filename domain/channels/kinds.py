"""Channel kinds this server offers beyond the first four: what a kind's connections are
made of (its type, the capabilities the link reply carries, the machine factory).

A small, additive registry: a new kind is one entry here and one runner under
``adapters/channels/``. (The audio work adds ``registry.py`` with the same shape; the two are
to be merged into one table.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs

from spice.domain.caps import CapabilitySet
from spice.domain.channel import ChannelConnection
from spice.domain.channels.port import PortChannel
from spice.domain.enums import ChannelType


@attrs.frozen
class ChannelKind:
    type: ChannelType
    #: The channel capabilities of the server's link reply.
    caps: CapabilitySet
    #: Builds one connection's machine, given whether the client uses mini headers.
    machine: Callable[..., ChannelConnection]


#: The port channel: no channel caps (LZ4 data compression is not offered).
PORT = ChannelKind(ChannelType.PORT, CapabilitySet(), PortChannel)

KINDS: Mapping[ChannelType, ChannelKind] = {PORT.type: PORT}
