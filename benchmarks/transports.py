"""Full-screen update throughput over each transport, in one run: TCP, WebSocket, TLS, WSS.

Usage (from the project root, with the project's virtualenv):

    .venv/bin/python benchmarks/transports.py [--seconds 4] [--rounds 3] [--size 1920x1080]

The script runs itself a second time as the server (``--role server``), in its own process: a
:class:`spice.Server` on 127.0.0.1 with a plain port (SPICE and WebSocket) and a TLS port
(certificate from :mod:`spice.certs`), one display, and a producer that pushes full-screen
random BGRX frames with ``await display.update(0, 0, frame)`` as fast as the server accepts
them, the same load as ``benchmarks/throughput.py`` (which measures TCP with spice-gtk).

The client is this process, the same lean Python SPICE client for every transport, so the
transports are compared with everything else equal: per window it links main and display 0
over the transport (raw TCP; WebSocket on the same port; TLS; WebSocket over TLS: the
WebSocket and TLS client ends are written lean here so that the client never limits what is
measured, checked by its CPU share in the report), sends
DISPLAY_INIT, waits for the first MARK, then for ``--seconds`` reads, acks (SET_ACK window,
PING) and counts the area of every DRAW_COPY: delivered frames = drawn area / screen area.
Windows alternate transport by transport for ``--rounds`` rounds (one unmeasured warm-up
first) so drift on this 2-core machine hits all alike. Reported per transport: median frames/s,
MB/s of SPICE payload, the server process's CPU seconds per frame (from /proc), and the ratio
to TCP. The last line is one JSON object with every sample.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HOST = "127.0.0.1"
TRANSPORTS = ("tcp", "ws", "tls", "wss")

# Wire constants (spice-protocol enums.h / protocol.h).
MAGIC = b"REDQ"
MAIN, DISPLAY = 1, 2
MSG_SET_ACK, MSG_PING = 3, 4
MSGC_ACK_SYNC, MSGC_ACK, MSGC_PONG = 1, 2, 3
MSG_MAIN_INIT, MSG_MAIN_CHANNELS_LIST, MSGC_MAIN_ATTACH_CHANNELS = 103, 104, 104
MSG_DISPLAY_MARK, MSG_DISPLAY_DRAW_COPY, MSGC_DISPLAY_INIT = 102, 304, 101
MINI = struct.Struct("<HI")
CAP_AUTH_SELECTION, CAP_AUTH_SPICE, CAP_MINI_HEADER = 0, 1, 3


# ============================================================================ server side
async def serve(width: int, height: int, x509_dir: str) -> None:
    from spice.server import Server

    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, (height, width, 4), dtype=np.uint8) for _ in range(6)]
    for frame in frames:
        frame[..., 3] = 0
    # BITMAP, as the transport figures were measured: the transports, not the codecs, compared.
    server = Server(
        addr=HOST,
        port=0,
        tls_port=0,
        x509_dir=x509_dir,
        disable_ticketing=True,
        image_compression="off",
    )
    display = server.add_display(width, height)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        # The compiled change scan and codecs load in a thread at start (seconds on a busy
        # machine); measure the server as it runs after that.
        await server.codecs_ready()
        print(
            json.dumps({"port": server.port_bound, "tls_port": server.tls_port_bound}), flush=True
        )
        i = 0
        while True:
            await display.update(0, 0, frames[i % len(frames)])
            i += 1
            await trio.sleep(0)


# ============================================================================ client side
def link_packet(channel_type: int, connection_id: int = 0, channel_caps: int = 0) -> bytes:
    """A link message with the common caps (auth selection, SPICE auth, mini header) and, if
    given, one word of channel caps."""
    common = 1 << CAP_AUTH_SELECTION | 1 << CAP_AUTH_SPICE | 1 << CAP_MINI_HEADER
    caps = [common] + ([channel_caps] if channel_caps else [])
    mess = struct.pack("<IBBIII", connection_id, channel_type, 0, 1, len(caps) - 1, 18)
    mess += struct.pack(f"<{len(caps)}I", *caps)
    return struct.pack("<4sIII", MAGIC, 2, 2, len(mess)) + mess


class Reader:
    """Mini-header messages off a byte stream, bodies skipped without copies; answers SET_ACK,
    acks the window, answers PING."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.pos = 0
        self.window = 0
        self.since_ack = 0
        self.bytes = 0

    async def fill(self, n: int) -> None:
        while len(self.buf) - self.pos < n:
            if self.pos > (1 << 20):
                del self.buf[: self.pos]
                self.pos = 0
            data = await self.stream.receive_some(1 << 20)
            if not data:
                raise EOFError("server closed")
            self.bytes += len(data)
            self.buf += data

    async def take(self, n: int) -> bytes:
        await self.fill(n)
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    async def message(self) -> tuple[int, int, int]:
        """(type, body offset in self.buf, size): valid until the next call."""
        await self.fill(MINI.size)
        kind, size = MINI.unpack_from(self.buf, self.pos)
        await self.fill(MINI.size + size)
        at = self.pos + MINI.size
        self.pos = at + size
        if kind == MSG_SET_ACK:
            generation, self.window = struct.unpack_from("<II", self.buf, at)
            self.since_ack = 0
            await self.send(MSGC_ACK_SYNC, struct.pack("<I", generation))
        elif kind == MSG_PING:
            await self.send(MSGC_PONG, bytes(self.buf[at : at + 12]))
        if self.window and kind != MSG_SET_ACK:
            self.since_ack += 1
            if self.since_ack >= self.window:
                self.since_ack = 0
                await self.send(MSGC_ACK)
        return kind, at, size

    async def send(self, kind: int, body: bytes = b"") -> None:
        await self.stream.send_all(MINI.pack(kind, len(body)) + body)

    async def open_main(self) -> int:
        """Link this stream as the main channel, read MAIN_INIT, attach the channels; return
        the session id."""
        await self.link(MAIN)
        while (m := await self.message())[0] != MSG_MAIN_INIT:
            pass
        session_id: int = struct.unpack_from("<I", self.buf, m[1])[0]
        await self.send(MSGC_MAIN_ATTACH_CHANNELS)
        while (await self.message())[0] != MSG_MAIN_CHANNELS_LIST:
            pass
        return session_id

    async def link(self, channel_type: int, connection_id: int = 0, channel_caps: int = 0) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        await self.stream.send_all(link_packet(channel_type, connection_id, channel_caps))
        _, _, _, size = struct.unpack("<4sIII", await self.take(16))
        reply = await self.take(size)
        error, key = struct.unpack_from("<I162s", reply)
        assert error == 0, f"link error {error}"
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
        ticket = load_der_public_key(key).encrypt(b"\0", oaep)  # type: ignore[union-attr]
        await self.stream.send_all(struct.pack("<I", 1) + ticket)
        (result,) = struct.unpack("<I", await self.take(4))
        assert result == 0, f"link result {result}"


