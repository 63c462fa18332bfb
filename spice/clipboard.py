"""The shared clipboard between the application and its clients (through the SPICE agent)."""

from __future__ import annotations

from collections.abc import Mapping

from spice.adapters.agent import CLIPBOARD_TIMEOUT, AgentHub
from spice.domain.agent.machine import PNG_SIGNATURE
from spice.domain.agent.messages import ClipboardSelection, ClipboardType
from spice.domain.errors import LocalProtocolError

#: Selection names as spice-gtk and vdagent know them.
SELECTIONS: dict[str, int] = {
    "clipboard": ClipboardSelection.CLIPBOARD,
    "primary": ClipboardSelection.PRIMARY,
    "secondary": ClipboardSelection.SECONDARY,
}


def _selection(name: str) -> int:
    try:
        return SELECTIONS[name]
    except KeyError:
        raise ValueError(
            f"selection must be one of {', '.join(SELECTIONS)}, not {name!r}"
        ) from None


class Clipboard:
    """``server.clipboard``: what the application copies is what every client pastes, and
    the application reads what a client copied.

    >>> await server.clipboard.set_text("hello")        # clients can paste it
    >>> text = await server.clipboard.read_text()       # what a client copied, or None

    Clients announce a copy first (``ClipboardOffered`` in ``server.agent_events()``); the
    contents travel only when read. ``selection`` is "clipboard" (default), "primary" or
    "secondary". With ``copy_paste=False`` on the server, nothing is shared.
    """

    def __init__(self, hub: AgentHub) -> None:
        self._hub = hub

    @property
    def shared(self) -> bool:
        """Whether clipboards are shared at all (False with ``copy_paste=False``)."""
        return self._hub.config.copy_paste

    @property
    def limit(self) -> int:
        """The most bytes one copy may hold, each way (the server's ``clipboard_limit``)."""
        return self._hub.config.clipboard_limit

    async def set_text(self, text: str, *, selection: str = "clipboard") -> None:
        await self.set({ClipboardType.UTF8_TEXT: text.encode("utf-8")}, selection=selection)

    async def set_image(self, png: bytes, *, selection: str = "clipboard") -> None:
        """A PNG image (what clients exchange images as)."""
        if not png.startswith(PNG_SIGNATURE):
            raise ValueError("the clipboard image must be a PNG")
        await self.set({ClipboardType.IMAGE_PNG: png}, selection=selection)

    async def set(self, contents: Mapping[int, bytes], *, selection: str = "clipboard") -> None:
        """Several representations at once, by ClipboardType number (1 text, 2 PNG...).
        ValueError for contents over the server's ``clipboard_limit`` or no real type."""
        try:
            await self._hub.set_clipboard(contents, _selection(selection))
        except LocalProtocolError as exc:
            raise ValueError(str(exc)) from None

    async def clear(self, *, selection: str = "clipboard") -> None:
        """Stop offering what the application put on ``selection``."""
        await self._hub.release_clipboard(_selection(selection))

    def offered(self, *, selection: str = "clipboard") -> tuple[int, ...]:
        """The ClipboardType numbers a client currently offers on ``selection``."""
        return self._hub.offered(_selection(selection))

    async def read(
        self, type: int, *, selection: str = "clipboard", timeout: float = CLIPBOARD_TIMEOUT
    ) -> bytes | None:
        """The client's contents as ``type``; None if no client offers it or none came."""
        return await self._hub.read_clipboard(_selection(selection), int(type), timeout)

    async def read_text(
        self, *, selection: str = "clipboard", timeout: float = CLIPBOARD_TIMEOUT
    ) -> str | None:
        data = await self.read(ClipboardType.UTF8_TEXT, selection=selection, timeout=timeout)
        if data is None:
            return None
        return data.removesuffix(b"\0").decode("utf-8", errors="replace")

    async def read_image(
        self, *, selection: str = "clipboard", timeout: float = CLIPBOARD_TIMEOUT
    ) -> bytes | None:
        """The client's image as PNG bytes."""
        return await self.read(ClipboardType.IMAGE_PNG, selection=selection, timeout=timeout)


__all__ = ["SELECTIONS", "Clipboard", "ClipboardType"]
