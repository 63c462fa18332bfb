"""The display channel, per client connection.

The server sends SET_ACK at once and waits for the client's DISPLAY_INIT (which tells the image
cache size) before any drawing. Drawing messages are built by :mod:`domain.display_pipe` from
the surface; this machine frames them and keeps the ack window.
"""

from __future__ import annotations

from typing import Any

from domain.caps import CapabilitySet
from domain.channel import ACK_WINDOW, ChannelConnection
from domain.enums import DisplayCap, ImageCompression
from domain.messages import display as m


class DisplayChannel(ChannelConnection):
    CLIENT_MESSAGES = m.CLIENT_MESSAGES

    def __init__(
        self, *, mini_header: bool, client_caps: CapabilitySet, server_caps: CapabilitySet
    ) -> None:
        super().__init__(mini_header=mini_header, ack_window=ACK_WINDOW)
        self.client_caps = client_caps
        self.server_caps = server_caps
        self.init: m.DisplayInit | None = None
        self.preferred_compression: int | None = None

    @property
    def monitors_config(self) -> bool:
        """Whether MONITORS_CONFIG must follow each primary (spice-gtk waits for it then)."""
        return (
            DisplayCap.MONITORS_CONFIG in self.server_caps
            and DisplayCap.MONITORS_CONFIG in self.client_caps
        )

    @property
    def lz4(self) -> bool:
        """Whether images may go as LZ4: the client decodes it and did not ask for no
        compression (PREFERRED_COMPRESSION OFF)."""
        return (
            DisplayCap.LZ4_COMPRESSION in self.client_caps
            and self.preferred_compression != ImageCompression.OFF
        )

    def _handle(self, msg: Any) -> Any:
        if isinstance(msg, m.DisplayInit):
            self.init = msg
            return msg
        if isinstance(msg, m.PreferredCompression):
            self.preferred_compression = msg.image_compression
            return None
        return None
