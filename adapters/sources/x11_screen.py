"""One connection to an X server, spoken through xcffib (XCB): blocking calls only, meant to
run in a worker thread (:mod:`adapters.sources.x11` drives it from Trio).

What it reads: the root window's pixels with MIT-SHM when the server shares memory with us
(GetImage otherwise), what changed from a DAMAGE object on the root (each :meth:`collect`
atomically takes the damage region and clears it, so nothing drawn in between is lost), the
cursor image from XFixes, the pointer position, and screen size changes from RandR. What it
writes: key and pointer events through XTEST, keys mapped by :mod:`domain.sources.keymap`.
xcffib was chosen over python-xlib because it has all five extensions, MIT-SHM included;
nothing here writes X protocol by hand.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from typing import Any

import attrs
import numpy as np
import xcffib
import xcffib.damage
import xcffib.randr
import xcffib.shm
import xcffib.xfixes
import xcffib.xproto as xp
import xcffib.xtest

from spice.domain.display.surface import Pixels
from spice.domain.geometry import Box
from spice.domain.input_events import (
    InputEvent,
    KeyboardModifiersEvent,
    KeyEvent,
    MouseButtonEvent,
    MouseMotionEvent,
    MousePositionEvent,
    MouseWheelEvent,
)
from spice.domain.sources.cursor import argb_premultiplied_to_bgra
from spice.domain.sources.damage import capture_boxes, scan_boxes
from spice.domain.sources.keymap import KeyMapper, XKeymap

log = logging.getLogger(__name__)

_xcb: Any = xcffib  # untyped
_randr: Any = xcffib.randr

#: Errors that mean the X server is gone (or never answered).
LOST = (xcffib.ConnectionException, xcffib.XcffibException, OSError)

#: SPICE button numbers to X buttons: left, middle, right, wheel up/down, side, extra.
_BUTTONS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 9}
_KEY_PRESS, _KEY_RELEASE, _BUTTON_PRESS, _BUTTON_RELEASE, _MOTION = 2, 3, 4, 5, 6


_environ_lock = threading.Lock()

#: Names of the RandR modes :meth:`XScreen.set_size` makes.
_MODE_PREFIX = b"spice-"


def _millimetres(width: int, height: int) -> tuple[int, int]:
    """A screen's physical size at 96 dots per inch (what Xvfb and most desktops assume)."""
    return round(width * 25.4 / 96), round(height * 25.4 / 96)


def connect(display: str | None, xauthority: str | os.PathLike[str] | None = None) -> Any:
    """An xcffib connection (xcffib has no type hints: Any). ``xauthority`` names the
    Xauthority file to use instead of $XAUTHORITY: XCB reads only the environment, and
    xcffib's own credentials argument loses its buffers before XCB reads them, so the
    variable is set for the duration of the connect, under a lock."""
    if xauthority is None:
        return _xcb.connect(display=display)
    with _environ_lock:
        old = os.environ.get("XAUTHORITY")
        os.environ["XAUTHORITY"] = os.fspath(xauthority)
        try:
            return _xcb.connect(display=display)
        finally:
            if old is None:
                del os.environ["XAUTHORITY"]
            else:
                os.environ["XAUTHORITY"] = old


class XUnsupported(Exception):
    """The X server cannot be shown (a pixel format other than 24-bit TrueColor BGRX)."""


@attrs.frozen
class Cursor:
    bgra: Pixels
    hot_x: int
    hot_y: int
    serial: int


@attrs.define
class Changes:
    """What one :meth:`XScreen.collect` found."""

    size: tuple[int, int] | None = None  # the screen's new size, after a RandR change
    tiles: list[tuple[Box, Pixels]] = attrs.Factory(list)
    cursor: Cursor | None = None
    pointer: tuple[int, int] | None = None


