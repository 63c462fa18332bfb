"""A flush over plain TCP writes a message's parts (header, fields, image) with one
``sendmsg`` per writable turn; the bytes that arrive are the parts in order, whatever the
socket took per call, and a peer that goes away mid-write ends the connection as gone."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import trio
import trio.testing

from spice.adapters.connection import GATHER_MAX, ClientGone, Connection
from spice.adapters.sniff import ReplayStream


class Parts:
    """A machine that has these parts to write."""

    def __init__(self, parts: list[bytes | memoryview]) -> None:
        self.parts = parts

    def data_to_send(self) -> list[bytes | memoryview]:
        out, self.parts = self.parts, []
        return out


def stream_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = trio.socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    for sock in (a, b):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    return trio.SocketStream(a), trio.SocketStream(b)


def connection(stream: trio.abc.Stream, parts: list[bytes | memoryview]) -> Connection:
    return Connection(stream, Parts(parts), label="test")  # type: ignore[arg-type]


async def test_parts_arrive_whole_and_in_order_across_partial_writes() -> None:
    ours, peer = stream_pair()
    image = np.arange(3 * 1024 * 1024, dtype=np.uint32).astype(np.uint8)
    small = [bytes([i % 256]) * 3 for i in range(GATHER_MAX * 2 + 7)]  # more than one call
    parts: list[bytes | memoryview] = [b"\x65\x00", b"head", image.data, *small, b"", b"end"]
    expected = b"".join(bytes(p) for p in parts)
    conn = connection(ReplayStream(ours, b"sniffed"), parts)
    received = bytearray()

    async def read_all() -> None:
        while len(received) < len(expected):
            chunk = await peer.receive_some(65536)
            assert chunk
            received.extend(chunk)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_all)
        await conn.flush()
    assert received == expected
    assert conn.bytes_sent == len(expected)


async def test_only_plain_sockets_take_the_gathered_path() -> None:
    ours, peer = stream_pair()
    assert connection(ReplayStream(ReplayStream(ours)), [])._socket is ours.socket
    memory, _ = trio.testing.memory_stream_pair()
    assert connection(memory, [])._socket is None
    await peer.aclose()
    await ours.aclose()


async def test_a_peer_gone_mid_write_is_client_gone_by_peer() -> None:
    ours, peer = stream_pair()
    conn = connection(ours, [b"\x00" * 6, bytes(8 * 1024 * 1024)])

    async def read_a_little_then_close() -> None:
        await peer.receive_some(1024)
        await peer.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_a_little_then_close)
        with pytest.raises(ClientGone) as gone:
            await conn.flush()
    assert gone.value.by_peer
    assert 0 < conn.bytes_sent < 8 * 1024 * 1024
