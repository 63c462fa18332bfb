"""spice-gtk over TLS with the generated CA: it sees the display and its input reaches the
application; with TLS-only channels it follows NEED_SECURED from the plain port to the TLS
port, as with QEMU's tls-channel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gtk_client import inputs_open, open_gtk_client
from serving import collect_input, wait_same

import spice
from spice.domain.enums import MouseButton, MouseButtonMask

pytestmark = pytest.mark.e2e


def pattern(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    img[..., 3] = 0
    return img


@pytest.mark.parametrize("plain_port_too", [False, True], ids=["tls-port-only", "need-secured"])
async def test_spice_gtk_over_tls(server_factory, x509_dir: str, plain_port_too: bool) -> None:
    server = await server_factory(tls_port=0, x509_dir=x509_dir, tls_channels=["default"])
    display = server.displays[0]
    await display.update(0, 0, pattern(240, 320, 5))
    ca_file = Path(x509_dir) / "ca-cert.pem"
    port = server.port_bound if plain_port_too else None
    async with (
        server.input_events() as events,
        open_gtk_client(
            "127.0.0.1", port, tls_port=server.tls_port_bound, ca_file=ca_file
        ) as client,
    ):
        await client.wait_for("mark", timeout=15)
        await wait_same(client, display)
        await display.fill(10, 10, 50, 40, 0xAA5500)
        await wait_same(client, display)

        await inputs_open(client)
        await client.command({"cmd": "key_press_and_release", "scancode": 0x1E})
        await client.command({"cmd": "position", "x": 30, "y": 20, "buttons": 0})
        await client.command(
            {"cmd": "button_press", "button": MouseButton.LEFT, "buttons": MouseButtonMask.LEFT}
        )
        await client.command({"cmd": "button_release", "button": MouseButton.LEFT, "buttons": 0})
        await client.flush()
        got = await collect_input(events, 5)
        assert got[:2] == [spice.KeyEvent(0x1E, True), spice.KeyEvent(0x1E, False)], got
        assert spice.MouseButtonEvent(MouseButton.LEFT, True, MouseButtonMask.LEFT) in got, got
        assert spice.MouseButtonEvent(MouseButton.LEFT, False, 0) in got, got
        assert not client.errors
