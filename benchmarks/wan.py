"""An emulated WAN path (delay, rate limit, drop-tail queue) that does not terminate TCP.

Two network namespaces, "srv" and "cli", each get a TUN device (10.201.0.1/24 and
10.201.0.2/24 by default; the addresses exist only inside those namespaces). A forwarder
process in the root namespace holds both TUN file descriptors and moves every IP packet from
one to the other after

* a **drop-tail queue** of ``queue_bytes`` per direction in front of
* a **bottleneck of ``rate_mbit``** (each packet takes ``len * 8 / rate`` seconds to
  "serialize"; a packet that would find more than ``queue_bytes`` ahead of it is dropped), then
* a **one-way delay** of ``rtt_ms / 2``.

Both the server's and the client's kernels run their own TCP (congestion control, pacing,
retransmits, receive windows) over that path; nothing is proxied. The packets are not changed.

Use::

    import wan                            # with benchmarks/ on sys.path

    with wan.link(rtt_ms=80, rate_mbit=10, queue_bytes=128 * 1024) as link:
        server = link.run_server([sys.executable, "-m", "spice", "--addr", link.server_addr])
        client = link.run_client([...], env=...)     # subprocess.Popen in the cli namespace
        ...
        link.stats()          # per direction: packets/bytes in, forwarded, dropped, max queue

Or from a shell (COMMAND runs in the cli namespace, --server in srv; both get
WAN_SERVER_ADDR, WAN_CLIENT_ADDR, WAN_SRV_NS, WAN_CLI_NS; exit status = COMMAND's)::

    .venv/bin/python benchmarks/wan.py --rtt 80 --rate 10 --server-wait 3 \
        --server 'exec .venv/bin/python -m spice --addr $WAN_SERVER_ADDR --disable-ticketing' \
        -- spicy-screenshot -h 10.201.0.1 -p 5900 -o /tmp/shot.ppm

Every process started through the link runs in its own session (process group) and is stopped
by group on exit (SIGTERM, then SIGKILL); whatever else still runs inside the two namespaces is
killed, the forwarder is stopped and the namespaces are deleted, also on an exception, Ctrl-C
or SIGTERM. Namespaces are named ``tswan-srv-PID`` / ``tswan-cli-PID`` (PID of the process that
made them); ones left behind by a process that no longer exists (SIGKILL) are removed the
next time a link is made.

Needs root, ``ip`` (iproute2), ``sysctl`` and /dev/net/tun. Standard library only.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import errno
import fcntl
import json
import os
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

SUBNET_DEFAULT = "10.201.0"
DEV = "wan0"
NS_PREFIX = "tswan"
# select() sleeps with microsecond resolution (epoll only in whole milliseconds) and the
# forwarder sets its timer slack to 1 us, but waking up and getting back into Python still
# takes about 0.05-0.2 ms here: wake up this much before a packet is due, so the delay comes
# out right on average (wan_check.py reports the mean lateness: about -0.05..-0.15 ms).
EARLY_S = 0.0001
READ_BATCH = 256  # packets read from one TUN before the timers get another look

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
PR_SET_TIMERSLACK = 29


# ============================================================================ forwarder
class _Direction:
    """One direction of the path: a virtual bottleneck (``free_at`` is when it finishes
    serializing what it has accepted) and a FIFO delay line of (due, packet)."""

    __slots__ = (
        "bytes_dropped",
        "bytes_fwd",
        "bytes_in",
        "free_at",
        "in_fd",
        "late_max",
        "late_n",
        "late_over_1ms",
        "late_sum",
        "max_backlog",
        "max_held",
        "name",
        "out_fd",
        "pkts_dropped",
        "pkts_fwd",
        "pkts_in",
        "queue",
        "write_errors",
    )

    def __init__(self, name: str, in_fd: int, out_fd: int) -> None:
        self.name = name
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.free_at = 0.0
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.pkts_in = self.bytes_in = 0
        self.pkts_fwd = self.bytes_fwd = 0
        self.pkts_dropped = self.bytes_dropped = 0
        self.write_errors = 0
        self.max_backlog = 0.0  # bytes waiting for the bottleneck, seen by an arriving packet
        self.max_held = 0  # packets in the forwarder (queue + delay line) at once
        # how late held packets went out against their due time (negative: early)
        self.late_n = self.late_over_1ms = 0
        self.late_sum = self.late_max = 0.0

    def stats(self) -> dict[str, Any]:
        return {
            "pkts_in": self.pkts_in,
            "bytes_in": self.bytes_in,
            "pkts_fwd": self.pkts_fwd,
            "bytes_fwd": self.bytes_fwd,
            "pkts_dropped": self.pkts_dropped,
            "bytes_dropped": self.bytes_dropped,
            "write_errors": self.write_errors,
            "max_queue_bytes": int(self.max_backlog),
            "max_held_pkts": self.max_held,
            "late_n": self.late_n,
            "late_sum_s": self.late_sum,
            "late_max_ms": self.late_max * 1000,
            "late_over_1ms": self.late_over_1ms,
            "held_pkts": len(self.queue),
        }


def _setns(libc: Any, path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _open_tun_in(netns: str, dev: str) -> int:
    """Create TUN device ``dev`` inside namespace ``netns`` and return its fd. The forwarder
    is single-threaded here, so entering the namespace and coming back is safe; the fd stays
    bound to the device in that namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        _setns(libc, f"/run/netns/{netns}")
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            ifr = struct.pack("16sH22x", dev.encode(), IFF_TUN | IFF_NO_PI)
            fcntl.ioctl(fd, TUNSETIFF, ifr)
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns back: {os.strerror(err)}")
    finally:
        os.close(home)
    return fd


