"""Which channels a session is offered (and may link), by transport: everything to spice-gtk's
TCP and TLS sessions; no record channel to WebSocket sessions (spice-html5 has none and logs
an error for a listed one, see tests/e2e/test_browser_audio.py); no audio without audio."""

from __future__ import annotations

import pytest

from spice.adapters.config import ServerConfig
from spice.adapters.core import SpiceCore
from spice.adapters.session import Transport
from spice.domain.enums import ChannelType

D, IN, C, P, R = (
    ChannelType.DISPLAY.value,
    ChannelType.INPUTS.value,
    ChannelType.CURSOR.value,
    ChannelType.PLAYBACK.value,
    ChannelType.RECORD.value,
)


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_native_sessions_are_offered_both_audio_channels(transport: Transport) -> None:
    core = SpiceCore(ServerConfig())
    core.add_display(320, 240)
    assert core.channels_for(transport) == [(D, 0), (IN, 0), (C, 0), (P, 0), (R, 0)]


def test_websocket_sessions_are_not_offered_record() -> None:
    core = SpiceCore(ServerConfig())
    core.add_display(320, 240)
    core.add_display(200, 100)
    assert core.channels_for("websocket") == [(D, 0), (D, 1), (IN, 0), (C, 0), (C, 1), (P, 0)]


def test_no_audio_channels_without_audio() -> None:
    core = SpiceCore(ServerConfig(audio=False))
    core.add_display(320, 240)
    assert core.channels_for("tcp") == core.channels_for("websocket") == [(D, 0), (IN, 0), (C, 0)]
