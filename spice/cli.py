"""The ``trio-spice`` command: serve the built-in demo display (or, later, other sources).

Options are named like Xspice's and QEMU's ``-spice`` ones. ``trio-spice gen-cert DIR``
writes a self-signed CA and server certificate for ``--x509-dir``.

Ctrl-C and SIGTERM stop the server gracefully (every client gets DISCONNECTING, one log
line, exit status 0). A startup error is one line on stderr and a non-zero exit status
(``-v`` adds the traceback).
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import logging
import os
import signal
import sys
import traceback
import uuid as uuid_mod
from pathlib import Path
from types import FrameType
from typing import NoReturn

import trio

import spice
from spice.adapters.task_errors import single_error
from spice.certs import DEFAULT_HOSTS, write_certificates
from spice.demo import run_demo
from spice.display import Display
from spice.domain.codecs.select import DEFAULT_MODE, JPEG_WAN, MODES
from spice.domain.codecs.video import parse_video_codecs
from spice.domain.display.monitors import MAX_MONITORS, side_by_side
from spice.domain.display.streams import MODES as STREAM_MODES
from spice.sasl import add_user
from spice.server import CHANNEL_NAMES, Server, find_html5_dir

log = logging.getLogger("spice.cli")

#: Environment variables read when no password option is given (Xspice reads its password
#: from the environment too, so it never shows in ``ps``).
PASSWORD_ENV = "SPICE_PASSWORD"
VIEW_ONLY_PASSWORD_ENV = "SPICE_VIEW_ONLY_PASSWORD"
#: Seconds clients get to receive DISCONNECTING when the server is stopped.
STOP_GRACE = 1.0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage is many)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535 (0: any free port), not {port}")
    return port


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


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


def _video_codecs(text: str) -> tuple[str, ...]:
    try:
        return parse_video_codecs(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="trio-spice",
        description="A SPICE server written in Python on Trio. Ctrl-C or SIGTERM stops it, "
        "telling clients first.",
        epilog="trio-spice gen-cert DIR writes a self-signed CA and server certificate "
        f"for --x509-dir. Passwords are also read from ${PASSWORD_ENV} and "
        f"${VIEW_ONLY_PASSWORD_ENV} when no option gives them. trio-spice x11 "
        "[--display :N] shows an X display; trio-spice qemu --dbus-address ADDR | --qmp "
        "SOCKET shows a QEMU virtual machine (-display dbus).",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {spice.__version__}")
    p.add_argument(
        "--addr",
        default="127.0.0.1",
        help="address or host name to listen on; '' or * for every address (default 127.0.0.1)",
    )
    p.add_argument(
        "--port", type=port_number, default=5900, help="TCP port, 0 for any free one (default 5900)"
    )
    pw = p.add_mutually_exclusive_group()
    pw.add_argument(
        "--password",
        help="the SPICE ticket clients must give (visible to other users in ps: prefer "
        f"--password-file or ${PASSWORD_ENV}); empty means none",
    )
    pw.add_argument(
        "--password-file",
        metavar="FILE",
        help="read the password from the first line of FILE",
    )
    vo = p.add_mutually_exclusive_group()
    vo.add_argument(
        "--view-only-password",
        metavar="PASSWORD",
        help="a second password whose holders see the display but cannot type or click "
        f"(or ${VIEW_ONLY_PASSWORD_ENV})",
    )
    vo.add_argument(
        "--view-only-password-file",
        metavar="FILE",
        help="read the view-only password from the first line of FILE",
    )
    p.add_argument(
        "--password-expires",
        type=positive_seconds,
        metavar="SECONDS",
        help="the passwords stop working this many seconds after start",
    )
    p.add_argument(
        "--disable-ticketing", action="store_true", help="let clients in without a password"
    )
    p.add_argument(
        "--sasl",
        action="store_true",
        help="log users in with SASL (SCRAM; PLAIN over TLS) instead of the password; "
        "needs --sasl-users",
    )
    p.add_argument(
        "--sasl-users",
        metavar="FILE",
        help="the SASL users file (write it with: trio-spice adduser FILE NAME)",
    )
    fam = p.add_mutually_exclusive_group()
    fam.add_argument("--ipv4-only", action="store_true", help="listen on IPv4 addresses only")
    fam.add_argument("--ipv6-only", action="store_true", help="listen on IPv6 addresses only")
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
        "--monitors",
        type=int,
        default=1,
        metavar="N",
        help="monitors on the display, side by side, each of --size (1 to 16; default 1): "
        "remote-viewer opens a window for each",
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
        help="MJPEG streams for areas changing at video rates: filter (photographic content, "
        "or any that a viewer's link cannot carry losslessly), all, off (default %(default)s)",
    )
    p.add_argument(
        "--video-codecs",
        type=_video_codecs,
        default=("mjpeg", "vp8", "h264"),
        metavar="LIST",
        help="codecs video streams may use, as QEMU's video-codecs: mjpeg, vp8, h264 (comma "
        "or semicolon separated, 'spice:mjpeg;gstreamer:h264' works too). With all three, "
        "browsers (spice-html5) get VP8, native clients MJPEG on a fast link and H.264 (if "
        "they play it) on a slow one, or what they ask for (default mjpeg,vp8,h264)",
    )
    p.add_argument(
        "--jpeg-wan-compression",
        choices=JPEG_WAN,
        default="auto",
        help="JPEG for photographic areas: auto (clients on a slow link), never, always "
        "(default %(default)s)",
    )
    p.add_argument(
        "--playback-compression",
        choices=("on", "off"),
        default="on",
        help="Opus for playback to clients that take it, else raw PCM, as QEMU's "
        "playback-compression (default %(default)s)",
    )
    p.add_argument(
        "--server-mouse", action="store_true", help="offer only server (relative) mouse mode"
    )
    agent = p.add_argument_group("agent (clipboard, resize, file transfer; as QEMU's -spice)")
    agent.add_argument(
        "--agent-mouse",
        action="store_true",
        help="offer the client (absolute) mouse mode through the agent even with "
        "--server-mouse, as QEMU's agent-mouse=on",
    )
    agent.add_argument(
        "--disable-copy-paste",
        action="store_true",
        help="share no clipboard with clients (QEMU's disable-copy-paste)",
    )
    agent.add_argument(
        "--disable-agent-file-xfer",
        action="store_true",
        help="refuse files from clients (QEMU's disable-agent-file-xfer)",
    )
    agent.add_argument(
        "--file-transfer-dir",
        metavar="DIR",
        help="store files clients send (drag and drop) in DIR; without it they are refused",
    )
    tls = p.add_argument_group("TLS (as QEMU's -spice tls-port=, x509-*=, tls-channel=)")
    tls.add_argument("--tls-port", type=port_number, help="also listen for TLS on this port")
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
    web.add_argument(
        "--ws-port", type=port_number, help="also listen for browsers only on this port"
    )
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
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log debugging detail, and a traceback with any startup error",
    )
    return p


def build_gen_cert_parser() -> argparse.ArgumentParser:
    p = _Parser(
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


def read_password(
    value: str | None, file: str | None, env: str, environ: dict[str, str] | os._Environ[str]
) -> str | None:
    """The password from the option, else its file's first line, else the environment
    variable; an empty one is none. Raises OSError for a file that cannot be read."""
    if file is not None:
        with open(file, encoding="utf-8") as f:
            value = f.readline().rstrip("\r\n")
    elif value is None:
        value = environ.get(env)
    return value or None


class _Stop(Exception):
    """A signal arrived before the server's loop took signals over."""


