"""spice-gtk's keyboard and mouse reach the application as typed events, in order, in both
mouse modes; keyboard LEDs and the cursor reach the client."""

from __future__ import annotations

import hashlib

import numpy as np
import trio
from gtk_client import channel_open, inputs_open, open_gtk_client
from serving import collect_input, running_server

import spice
from spice.domain.enums import MouseButton, MouseButtonMask


async def test_keys_and_client_mode_mouse_arrive_in_order() -> None:
    async with running_server(320, 240) as server, server.input_events() as events:
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mouse-mode", lambda e: e["mode"] == 2)
            await inputs_open(client)

            await client.command({"cmd": "key_press", "scancode": 0x1E})  # A
            await client.command({"cmd": "key_release", "scancode": 0x1E})
            await client.command({"cmd": "key_press", "scancode": 0x148})  # Up: E0 48
            await client.command({"cmd": "key_release", "scancode": 0x148})
            await client.command({"cmd": "key_press", "scancode": 0x11D})  # Right Ctrl: E0 1D
            await client.command({"cmd": "key_release", "scancode": 0x11D})
            await client.command({"cmd": "key_press_and_release", "scancode": 0x30})  # B
            await client.command({"cmd": "position", "x": 17, "y": 33, "buttons": 0})
            await client.command(
                {"cmd": "button_press", "button": MouseButton.LEFT, "buttons": MouseButtonMask.LEFT}
            )
            await client.command(
                {"cmd": "position", "x": 40, "y": 50, "buttons": MouseButtonMask.LEFT}
            )
            await client.command(
                {"cmd": "button_release", "button": MouseButton.LEFT, "buttons": 0}
            )
            await client.command(
                {"cmd": "button_press", "button": MouseButton.DOWN, "buttons": MouseButtonMask.DOWN}
            )
            await client.command(
                {"cmd": "button_release", "button": MouseButton.DOWN, "buttons": 0}
            )
            await client.command(
                {
                    "cmd": "button_press",
                    "button": MouseButton.RIGHT,
                    "buttons": MouseButtonMask.RIGHT,
                }
            )
            await client.command(
                {"cmd": "button_release", "button": MouseButton.RIGHT, "buttons": 0}
            )
            await client.flush()

            got = await collect_input(events, 15)
            assert got == [
                spice.KeyEvent(0x1E, True),
                spice.KeyEvent(0x1E, False),
                spice.KeyEvent(0xE048, True),
                spice.KeyEvent(0xE048, False),
                spice.KeyEvent(0xE01D, True),
                spice.KeyEvent(0xE01D, False),
                spice.KeyEvent(0x30, True),
                spice.KeyEvent(0x30, False),
                spice.MousePositionEvent(17, 33, 0, 0),
                spice.MouseButtonEvent(MouseButton.LEFT, True, MouseButtonMask.LEFT),
                spice.MousePositionEvent(40, 50, MouseButtonMask.LEFT, 0),
                spice.MouseButtonEvent(MouseButton.LEFT, False, 0),
                spice.MouseWheelEvent(1, MouseButtonMask.DOWN),
                spice.MouseButtonEvent(MouseButton.RIGHT, True, MouseButtonMask.RIGHT),
                spice.MouseButtonEvent(MouseButton.RIGHT, False, 0),
            ], "\n".join(map(repr, got))


async def test_many_motions_keep_flowing() -> None:
    """Without MOUSE_MOTION_ACK every 4 moves, spice-gtk stops sending after 8."""
    async with running_server(320, 240) as server, server.input_events() as events:
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mouse-mode", lambda e: e["mode"] == 2)
            await inputs_open(client)
            for i in range(40):
                await client.command({"cmd": "position", "x": i, "y": 2 * i, "buttons": 0})
                await client.flush()
            positions: list[spice.MousePositionEvent] = []
            with trio.fail_after(10):
                while not positions or positions[-1].x != 39:
                    event = await events.receive()
                    if isinstance(event, spice.MousePositionEvent):
                        positions.append(event)
            assert positions and positions[-1] == spice.MousePositionEvent(39, 78, 0, 0)
            xs = [p.x for p in positions]
            assert xs == sorted(xs)


