"""Validate benchmarks/wan.py: idle RTT, bulk TCP throughput, RTT under load, forwarder CPU.

For each path (default: 80 ms / 10 Mbit/s, 80 ms / 50 Mbit/s, 0 ms / unlimited; 128 KiB
drop-tail queue) and each congestion control (default reno and bbr, chosen per socket by the
sender):

* **idle RTT**: ICMP echo from the client namespace to the server address (a raw socket in a
  helper process; the server's kernel answers), 20 probes 100 ms apart;
* **bulk TCP, client <- server**: a sender in the server namespace writes as fast as it can,
  a receiver in the client namespace counts what arrives; goodput over the window after
  ``--warmup`` seconds (slow start / BBR startup left out), and the link's IP-level rate from
  the forwarder's counters over the same window;
* **RTT under load**: the same ICMP probes, every 100 ms through the window, through the
  queue the transfer builds (128 KiB at 10 Mbit/s adds up to 105 ms);
* **forwarder CPU**: /proc/PID/stat of the forwarder over the window, in % of one core and
  in microseconds per packet forwarded (both directions).

Prints a table, then one JSON object (``--json FILE`` also writes it). Needs root.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import wan  # noqa: E402
from _peers import median, percentile, sigterm_as_exit  # noqa: E402

PORT = 5990
PATHS = [(80.0, 10.0), (80.0, 50.0), (0.0, None)]


# ============================================================================ helper roles
def _icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def role_ping(args: argparse.Namespace) -> int:
    """ICMP echo to --host, --count probes every --interval s; one JSON line at the end."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    payload = b"wan-check-" + bytes(46)  # 56 bytes, like ping
    sent: dict[int, float] = {}
    rtts: dict[int, float] = {}
    seq = 0
    next_send = time.monotonic()
    last_deadline = None
    while True:
        now = time.monotonic()
        if seq < args.count and now >= next_send:
            header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            packet = struct.pack("!BBHHH", 8, 0, _icmp_checksum(header + payload), ident, seq)
            sent[seq] = time.monotonic()
            sock.sendto(packet + payload, (args.host, 0))
            seq += 1
            next_send += args.interval
            if seq == args.count:
                last_deadline = now + args.timeout
            continue
        if last_deadline is not None and (now >= last_deadline or len(rtts) == len(sent)):
            break
        wait = (next_send if seq < args.count else last_deadline or now) - now
        ready, _, _ = select.select([sock], [], [], max(0.0, wait))
        if not ready:
            continue
        data, _addr = sock.recvfrom(2048)
        t = time.monotonic()
        ihl = (data[0] & 0x0F) * 4
        if len(data) < ihl + 8:
            continue
        typ, _code, _ck, rid, rseq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
        if typ == 0 and rid == ident and rseq in sent and rseq not in rtts:
            rtts[rseq] = t - sent[rseq]
    print(
        json.dumps(
            {
                "sent": len(sent),
                "received": len(rtts),
                "rtt_ms": [rtts[s] * 1000 for s in sorted(rtts)],
            }
        ),
        flush=True,
    )
    return 0


def _tcp_info(sock: socket.socket) -> dict[str, Any]:
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)

    def u32(off: int) -> int:
        value: int = struct.unpack_from("I", raw, off)[0]
        return value

    return {
        "rto_us": u32(8),
        "snd_mss": u32(16),
        "srtt_us": u32(68),
        "snd_cwnd": u32(80),
        "total_retrans": u32(100),
        "segs_out": u32(136) if len(raw) >= 140 else None,
    }


def role_source(args: argparse.Namespace) -> int:
    """Accept one connection on --host:--port and send zeros for --seconds."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.host, args.port))
    lsock.listen(1)
    print(json.dumps({"listening": True}), flush=True)
    conn, _ = lsock.accept()
    lsock.close()
    if args.cc:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, args.cc.encode())
    cc = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).split(b"\0")[0].decode()
    buf = bytes(256 * 1024)
    end = time.monotonic() + args.seconds
    sent = 0
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        while time.monotonic() < end:
            sent += conn.send(buf)
    info = _tcp_info(conn)
    conn.close()
    print(json.dumps({"cc": cc, "bytes_sent": sent, "tcp_info": info}), flush=True)
    return 0


def role_sink(args: argparse.Namespace) -> int:
    """Connect to --host:--port, read to EOF; report (monotonic time, bytes so far) every
    50 ms."""
    sock = socket.create_connection((args.host, args.port), timeout=10)
    sock.settimeout(None)
    print(json.dumps({"connected": time.monotonic()}), flush=True)
    buf = bytearray(1 << 20)
    total = 0
    marks: list[tuple[float, int]] = [(time.monotonic(), 0)]
    next_mark = marks[0][0] + 0.05
    while True:
        n = sock.recv_into(buf)
        if not n:
            break
        total += n
        now = time.monotonic()
        if now >= next_mark:
            marks.append((now, total))
            next_mark = now + 0.05
    marks.append((time.monotonic(), total))
    sock.close()
    print(json.dumps({"bytes": total, "marks": marks}), flush=True)
    return 0


# ============================================================================ orchestration
def _bytes_at(marks: list[list[float]], t: float) -> float:
    """Bytes received by time t, linearly interpolated between the receiver's marks."""
    prev = marks[0]
    for mark in marks:
        if mark[0] >= t:
            if mark[0] == prev[0]:
                return mark[1]
            frac = (t - prev[0]) / (mark[0] - prev[0])
            return prev[1] + frac * (mark[1] - prev[1])
        prev = mark
    return marks[-1][1]


