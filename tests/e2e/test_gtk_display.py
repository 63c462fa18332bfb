"""spice-gtk (through GI) against our server: the primary surface and its pixels after an
update, a fill, a scroll and a resize."""

from __future__ import annotations

import numpy as np
import trio
from gtk_client import open_gtk_client
from serving import running_server, wait_same

import spice


def pattern(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    img[..., 3] = 0
    return img


async def test_pixels_follow_update_fill_scroll_resize() -> None:
    async with running_server(320, 240) as server:
        display = server.displays[0]
        await display.update(0, 0, pattern(240, 320, 1))
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            created = await client.wait_for("primary-create")
            assert (created["width"], created["height"], created["format"]) == (320, 240, 32)
            await client.wait_for("mark")
            await wait_same(client, display)

            # An update of part of the screen, from an RGB array (converted by the server).
            rgb = np.zeros((50, 70, 3), dtype=np.uint8)
            rgb[..., 0] = 200  # red
            rgb[10:20, :, 1] = 255
            await display.update(13, 29, rgb)
            shown = await wait_same(client, display)
            assert tuple(shown[29, 13, :3]) == (0, 0, 200)

            await display.fill(100, 50, 90, 60, 0x123456)
            shown = await wait_same(client, display)
            assert tuple(shown[60, 120, :3]) == (0x56, 0x34, 0x12)

            # Scroll a region up by 17 rows, as COPY_BITS (the client moves what it has).
            await display.scroll(0, 0, 320, 240, dy=-17)
            await wait_same(client, display)

            # Several scrolls and updates interleaved: the pipe must keep them in order.
            for i in range(5):
                await display.scroll(10, 10, 200, 200, dy=3 + i, dx=-2)
                await display.update(40 + i * 10, 40, pattern(20, 20, 10 + i))
            await wait_same(client, display)

            mark = client.mark()
            await display.resize(400, 300)
            await display.update(0, 0, pattern(300, 400, 7))
            created = await client.wait_for(
                "primary-create", lambda e: e["width"] == 400, since=mark
            )
            assert created["height"] == 300
            await wait_same(client, display)


async def test_many_updates_while_client_lags_end_exact() -> None:
    """A burst far longer than the pipe limit collapses, and the client still ends exact."""
    async with running_server(320, 240) as server:
        display = server.displays[0]
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mark")
            for i in range(300):
                y = (i * 7) % 220
                await display.update((i * 13) % 300, y, pattern(20, 20, i))
                if i % 50 == 0:
                    await display.scroll(0, 0, 320, 240, dy=-1)
            await wait_same(client, display)


async def test_two_clients_see_the_same() -> None:
    async with running_server(200, 100) as server:
        display = server.displays[0]
        async with open_gtk_client("127.0.0.1", server.port_bound) as a:
            async with open_gtk_client("127.0.0.1", server.port_bound) as b:
                await a.wait_for("mark")
                await b.wait_for("mark")
                assert server.client_count == 2
                await display.fill(0, 0, 200, 100, 0xFF0000)
                await display.update(5, 5, pattern(30, 30, 3))
                await wait_same(a, display)
                await wait_same(b, display)
            with trio.fail_after(5):
                while server.client_count != 1:
                    await trio.sleep(0.02)


async def test_disconnect_all_closes_every_channel_and_pings_measure_latency() -> None:
    async with running_server(64, 64) as server:
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await client.wait_for("mark")
            for channel in ("inputs", "cursor"):  # every channel linked before the cut
                await client.wait_for(
                    "channel-event",
                    lambda e, c=channel: e["channel"] == c and e["name"] == "opened",
                )
            session = next(iter(server._core.sessions.values()))
            with trio.fail_after(5):
                while session.main is None or session.main.round_trip is None:
                    await trio.sleep(0.01)
            assert 0 < session.main.round_trip < 1.0
            await server.disconnect_all()
            for channel in ("main", "display", "inputs", "cursor"):
                await client.wait_for(
                    "channel-event",
                    lambda e, c=channel: e["channel"] == c and e["name"] in ("closed", "error-io"),
                )
            with trio.fail_after(5):
                while server.client_count:
                    await trio.sleep(0.01)


async def test_ipv6_loopback() -> None:
    server = spice.Server(addr="::1", port=0, disable_ticketing=True)
    server.add_display(64, 48)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        assert server.addresses[0][0] == "::1"
        async with open_gtk_client("::1", server.port_bound) as client:
            created = await client.wait_for("primary-create")
            assert (created["width"], created["height"]) == (64, 48)
        nursery.cancel_scope.cancel()


async def test_an_accepted_socket_handed_in_is_served() -> None:
    """Like spice_server_add_client: the application accepts, the server serves."""
    async with running_server(80, 60) as server:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]

        async def accept_and_hand_over() -> None:
            for _ in range(4):  # main, display, inputs, cursor
                stream = await listeners[0].accept()
                server.add_client(stream, "handed-in")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept_and_hand_over)
            async with open_gtk_client("127.0.0.1", port) as client:
                await client.wait_for("mark")
                await server.displays[0].fill(0, 0, 80, 60, 0xABCDEF)
                await wait_same(client, server.displays[0])
            nursery.cancel_scope.cancel()
        await listeners[0].aclose()
