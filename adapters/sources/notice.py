"""What display sources share: the display API they draw through, and the notice screen they
show when what they mirror goes away."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from PIL import Image, ImageDraw


class DisplaySink(Protocol):
    """What the source needs of a display: :class:`spice.Display` is one."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    async def update(self, x: int, y: int, image: Any) -> None: ...

    async def resize(self, width: int, height: int) -> None: ...

    async def set_cursor(
        self,
        image: Any,
        hot_x: int = 0,
        hot_y: int = 0,
        *,
        x: int | None = None,
        y: int | None = None,
    ) -> None: ...

    async def move_cursor(self, x: int, y: int) -> None: ...

    async def hide_cursor(self) -> None: ...


def message_screen(width: int, height: int, text: str) -> np.ndarray:
    """A dark screen with ``text`` in its middle, (h, w, 4) BGRX."""
    image = Image.new("RGB", (width, height), (40, 40, 48))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), text)
    draw.text(
        ((width - (right - left)) // 2, (height - (bottom - top)) // 2), text, fill=(230, 230, 230)
    )
    rgb = np.asarray(image)
    out = np.zeros((height, width, 4), np.uint8)
    out[..., :3] = rgb[..., ::-1]
    return out


__all__ = ["DisplaySink", "message_screen"]