class WsClientStream(trio.abc.Stream):
    """The client end of a WebSocket, kept lean so the client never limits the measurement:
    server frames (unmasked) are parsed here without wsproto; our frames are masked."""

    def __init__(self, raw: trio.abc.Stream) -> None:
        self.raw = raw
        self.buf = bytearray()
        self.payload_left = 0

    async def handshake(self, host: str) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        await self.raw.send_all(
            (
                f"GET /websockify HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: binary\r\n\r\n"
            ).encode()
        )
        while b"\r\n\r\n" not in self.buf:
            self.buf += await self.raw.receive_some(4096)
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        self.buf = bytearray(rest)

    async def _more(self) -> None:
        data = await self.raw.receive_some(1 << 20)
        if not data:
            raise EOFError("server closed")
        self.buf += data

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while self.payload_left == 0:
            while len(self.buf) < 2:
                await self._more()
            opcode, length = self.buf[0] & 0x0F, self.buf[1] & 0x7F
            size = 2 + (2 if length == 126 else 8 if length == 127 else 0)
            while len(self.buf) < size:
                await self._more()
            if length == 126:
                length = struct.unpack_from("!H", self.buf, 2)[0]
            elif length == 127:
                length = struct.unpack_from("!Q", self.buf, 2)[0]
            assert opcode in (0x0, 0x2), f"opcode {opcode}"
            del self.buf[:size]
            self.payload_left = length
        if not self.buf:
            await self._more()
        n = min(len(self.buf), self.payload_left, max_bytes or (1 << 20))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        self.payload_left -= n
        return out

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        mask = os.urandom(4)
        payload = np.frombuffer(bytes(data), np.uint8) ^ np.resize(
            np.frombuffer(mask, np.uint8), len(data)
        )
        n = len(data)
        head = bytes((0x82, 0x80 | n)) if n < 126 else struct.pack("!BBH", 0x82, 0x80 | 126, n)
        await self.raw.send_all(head + mask + payload.tobytes())

    async def wait_send_all_might_not_block(self) -> None:
        await self.raw.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.raw.aclose()