def _early_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def build_adduser_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="trio-spice adduser",
        description="Add a user to a SASL users file (or replace its entry); asks for the "
        "password, or reads its first line from stdin when that is not a terminal.",
    )
    p.add_argument("file", help="the users file (created, mode 0600, if missing)")
    p.add_argument("name", help="the user name")
    p.add_argument(
        "--view-only",
        action="store_true",
        help="the user sees the display but cannot type or click",
    )
    return p


def adduser(argv: list[str]) -> int:
    args = build_adduser_parser().parse_args(argv)
    try:
        if sys.stdin.isatty():
            password = getpass.getpass(f"Password for {args.name}: ")
            if getpass.getpass("Again: ") != password:
                print("trio-spice adduser: the passwords differ", file=sys.stderr)
                return 1
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        add_user(args.file, args.name, password, view_only=args.view_only)
    except (OSError, ValueError) as exc:
        print(f"trio-spice adduser: {exc}", file=sys.stderr)
        return 1
    role = " (view-only)" if args.view_only else ""
    print(f"trio-spice: {args.name}{role} written to {args.file}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["gen-cert"]:
        return gen_cert(argv[1:])
    if argv[:1] == ["adduser"]:
        return adduser(argv[1:])
    parser = build_parser()
    x11 = argv[:1] == ["x11"]
    if x11:  # trio-spice x11: an X display instead of the demo (spice/x11.py)
        from spice import x11 as x11_command

        x11_command.add_arguments(parser)
        argv = argv[1:]
    qemu = argv[:1] == ["qemu"]
    if qemu:  # trio-spice qemu: a QEMU VM's D-Bus display (spice/qemu.py)
        from spice import qemu as qemu_command

        qemu_command.add_arguments(parser)
        argv = argv[1:]
    args = parser.parse_args(argv)
    args.x11, args.qemu = x11, qemu
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Until Trio takes the signals over, Ctrl-C and SIGTERM end the start quietly.
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, _early_signal)
    try:
        return _main(args)
    except (_Stop, KeyboardInterrupt) as exc:
        print(f"trio-spice: stopped ({exc or 'SIGINT'}) before serving", file=sys.stderr)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _fail(args: argparse.Namespace, message: object, status: int) -> int:
    print(f"trio-spice: {message}", file=sys.stderr)
    if args.verbose:
        traceback.print_exc()
    return status


