"""The test's own view of an X server, independent of the source under test: it draws a
known picture, paints rectangles, reads the root window back with core GetImage and the
cursor with XFixes (xcffib, blocking calls: keep them short or run them in a thread)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import xcffib
import xcffib.xfixes
import xcffib.xproto as xp

from spice.adapters.sources.x11_screen import connect


class XPeer:
    def __init__(self, display: str, xauthority: Path | None = None) -> None:
        self.conn: Any = connect(display, xauthority)
        screen = self.conn.get_setup().roots[0]
        self.root = screen.root
        self.width, self.height = screen.width_in_pixels, screen.height_in_pixels
        self.depth = screen.root_depth
        self.fixes = self.conn(xcffib.xfixes.key)
        self.fixes.QueryVersion(5, 0).reply()

    def close(self) -> None:
        self.conn.disconnect()

    def show_picture(self, x: int, y: int, bgrx: np.ndarray) -> int:
        """A borderless window at (x, y) whose background is ``bgrx`` (h, w, 4); its id."""
        h, w = bgrx.shape[:2]
        pixmap = self.conn.generate_id()
        self.conn.core.CreatePixmap(self.depth, pixmap, self.root, w, h)
        gc = self.conn.generate_id()
        self.conn.core.CreateGC(gc, pixmap, 0, [])
        for top in range(0, h, 32):  # strips well under the core request size limit
            strip = np.ascontiguousarray(bgrx[top : top + 32])
            self.conn.core.PutImage(
                xp.ImageFormat.ZPixmap,
                pixmap,
                gc,
                w,
                strip.shape[0],
                0,
                top,
                0,
                self.depth,
                len(strip.tobytes()),
                strip.tobytes(),
            )
        window = self.conn.generate_id()
        self.conn.core.CreateWindow(
            self.depth,
            window,
            self.root,
            x,
            y,
            w,
            h,
            0,
            xp.WindowClass.InputOutput,
            0,  # CopyFromParent: the root visual
            xp.CW.BackPixmap | xp.CW.OverrideRedirect,
            [pixmap, 1],
        )
        self.conn.core.MapWindow(window)
        self.conn.core.FreeGC(gc)
        self.conn.flush()
        self.gc_window = window
        return window

    def fill(self, window: int, x: int, y: int, w: int, h: int, rgb: int) -> None:
        gc = self.conn.generate_id()
        self.conn.core.CreateGC(gc, window, xp.GC.Foreground, [rgb])
        self.conn.core.PolyFillRectangle(window, gc, 1, [xp.RECTANGLE.synthetic(x, y, w, h)])
        self.conn.core.FreeGC(gc)
        self.conn.core.GetInputFocus().reply()  # a round trip: the drawing is done

    def root_pixels(self) -> np.ndarray:
        """The root window, (h, w, 4) BGRX, read in strips with core GetImage."""
        rows = []
        for top in range(0, self.height, 64):
            h = min(64, self.height - top)
            reply = self.conn.core.GetImage(
                xp.ImageFormat.ZPixmap, self.root, 0, top, self.width, h, 0xFFFFFFFF
            ).reply()
            rows.append(np.frombuffer(reply.data.buf(), np.uint8).reshape(h, self.width, 4))
        return np.concatenate(rows)

    def cursor(self) -> dict[str, Any]:
        """The current cursor as spice-gtk's cursor-set reports it: size, hot spot and the
        SHA-256 of its R, G, B, A bytes (straight alpha)."""
        reply = self.fixes.GetCursorImage().reply()
        argb = np.array(list(reply.cursor_image), dtype=np.uint32)
        a = (argb >> 24) & 0xFF
        rgba = np.zeros((argb.size, 4), np.uint8)
        for i, shift in enumerate((16, 8, 0)):
            premultiplied = (argb >> shift) & 0xFF
            rgba[:, i] = np.where(a > 0, (premultiplied * 255 + a // 2) // np.maximum(a, 1), 0)
        rgba[:, 3] = a
        return {
            "width": reply.width,
            "height": reply.height,
            "hot_x": reply.xhot,
            "hot_y": reply.yhot,
            "rgba_sha256": hashlib.sha256(rgba.tobytes()).hexdigest(),
        }
