"""Test pictures that look to a codec like what real screens show, and what the server says it
sent (per display: image types from the display machines, bytes from the connections)."""

from __future__ import annotations

import numpy as np

import spice


def desktop_like(h: int, w: int, seed: int) -> np.ndarray:
    """Flat panels with text-like strokes: what desktops look like to a codec."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 4), dtype=np.uint8)
    img[..., :3] = (236, 236, 236)
    img[: h // 8, :, :3] = (90, 60, 30)
    for row in range(h // 8 + 4, h - 12, 14):
        line = rng.integers(0, 2, (9, w // 2), dtype=np.uint8).repeat(2, axis=1)
        glyphs = np.where(line[..., None] == 1, 20, 236).astype(np.uint8)
        img[row : row + 9, : glyphs.shape[1], :3] = glyphs
    return img


def photo_like(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth gradients with sensor-like noise: what photographs look like to a codec."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 4), dtype=np.uint8)
    for c, (fx, fy) in enumerate(((31.0, 47.0), (53.0, 29.0), (41.0, 37.0))):
        base = 128 + 70 * np.sin(xx / fx + c) * np.cos(yy / fy - c) + 30 * np.sin((xx + yy) / 97)
        img[..., c] = np.clip(base + rng.normal(0, 3, (h, w)), 0, 255).astype(np.uint8)
    return img


def sent_types(server: spice.Server) -> dict[str, int]:
    out: dict[str, int] = {}
    for client in server._core.displays[0].clients:
        for name, count in client.machine.stats.by_type.items():
            out[name] = out.get(name, 0) + count
    return out


def cache_hits(server: spice.Server) -> int:
    return sum(c.machine.stats.cache_hits for c in server._core.displays[0].clients)


def display_bytes(server: spice.Server) -> int:
    return sum(c.connection.bytes_sent for c in server._core.displays[0].clients)
