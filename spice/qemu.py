"""``trio-spice qemu``: show a QEMU virtual machine to SPICE clients through QEMU's D-Bus display.

Start QEMU with ``-display dbus`` (on the session bus, or ``-display dbus,addr=ADDRESS`` on a
private one) and give ``--dbus-address ADDRESS`` (``session`` for the session bus); or with
``-display dbus,p2p=yes -qmp unix:PATH,server=on,wait=off`` and give ``--qmp PATH``. Clients
see the guest's console and type and click into it (unless ``--view-only``); the source draws
through the same :class:`spice.Display` an application uses. Needs jeepney (a dependency) and a
QEMU with the D-Bus display (Debian: ``qemu-system-x86``, 7.2 on).
"""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import AsyncExitStack

import trio

from spice.adapters.sources.qemu_dbus import LOST, QemuSource, QemuUnsupported
from spice.display import Display
from spice.server import Server
from spice.source_command import serve_source, stop_on_signals

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``trio-spice qemu`` adds to the server's."""
    parser.prog = "trio-spice qemu"
    parser.description = (
        "Show a QEMU virtual machine to SPICE clients through QEMU's D-Bus display "
        "(-display dbus): --dbus-address for QEMU on a bus, --qmp for -display dbus,p2p=yes."
    )
    qemu = parser.add_argument_group("QEMU")
    where = qemu.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--dbus-address",
        metavar="ADDR",
        help="the D-Bus address of the bus QEMU is on (e.g. unix:path=/run/x/bus; 'session' "
        "for the session bus)",
    )
    where.add_argument(
        "--qmp", metavar="SOCKET", help="QEMU's QMP Unix socket, for -display dbus,p2p=yes"
    )
    qemu.add_argument(
        "--console", type=int, default=0, metavar="N", help="QEMU console to show (default 0)"
    )
    qemu.add_argument(
        "--view-only", action="store_true", help="clients see the guest but cannot type or click"
    )
    qemu.add_argument(
        "--no-shared-memory",
        action="store_true",
        help="do not offer QEMU shared-memory scanouts (ScanoutMap; QEMU 9.0 on)",
    )
    parser.set_defaults(name=None)


def run_command(server: Server, display: Display, args: argparse.Namespace) -> int:
    """Serve until interrupted; the exit status of ``trio-spice qemu``."""
    failures: list[BaseException] = []
    try:
        trio.run(serve, server, display, args)
    except* KeyboardInterrupt:
        pass
    except* (QemuUnsupported, RuntimeError, trio.TooSlowError, *LOST) as group:
        failures += group.exceptions
    for exc in failures:
        print(f"trio-spice qemu: {exc}", file=sys.stderr)
    return 1 if failures else 0


async def serve(server: Server, display: Display, args: argparse.Namespace) -> None:
    address = args.dbus_address
    if address is not None and address.lower() == "session":
        address = "SESSION"
    async with AsyncExitStack() as stack, trio.open_nursery() as nursery:
        nursery.start_soon(stop_on_signals, server, nursery.cancel_scope)
        events = None if args.view_only else await stack.enter_async_context(server.input_events())
        source = QemuSource(
            display,
            dbus_address=address,
            qmp_path=args.qmp,
            console=args.console,
            events=events,
            notify=lambda text: server.notify(text, severity="error"),
            shared_memory=not args.no_shared_memory,
        )
        try:
            await nursery.start(source.run)
        except (*LOST, QemuUnsupported, trio.TooSlowError) as exc:
            raise OSError(f"cannot show {source.shown_name}: {exc or type(exc).__name__}") from exc

        async def resize(shown: Display, width: int, height: int) -> bool:
            # The guest's screen follows (or not) through its scanouts; view-only: never asked.
            if args.view_only or shown is not display:
                return False
            return await source.request_size(width, height)

        server.on_resize(resize)
        await serve_source(server, source, source.shown_name, nursery, args.exit_on_disconnect)
