"""The ``trio-spice`` command: serve the built-in demo display (or, later, other sources).

Options are named like Xspice's and QEMU's ``-spice`` ones. ``trio-spice gen-cert DIR``
writes a self-signed CA and server certificate for ``--x509-dir``.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
import uuid as uuid_mod
from pathlib import Path

import trio

from spice.certs import DEFAULT_HOSTS, write_certificates
from spice.demo import run_demo
from spice.display import Display
from spice.domain.codecs.select import DEFAULT_MODE, JPEG_WAN, MODES
from spice.domain.display.streams import MODES as STREAM_MODES
from spice.server import CHANNEL_NAMES, Server, find_html5_dir

log = logging.getLogger("spice.cli")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1024x768, not {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise argparse.ArgumentTypeError("width and height must be between 16 and 8192")
    return w, h


def parse_message_limit(text: str) -> tuple[str, int]:
    name, _, size = text.partition("=")
    if name not in CHANNEL_NAMES or not size.isdigit():
        raise argparse.ArgumentTypeError(f"expected CHANNEL=BYTES (e.g. inputs=4096), not {text!r}")
    return name, int(size)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trio-spice",
        description="A SPICE server written in Python on Trio.",
        epilog="trio-spice gen-cert DIR writes a self-signed CA and server certificate "
        "for --x509-dir.",
    )
    p.add_argument("--addr", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5900, help="TCP port (default 5900)")
    p.add_argument("--password", help="the SPICE ticket clients must give")
    p.add_argument(
        "--password-expires",
        type=float,
        metavar="SECONDS",
        help="the password expires this many seconds after start",
    )
    p.add_argument(
        "--disable-ticketing", action="store_true", help="let clients in without a password"
    )
    fam = p.add_mutually_exclusive_group()
    fam.add_argument("--ipv4-only", action="store_true")
    fam.add_argument("--ipv6-only", action="store_true")
    p.add_argument(
        "--exit-on-disconnect", action="store_true", help="exit when the last client disconnects"
    )
    p.add_argument("--name", default="trio-spice demo", help="the name clients show")
    p.add_argument("--uuid", type=uuid_mod.UUID, help="the UUID clients are told")
    p.add_argument(
        "--size",
        type=parse_size,
        default=(1024, 768),
        metavar="WxH",
        help="display size (default 1024x768)",
    )
    p.add_argument(
        "--image-compression",
        choices=("auto", *MODES),
        default=DEFAULT_MODE,
        help="image codec, as QEMU's image-compression: auto_glz/auto_lz pick QUIC for "
        "photographic areas and LZ for the rest; quic, lz, lz4 force one; glz is taken as lz; "
        "off sends plain bitmaps (default %(default)s)",
    )
    p.add_argument(
        "--streaming-video",
        choices=STREAM_MODES,
        default="filter",
        help="MJPEG streams for areas changing at video rates: filter (photographic content "
        "only), all, off (default %(default)s)",
    )
    p.add_argument(
        "--jpeg-wan-compression",
        choices=JPEG_WAN,
        default="auto",
        help="JPEG for photographic areas: auto (clients on a slow link), never, always "
        "(default %(default)s)",
    )
    p.add_argument(
        "--server-mouse", action="store_true", help="offer only server (relative) mouse mode"
    )
    tls = p.add_argument_group("TLS (as QEMU's -spice tls-port=, x509-*=, tls-channel=)")
    tls.add_argument("--tls-port", type=int, help="also listen for TLS on this port")
    tls.add_argument(
        "--x509-dir",
        metavar="DIR",
        help="directory with ca-cert.pem, server-cert.pem, server-key.pem (see gen-cert)",
    )
    tls.add_argument("--x509-cert-file", metavar="FILE", help="the server certificate (PEM)")
    tls.add_argument(
        "--x509-key-file", metavar="FILE", help="the server certificate's private key (PEM)"
    )
    tls.add_argument("--x509-cacert-file", metavar="FILE", help="the CA certificate (PEM)")
    names = [*CHANNEL_NAMES, "default"]
    tls.add_argument(
        "--tls-channel",
        action="append",
        default=[],
        choices=names,
        metavar="NAME",
        help=f"this channel must use TLS (repeatable; one of {', '.join(names)})",
    )
    tls.add_argument(
        "--plaintext-channel",
        action="append",
        default=[],
        choices=names,
        metavar="NAME",
        help="this channel must not use TLS (repeatable)",
    )
    web = p.add_argument_group("browsers (spice-html5 over WebSocket)")
    web.add_argument("--ws-port", type=int, help="also listen for browsers only on this port")
    web.add_argument(
        "--html5-dir",
        metavar="DIR",
        help="serve spice-html5 from DIR (default: /usr/share/spice-html5, else an npm install)",
    )
    web.add_argument(
        "--no-html5",
        action="store_true",
        help="serve no page (WebSocket connections are still taken)",
    )
    web.add_argument(
        "--no-websocket", action="store_true", help="take only native SPICE clients on --port"
    )
    web.add_argument(
        "--ws-allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a site (scheme://host:port) whose pages may connect, besides the server's own "
        "page; * for any",
    )
    web.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a name browsers may reach this server by, besides IP addresses, localhost and "
        "this machine's host name (repeatable; * for any); other names get 403, which stops "
        "DNS rebinding",
    )
    lim = p.add_argument_group("limits (a connection over one is closed, with one log line)")
    lim.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="connections open at once (default 1000, fewer under a low ulimit -n)",
    )
    lim.add_argument(
        "--max-connections-per-address",
        type=int,
        default=64,
        metavar="N",
        help="connections open at once from one address (default %(default)s)",
    )
    lim.add_argument(
        "--link-attempts-per-second",
        type=float,
        default=20.0,
        metavar="R",
        help="link attempts per second from one address, bursts of 3 s' worth (default "
        "%(default)s)",
    )
    lim.add_argument(
        "--failed-ticket-delay",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="after a wrong password, the next try from that address waits this long, "
        "doubling per failure up to 8 times (default %(default)s)",
    )
    lim.add_argument(
        "--link-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="time a connection has to finish the link stage (default %(default)s)",
    )
    lim.add_argument(
        "--max-client-buffer",
        type=int,
        default=64 << 20,
        metavar="BYTES",
        help="bytes queued for one channel connection before its client is dropped "
        "(default %(default)s)",
    )
    lim.add_argument(
        "--max-message",
        action="append",
        default=[],
        type=parse_message_limit,
        metavar="CHANNEL=BYTES",
        help="largest message a client may send on a channel (repeatable; default main=65536, "
        "others 4096)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def build_gen_cert_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trio-spice gen-cert",
        description="Write a self-signed CA and a server certificate in QEMU's file names "
        "(ca-cert.pem, server-cert.pem, server-key.pem) for --x509-dir.",
    )
    p.add_argument("dir", help="directory to write (created if missing)")
    p.add_argument(
        "--host",
        action="append",
        metavar="NAME",
        help="a name or address the server is reached by (repeatable; default "
        f"{', '.join(DEFAULT_HOSTS)})",
    )
    p.add_argument("--days", type=int, default=825, help="validity in days (default 825)")
    p.add_argument("--force", action="store_true", help="replace existing files")
    return p


def gen_cert(argv: list[str]) -> int:
    args = build_gen_cert_parser().parse_args(argv)
    try:
        files = write_certificates(
            args.dir, args.host or DEFAULT_HOSTS, days=args.days, overwrite=args.force
        )
    except (OSError, ValueError) as exc:
        print(f"trio-spice gen-cert: {exc}", file=sys.stderr)
        return 1
    print(f"trio-spice: wrote {files.ca_cert}, {files.server_cert} and {files.server_key}")
    print(f"  serve with:   trio-spice --tls-port 5901 --x509-dir {args.dir}")
    print(
        f"  connect with: remote-viewer --spice-ca-file={files.ca_cert} 'spice://127.0.0.1?tls-port=5901'"
    )
    return 0


def is_loopback(addr: str) -> bool:
    if addr == "localhost":
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["gen-cert"]:
        return gen_cert(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
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

    html5_dir: Path | None = None
    if args.html5_dir is not None:
        html5_dir = Path(args.html5_dir)
    elif not args.no_html5:
        html5_dir = find_html5_dir()
        if html5_dir is None:
            log.warning(
                "spice-html5 not found (apt install spice-html5, or npm install in the "
                "project); no page served"
            )
    try:
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
            image_compression=args.image_compression,
            jpeg_wan_compression=args.jpeg_wan_compression,
            streaming_video=args.streaming_video,
            tls_port=args.tls_port,
            x509_dir=args.x509_dir,
            x509_cert_file=args.x509_cert_file,
            x509_key_file=args.x509_key_file,
            x509_cacert_file=args.x509_cacert_file,
            tls_channels=args.tls_channel,
            plaintext_channels=args.plaintext_channel,
            websocket=not args.no_websocket,
            ws_port=args.ws_port,
            html5_dir=html5_dir if not args.no_html5 else None,
            ws_allowed_origins=args.ws_allowed_origin,
            allowed_hosts=args.allowed_host,
            max_connections=args.max_connections,
            max_connections_per_address=args.max_connections_per_address,
            link_attempts_per_second=args.link_attempts_per_second,
            failed_ticket_delay=args.failed_ticket_delay,
            link_timeout=args.link_timeout,
            max_client_buffer=args.max_client_buffer,
            max_message=dict(args.max_message),
        )
    except (OSError, ValueError) as exc:
        print(f"trio-spice: {exc}", file=sys.stderr)
        return 2
    display = server.add_display(*args.size)
    try:
        trio.run(_serve, server, display, args.exit_on_disconnect)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"trio-spice: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(server: Server, display: Display, exit_on_disconnect: bool) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        for host, port in server.addresses:
            shown = f"[{host}]" if ":" in host else host
            print(
                f"trio-spice: serving; connect with: remote-viewer spice://{shown}:{port}",
                flush=True,
            )
        for host, port in server.tls_addresses:
            shown = f"[{host}]" if ":" in host else host
            print(
                f"trio-spice: TLS on {shown}:{port}; connect with: remote-viewer "
                f"--spice-ca-file=CA 'spice://{shown}?tls-port={port}'",
                flush=True,
            )
        for url in server.urls:
            print(f"trio-spice: in a browser, open {url}", flush=True)
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
