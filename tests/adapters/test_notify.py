"""NOTIFY on the main channel: the application's messages, and the reference server's warning
when keyboard input links in the clear on a server that offers TLS."""

from __future__ import annotations

import struct
from functools import partial
from pathlib import Path

import rawclient as rc
import trio

from spice.certs import write_certificates

MSG_NOTIFY = 7


def parse_notify(body: bytes) -> tuple[int, int, str]:
    """time_stamp u64, severity u32, visibility u32, what u32, message_len u32, message."""
    _, severity, visibility, _, length = struct.unpack_from("<QIIII", body)
    return severity, visibility, body[24 : 24 + length].decode()


async def test_application_notify_reaches_the_main_channel(server_factory) -> None:
    server = await server_factory()
    session = await rc.open_session("127.0.0.1", server.port_bound)
    try:
        async with trio.open_nursery() as nursery:
            # The client reads meanwhile, as clients do: the main channel starts with the
            # network test's 250 KiB PING, which a client that does not read never drains.
            nursery.start_soon(partial(server.notify, "maintenance at noon", severity="warn"))
            _, body = await session.main.recv_until(MSG_NOTIFY)
        assert parse_notify(body) == (1, 1, "maintenance at noon")
    finally:
        await session.aclose()


async def test_plain_inputs_on_a_tls_server_are_warned_about(
    server_factory, tmp_path: Path
) -> None:
    write_certificates(tmp_path)
    server = await server_factory(tls_port=0, x509_dir=str(tmp_path))
    session = await rc.open_session("127.0.0.1", server.port_bound)
    try:
        inputs = await session.open_channel(rc.INPUTS)
        assert inputs.ok
        _, body = await session.main.recv_until(MSG_NOTIFY)
        assert parse_notify(body) == (1, 1, "keyboard channel is insecure")
    finally:
        await session.aclose()


async def test_no_warning_without_tls(server_factory) -> None:
    server = await server_factory()
    session = await rc.open_session("127.0.0.1", server.port_bound)
    try:
        inputs = await session.open_channel(rc.INPUTS)
        assert inputs.ok
        await server.notify("marker")
        _, body = await session.main.recv_until(MSG_NOTIFY)
        assert parse_notify(body)[2] == "marker"
    finally:
        await session.aclose()