async def test_server_mouse_mode_relative_motion_and_cursor_move() -> None:
    async with (
        running_server(320, 240, client_mouse=False) as server,
        server.input_events() as events,
    ):
        display = server.displays[0]
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mouse-mode", lambda e: e["mode"] == 1)
            await inputs_open(client)
            # The client asks for client mode; a server without it stays in server mode.
            await client.command({"cmd": "request_mouse_mode", "mode": 2})
            await client.command({"cmd": "motion", "dx": 5, "dy": -3, "buttons": 0})
            await client.command(
                {
                    "cmd": "button_press",
                    "button": MouseButton.MIDDLE,
                    "buttons": MouseButtonMask.MIDDLE,
                }
            )
            await client.command(
                {"cmd": "motion", "dx": -7, "dy": 11, "buttons": MouseButtonMask.MIDDLE}
            )
            await client.command(
                {"cmd": "button_release", "button": MouseButton.MIDDLE, "buttons": 0}
            )
            await client.flush()
            got = await collect_input(events, 4)
            assert got == [
                spice.MouseMotionEvent(5, -3, 0),
                spice.MouseButtonEvent(MouseButton.MIDDLE, True, MouseButtonMask.MIDDLE),
                spice.MouseMotionEvent(-7, 11, MouseButtonMask.MIDDLE),
                spice.MouseButtonEvent(MouseButton.MIDDLE, False, 0),
            ], "\n".join(map(repr, got))
            assert not any(e["event"] == "mouse-mode" and e["mode"] == 2 for e in client.events)

            # A move before the cursor channel is up only sets CURSOR_INIT's position, which
            # spice-gtk does not report as a move (and with no shape yet, it hides the cursor).
            await channel_open(client, "cursor")
            await display.move_cursor(100, 120)
            moved = await client.wait_for("cursor-move", lambda e: (e["x"], e["y"]) == (100, 120))
            assert moved


async def test_keyboard_leds_reach_the_client() -> None:
    async with running_server(64, 64) as server:
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await inputs_open(client)
            mark = client.mark()
            await server.set_keyboard_leds(4)  # caps lock
            await client.wait_for("inputs-modifiers", lambda e: e["modifiers"] == 4, since=mark)
            await server.set_keyboard_leds(2 | 1)
            await client.wait_for("inputs-modifiers", lambda e: e["modifiers"] == 3, since=mark)
        # A client connecting later is told the current LEDs in INPUTS_INIT.
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("inputs-modifiers", lambda e: e["modifiers"] == 3)


def rgba_digest(bgra: np.ndarray) -> str:
    """spice-gtk's cursor-set signal hands out the shape as R, G, B, A bytes."""
    return hashlib.sha256(np.ascontiguousarray(bgra[..., [2, 1, 0, 3]]).tobytes()).hexdigest()


async def test_cursor_shape_position_and_hide_reach_the_client() -> None:
    async with running_server(320, 240, client_mouse=False) as server:
        display = server.displays[0]
        shape = np.zeros((16, 12, 4), dtype=np.uint8)
        shape[..., 2] = 255  # red
        shape[..., 3] = np.arange(12, dtype=np.uint8) * 20  # alpha ramp
        shape[4:8, 4:8] = (0, 255, 0, 255)
        await display.set_cursor(shape, 3, 5, x=50, y=60)
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            first = await client.wait_for("cursor-set")
            assert (first["width"], first["height"], first["hot_x"], first["hot_y"]) == (
                12,
                16,
                3,
                5,
            )
            assert first["rgba_sha256"] == rgba_digest(shape)

            mark = client.mark()
            other = shape.copy()
            other[..., 0] = 255
            await display.set_cursor(other, 0, 0)
            # (CURSOR_INIT is followed by a SET for spice-html5's sake: skip to the new shape.)
            changed = await client.wait_for(
                "cursor-set", lambda e: e["rgba_sha256"] == rgba_digest(other), since=mark
            )
            assert (changed["width"], changed["height"], changed["hot_x"]) == (12, 16, 0)
            await display.move_cursor(7, 9)
            await client.wait_for("cursor-move", lambda e: (e["x"], e["y"]) == (7, 9), since=mark)
            await display.hide_cursor()
            await client.wait_for("cursor-hide", since=mark)


async def test_agent_mouse_gives_client_mode_without_a_tablet() -> None:
    """QEMU's agent-mouse: with no tablet (``client_mouse=False``) the agent still carries the
    client's pointer, so spice-gtk goes to client mode and the app gets absolute positions."""
    async with (
        running_server(320, 240, client_mouse=False, agent_mouse=True) as server,
        server.input_events() as events,
    ):
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mouse-mode", lambda e: e["mode"] == 2)
            await inputs_open(client)
            await client.command({"cmd": "position", "x": 17, "y": 29, "buttons": 0})
            await client.flush()
            with trio.fail_after(10):
                while True:
                    event = await events.receive()
                    if isinstance(event, spice.MousePositionEvent):
                        break
            assert (event.x, event.y) == (17, 29)
