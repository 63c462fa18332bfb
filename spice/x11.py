"""``trio-spice x11``: show an X display to SPICE clients.

With ``--display :N`` the server mirrors that X server (its clients type and click into it
through XTEST unless ``--view-only``); with no display it starts a private Xvfb with a
session (a window manager and an xterm, when installed) and shows that. The X source draws
through the same :class:`spice.Display` an application uses. The X selections (CLIPBOARD,
PRIMARY) and the clients' clipboard are one (:mod:`adapters.sources.x11_clipboard`) unless
copy and paste is off or the desktop is view-only, and a client's window size becomes the X
screen's through RandR (:meth:`X11Source.request_size`).

Needs xcffib (a dependency) and, for the private desktop, Debian's ``xvfb`` (plus ``xterm``
and ``twm`` or ``openbox`` for the session).
"""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import AsyncExitStack

import trio

from spice.adapters.sources.x11 import X11Source
from spice.adapters.sources.x11_clipboard import X11Clipboard
from spice.adapters.sources.x11_screen import LOST, XUnsupported
from spice.adapters.sources.xvfb import MAX_SIZE, run_xvfb
from spice.cli import parse_size
from spice.display import Display
from spice.server import Server
from spice.source_command import serve_source, stop_on_signals

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``trio-spice x11`` adds to the server's."""
    parser.prog = "trio-spice x11"
    parser.description = (
        "Show an X display to SPICE clients: --display :N, or with no display a private "
        "Xvfb desktop (an xterm and a window manager, when installed) of --size."
    )
    x11 = parser.add_argument_group("X display")
    x11.add_argument(
        "--display", metavar=":N", help="the X display to show (default: start a private Xvfb)"
    )
    x11.add_argument(
        "--view-only", action="store_true", help="clients see the display but cannot type or click"
    )
    x11.add_argument(
        "--no-session",
        action="store_true",
        help="with the private Xvfb, start no window manager or xterm",
    )
    x11.add_argument(
        "--no-resize",
        action="store_true",
        help="a client's window size does not change the X screen (RandR)",
    )
    x11.add_argument(
        "--max-size",
        type=parse_size,
        default=MAX_SIZE,
        metavar="WxH",
        help="with the private Xvfb, the largest screen clients' resizes may reach "
        f"(default {MAX_SIZE[0]}x{MAX_SIZE[1]}; it costs 4 bytes a pixel of memory)",
    )
    x11.add_argument(
        "--max-fps", type=float, default=60.0, help="screen reads per second, at most (default 60)"
    )
    parser.set_defaults(name=None)


def run_command(server: Server, display: Display, args: argparse.Namespace) -> int:
    """Serve until interrupted; the exit status of ``trio-spice x11``."""
    failures: list[BaseException] = []
    try:
        trio.run(serve, server, display, args)
    except* KeyboardInterrupt:
        pass
    except* (OSError, XUnsupported, RuntimeError, *LOST) as group:
        failures += group.exceptions
    for exc in failures:
        print(f"trio-spice x11: {exc}", file=sys.stderr)
    return 1 if failures else 0


async def serve(server: Server, display: Display, args: argparse.Namespace) -> None:
    size = None if args.size == (1024, 768) and args.display else args.size
    # The input subscription outlives the nursery: the source's input task ends first.
    async with AsyncExitStack() as stack, trio.open_nursery() as nursery:
        nursery.start_soon(stop_on_signals, server, nursery.cancel_scope)
        auth = None
        name = args.display
        if name is None:
            xserver = await nursery.start(
                lambda task_status: run_xvfb(
                    *args.size,
                    session=not args.no_session,
                    max_size=args.max_size,
                    task_status=task_status,
                )
            )
            name, auth, size = xserver.display, xserver.xauthority, None
        events = None if args.view_only else await stack.enter_async_context(server.input_events())
        source = X11Source(
            name,
            display,
            xauthority=auth,
            events=events,
            notify=lambda text: server.notify(text, severity="error"),
            size=size,
            max_fps=args.max_fps,
        )
        try:
            await nursery.start(source.run)
        except (*LOST, XUnsupported) as exc:
            raise OSError(f"cannot show X display {name}: {exc or type(exc).__name__}") from exc

        async def resize(shown: Display, width: int, height: int) -> bool:
            # A view-only desktop is only watched: its screen keeps its size.
            if args.view_only or args.no_resize or shown is not display:
                return False
            return await source.request_size(width, height)

        server.on_resize(resize)
        # The clipboard is shared unless copy and paste is off, or the desktop is only
        # watched: a view-only server shows its screen and nothing else (an X clipboard may
        # hold a password).
        if server.clipboard.shared and not args.view_only:
            agent_events = await stack.enter_async_context(server.agent_events())
            selections = X11Clipboard(
                name,
                server.clipboard,
                agent_events,
                xauthority=auth,
                limit=server.clipboard.limit,
            )
            try:
                await nursery.start(selections.run)
            except LOST as exc:
                log.warning("X display %s: no clipboard sharing (%r)", name, exc)
        await serve_source(server, source, f"X display {name}", nursery, args.exit_on_disconnect)