class TlsClientStream(trio.abc.Stream):
    """The client end of TLS, kept lean for the same reason: trio's SSLStream returns one
    16 KiB TLS record per receive_some, and at a gigabyte a second its per-call overhead
    made the client, not the server, the limit. This drains every record buffered."""

    def __init__(self, raw: trio.SocketStream, context: ssl.SSLContext, hostname: str) -> None:
        self.raw = raw
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=hostname)

    async def _flush(self) -> None:
        if data := self.outgoing.read():
            await self.raw.send_all(data)

    async def _feed(self) -> bool:
        data = await self.raw.receive_some(1 << 20)
        if not data:
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    async def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                await self._flush()
                return
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._feed():
                    raise EOFError("closed during the TLS handshake") from None

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        limit = max_bytes or (1 << 20)
        chunks: list[bytes] = []
        total = 0
        while total < limit:
            try:
                chunk = self.tls.read(limit - total)
            except ssl.SSLWantReadError:
                if chunks:
                    break
                await self._flush()
                if not await self._feed():
                    return b""
                continue
            except ssl.SSLZeroReturnError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.tls.write(data)
        await self._flush()

    async def wait_send_all_might_not_block(self) -> None:
        await self.raw.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.raw.aclose()


@asynccontextmanager
async def open_stream(
    transport: str, ports: dict[str, int], ca_file: str
) -> AsyncIterator[trio.abc.Stream]:
    secure = transport in ("tls", "wss")
    raw: trio.abc.Stream = await trio.open_tcp_stream(HOST, ports["tls_port" if secure else "port"])
    if secure:
        tls = TlsClientStream(raw, ssl.create_default_context(cafile=ca_file), HOST)  # type: ignore[arg-type]
        await tls.handshake()
        raw = tls
    stream = raw
    if transport in ("ws", "wss"):
        stream = WsClientStream(raw)
        await stream.handshake(HOST)
    async with stream:
        yield stream


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def window(
    transport: str,
    ports: dict[str, int],
    ca_file: str,
    seconds: float,
    screen: int,
    server_pid: int,
) -> dict[str, Any]:
    async with open_stream(transport, ports, ca_file) as main_stream:
        main = Reader(main_stream)
        session_id = await main.open_main()
        async with (
            trio.open_nursery() as nursery,
            open_stream(transport, ports, ca_file) as display_stream,
        ):

            async def keep_main() -> None:
                while True:
                    await main.message()

            nursery.start_soon(keep_main)
            display = Reader(display_stream)
            await display.link(DISPLAY, session_id)
            await display.send(MSGC_DISPLAY_INIT, struct.pack("<BqBi", 1, 0, 1, 0))
            while (await display.message())[0] != MSG_DISPLAY_MARK:
                pass
            area = 0
            bytes0, cpu0, client0 = display.bytes, cpu_seconds(server_pid), time.process_time()
            start = time.monotonic()
            end = start + seconds
            while time.monotonic() < end:
                kind, at, _ = await display.message()
                if kind == MSG_DISPLAY_DRAW_COPY:
                    top, left, bottom, right = struct.unpack_from("<4i", display.buf, at + 4)
                    area += (bottom - top) * (right - left)
            elapsed = time.monotonic() - start
            frames = area / screen
            result = {
                "transport": transport,
                "seconds": elapsed,
                "frames_per_s": frames / elapsed,
                "mb_per_s": (display.bytes - bytes0) / elapsed / 1e6,
                "server_cpu_per_frame": (cpu_seconds(server_pid) - cpu0) / frames
                if frames
                else None,
                "server_cpu_share": (cpu_seconds(server_pid) - cpu0) / elapsed,
                "client_cpu_share": (time.process_time() - client0) / elapsed,
            }
            nursery.cancel_scope.cancel()
    return result