def forwarder_main(args: argparse.Namespace) -> int:
    """The packet mover. Control on stdin: "stats" -> one JSON line on stdout; EOF -> exit."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0)  # 1 us instead of the default 50 us
    if args.nice:
        with contextlib.suppress(OSError):
            os.nice(args.nice)
    if args.rt:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.rt))
        except OSError as exc:
            print(f"wan forwarder: no SCHED_FIFO ({exc}); timing suffers under load",
                  file=sys.stderr)  # fmt: skip
    srv_fd = _open_tun_in(args.srv_ns, args.dev)
    cli_fd = _open_tun_in(args.cli_ns, args.dev)
    delay = args.delay_ms / 1000.0
    rate_Bps = args.rate_bps / 8.0  # 0 = unlimited
    qlimit = float(args.queue_bytes)
    dirs = [_Direction("srv_to_cli", srv_fd, cli_fd), _Direction("cli_to_srv", cli_fd, srv_fd)]
    by_fd = {d.in_fd: d for d in dirs}
    ctl = sys.stdin.fileno()
    watched = [srv_fd, cli_fd, ctl]
    sel = select.select
    ctl_buf = b""
    started = time.monotonic()
    os.write(1, b'{"ready": true}\n')

    monotonic = time.monotonic
    read = os.read
    write = os.write

    def emit(d: _Direction, pkt: bytes) -> None:
        try:
            write(d.out_fd, pkt)
        except OSError:
            d.write_errors += 1
            return
        d.pkts_fwd += 1
        d.bytes_fwd += len(pkt)

    while True:
        now = monotonic()
        timeout = -1.0
        for d in dirs:
            q = d.queue
            while q and q[0][0] <= now + EARLY_S:
                due, pkt = q.popleft()
                late = now - due
                d.late_n += 1
                d.late_sum += late
                if late > d.late_max:
                    d.late_max = late
                    if late > 0.001:
                        d.late_over_1ms += 1
                elif late > 0.001:
                    d.late_over_1ms += 1
                emit(d, pkt)
            if q:
                wait = q[0][0] - now - EARLY_S
                if timeout < 0 or wait < timeout:
                    timeout = wait
        for fd in sel(watched, (), (), None if timeout < 0 else timeout)[0]:
            if fd == ctl:
                chunk = read(ctl, 4096)
                if not chunk:
                    return 0
                ctl_buf += chunk
                while b"\n" in ctl_buf:
                    line, ctl_buf = ctl_buf.split(b"\n", 1)
                    if line.strip() == b"stats":
                        t = os.times()
                        out = {
                            "uptime_s": monotonic() - started,
                            "cpu_user_s": t.user,
                            "cpu_sys_s": t.system,
                            **{d.name: d.stats() for d in dirs},
                        }
                        os.write(1, json.dumps(out).encode() + b"\n")
                continue
            d = by_fd[fd]
            q = d.queue
            for _ in range(READ_BATCH):
                try:
                    pkt = read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno in (errno.EINTR, errno.EAGAIN):
                        break
                    raise
                now = monotonic()
                size = len(pkt)
                d.pkts_in += 1
                d.bytes_in += size
                if rate_Bps:
                    start = d.free_at if d.free_at > now else now
                    backlog = (start - now) * rate_Bps
                    if backlog + size > qlimit:
                        d.pkts_dropped += 1
                        d.bytes_dropped += size
                        continue
                    if backlog > d.max_backlog:
                        d.max_backlog = backlog
                    d.free_at = start + size / rate_Bps
                    due = d.free_at + delay
                else:
                    due = now + delay
                if not q and due <= now + EARLY_S:
                    emit(d, pkt)
                else:
                    q.append((due, pkt))
                    if len(q) > d.max_held:
                        d.max_held = len(q)


# ============================================================================ the link API
def _run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ns_pids(ns: str) -> list[int]:
    res = _run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in res.stdout.split() if p.isdigit()]


def _kill_ns_pids(ns: str, grace: float = 2.0) -> list[int]:
    """Stop every process still inside ``ns`` (one of our own namespaces): TERM, then KILL."""
    pids = [p for p in _ns_pids(ns) if p != os.getpid()]
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_pid_alive(p) for p in _ns_pids(ns)):
        time.sleep(0.05)
    for p in _ns_pids(ns):
        if p != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
    return pids


def _delete_ns(ns: str) -> None:
    _kill_ns_pids(ns)
    _run(["ip", "netns", "del", ns], check=False)


def cleanup_stale() -> list[str]:
    """Delete ``tswan-*-PID`` namespaces whose creating process no longer exists."""
    removed = []
    res = _run(["ip", "netns", "list"], check=False)
    for line in res.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(rf"{NS_PREFIX}-(srv|cli)-(\d+)", name)
        if m and not _pid_alive(int(m.group(2))):
            _delete_ns(name)
            removed.append(name)
    return removed


def _stop_group(proc: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM the process group of ``proc`` (a session leader we started), SIGKILL after
    ``grace`` seconds, reap it."""
    if proc.returncode is not None:
        # Already reaped: its pid may belong to someone else now, so no killpg. Whatever
        # its group left behind in our namespaces is swept up when the link closes.
        return
    pgid = proc.pid  # not reaped yet, so the pid (and group id) is still ours
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)  # the leader or anything left in its group
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


