"""The public API of monitors and ports: arguments checked at the call, states as documented."""

from __future__ import annotations

import pytest
import trio

import spice


def test_monitors_are_checked_at_the_call() -> None:
    server = spice.Server(port=0, disable_ticketing=True)
    display = server.add_display(640, 240)
    assert display.monitors == ((0, 0, 640, 240),)
    two = server.add_display(640, 240, monitors=[(0, 0, 320, 240), (320, 0, 320, 240)])
    assert two.monitors == ((0, 0, 320, 240), (320, 0, 320, 240))
    with pytest.raises(spice.ConfigError, match="does not lie on"):
        server.add_display(640, 240, monitors=[(0, 0, 320, 240), (400, 0, 320, 240)])
    with pytest.raises(spice.ConfigError, match="1 to 16 monitors"):
        server.add_display(640, 240, monitors=[])
    with pytest.raises(TypeError):
        server.add_display(640, 240, monitors=[(0, 0, 320)])
    with pytest.raises(TypeError):
        server.add_display(640, 240, monitors="0,0,640,240")
    with pytest.raises(TypeError):
        server.add_display(640, 240, monitors=[(0, 0, 320.5, 240)])


async def test_layout_changes_before_serving_apply_at_once() -> None:
    server = spice.Server(port=0, disable_ticketing=True)
    display = server.add_display(640, 240, monitors=[(0, 0, 320, 240), (320, 0, 320, 240)])
    await display.set_monitors([(0, 0, 640, 120), (0, 120, 640, 120)])
    assert display.monitors == ((0, 0, 640, 120), (0, 120, 640, 120))
    await display.resize(800, 300)  # still fits: kept
    assert display.monitors == ((0, 0, 640, 120), (0, 120, 640, 120))
    await display.resize(400, 100)  # no longer fits: one monitor, all of it
    assert display.monitors == ((0, 0, 400, 100),)
    with pytest.raises(spice.ConfigError):
        await display.set_monitors([(0, 0, 500, 100)])


async def test_ports_names_and_states() -> None:
    server = spice.Server(port=0, disable_ticketing=True)
    port = server.open_port("org.example.a")
    assert (port.name, port.opened, port.client) == ("org.example.a", True, None)
    assert isinstance(port, trio.abc.Stream)
    with pytest.raises(spice.ConfigError, match="already open"):
        server.open_port("org.example.a")
    for bad in ("", "a\0b", "x" * 256):
        with pytest.raises(spice.ConfigError):
            server.open_port(bad)
    with pytest.raises(TypeError):
        server.open_port(b"bytes")  # type: ignore[arg-type]
    await port.aclose()
    assert await port.receive_some() == b""
    with pytest.raises(trio.ClosedResourceError):
        await port.send_all(b"x")
    again = server.open_port("org.example.a")
    assert again.opened and port.opened  # the same port, reopened