async def run_client(
    args: argparse.Namespace, ports: dict[str, int], ca_file: str, pid: int
) -> list[dict[str, Any]]:
    width, height = args.size
    samples = []
    order = [t for t in TRANSPORTS if t in args.transports]
    await window(order[0], ports, ca_file, 1.0, width * height, pid)  # warm-up
    for round_no in range(args.rounds):
        turn = order if round_no % 2 == 0 else order[::-1]
        for transport in turn:
            sample = await window(transport, ports, ca_file, args.seconds, width * height, pid)
            sample["round"] = round_no
            samples.append(sample)
            print(
                f"  round {round_no + 1} {transport:4}: {sample['frames_per_s']:6.2f} frames/s "
                f"{sample['mb_per_s']:7.1f} MB/s",
                flush=True,
            )
            await trio.sleep(0.3)
    return samples


def report(samples: list[dict[str, Any]], order: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for transport in order:
        mine = [s for s in samples if s["transport"] == transport]
        summary[transport] = {
            "frames_per_s": statistics.median(s["frames_per_s"] for s in mine),
            "mb_per_s": statistics.median(s["mb_per_s"] for s in mine),
            "server_cpu_ms_per_frame": 1000
            * statistics.median(
                s["server_cpu_per_frame"] for s in mine if s["server_cpu_per_frame"]
            ),
            "server_cpu_share": statistics.median(s["server_cpu_share"] for s in mine),
            "client_cpu_share": statistics.median(s["client_cpu_share"] for s in mine),
        }
    base = summary.get("tcp", {}).get("frames_per_s")
    print(
        f"\n{'transport':10} {'frames/s':>9} {'MB/s':>8} {'server CPU':>11} {'client CPU':>11} "
        f"{'server ms/frame':>16} {'vs TCP':>7}"
    )
    for transport, row in summary.items():
        ratio = row["frames_per_s"] / base if base else float("nan")
        row["ratio_to_tcp"] = ratio
        print(
            f"{transport:10} {row['frames_per_s']:9.2f} {row['mb_per_s']:8.1f} "
            f"{row['server_cpu_share']:10.0%} {row['client_cpu_share']:10.0%} "
            f"{row['server_cpu_ms_per_frame']:16.1f} {ratio:7.2f}"
        )
    return summary


def parse_size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["client", "server"], default="client")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=parse_size, default=(1920, 1080))
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--x509-dir")
    args = parser.parse_args()
    if args.role == "server":
        width, height = args.size
        trio.run(serve, width, height, args.x509_dir)
        return 0

    from spice.certs import write_certificates

    args.transports = args.transports.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-x509-") as x509_dir:
        write_certificates(x509_dir)
        ca_file = str(Path(x509_dir) / "ca-cert.pem")
        argv = [
            sys.executable,
            __file__,
            "--role",
            "server",
            "--x509-dir",
            x509_dir,
            "--size",
            f"{args.size[0]}x{args.size[1]}",
        ]
        server = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=ROOT)
        try:
            assert server.stdout is not None
            ports = json.loads(server.stdout.readline())
            print(
                f"server pid {server.pid} on {ports}; {args.size[0]}x{args.size[1]}, "
                f"{args.seconds:g} s windows, {args.rounds} rounds",
                flush=True,
            )
            samples = trio.run(run_client, args, ports, ca_file, server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    order = [t for t in TRANSPORTS if t in args.transports]
    summary = report(samples, order)
    print(json.dumps({"summary": summary, "samples": samples}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