class Link:
    """A running emulated path. Made by :func:`link`; valid inside its ``with`` block."""

    def __init__(
        self,
        srv_ns: str,
        cli_ns: str,
        server_addr: str,
        client_addr: str,
        rtt_ms: float,
        rate_mbit: float | None,
        queue_bytes: int,
        cc: str,
    ) -> None:
        self.srv_ns = srv_ns
        self.cli_ns = cli_ns
        self.server_addr = server_addr
        self.client_addr = client_addr
        self.rtt_ms = rtt_ms
        self.rate_mbit = rate_mbit
        self.queue_bytes = queue_bytes
        self.cc = cc  # the namespaces' default TCP congestion control
        self.dev = DEV
        self.forwarder: subprocess.Popen[bytes] | None = None
        self._procs: list[subprocess.Popen[Any]] = []
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- processes
    def run_in(self, ns: str, argv: Sequence[str], **popen_kw: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen(argv, **popen_kw)`` inside namespace ``ns``, as the leader of
        a new session, so :meth:`stop` (and the link's exit) can signal its whole group."""
        popen_kw["start_new_session"] = True
        proc: subprocess.Popen[Any] = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], **popen_kw
        )
        with self._lock:
            self._procs.append(proc)
        return proc

    def run_server(self, argv: Sequence[str], **popen_kw: Any) -> subprocess.Popen[Any]:
        return self.run_in(self.srv_ns, argv, **popen_kw)

    def run_client(self, argv: Sequence[str], **popen_kw: Any) -> subprocess.Popen[Any]:
        return self.run_in(self.cli_ns, argv, **popen_kw)

    def stop(self, proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
        """Stop one process started through this link, with its process group."""
        _stop_group(proc, grace)

    def netns_cmd(self, side: str) -> list[str]:
        """``["ip", "netns", "exec", NS]`` for "srv" or "cli", to prefix your own commands."""
        return ["ip", "netns", "exec", self.srv_ns if side == "srv" else self.cli_ns]

    # ---------------------------------------------------------------- numbers
    @property
    def forwarder_pid(self) -> int | None:
        return self.forwarder.pid if self.forwarder else None

    def forwarder_cpu_s(self) -> float:
        """The forwarder's CPU seconds so far (user + system, from /proc/PID/stat). Its
        system time includes the receiving namespace's IP/TCP input, which runs in the
        forwarder's write() to the TUN device."""
        assert self.forwarder is not None
        with open(f"/proc/{self.forwarder.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stats(self) -> dict[str, Any]:
        """Counters per direction (``srv_to_cli``, ``cli_to_srv``): pkts/bytes in (read from
        the sending side's TUN), fwd (written to the other side), dropped (drop-tail), write
        errors, the largest queue seen in bytes, packets held; the forwarder's uptime and CPU;
        and ``tun_tx_dropped``: packets the kernel dropped because the forwarder did not read
        its TUN fast enough (should stay 0)."""
        assert self.forwarder is not None and self.forwarder.stdin and self.forwarder.stdout
        with self._lock:
            self.forwarder.stdin.write(b"stats\n")
            self.forwarder.stdin.flush()
            line = self.forwarder.stdout.readline()
        if not line:
            raise RuntimeError("the WAN forwarder is gone")
        out: dict[str, Any] = json.loads(line)
        out["tun_tx_dropped"] = {
            "srv": self._tun_tx_dropped(self.srv_ns),
            "cli": self._tun_tx_dropped(self.cli_ns),
        }
        return out

    def _tun_tx_dropped(self, ns: str) -> int | None:
        res = _run(["ip", "-n", ns, "-j", "-s", "link", "show", "dev", self.dev], check=False)
        try:
            return int(json.loads(res.stdout)[0]["stats64"]["tx"]["dropped"])
        except (ValueError, LookupError, TypeError):
            return None

    def describe(self) -> dict[str, Any]:
        return {
            "rtt_ms": self.rtt_ms,
            "rate_mbit": self.rate_mbit,
            "queue_bytes": self.queue_bytes,
            "cc": self.cc,
            "server_addr": self.server_addr,
            "client_addr": self.client_addr,
            "srv_ns": self.srv_ns,
            "cli_ns": self.cli_ns,
        }


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Inside the block, SIGTERM unwinds like Ctrl-C (only if nobody else handles it and we
    are on the main thread), so the link's ``finally`` runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while tearing down, so a second Ctrl-C can't skip the cleanup;
    they are delivered afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def link(
    rtt_ms: float = 80.0,
    rate_mbit: float | None = 10.0,
    queue_bytes: int = 128 * 1024,
    *,
    cc: str | None = None,
    subnet: str = SUBNET_DEFAULT,
    mtu: int = 1500,
    grace: float = 5.0,
    forwarder_nice: int = -5,
    forwarder_rt: int = 10,
) -> Iterator[Link]:
    """An emulated path between two fresh namespaces; see the module docstring.

    ``rtt_ms``: round-trip propagation delay (half each way). ``rate_mbit``: bottleneck rate,
    per direction, counted on IP packet bytes; ``None`` or 0 = unlimited (no queue, no drops).
    ``queue_bytes``: drop-tail limit per direction. ``cc``: default TCP congestion control in
    both namespaces (here ``reno`` or ``bbr``; None keeps the kernel's default). ``subnet``:
    first three octets; the server gets .1, the client .2.

    ``forwarder_rt``: the forwarder's SCHED_FIFO priority (default 10; 0 = normal scheduling,
    then ``forwarder_nice`` applies, default -5). On a busy 2-core box the emulated network
    must not wait behind the server and client it carries: under load from other processes a
    normally scheduled forwarder measured 92 ms idle RTT for 80 ms and released 26% of packets
    over 1 ms late; with SCHED_FIFO 80.5 ms and 3%. The kernel's RT throttling (95%) still
    bounds it, and it needs about 25% of one core at 50 Mbit/s.
    """
    if os.geteuid() != 0:
        raise PermissionError("benchmarks/wan.py needs root (namespaces, TUN devices)")
    cleanup_stale()
    tag = os.getpid()
    srv_ns, cli_ns = f"{NS_PREFIX}-srv-{tag}", f"{NS_PREFIX}-cli-{tag}"
    if srv_ns in _run(["ip", "netns", "list"]).stdout.split():
        raise RuntimeError(f"namespace {srv_ns} exists: one link per process at a time")
    made: list[str] = []
    lnk: Link | None = None
    with _sigterm_raises():
        try:
            for ns in (srv_ns, cli_ns):
                _run(["ip", "netns", "add", ns])
                made.append(ns)
                _run(["ip", "-n", ns, "link", "set", "lo", "up"])
                sysctls = [
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ]
                if cc:
                    sysctls.append(f"net.ipv4.tcp_congestion_control={cc}")
                _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *sysctls])
            got_cc = _run(
                ["ip", "netns", "exec", srv_ns, "sysctl", "-n", "net.ipv4.tcp_congestion_control"]
            ).stdout.strip()
            lnk = Link(
                srv_ns,
                cli_ns,
                f"{subnet}.1",
                f"{subnet}.2",
                rtt_ms,
                rate_mbit or None,
                queue_bytes,
                got_cc,
            )
            lnk.forwarder = subprocess.Popen(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--forwarder",
                    "--srv-ns",
                    srv_ns,
                    "--cli-ns",
                    cli_ns,
                    "--dev",
                    DEV,
                    "--delay-ms",
                    str(rtt_ms / 2.0),
                    "--rate-bps",
                    str(int((rate_mbit or 0) * 1e6)),
                    "--queue-bytes",
                    str(queue_bytes),
                    "--nice",
                    str(forwarder_nice),
                    "--rt",
                    str(forwarder_rt),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C on the terminal goes to us, not to it
            )
            assert lnk.forwarder.stdout is not None
            ready = lnk.forwarder.stdout.readline()
            if not ready:
                raise RuntimeError(
                    f"the WAN forwarder exited ({lnk.forwarder.wait()}) before it was ready"
                )
            for ns, addr in ((srv_ns, lnk.server_addr), (cli_ns, lnk.client_addr)):
                _run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", DEV])
                _run(["ip", "-n", ns, "link", "set", DEV, "mtu", str(mtu), "up"])
            yield lnk
        finally:
            with _signals_deferred():
                if lnk is not None:
                    for proc in lnk._procs:
                        _stop_group(proc, grace)
                for ns in made:
                    _kill_ns_pids(ns)
                if lnk is not None and lnk.forwarder is not None:
                    fwd = lnk.forwarder
                    with contextlib.suppress(OSError, ValueError):
                        assert fwd.stdin is not None
                        fwd.stdin.close()
                    try:
                        fwd.wait(3)
                    except subprocess.TimeoutExpired:
                        fwd.kill()
                        fwd.wait()
                    if fwd.stdout is not None:
                        fwd.stdout.close()
                for ns in made:
                    _run(["ip", "netns", "del", ns], check=False)