def _json_line(proc: subprocess.Popen[str], what: str, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line:
        err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
        raise RuntimeError(f"{what}: no output within {timeout} s (status {proc.poll()}) {err}")
    result: dict[str, Any] = json.loads(line)
    return result


def _ping_summary(rtts: list[float], sent: int) -> dict[str, Any]:
    return {
        "sent": sent,
        "received": len(rtts),
        "median_ms": median(rtts),
        "min_ms": min(rtts) if rtts else None,
        "p90_ms": percentile(rtts, 90),
        "max_ms": max(rtts) if rtts else None,
    }


def _delta(after: dict[str, Any], before: dict[str, Any], direction: str) -> dict[str, Any]:
    a, b = after[direction], before[direction]
    out: dict[str, Any] = {
        k: a[k] - b[k]
        for k in ("pkts_in", "bytes_in", "pkts_fwd", "bytes_fwd", "pkts_dropped", "bytes_dropped")
    }
    n = a["late_n"] - b["late_n"]
    out["held_pkts_sent"] = n
    out["late_mean_ms"] = (a["late_sum_s"] - b["late_sum_s"]) / n * 1000 if n else None
    out["late_over_1ms"] = a["late_over_1ms"] - b["late_over_1ms"]
    out["late_max_ms_so_far"] = a["late_max_ms"]
    return out


def check_path(rtt_ms: float, rate_mbit: float | None, args: argparse.Namespace) -> dict[str, Any]:
    me = [sys.executable, str(Path(__file__).resolve())]
    out: dict[str, Any] = {"rtt_ms": rtt_ms, "rate_mbit": rate_mbit, "queue_bytes": args.queue}
    if rate_mbit:
        out["queue_delay_full_ms"] = args.queue * 8 / (rate_mbit * 1e6) * 1000
    with wan.link(rtt_ms, rate_mbit, args.queue, forwarder_rt=args.rt) as link:
        out["link"] = link.describe()
        pipes: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        # idle RTT
        ping = link.run_client(
            [*me, "--role", "ping", "--host", link.server_addr, "--count", str(args.idle_pings),
             "--interval", "0.1"], **pipes)  # fmt: skip
        res = _json_line(ping, "idle ping", args.idle_pings * 0.1 + 5)
        link.stop(ping)
        out["idle_rtt"] = _ping_summary(res["rtt_ms"], res["sent"])

        out["bulk"] = []
        for cc in args.cc:
            total_s = args.warmup + args.seconds + 0.3
            source = link.run_server(
                [*me, "--role", "source", "--host", link.server_addr, "--port", str(PORT),
                 "--seconds", str(total_s), "--cc", cc], **pipes)  # fmt: skip
            _json_line(source, "source listening", 10)
            sink = link.run_client(
                [*me, "--role", "sink", "--host", link.server_addr, "--port", str(PORT)],
                **pipes,
            )
            t_conn = _json_line(sink, "sink connected", 10)["connected"]
            time.sleep(max(0.0, t_conn + args.warmup - time.monotonic()))
            t0 = time.monotonic()
            s0, c0 = link.stats(), link.forwarder_cpu_s()
            count = int(args.seconds / 0.1) - 2
            ping = link.run_client(
                [*me, "--role", "ping", "--host", link.server_addr, "--count", str(count),
                 "--interval", "0.1", "--timeout", "1.5"], **pipes)  # fmt: skip
            time.sleep(max(0.0, t0 + args.seconds - time.monotonic()))
            t1 = time.monotonic()
            s1, c1 = link.stats(), link.forwarder_cpu_s()
            pres = _json_line(ping, "loaded ping", 10)
            src = _json_line(source, "source result", total_s + 10)
            snk = _json_line(sink, "sink result", 15)
            for p in (ping, source, sink):
                link.stop(p)
            wall = t1 - t0
            goodput = (_bytes_at(snk["marks"], t1) - _bytes_at(snk["marks"], t0)) * 8 / wall
            down = _delta(s1, s0, "srv_to_cli")
            up = _delta(s1, s0, "cli_to_srv")
            pkts = down["pkts_fwd"] + up["pkts_fwd"]
            cpu = c1 - c0
            bulk = {
                "cc": src["cc"],
                "window_s": wall,
                "goodput_mbit": goodput / 1e6,
                "link_mbit": down["bytes_fwd"] * 8 / wall / 1e6,
                "utilization": (down["bytes_fwd"] * 8 / wall / (rate_mbit * 1e6))
                if rate_mbit
                else None,
                "srv_to_cli": down,
                "cli_to_srv": up,
                "drop_pct": 100 * down["pkts_dropped"] / down["pkts_in"] if down["pkts_in"] else 0,
                "max_queue_bytes": s1["srv_to_cli"]["max_queue_bytes"],
                "tun_tx_dropped": s1["tun_tx_dropped"],
                "loaded_rtt": _ping_summary(pres["rtt_ms"], pres["sent"]),
                "forwarder_cpu_pct": 100 * cpu / wall,
                "forwarder_us_per_pkt": cpu / pkts * 1e6 if pkts else None,
                "forwarder_user_s": s1["cpu_user_s"] - s0["cpu_user_s"],
                "forwarder_sys_s": s1["cpu_sys_s"] - s0["cpu_sys_s"],
                "sender_tcp_info": src["tcp_info"],
                "bytes_received_total": snk["bytes"],
            }
            out["bulk"].append(bulk)
            # no TIME_WAIT trouble: the listener uses SO_REUSEADDR
    return out


def _f(v: float | None, fmt: str = ".1f") -> str:
    return "-" if v is None else format(v, fmt)


def print_table(results: list[dict[str, Any]]) -> None:
    head = (
        "| path | cc | idle RTT ms med (min-max) | goodput Mbit/s | link Mbit/s (util) "
        "| RTT under load ms med / p90 / max | drops | retrans (all) "
        "| fwd CPU (user+sys) | us/pkt | late ms mean, >1 ms |"
    )
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for r in results:
        name = f"{r['rtt_ms']:.0f} ms / " + (
            f"{r['rate_mbit']:.0f} Mbit/s" if r["rate_mbit"] else "unlimited"
        )
        idle = r["idle_rtt"]
        for b in r["bulk"]:
            lr = b["loaded_rtt"]
            late = b["srv_to_cli"]
            util = f" ({100 * b['utilization']:.0f}%)" if b["utilization"] is not None else ""
            print(
                f"| {name} | {b['cc']} | {_f(idle['median_ms'], '.2f')} "
                f"({_f(idle['min_ms'], '.2f')}-{_f(idle['max_ms'], '.2f')}) "
                f"| {_f(b['goodput_mbit'], '.2f')} | {_f(b['link_mbit'], '.2f')}{util} "
                f"| {_f(lr['median_ms'])} / {_f(lr['p90_ms'])} / {_f(lr['max_ms'])} "
                f"({lr['received']}/{lr['sent']}) "
                f"| {b['srv_to_cli']['pkts_dropped']} ({b['drop_pct']:.2f}%) "
                f"| {b['sender_tcp_info']['total_retrans']} "
                f"| {b['forwarder_cpu_pct']:.1f}% "
                f"({100 * b['forwarder_user_s'] / b['window_s']:.0f}"
                f"+{100 * b['forwarder_sys_s'] / b['window_s']:.0f}) "
                f"| {_f(b['forwarder_us_per_pkt'])} "
                f"| {_f(late['late_mean_ms'], '.3f')}, {late['late_over_1ms']} |"
            )
        if r.get("queue_delay_full_ms"):
            print(
                f"|   (a full {r['queue_bytes']} B queue at this rate adds "
                f"{r['queue_delay_full_ms']:.0f} ms) |"
            )
    print()


def _path_arg(text: str) -> tuple[float, float | None]:
    rtt, rate = text.split("/")
    return float(rtt), (float(rate) or None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["check", "ping", "source", "sink"], default="check")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=9.0, help="measured window per transfer")
    parser.add_argument("--warmup", type=float, default=3.0, help="s of transfer not measured")
    parser.add_argument(
        "--cc",
        type=lambda s: s.split(","),
        default=["reno", "bbr"],
        help="congestion controls to test, comma-separated (reno,bbr)",
    )
    parser.add_argument(
        "--paths",
        type=lambda s: [_path_arg(p) for p in s.split(",")],
        default=PATHS,
        help="RTT_MS/MBIT,... (0 = unlimited), default 80/10,80/50,0/0",
    )
    parser.add_argument("--queue", type=int, default=128 * 1024, help="drop-tail bytes")
    parser.add_argument("--idle-pings", type=int, default=20)
    parser.add_argument(
        "--rt", type=int, default=10, help="forwarder SCHED_FIFO priority, 0 = normal (10)"
    )
    parser.add_argument("--json", type=Path, help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    if args.role == "ping":
        return role_ping(args)
    if args.role == "source":
        args.cc = args.cc[0] if args.cc else None
        return role_source(args)
    if args.role == "sink":
        return role_sink(args)

    started = time.monotonic()
    results = []
    with sigterm_as_exit():
        try:
            for rtt_ms, rate in args.paths:
                results.append(check_path(rtt_ms, rate, args))
        except KeyboardInterrupt:
            print("interrupted; partial results", file=sys.stderr)
    print_table(results)
    summary = {
        "benchmark": "wan_check",
        "kernel": os.uname().release,
        "cpus": os.cpu_count(),
        "elapsed_s": time.monotonic() - started,
        "paths": results,
    }
    text = json.dumps(summary, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
