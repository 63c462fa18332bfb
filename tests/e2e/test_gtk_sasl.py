"""SASL accounts with spice-gtk (cyrus-sasl's client modules from libsasl2-modules): SCRAM and
PLAIN over TLS log the right user in and refuse a wrong password; PLAIN is never offered on a
plain port; a view-only user's keys and clicks never reach the application; input events name
the user."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
from gtk_client import open_gtk_client
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


def sasl_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "SASL" in r.getMessage()]


async def test_scram_over_tls(
    server_factory, x509_dir: str, users_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = await server_factory(tls_port=0, x509_dir=x509_dir, sasl_users=users_file)
    display = server.displays[0]
    ca_file = Path(x509_dir) / "ca-cert.pem"
    tls = server.tls_port_bound
    async with server.input_events() as events:
        async with open_gtk_client(
            "127.0.0.1",
            None,
            tls_port=tls,
            ca_file=ca_file,
            username="alice",
            password="pencil-1",
            spice_debug=True,
        ) as client:
            await client.wait_for("mark", timeout=15)
            await wait_same(client, display)
            (who,) = server.clients
            assert who.user == "alice" and not who.view_only
            await client.wait_for(
                "channel-event", lambda e: e["channel"] == "inputs" and e["name"] == "opened"
            )
            await client.command({"cmd": "key_press_and_release", "scancode": 0x1E})
            await client.flush()
            got = await collect_input(events, 2)
            assert got == [spice.KeyEvent(0x1E, True), spice.KeyEvent(0x1E, False)], got
            print(client.stderr_tail())