def _main(args: argparse.Namespace) -> int:
    try:
        password = read_password(args.password, args.password_file, PASSWORD_ENV, os.environ)
        view_only = read_password(
            args.view_only_password,
            args.view_only_password_file,
            VIEW_ONLY_PASSWORD_ENV,
            os.environ,
        )
    except OSError as exc:
        return _fail(args, f"cannot read the password file: {exc}", 2)
    if args.sasl != (args.sasl_users is not None):
        return _fail(args, "--sasl and --sasl-users go together", 2)
    if password is None and view_only is None and not args.disable_ticketing and not args.sasl:
        if not is_loopback(args.addr):
            print(
                f"trio-spice: refusing to listen on {args.addr}, which is not a loopback address, "
                "with neither a password (--password, --password-file or "
                f"${PASSWORD_ENV}) nor --disable-ticketing: anyone who can reach it would "
                "see and control this display. Give one of the two.",
                file=sys.stderr,
            )
            return 2
        args.disable_ticketing = True
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
            password=password,
            view_only_password=view_only,
            password_valid_for=args.password_expires,
            disable_ticketing=args.disable_ticketing,
            sasl_users=args.sasl_users,
            name=args.name,
            uuid=args.uuid,
            ipv4_only=args.ipv4_only,
            ipv6_only=args.ipv6_only,
            client_mouse=not args.server_mouse,
            agent_mouse=args.agent_mouse,
            image_compression=args.image_compression,
            jpeg_wan_compression=args.jpeg_wan_compression,
            streaming_video=args.streaming_video,
            video_codecs=args.video_codecs,
            playback_compression=args.playback_compression == "on",
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
            copy_paste=not args.disable_copy_paste,
            file_transfer=not args.disable_agent_file_xfer,
            file_transfer_dir=args.file_transfer_dir,
            allowed_hosts=args.allowed_host,
            max_connections=args.max_connections,
            max_connections_per_address=args.max_connections_per_address,
            link_attempts_per_second=args.link_attempts_per_second,
            failed_ticket_delay=args.failed_ticket_delay,
            link_timeout=args.link_timeout,
            max_client_buffer=args.max_client_buffer,
            max_message=dict(args.max_message),
        )
        width, height = args.size
        count = args.monitors
        if not 1 <= count <= MAX_MONITORS:
            raise spice.ConfigError(f"--monitors takes 1 to {MAX_MONITORS}, not {count}")
        display = server.add_display(
            width * count,
            height,
            monitors=[(b.x, b.y, b.w, b.h) for b in side_by_side(count, width, height)]
            if count > 1
            else None,
        )
    except (spice.Error, OSError, ValueError, TypeError) as exc:
        return _fail(args, exc, 2)
    if args.x11:
        from spice import x11 as x11_command

        return x11_command.run_command(server, display, args)
    if args.qemu:
        from spice import qemu as qemu_command

        return qemu_command.run_command(server, display, args)
    try:
        trio.run(_serve, server, display, args.exit_on_disconnect)
    except spice.ListenError as exc:
        return _fail(args, exc, 1)
    except (_Stop, KeyboardInterrupt):
        raise
    except Exception as exc:
        return _fail(args, f"the server stopped on an error: {exc!r}", 1)
    return 0


async def _serve(server: Server, display: Display, exit_on_disconnect: bool) -> None:
    try:
        await _serve_until_stopped(server, display, exit_on_disconnect)
    except BaseExceptionGroup as group:
        raise single_error(group) from None


async def _serve_until_stopped(server: Server, display: Display, exit_on_disconnect: bool) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for signum in signals:
                    name = signal.Signals(signum).name
                    # Before the server is up there is nobody to tell: just cancel.
                    count = await server.stop(grace=STOP_GRACE) if server.addresses else 0
                    log.info(
                        "%s: stopped; %d client%s told DISCONNECTING",
                        name,
                        count,
                        "" if count == 1 else "s",
                    )
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)
            await _run(server, display, exit_on_disconnect, nursery)


async def _run(
    server: Server, display: Display, exit_on_disconnect: bool, nursery: trio.Nursery
) -> None:
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
