"""The ``trio-spice`` command: serve the built-in demo display (or, later, other sources).

Options are named like Xspice's and QEMU's ``-spice`` ones.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
import uuid as uuid_mod

import trio

from spice.demo import run_demo
from spice.server import Server

log = logging.getLogger("spice.cli")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1024x768, not {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise argparse.ArgumentTypeError("width and height must be between 16 and 8192")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trio-spice", description="A SPICE server written in Python on Trio.")
    p.add_argument("--addr", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5900, help="TCP port (default 5900)")
    p.add_argument("--password", help="the SPICE ticket clients must give")
    p.add_argument("--password-expires", type=float, metavar="SECONDS", help="the password expires this many seconds after start")
    p.add_argument("--disable-ticketing", action="store_true", help="let clients in without a password")
    fam = p.add_mutually_exclusive_group()
    fam.add_argument("--ipv4-only", action="store_true")
    fam.add_argument("--ipv6-only", action="store_true")
    p.add_argument("--exit-on-disconnect", action="store_true", help="exit when the last client disconnects")
    p.add_argument("--name", default="trio-spice demo", help="the name clients show")
    p.add_argument("--uuid", type=uuid_mod.UUID, help="the UUID clients are told")
    p.add_argument("--size", type=parse_size, default=(1024, 768), metavar="WxH", help="display size (default 1024x768)")
    p.add_argument("--server-mouse", action="store_true", help="offer only server (relative) mouse mode")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def is_loopback(addr: str) -> bool:
    if addr == "localhost":
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.password is None and not args.disable_ticketing:
        if not is_loopback(args.addr):
            print(
                f"trio-spice: refusing to listen on {args.addr}, which is not a loopback address, "
                "with neither --password nor --disable-ticketing: anyone who can reach it would "
                "see and control this display. Give one of the two.",
                file=sys.stderr,
            )
            return 2
        args.disable_ticketing = True
    import time

    server = Server(
        addr=None if args.addr in ("", "*") else args.addr,
        port=args.port,
        password=args.password,
        password_expires=time.time() + args.password_expires if args.password_expires else None,
        disable_ticketing=args.disable_ticketing,
        name=args.name,
        uuid=args.uuid,
        ipv4_only=args.ipv4_only,
        ipv6_only=args.ipv6_only,
        client_mouse=not args.server_mouse,
    )
    display = server.add_display(*args.size)
    try:
        trio.run(_serve, server, display, args.exit_on_disconnect)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"trio-spice: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(server: Server, display: object, exit_on_disconnect: bool) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        for host, port in server.addresses:
            shown = f"[{host}]" if ":" in host else host
            print(f"trio-spice: serving; connect with: remote-viewer spice://{shown}:{port}", flush=True)
        nursery.start_soon(run_demo, server, display)
        if exit_on_disconnect:
            seen = False
            while True:
                count = await server.wait_clients_changed()
                seen = seen or count > 0
                if seen and count == 0:
                    log.info("last client disconnected; exiting")
                    nursery.cancel_scope.cancel()
                    return
