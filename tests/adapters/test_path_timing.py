"""Video is paced by the round trip the kernel's TCP measures for the display connection (the
path alone, whatever the client's own delay in answering), not by PINGs: spice-html5 answers
PINGs from JavaScript, behind its decoding."""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import rawclient as rc
import trio

from spice.adapters.channels import display as display_runner
from spice.adapters.tcp_info import (
    PathTiming,
    bytes_in_flight,
    path_timing,
    set_max_pacing,
    socket_under,
)

PING = 4


def video_frame(i: int, h: int = 120, w: int = 160) -> np.ndarray:
    """A moving natural-looking picture (photographic: streamed in every mode)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 4), np.uint8)
    for c in range(3):
        base = 120 + 60 * np.sin((xx + 4 * i) / (15 + 5 * c)) * np.cos((yy - 3 * i) / 21)
        noise = np.random.default_rng(i).normal(0, 3, (h, w))
        img[..., c] = np.clip(base + noise, 0, 255).astype(np.uint8)
    return img


async def test_the_kernel_round_trip_is_read_through_every_layer() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        accepted: list[trio.SocketStream] = []

        async def accept() -> None:
            accepted.append(await listeners[0].accept())

        nursery.start_soon(accept)
        client = await trio.open_tcp_stream("127.0.0.1", port)
        await client.send_all(b"x" * 1000)
        with trio.fail_after(5):
            while not accepted:
                await trio.sleep(0.01)
        server_side = accepted[0]
        await server_side.send_all(b"y" * 1000)
        await client.receive_some(1000)

        class Wrapper:  # the shape of this package's TLS and WebSocket streams
            def __init__(self, raw: object) -> None:
                self.raw = raw

        sock = socket_under(Wrapper(Wrapper(server_side)))
        assert sock is server_side.socket
        timing = path_timing(sock)
        assert timing is not None
        assert 0 < timing.min_rtt <= timing.rtt < 0.5
        assert socket_under(object()) is None
        await client.aclose()
        await server_side.aclose()
        for listener in listeners:
            await listener.aclose()


async def test_video_over_tcp_is_paced_by_the_kernel_round_trip(server_factory) -> None:
    server = await server_factory(displays=((320, 240),), streaming_video="all")
    display = server.displays[0]
    session = await rc.open_session("127.0.0.1", server.port_bound)
    channel = await session.open_display()
    pings = 0

    async def read() -> None:
        nonlocal pings
        with contextlib.suppress(rc.Closed):
            while True:
                msg_type, _ = await channel.recv_msg()
                pings += msg_type == PING

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            for i in range(40):
                await display.update(40, 30, video_frame(i))
                await trio.sleep(1 / 30)
            (client,) = server._core.displays[0].clients
            machine = client.machine
            assert machine.streams, "the video became a stream"
            assert not machine.probe_with_pings
            rate = machine.pacing(trio.current_time())
            assert rate.rtt is not None and 0 < rate.rtt < 0.2
            assert pings == 0  # no PING on the display channel: the kernel's figure paces
            nursery.cancel_scope.cancel()
    finally:
        await session.aclose()


@contextlib.asynccontextmanager
async def tcp_pair() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    """(client, server side) of one TCP connection on 127.0.0.1, closed afterwards."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server_side = await listeners[0].accept()
    try:
        yield client, server_side
    finally:
        await client.aclose()
        await server_side.aclose()
        for listener in listeners:
            await listener.aclose()


async def test_bytes_in_flight_counts_what_the_peer_has_not_taken() -> None:
    """SIOCOUTQ: bytes written and not yet acknowledged; a peer whose receive buffer is full
    acknowledges nothing more, so they stay counted until it reads."""
    async with tcp_pair() as (client, server_side):
        sock = server_side.socket
        assert bytes_in_flight(sock) == 0
        with trio.move_on_after(0.5):  # fill every buffer: the client does not read
            while True:
                await server_side.send_all(b"z" * 65536)
        held = bytes_in_flight(sock)
        assert held is not None and held > 0
        got = 0
        with trio.fail_after(10):
            while bytes_in_flight(sock):
                got += len(await client.receive_some(1 << 20))
        assert got > 0


SO_MAX_PACING_RATE = 47  # asm-generic/socket.h


async def test_a_pacing_ceiling_is_set_on_the_socket() -> None:
    """SO_MAX_PACING_RATE takes bytes a second; the ceiling is given in bits a second."""
    async with tcp_pair() as (_client, server_side):
        sock = server_side.socket

        def ceiling() -> int:
            (rate,) = struct.unpack("=I", sock.getsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, 4))
            return int(rate)

        assert set_max_pacing(sock, 66e6)
        assert ceiling() == 66e6 / 8
        # Loopback's ceiling is beyond 32 bits of bytes a second: as far as it goes.
        assert set_max_pacing(sock, 1e12)
        assert ceiling() == 0xFFFFFFFE


async def test_a_long_path_gets_a_pacing_ceiling_from_the_display_writer(
    server_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a path with an 80 ms round trip the writer sets the ceiling the machine asks for;
    on loopback it sets none."""
    set_to: list[float] = []
    monkeypatch.setattr(display_runner, "set_max_pacing", lambda _s, bits: set_to.append(bits))
    server = await server_factory(displays=((320, 240),), streaming_video="all")
    display = server.displays[0]
    session = await rc.open_session("127.0.0.1", server.port_bound)
    channel = await session.open_display()

    async def read() -> None:
        with contextlib.suppress(rc.Closed):
            while True:
                await channel.recv_msg()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            for i in range(10):  # loopback as it is
                await display.update(40, 30, video_frame(i))
                await trio.sleep(1 / 30)
            assert set_to == []
            (client,) = server._core.displays[0].clients
            test = client.machine.link_bandwidth
            assert test, "the network test has measured the link"
            monkeypatch.setattr(
                display_runner, "path_timing", lambda _sock: PathTiming(0.08, 0.08, None)
            )
            with trio.fail_after(5):
                while not set_to:
                    await display.update(40, 30, video_frame(i))
                    await trio.sleep(1 / 30)
            # Never under start-up's pace over the test; over loopback's measured capacity.
            assert set_to[0] >= 2.89 * test
            ceiling = client.machine.pacing_ceiling(0.08, trio.current_time())
            assert ceiling is not None and set_to[0] <= ceiling  # the capacity only grows
            nursery.cancel_scope.cancel()
    finally:
        await session.aclose()
