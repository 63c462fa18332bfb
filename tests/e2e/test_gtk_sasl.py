"""SASL accounts with spice-gtk (cyrus-sasl's client modules from libsasl2-modules): SCRAM and
PLAIN over TLS log the right user in and refuse a wrong password; PLAIN is never offered on a
plain port; a view-only user's keys and clicks never reach the application; input events name
the user."""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import trio
from gtk_client import GtkClient, inputs_open, open_gtk_client
from serving import collect_input, wait_same

import spice
from spice.domain.enums import MouseButton, MouseButtonMask
from spice.sasl import add_user

pytestmark = pytest.mark.e2e


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users"
    add_user(path, "alice", "pencil-1")
    add_user(path, "viewer", "look-only", view_only=True)
    return path


def trace(client: GtkClient) -> str:
    """spice-gtk's debug lines (SPICE_DEBUG=1), which the probe passes on as events."""
    lines = [e.get("line", "") for e in client.events if e.get("event") == "unparsed"]
    return "\n".join([*lines, client.stderr_tail(100_000)])


def tls_login(
    server: spice.Server, x509_dir: str, username: str, password: str, **options: object
) -> AbstractAsyncContextManager[GtkClient]:
    """spice-gtk logging in as ``username`` over the server's TLS port only."""
    return open_gtk_client(
        "127.0.0.1",
        None,
        tls_port=server.tls_port_bound,
        ca_file=Path(x509_dir) / "ca-cert.pem",
        username=username,
        password=password,
        **options,  # type: ignore[arg-type]
    )


def sasl_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "SASL" in r.getMessage()]


async def test_scram_over_tls(
    server_factory, x509_dir: str, users_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = await server_factory(tls_port=0, x509_dir=x509_dir, sasl_users=users_file)
    display = server.displays[0]
    async with server.input_events() as events:
        async with tls_login(server, x509_dir, "alice", "pencil-1", spice_debug=True) as client:
            await client.wait_for("mark", timeout=15)
            await wait_same(client, display)
            (who,) = server.clients
            assert who.user == "alice" and not who.view_only
            await inputs_open(client)
            await client.command({"cmd": "key_press_and_release", "scancode": 0x1E})
            await client.flush()
            got = await collect_input(events, 2)
            assert got == [spice.KeyEvent(0x1E, True), spice.KeyEvent(0x1E, False)], got
            assert {e.client.user for e in got} == {"alice"}
            assert "with mech SCRAM-SHA-256" in trace(client)


async def test_plain_over_tls_right_and_wrong_password(
    server_factory, x509_dir: str, users_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = await server_factory(
        tls_port=0, x509_dir=x509_dir, sasl_users=users_file, sasl_mechanisms=["PLAIN"]
    )
    async with tls_login(server, x509_dir, "alice", "pencil-1", spice_debug=True) as good:
        await good.wait_for("mark", timeout=15)
        assert "with mech PLAIN" in trace(good)
        async with tls_login(server, x509_dir, "alice", "nope") as bad:
            failed = await bad.wait_for("channel-event", lambda e: e["channel"] == "main")
            assert failed["name"] == "error-auth", failed
        assert [c.user for c in server.clients] == ["alice"]
    refusals = [m for m in sasl_log(caplog) if "authentication failed" in m]
    assert len(refusals) == 1 and "wrong password for user 'alice'" in refusals[0], refusals


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
async def test_scram_wrong_password_and_unknown_user(
    server_factory,
    x509_dir: str,
    users_file: Path,
    caplog: pytest.LogCaptureFixture,
    mechanism: str,
) -> None:
    caplog.set_level(logging.INFO)
    server = await server_factory(
        tls_port=0,
        x509_dir=x509_dir,
        sasl_users=users_file,
        sasl_mechanisms=[mechanism],
        failed_ticket_delay=0.05,
    )
    for user, password in [("alice", "pencil-2"), ("mallory", "pencil-1")]:
        async with tls_login(server, x509_dir, user, password) as bad:
            failed = await bad.wait_for("channel-event", lambda e: e["channel"] == "main")
            assert failed["name"] == "error-auth", failed
    async with tls_login(server, x509_dir, "alice", "pencil-1", spice_debug=True) as good:
        await good.wait_for("mark", timeout=15)
        assert f"with mech {mechanism}" in trace(good)
    refusals = [m for m in sasl_log(caplog) if "authentication failed" in m]
    assert len(refusals) == 2, refusals
    assert (
        "proof refused for user 'alice'" in refusals[0] and "unknown user 'mallory'" in refusals[1]
    )


async def test_plain_port_never_offers_plain(
    server_factory, x509_dir: str, users_file: Path
) -> None:
    """spice-gtk on a plain port wants a SASL security layer (SSF >= 56), which SCRAM has not,
    and PLAIN is not offered there: it cannot log in, and says so as an auth error."""
    server = await server_factory(tls_port=0, x509_dir=x509_dir, sasl_users=users_file)
    async with open_gtk_client(
        "127.0.0.1", server.port_bound, username="alice", password="pencil-1", spice_debug=True
    ) as client:
        failed = await client.wait_for("channel-event", lambda e: e["channel"] == "main")
        assert failed["name"] == "error-auth", failed
        log = trace(client)
        assert "mechlist ',SCRAM-SHA-256,SCRAM-SHA-1,'" in log, log[-3000:]
    assert server.client_count == 0


async def test_view_only_user_input_never_reaches_the_application(
    server_factory, x509_dir: str, users_file: Path
) -> None:
    server = await server_factory(tls_port=0, x509_dir=x509_dir, sasl_users=users_file)
    display = server.displays[0]
    async with server.input_events() as events:
        async with tls_login(server, x509_dir, "viewer", "look-only") as viewer:
            await viewer.wait_for("mark", timeout=15)
            await wait_same(viewer, display)
            (who,) = server.clients
            assert who.user == "viewer" and who.view_only
            await inputs_open(viewer)
            await viewer.command({"cmd": "key_press_and_release", "scancode": 0x1E})
            await viewer.command({"cmd": "position", "x": 30, "y": 20, "buttons": 0})
            await viewer.command(
                {"cmd": "button_press", "button": MouseButton.LEFT, "buttons": MouseButtonMask.LEFT}
            )
            await viewer.command(
                {"cmd": "button_release", "button": MouseButton.LEFT, "buttons": 0}
            )
            await viewer.flush()
            assert await collect_input(events, 1, timeout=1.5) == []
            # A full user's input, sent after, arrives and carries its name.
            async with tls_login(server, x509_dir, "alice", "pencil-1") as full:
                await inputs_open(full)
                await full.command({"cmd": "key_press_and_release", "scancode": 0x1F})
                await full.flush()
                got = await collect_input(events, 2)
                assert got == [spice.KeyEvent(0x1F, True), spice.KeyEvent(0x1F, False)], got
                assert {e.client.user for e in got} == {"alice"}
    await trio.lowlevel.checkpoint()