class _SharedImage:
    """A System V shared memory segment attached to the X server (MIT-SHM)."""

    def __init__(self, conn: Any, size: int) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        libc.shmdt.argtypes = [ctypes.c_void_p]
        self._libc = libc
        self._conn = conn
        self.size = size
        shmid = libc.shmget(0, size, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
        if shmid < 0:
            raise OSError(ctypes.get_errno(), "shmget failed")
        addr = libc.shmat(shmid, None, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            libc.shmctl(shmid, 0, None)
            raise OSError(ctypes.get_errno(), "shmat failed")
        self._addr = addr
        self.seg = conn.generate_id()
        try:
            conn(xcffib.shm.key).AttachChecked(self.seg, shmid, False).check()
        finally:
            libc.shmctl(shmid, 0, None)  # IPC_RMID: gone once both sides detach
        self.buffer = (ctypes.c_uint8 * size).from_address(addr)

    def close(self) -> None:
        if self._addr is not None:
            self._libc.shmdt(ctypes.c_void_p(self._addr))
            self._addr = None


class XScreen:
    """The root window of screen 0 of one X display."""

    def __init__(
        self,
        display: str | None,
        *,
        xauthority: str | os.PathLike[str] | None = None,
        use_shm: bool = True,
        use_damage: bool = True,
    ) -> None:
        self.name = display or ""
        self.conn: Any = connect(display, xauthority)
        try:
            self._setup(use_shm, use_damage)
        except BaseException:
            self.conn.disconnect()
            raise

    def _has(self, name: str) -> bool:
        reply = self.conn.core.QueryExtension(len(name), name).reply()
        return bool(reply.present)

    def _setup(self, use_shm: bool, use_damage: bool) -> None:
        conn = self.conn
        setup = conn.get_setup()
        screen = setup.roots[0]
        self.root = screen.root
        self._check_format(setup, screen)
        self.width, self.height = screen.width_in_pixels, screen.height_in_pixels
        reply = conn.core.GetKeyboardMapping(
            setup.min_keycode, setup.max_keycode - setup.min_keycode + 1
        ).reply()
        self.keys = KeyMapper(
            XKeymap.from_flat(setup.min_keycode, reply.keysyms_per_keycode, list(reply.keysyms))
        )
        self.xtest = self._has("XTEST")
        self.xfixes = self._has("XFIXES")
        if self.xfixes:
            fixes = conn(xcffib.xfixes.key)
            fixes.QueryVersion(5, 0).reply()
            fixes.SelectCursorInput(self.root, xcffib.xfixes.CursorNotifyMask.DisplayCursor)
            self._region = conn.generate_id()
            fixes.CreateRegion(self._region, 0, [])
        self.damage = use_damage and self.xfixes and self._has("DAMAGE")
        if self.damage:
            dmg = conn(xcffib.damage.key)
            dmg.QueryVersion(1, 1).reply()
            self._damage = conn.generate_id()
            dmg.Create(self._damage, self.root, xcffib.damage.ReportLevel.NonEmpty)
        self.randr = self._has("RANDR")
        self._randr_minor = 0
        if self.randr:
            rr = conn(xcffib.randr.key)
            self._randr_minor = rr.QueryVersion(1, 5).reply().minor_version
            rr.SelectInput(self.root, xcffib.randr.NotifyMask.ScreenChange)
        self._size_asked = False
        self._shm: _SharedImage | None = None
        self.shm = use_shm and self._has("MIT-SHM")
        if self.shm:
            try:
                self._shm = _SharedImage(conn, self.width * self.height * 4)
            except (OSError, xcffib.XcffibException, xcffib.ProtocolException) as exc:
                log.info(
                    "X display %s: no shared memory (%s); reading with GetImage", self.name, exc
                )
                self.shm = False
        self._cursor_serial: int | None = None
        self._pointer: tuple[int, int] | None = None
        self._frame: Pixels | None = None  # the last full frame, for the tile scan
        self._full = True  # the next collect reads the whole screen
        self._dirty = True
        self._buttons: set[int] = set()
        self._keys_down: set[int] = set()
        conn.flush()

    @staticmethod
    def _check_format(setup: Any, screen: Any) -> None:
        if setup.image_byte_order != xp.ImageOrder.LSBFirst:
            raise XUnsupported("the X server sends most-significant-byte-first images")
        if screen.root_depth not in (24, 32):
            raise XUnsupported(f"the root window is {screen.root_depth} bits deep, not 24")
        for fmt in setup.pixmap_formats:
            if fmt.depth == screen.root_depth and fmt.bits_per_pixel != 32:
                raise XUnsupported(f"{fmt.bits_per_pixel} bits per pixel, not 32")
        for depth in screen.allowed_depths:
            for visual in depth.visuals:
                if visual.visual_id == screen.root_visual and (
                    visual.red_mask,
                    visual.green_mask,
                    visual.blue_mask,
                ) != (0xFF0000, 0xFF00, 0xFF):
                    raise XUnsupported("the root visual is not 8-bit RGB")

    def alive(self) -> bool:
        """Whether the connection still works (an X error reply leaves it working)."""
        try:
            self.conn.invalid()
        except LOST:
            return False
        return True

    def fileno(self) -> int:
        return int(self.conn.get_file_descriptor())

    def close(self) -> None:
        try:
            if self._shm is not None:
                self._shm.close()
            self.conn.disconnect()
        except LOST:
            pass

    # ------------------------------------------------------------------ reading
    def _drain_events(self, changes: Changes) -> None:
        while True:
            event = self.conn.poll_for_event()
            if event is None:
                return
            if isinstance(event, xcffib.damage.NotifyEvent):
                self._dirty = True
            elif isinstance(event, xcffib.xfixes.CursorNotifyEvent):
                self._cursor_serial = None
            elif isinstance(event, xcffib.randr.ScreenChangeNotifyEvent):
                self._resized(changes)

    def _resized(self, changes: Changes) -> None:
        geometry = self.conn.core.GetGeometry(self.root).reply()
        size = (geometry.width, geometry.height)
        if size == (self.width, self.height):
            return
        self.width, self.height = size
        changes.size = size
        self._full = True
        self._frame = None
        if self._shm is not None and self._shm.size < self.width * self.height * 4:
            self.conn(xcffib.shm.key).Detach(self._shm.seg)
            self._shm.close()
            self._shm = _SharedImage(self.conn, self.width * self.height * 4)

    def read(self, box: Box) -> Pixels:
        """The root window's pixels in ``box``, (h, w, 4) BGRX."""
        if self._shm is not None:
            self.conn(xcffib.shm.key).GetImage(
                self.root,
                box.x,
                box.y,
                box.w,
                box.h,
                0xFFFFFFFF,
                xp.ImageFormat.ZPixmap,
                self._shm.seg,
                0,
            ).reply()
            data = np.frombuffer(memoryview(self._shm.buffer), np.uint8, count=box.w * box.h * 4)
            return data.reshape(box.h, box.w, 4).copy()
        reply = self.conn.core.GetImage(
            xp.ImageFormat.ZPixmap, self.root, box.x, box.y, box.w, box.h, 0xFFFFFFFF
        ).reply()
        raw = np.frombuffer(reply.data.buf(), np.uint8, count=box.w * box.h * 4)
        pixels: Pixels = raw.reshape(box.h, box.w, 4).copy()
        return pixels

    def _take_damage(self) -> list[Box]:
        fixes = self.conn(xcffib.xfixes.key)
        self.conn(xcffib.damage.key).Subtract(self._damage, 0, self._region)
        reply = fixes.FetchRegion(self._region).reply()
        return [Box(r.x, r.y, r.width, r.height) for r in reply.rectangles]

    def collect(self) -> Changes:
        """Everything that changed since the last call: size, pixels, cursor, pointer."""
        changes = Changes()
        if self._size_asked:
            self._size_asked = False
            self._resized(changes)
        self._drain_events(changes)
        screen = Box(0, 0, self.width, self.height)
        if self.damage:
            if self._full:
                self._take_damage()
                boxes = [screen]
            elif self._dirty:
                boxes = capture_boxes(self._take_damage(), self.width, self.height)
            else:
                boxes = []
            self._dirty = False
            changes.tiles = [(box, self.read(box)) for box in boxes]
        else:
            frame = self.read(screen)
            if self._full or self._frame is None:
                changes.tiles = [(screen, frame)]
            else:
                changes.tiles = [
                    (b, frame[b.y : b.bottom, b.x : b.right].copy())
                    for b in scan_boxes(self._frame, frame)
                ]
            self._frame = frame
        self._full = False
        if self.xfixes and self._cursor_serial is None:
            changes.cursor = self._read_cursor()
        pointer = self.conn.core.QueryPointer(self.root).reply()
        position = (pointer.root_x, pointer.root_y)
        if position != self._pointer:
            self._pointer = changes.pointer = position
        # Replies may have brought events into XCB's queue: take them now, so that waiting
        # on the socket afterwards does not sleep on events already received.
        self._drain_events(changes)
        return changes

    def pending(self) -> bool:
        """Whether something is known to be waiting for :meth:`collect`."""
        return (
            self._dirty
            or self._full
            or self._size_asked
            or (self.xfixes and self._cursor_serial is None)
        )

    def _read_cursor(self) -> Cursor | None:
        reply = self.conn(xcffib.xfixes.key).GetCursorImage().reply()
        self._cursor_serial = reply.cursor_serial
        if reply.width == 0 or reply.height == 0:
            return None
        bgra = argb_premultiplied_to_bgra(list(reply.cursor_image), reply.width, reply.height)
        return Cursor(bgra, reply.xhot, reply.yhot, reply.cursor_serial)

    def full_refresh(self) -> None:
        self._full = True

    # ------------------------------------------------------------------ writing
    def set_size(self, width: int, height: int) -> bool:
        """Switch the screen to ``width`` x ``height``; False when the X server will not.

        RandR 1.2 first (what Xvfb 21 and Xorg offer): a mode of that size on the first
        output with a CRTC, created when the output has none (named ``spice-WxH``; those made
        before are deleted once unused, so resizing a window does not pile modes up), the CRTC
        set to it and the screen to its size, within the server's size range. Servers with
        RandR 1.0 only switch to one of their listed sizes."""
        if not self.randr:
            return False
        if (width, height) == (self.width, self.height):
            return True
        rr = self.conn(xcffib.randr.key)
        try:
            done = self._set_size_12(rr, width, height)
        except (xcffib.Error, xcffib.ProtocolException) as exc:  # an X error reply
            log.info("X display %s: RandR refused %dx%d: %r", self.name, width, height, exc)
            done = False
        if done is None:
            done = self._set_size_10(rr, width, height)
        if done:
            self._size_asked = True  # the ScreenChangeNotify is in XCB's queue, or soon
        return done

    def _set_size_10(self, rr: Any, width: int, height: int) -> bool:
        info = rr.GetScreenInfo(self.root).reply()
        for index, size in enumerate(info.sizes):
            if (size.width, size.height) == (width, height):
                rr.SetScreenConfig(
                    self.root,
                    xp.Time.CurrentTime,
                    info.config_timestamp,
                    index,
                    info.rotation,
                    0,
                ).reply()
                return True
        return False

    def _set_size_12(self, rr: Any, width: int, height: int) -> bool | None:
        """None when the server has no RandR 1.2 output to drive (use 1.0)."""
        if self._randr_minor < 2:
            return None
        limits = rr.GetScreenSizeRange(self.root).reply()
        if not (
            limits.min_width <= width <= limits.max_width
            and limits.min_height <= height <= limits.max_height
        ):
            log.info(
                "X display %s: %dx%d is outside the screen's range %dx%d..%dx%d",
                self.name, width, height, limits.min_width, limits.min_height,
                limits.max_width, limits.max_height,
            )  # fmt: skip
            return False
        res = rr.GetScreenResourcesCurrent(self.root).reply()
        output = crtc = None
        for candidate in res.outputs:
            info = rr.GetOutputInfo(candidate, res.config_timestamp).reply()
            if info.crtc:
                output, crtc, output_modes = candidate, info.crtc, set(info.modes)
                break
        if output is None or crtc is None:
            return None
        names = bytes(res.names)
        at = 0
        mode = None
        for m in res.modes:
            name = names[at : at + m.name_len]
            at += m.name_len
            if (m.width, m.height) == (width, height) and (
                m.id in output_modes or name.startswith(_MODE_PREFIX)
            ):
                mode = m.id
                if m.id in output_modes:
                    break
        if mode is None:
            name = _MODE_PREFIX + f"{width}x{height}".encode()
            info = _randr.ModeInfo.synthetic(
                0, width, height, width * height * 60, width, width, width, 0,
                height, height, height, len(name), 0,
            )  # fmt: skip
            mode = rr.CreateMode(self.root, info, len(name), name).reply().mode
        if mode not in output_modes:
            rr.AddOutputModeChecked(output, mode).check()
        current = rr.GetCrtcInfo(crtc, res.config_timestamp).reply()
        big_w, big_h = max(width, self.width), max(height, self.height)
        if (big_w, big_h) != (self.width, self.height):
            rr.SetScreenSizeChecked(self.root, big_w, big_h, *_millimetres(big_w, big_h)).check()
        reply = rr.SetCrtcConfig(
            crtc, xp.Time.CurrentTime, res.config_timestamp, 0, 0, mode,
            current.rotation or xcffib.randr.Rotation.Rotate_0, 1, [output],
        ).reply()  # fmt: skip
        if reply.status != xcffib.randr.SetConfig.Success:
            log.info("X display %s: RandR CRTC status %d", self.name, reply.status)
            return False
        if (big_w, big_h) != (width, height):
            rr.SetScreenSizeChecked(self.root, width, height, *_millimetres(width, height)).check()
        self._forget_modes(rr, output, keep=mode)
        return True

    def _forget_modes(self, rr: Any, output: int, keep: int) -> None:
        """Delete the ``spice-`` modes (ours, or another trio-spice's) no CRTC uses now."""
        res = rr.GetScreenResourcesCurrent(self.root).reply()
        names = bytes(res.names)
        at = 0
        for m in res.modes:
            name = names[at : at + m.name_len]
            at += m.name_len
            if m.id == keep or not name.startswith(_MODE_PREFIX):
                continue
            try:
                rr.DeleteOutputModeChecked(output, m.id).check()
                rr.DestroyModeChecked(m.id).check()
            except (xcffib.Error, xcffib.ProtocolException):
                continue  # still in use elsewhere: keep it listed

    def _fake(self, kind: int, detail: int, x: int = 0, y: int = 0, root: int = 0) -> None:
        self.conn(xcffib.xtest.key).FakeInput(kind, detail, 0, root, x, y, 0)

    def inject(self, event: InputEvent) -> str | None:
        """Play one input event into the X server; returns a complaint to log, if any."""
        if not self.xtest:
            return "no XTEST extension: input ignored"
        match event:
            case KeyEvent(scancode=code, pressed=pressed):
                keycode = self.keys.keycode(code)
                if keycode is None:
                    return f"no X key for scan code {code:#x}"
                if pressed:
                    self._keys_down.add(keycode)
                else:
                    self._keys_down.discard(keycode)
                self._fake(_KEY_PRESS if pressed else _KEY_RELEASE, keycode)
            case MousePositionEvent(x=x, y=y):
                self._fake(_MOTION, 0, x, y, self.root)
            case MouseMotionEvent(dx=dx, dy=dy):
                self._fake(_MOTION, 1, dx, dy)
            case MouseButtonEvent(button=button, pressed=pressed):
                xbutton = _BUTTONS.get(button)
                if xbutton is None:
                    return f"no X button for SPICE button {button}"
                if pressed:
                    self._buttons.add(xbutton)
                else:
                    self._buttons.discard(xbutton)
                self._fake(_BUTTON_PRESS if pressed else _BUTTON_RELEASE, xbutton)
            case KeyboardModifiersEvent(modifiers=locks):
                self._sync_locks(locks)
            case MouseWheelEvent(dy=dy):
                xbutton = 4 if dy < 0 else 5
                self._fake(_BUTTON_PRESS, xbutton)
                self._fake(_BUTTON_RELEASE, xbutton)
            case _:
                return None
        self.conn.flush()
        return None

    def _sync_locks(self, locks: int) -> None:
        """Tap Caps Lock and Num Lock where the X server's state differs from the client's
        (SPICE: CAPS_LOCK 4, NUM_LOCK 2; X: LockMask, and Mod2, where every keymap puts
        Num Lock)."""
        mask = self.conn.core.QueryPointer(self.root).reply().mask
        for spice_bit, x_mask, scancode in ((4, xp.ModMask.Lock, 0x3A), (2, xp.ModMask._2, 0x45)):
            if bool(locks & spice_bit) != bool(mask & x_mask):
                keycode = self.keys.keycode(scancode)
                if keycode is not None:
                    self._fake(_KEY_PRESS, keycode)
                    self._fake(_KEY_RELEASE, keycode)

    def release_all(self) -> None:
        """Let go of every key and button a client left pressed (it went away)."""
        for keycode in sorted(self._keys_down):
            self._fake(_KEY_RELEASE, keycode)
        for button in sorted(self._buttons):
            self._fake(_BUTTON_RELEASE, button)
        self._keys_down.clear()
        self._buttons.clear()
        self.conn.flush()
