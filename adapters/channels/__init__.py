"""One runner per channel kind of the registry (:mod:`spice.domain.channels.registry`).

A runner gets the session's narrow :class:`~spice.adapters.channels.context.ChannelContext`,
the linked stream and a label, and runs until the connection ends. :data:`RUNNERS` is what the
session dispatches on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from spice.adapters.channels.context import ChannelContext
from spice.adapters.channels.cursor import run_cursor
from spice.adapters.channels.display import run_display
from spice.adapters.channels.inputs import run_inputs
from spice.adapters.channels.playback import run_playback
from spice.adapters.channels.port import run_port
from spice.adapters.channels.record import run_record
from spice.adapters.link import Linked
from spice.domain.enums import ChannelType

Runner = Callable[[ChannelContext, trio.abc.Stream, Linked, str], Awaitable[None]]

RUNNERS: dict[ChannelType, Runner] = {
    ChannelType.CURSOR: run_cursor,
    ChannelType.DISPLAY: run_display,
    ChannelType.INPUTS: run_inputs,
    ChannelType.PLAYBACK: run_playback,
    ChannelType.PORT: run_port,
    ChannelType.RECORD: run_record,
}
