"""A minimal X11 video player for benchmarks: raw BGRX frames put on an X display with MIT-SHM
at a fixed rate, the X counterpart of ``display.update`` in ``frame_server.py``'s ``play``.

Usage (any Python with numpy; X11 and Xext through ctypes, nothing else):

    python benchmarks/_xshm_player.py --display :71 --clip clip.bgr0 --x 320 --y 180 \\
        --width 1280 --height 720 [--fps 30]

It opens a borderless (override-redirect) window of the clip's size at (x, y), maps it, and
for each frame copies the frame into a shared-memory XImage, ``XShmPutImage``s it and
``XSync``s (so the X server has read the segment before it is written again). Frames are paced
at ``--fps`` from the first one; a frame whose time has passed while a put waited is skipped,
as ``frame_server.py`` does. The clip's pixels are X's own layout (B, G, R, X bytes; ffmpeg's
``bgr0``), so the window shows exactly them. Ends with one JSON line on stdout: ``t_first``,
``t_last`` (``time.monotonic()``), ``pushed``, ``skipped``, ``late_max_ms``. SIGTERM and EOF
are not waited for: it plays the clip once and exits.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import signal
import sys
import time

import numpy as np

IPC_PRIVATE = 0
IPC_CREAT = 0o1000
IPC_RMID = 0
Z_PIXMAP = 2
CW_BACK_PIXEL = 1 << 1
CW_OVERRIDE_REDIRECT = 1 << 9
INPUT_OUTPUT = 1


class XShmSegmentInfo(ctypes.Structure):
    _fields_ = [
        ("shmseg", ctypes.c_ulong),
        ("shmid", ctypes.c_int),
        ("shmaddr", ctypes.c_void_p),
        ("readOnly", ctypes.c_int),
    ]


class XSetWindowAttributes(ctypes.Structure):
    _fields_ = [
        ("background_pixmap", ctypes.c_ulong),
        ("background_pixel", ctypes.c_ulong),
        ("border_pixmap", ctypes.c_ulong),
        ("border_pixel", ctypes.c_ulong),
        ("bit_gravity", ctypes.c_int),
        ("win_gravity", ctypes.c_int),
        ("backing_store", ctypes.c_int),
        ("backing_planes", ctypes.c_ulong),
        ("backing_pixel", ctypes.c_ulong),
        ("save_under", ctypes.c_int),
        ("event_mask", ctypes.c_long),
        ("do_not_propagate_mask", ctypes.c_long),
        ("override_redirect", ctypes.c_int),
        ("colormap", ctypes.c_ulong),
        ("cursor", ctypes.c_ulong),
    ]


class XImage(ctypes.Structure):
    """The leading fields of Xlib's XImage (enough to read the layout and set ``data``)."""

    _fields_ = [
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("xoffset", ctypes.c_int),
        ("format", ctypes.c_int),
        ("data", ctypes.c_void_p),
        ("byte_order", ctypes.c_int),
        ("bitmap_unit", ctypes.c_int),
        ("bitmap_bit_order", ctypes.c_int),
        ("bitmap_pad", ctypes.c_int),
        ("depth", ctypes.c_int),
        ("bytes_per_line", ctypes.c_int),
        ("bits_per_pixel", ctypes.c_int),
    ]


