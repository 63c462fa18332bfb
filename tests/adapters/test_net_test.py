"""The main channel measures each client's link when it connects (a PING and one padded to
250 KiB, back to back, as the C server's network test), logs it once, and a loopback client
never counts as being on a slow link (JPEG in ``jpeg_wan_compression="auto"``)."""

from __future__ import annotations

import logging

import rawclient as rc
import trio


async def test_the_link_is_measured_once_and_loopback_is_fast(server_factory, caplog) -> None:
    caplog.set_level(logging.INFO)
    server = await server_factory()
    session = await rc.open_session("127.0.0.1", server.port_bound)
    try:
        assert any(size >= 250 * 1024 for size in session.main.ping_sizes)
        (ours,) = server._core.sessions.values()
        with trio.fail_after(5):
            while ours.bandwidth is None:
                await trio.sleep(0.01)
        assert ours.bandwidth > 0
        assert not ours.low_bandwidth
        lines = [r.getMessage() for r in caplog.records if "network test" in r.getMessage()]
        assert len(lines) == 1, lines
        assert "Mbit/s" in lines[0]
    finally:
        await session.aclose()
