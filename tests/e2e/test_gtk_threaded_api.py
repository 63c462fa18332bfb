"""The public API from a plain thread (``spice.ServerThread``), driven by spice-gtk."""

from __future__ import annotations

import numpy as np
import trio
from gtk_client import inputs_open, open_gtk_client
from serving import same_pixels

import spice


def test_server_thread_draws_and_delivers_input() -> None:
    server = spice.Server(addr="127.0.0.1", port=0, disable_ticketing=True)
    server.add_display(160, 120)
    with spice.ServerThread(server) as st:
        display = st.displays[0]
        display.fill(0, 0, 160, 120, 0x0000FF)
        patch = np.zeros((20, 30, 3), dtype=np.uint8)
        patch[..., 1] = 255
        display.update(5, 6, patch)

        async def client_side() -> None:
            async with open_gtk_client("127.0.0.1", server.port_bound) as client:
                await client.wait_for("mark")
                await inputs_open(client)
                expected = await trio.to_thread.run_sync(lambda: display.framebuffer)
                with trio.fail_after(10):
                    while not same_pixels(await client.screenshot(), expected):
                        await trio.sleep(0.05)
                await client.command({"cmd": "key_press", "scancode": 0x1C})
                await client.flush()
                assert await trio.to_thread.run_sync(lambda: st.client_count) == 1

        trio.run(client_side)
        event = st.events.get(timeout=5)
        while not isinstance(event, spice.KeyEvent):
            event = st.events.get(timeout=5)
        assert event == spice.KeyEvent(0x1C, True)
        shown = display.framebuffer
        assert tuple(shown[10, 10, :3]) == (0, 255, 0)
        assert tuple(shown[100, 100, :3]) == (255, 0, 0)