def load(name: str) -> ctypes.CDLL:
    path = ctypes.util.find_library(name)
    if path is None:
        raise RuntimeError(f"lib{name} not found")
    return ctypes.CDLL(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--display", required=True)
    parser.add_argument("--clip", required=True)
    parser.add_argument("--x", type=int, default=0)
    parser.add_argument("--y", type=int, default=0)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    w, h = args.width, args.height
    frames = np.memmap(args.clip, np.uint8, "r").reshape(-1, h, w, 4)

    x11, xext, libc = load("X11"), load("Xext"), ctypes.CDLL(None, use_errno=True)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultScreen.argtypes = [ctypes.c_void_p]
    x11.XRootWindow.restype = ctypes.c_ulong
    x11.XRootWindow.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XDefaultVisual.restype = ctypes.c_void_p
    x11.XDefaultVisual.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XDefaultDepth.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XCreateWindow.restype = ctypes.c_ulong
    x11.XCreateWindow.argtypes = [
        ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int, ctypes.c_uint,
        ctypes.c_uint, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p,
        ctypes.c_ulong, ctypes.POINTER(XSetWindowAttributes),
    ]  # fmt: skip
    x11.XMapRaised.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    x11.XCreateGC.restype = ctypes.c_void_p
    x11.XCreateGC.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_void_p]
    x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    x11.XDestroyWindow.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    xext.XShmQueryExtension.argtypes = [ctypes.c_void_p]
    xext.XShmCreateImage.restype = ctypes.POINTER(XImage)
    xext.XShmCreateImage.argtypes = [
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p,
        ctypes.POINTER(XShmSegmentInfo), ctypes.c_uint, ctypes.c_uint,
    ]  # fmt: skip
    xext.XShmAttach.argtypes = [ctypes.c_void_p, ctypes.POINTER(XShmSegmentInfo)]
    xext.XShmDetach.argtypes = [ctypes.c_void_p, ctypes.POINTER(XShmSegmentInfo)]
    xext.XShmPutImage.argtypes = [
        ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.POINTER(XImage),
        ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
        ctypes.c_int,
    ]  # fmt: skip
    libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
    libc.shmat.restype = ctypes.c_void_p
    libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    libc.shmdt.argtypes = [ctypes.c_void_p]
    libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]

    dpy = x11.XOpenDisplay(args.display.encode())
    if not dpy:
        raise RuntimeError(f"cannot open X display {args.display}")
    if not xext.XShmQueryExtension(dpy):
        raise RuntimeError("the X server has no MIT-SHM")
    screen = x11.XDefaultScreen(dpy)
    root = x11.XRootWindow(dpy, screen)
    visual = x11.XDefaultVisual(dpy, screen)
    depth = x11.XDefaultDepth(dpy, screen)
    attrs = XSetWindowAttributes(override_redirect=1, background_pixel=0)
    window = x11.XCreateWindow(
        dpy, root, args.x, args.y, w, h, 0, depth, INPUT_OUTPUT, visual,
        CW_OVERRIDE_REDIRECT | CW_BACK_PIXEL, ctypes.byref(attrs),
    )  # fmt: skip
    gc = x11.XCreateGC(dpy, window, 0, None)
    info = XShmSegmentInfo()
    image = xext.XShmCreateImage(dpy, visual, depth, Z_PIXMAP, None, ctypes.byref(info), w, h)
    if not image:
        raise RuntimeError("XShmCreateImage failed")
    layout = image.contents
    if layout.bits_per_pixel != 32 or layout.bytes_per_line != w * 4:
        raise RuntimeError(f"unexpected XImage layout {layout.bits_per_pixel} bpp")
    size = layout.bytes_per_line * h
    info.shmid = libc.shmget(IPC_PRIVATE, size, IPC_CREAT | 0o600)
    if info.shmid < 0:
        raise OSError(ctypes.get_errno(), "shmget failed")
    address = libc.shmat(info.shmid, None, 0)
    info.shmaddr = address
    layout.data = address
    info.readOnly = 0
    attached = False
    try:
        xext.XShmAttach(dpy, ctypes.byref(info))
        attached = True
        x11.XSync(dpy, 0)
        # The segment goes away with the last detach, also if we are killed.
        libc.shmctl(info.shmid, IPC_RMID, None)
        x11.XMapRaised(dpy, window)
        x11.XSync(dpy, 0)
        target = np.frombuffer((ctypes.c_uint8 * size).from_address(address), np.uint8)
        pushed = skipped = 0
        late_max = 0.0
        t0 = time.monotonic()
        t_first = t_last = t0
        index = 0
        while index < len(frames):
            np.copyto(target, frames[index].reshape(-1))
            xext.XShmPutImage(dpy, window, gc, image, 0, 0, 0, 0, w, h, 0)
            x11.XSync(dpy, 0)
            t_last = time.monotonic()
            if index == 0:
                t_first = t_last
            pushed += 1
            late_max = max(late_max, t_last - (t0 + index / args.fps))
            following = index + 1
            due = int((t_last - t0) * args.fps)
            if due > following:
                skipped += min(due, len(frames)) - following
                following = due
            if following < len(frames):
                time.sleep(max(0.0, t0 + following / args.fps - time.monotonic()))
            index = following
        print(
            json.dumps({
                "t_first": t_first, "t_last": t_last, "pushed": pushed, "skipped": skipped,
                "late_max_ms": round(late_max * 1000, 1),
            }),
            flush=True,
        )  # fmt: skip
    finally:
        if attached:
            xext.XShmDetach(dpy, ctypes.byref(info))
        libc.shmdt(address)
        x11.XDestroyWindow(dpy, window)
        x11.XCloseDisplay(dpy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
