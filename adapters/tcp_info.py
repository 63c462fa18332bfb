"""What the kernel's TCP knows about a client's path: the smoothed round trip of the data we
sent (from the client's ACKs) and the smallest one seen.

A PING answered by the client measures the path *and* the client's own delay in answering:
spice-html5 answers from JavaScript, behind its decoding and drawing, so its PONGs read as
queueing that the network does not have. The client's kernel ACKs our data at once, so the
round trip TCP measures is the path's alone: queueing at the bottleneck included, the client's
workload not. The display channel paces video by it where the kernel tells it (Linux).
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
from typing import Any

import attrs
import trio

#: struct tcp_info (linux/tcp.h): tcpi_rtt and tcpi_min_rtt, in microseconds;
#: tcpi_delivery_rate (Linux 4.9 and later), in bytes per second.
_RTT_OFFSET = 68
_MIN_RTT_OFFSET = 148
_INFO_BYTES = 152
_DELIVERY_OFFSET = 160
_FULL_INFO_BYTES = 168
_TCP_INFO = getattr(socket, "TCP_INFO", None)


@attrs.frozen
class PathTiming:
    #: Smoothed round trip (s) and the smallest seen on this connection (s).
    rtt: float
    min_rtt: float
    #: The kernel's latest delivery-rate sample (bits/s; None where it has none). A video
    #: frame leaves as a burst, so its sample is the bottleneck's rate: on an emulated 50
    #: Mbit/s path the samples read 48.3 Mbit/s while the stream used 2.
    delivery_rate: float | None = None


def socket_under(stream: Any) -> trio.socket.SocketType | None:
    """The TCP socket under a stream of this package's layers (TLS, WebSocket, replay of
    sniffed bytes), or None."""
    for _ in range(8):
        if isinstance(stream, trio.SocketStream):
            return stream.socket
        for name in ("tls", "transport_stream", "raw", "stream"):
            inner = getattr(stream, name, None)
            if inner is not None:
                stream = inner
                break
        else:
            return None
    return None


def path_timing(sock: trio.socket.SocketType) -> PathTiming | None:
    """The kernel's round-trip figures for ``sock``, or None where it has none (not Linux,
    not TCP, closed, or nothing measured yet)."""
    if _TCP_INFO is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _FULL_INFO_BYTES)
    except OSError:
        return None
    if len(info) < _INFO_BYTES:
        return None
    (rtt,) = struct.unpack_from("<I", info, _RTT_OFFSET)
    (min_rtt,) = struct.unpack_from("<I", info, _MIN_RTT_OFFSET)
    if rtt == 0:
        return None
    delivery = None
    if len(info) >= _FULL_INFO_BYTES:
        (rate,) = struct.unpack_from("<Q", info, _DELIVERY_OFFSET)
        delivery = rate * 8.0 if rate else None
    return PathTiming(rtt / 1e6, min_rtt / 1e6 if min_rtt != 0xFFFFFFFF else rtt / 1e6, delivery)


def bytes_in_flight(sock: trio.socket.SocketType) -> int | None:
    """Bytes written to ``sock`` that the peer has not acknowledged yet, unsent ones included
    (SIOCOUTQ), or None where the kernel cannot tell."""
    try:
        out = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return None
    (count,) = struct.unpack("i", out)
    return int(count)


#: SO_MAX_PACING_RATE (asm-generic/socket.h): a ceiling on the kernel's pacing of a socket, in
#: bytes a second (the socket module does not name it).
_SO_MAX_PACING_RATE = getattr(socket, "SO_MAX_PACING_RATE", 47)
_PACING_UNLIMITED = 0xFFFFFFFF


def set_max_pacing(sock: trio.socket.SocketType, bits_per_second: float) -> bool:
    """Cap how fast the kernel paces ``sock`` out. TCP's own pacing (BBR's, or the fq
    qdisc's) honours it; False where the kernel does not take it."""
    rate = min(max(int(bits_per_second / 8), 1), _PACING_UNLIMITED - 1)
    try:
        # As an unsigned 32-bit value: past 2**31 an int argument would not fit a C int.
        sock.setsockopt(socket.SOL_SOCKET, _SO_MAX_PACING_RATE, struct.pack("=I", rate))
    except OSError:
        return False
    return True
