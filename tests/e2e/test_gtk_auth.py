"""Tickets with spice-gtk: a wrong or expired password fails with an auth error and one log
line while other clients keep being served; the right one and no-ticketing mode work."""

from __future__ import annotations

import logging
import time

import pytest
import trio
from gtk_client import open_gtk_client
from serving import running_server, wait_same


def auth_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]


async def test_wrong_password_fails_and_others_keep_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with running_server(120, 80, password="s3cret") as server:
        display = server.displays[0]
        async with open_gtk_client("127.0.0.1", server.port_bound, password="s3cret") as good:
            await good.wait_for("mark")
            async with open_gtk_client("127.0.0.1", server.port_bound, password="wrong") as bad:
                failed = await bad.wait_for("channel-event", lambda e: e["channel"] == "main")
                assert failed["name"] == "error-auth", failed
            async with open_gtk_client("127.0.0.1", server.port_bound) as nopass:
                failed = await nopass.wait_for("channel-event", lambda e: e["channel"] == "main")
                assert failed["name"] == "error-auth", failed
            assert len(auth_failures(caplog)) == 2, auth_failures(caplog)
            assert server.client_count == 1
            await display.fill(0, 0, 120, 80, 0x00FF00)
            await wait_same(good, display)


async def test_expired_password_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with running_server(64, 64, password="old", password_valid_for=1.0) as server:
        async with open_gtk_client("127.0.0.1", server.port_bound, password="old") as early:
            await early.wait_for("mark")
        while time.time() < server_expiry(server):
            await trio.sleep(0.05)
        async with open_gtk_client("127.0.0.1", server.port_bound, password="old") as late:
            failed = await late.wait_for("channel-event", lambda e: e["channel"] == "main")
            assert failed["name"] == "error-auth", failed
        assert len(auth_failures(caplog)) == 1
        assert "the password has expired" in auth_failures(caplog)[0]
        # A new password set by the application works at once.
        server.set_password("new")
        async with open_gtk_client("127.0.0.1", server.port_bound, password="new") as renewed:
            await renewed.wait_for("mark")


def server_expiry(server: object) -> float:
    expires = server._core.config.ticket.expires_at  # type: ignore[attr-defined]
    assert expires is not None
    return float(expires)


async def test_no_ticketing_lets_any_password_in() -> None:
    async with running_server(64, 64, disable_ticketing=True) as server:
        async with open_gtk_client("127.0.0.1", server.port_bound, password="anything") as client:
            created = await client.wait_for("primary-create")
            assert created["width"] == 64


async def test_ticketing_without_password_refuses_everyone() -> None:
    async with running_server(64, 64, disable_ticketing=False) as server:
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            failed = await client.wait_for("channel-event", lambda e: e["channel"] == "main")
            assert failed["name"] == "error-auth"