# ============================================================================ command line
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--forwarder" in argv:
        p = argparse.ArgumentParser()
        p.add_argument("--forwarder", action="store_true")
        p.add_argument("--srv-ns", required=True)
        p.add_argument("--cli-ns", required=True)
        p.add_argument("--dev", default=DEV)
        p.add_argument("--delay-ms", type=float, required=True)
        p.add_argument("--rate-bps", type=int, required=True)
        p.add_argument("--queue-bytes", type=int, required=True)
        p.add_argument("--nice", type=int, default=0)
        p.add_argument("--rt", type=int, default=0)
        return forwarder_main(p.parse_args(argv))

    command: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(
        description="Run COMMAND in the client namespace of an emulated WAN path "
        "(and --server in the server namespace). Without COMMAND: hold the path up "
        "until Ctrl-C. Prints the forwarder's counters as JSON on stderr at the end.",
        usage="%(prog)s [options] [-- COMMAND ...]",
    )
    p.add_argument("--rtt", type=float, default=80.0, help="round-trip delay, ms (80)")
    p.add_argument("--rate", type=float, default=10.0, help="Mbit/s per direction, 0 = no limit")
    p.add_argument("--queue", type=int, default=128 * 1024, help="drop-tail bytes (131072)")
    p.add_argument("--cc", help="TCP congestion control in both namespaces (reno, bbr)")
    p.add_argument("--rt", type=int, default=10, help="forwarder SCHED_FIFO priority, 0 = off")
    p.add_argument("--server", help="shell command run in the server namespace first")
    p.add_argument("--server-wait", type=float, default=1.0, help="s to wait after --server")
    args = p.parse_args(argv)
    rc = 0
    with link(args.rtt, args.rate or None, args.queue, cc=args.cc, forwarder_rt=args.rt) as lnk:
        env = dict(
            os.environ,
            WAN_SERVER_ADDR=lnk.server_addr,
            WAN_CLIENT_ADDR=lnk.client_addr,
            WAN_SRV_NS=lnk.srv_ns,
            WAN_CLI_NS=lnk.cli_ns,
        )
        print(f"wan: {json.dumps(lnk.describe())}", file=sys.stderr, flush=True)
        try:
            if args.server:
                server = lnk.run_server(["sh", "-c", args.server], env=env)
                time.sleep(args.server_wait)
                if server.poll() is not None:
                    print(f"wan: --server exited with {server.returncode}", file=sys.stderr)
            if command:
                rc = lnk.run_client(command, env=env).wait()
            else:
                print(
                    f"wan: up; e.g. `ip netns exec {lnk.cli_ns} "
                    f"{shlex.join(['ping', lnk.server_addr])}`; Ctrl-C to stop",
                    file=sys.stderr,
                    flush=True,
                )
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            rc = 130
        finally:
            with contextlib.suppress(Exception):
                print(f"wan: {json.dumps(lnk.stats())}", file=sys.stderr, flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
