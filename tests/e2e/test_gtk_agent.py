"""The agent with spice-gtk: clipboard both ways (text and PNG), an oversize copy refused,
the client's monitors config resizing the display, and files sent from the client."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
from gtk_client import agent_ready, next_event, open_gtk_client
from PIL import Image
from serving import running_server, wait_same

import spice

TEXT, PNG = 1, 2


def png_bytes(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (7, 5), color).save(out, "PNG")
    return out.getvalue()


async def test_agent_announced_and_clipboard_both_ways() -> None:
    async with running_server(320, 240) as server, server.agent_events() as events:
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await agent_ready(client)

            # text copied in the client arrives at the application
            text = "héllo from spice-gtk ✓"
            await client.command({"cmd": "clipboard_grab", "data": {TEXT: text.encode().hex()}})
            offered = await next_event(events, spice.ClipboardOffered)
            assert offered.has_text and offered.selection == 0
            assert server.clipboard.offered() == (TEXT,)
            assert await server.clipboard.read_text() == text
            assert await server.clipboard.read_image() is None  # not offered: nothing asked

            # text set by the application can be pasted in the client
            mark = client.mark()
            await server.clipboard.set_text("from the app")
            await client.wait_for("clipboard-grab", lambda e: e["types"] == [TEXT], since=mark)
            await client.command({"cmd": "clipboard_request", "type": TEXT})
            data = await client.wait_for("clipboard-data", since=mark)
            assert bytes.fromhex(data["hex"]).rstrip(b"\0") == b"from the app"

            # the same for a PNG image, both ways
            ours, theirs = png_bytes((200, 10, 10)), png_bytes((10, 10, 200))
            mark = client.mark()
            await server.clipboard.set_image(ours)
            await client.wait_for("clipboard-grab", lambda e: e["types"] == [PNG], since=mark)
            await client.command({"cmd": "clipboard_request", "type": PNG})
            data = await client.wait_for("clipboard-data", lambda e: e["type"] == PNG, since=mark)
            assert bytes.fromhex(data["hex"]) == ours
            await client.command({"cmd": "clipboard_grab", "data": {PNG: theirs.hex()}})
            offered = await next_event(events, spice.ClipboardOffered)
            assert offered.has_image
            assert await server.clipboard.read_image() == theirs

            # the client gives its clipboard up
            await client.command({"cmd": "clipboard_release"})
            cleared = await next_event(events, spice.ClipboardCleared)
            assert cleared.selection == 0
            assert server.clipboard.offered() == ()
            assert client.errors == []


async def test_oversize_clipboard_is_refused_and_the_session_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limit = 64 * 1024
    async with running_server(320, 240, clipboard_limit=limit) as server:
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await agent_ready(client)
            big = os.urandom(limit + 1000).hex().encode()  # text, 2x the limit
            await client.command({"cmd": "clipboard_grab", "data": {TEXT: big.hex()}})
            with trio.fail_after(10):
                while server.clipboard.offered() != (TEXT,):
                    await trio.sleep(0.02)
            assert await server.clipboard.read_text(timeout=10) is None
            refused = [r for r in caplog.records if "clipboard refused" in r.getMessage()]
            assert len(refused) == 1, [r.getMessage() for r in caplog.records]
            # the application cannot send one either
            with pytest.raises(ValueError, match="over the limit"):
                await server.clipboard.set_text("x" * (limit + 1))
            # the same session still works
            await client.command({"cmd": "clipboard_grab", "data": {TEXT: b"small".hex()}})
            with trio.fail_after(10):
                while True:
                    got = await server.clipboard.read_text()
                    if got == "small":
                        break
                    await trio.sleep(0.05)
            assert server.client_count == 1


async def test_monitors_config_resizes_the_display() -> None:
    async with running_server(320, 240) as server, server.agent_events() as events:
        display = server.displays[0]
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await agent_ready(client)
            await client.wait_for("primary-create", lambda e: e["width"] == 320)
            mark = client.mark()
            await client.command({"cmd": "monitor_config", "width": 480, "height": 360})
            resized = await next_event(events, spice.DisplayResizeRequested)
            assert (resized.width, resized.height, resized.accepted) == (480, 360, True)
            await client.wait_for(
                "primary-create", lambda e: (e["width"], e["height"]) == (480, 360), since=mark
            )
            assert (display.width, display.height) == (480, 360)
            await display.fill(0, 0, 480, 360, 0x208040)
            shown = await wait_same(client, display)
            assert shown.shape == (360, 480, 4)

            # an application that refuses keeps its size
            async def refuse(_display: spice.Display, _w: int, _h: int) -> bool:
                return False

            server.on_resize(refuse)
            await client.command({"cmd": "monitor_config", "width": 640, "height": 400})
            resized = await next_event(events, spice.DisplayResizeRequested)
            assert (resized.width, resized.height, resized.accepted) == (640, 400, False)
            await display.sync()
            assert (display.width, display.height) == (480, 360)
            assert client.errors == []


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_file_from_the_client_arrives_byte_exact(tmp_path: Path) -> None:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    outbox.mkdir()
    payload = os.urandom(700_000)
    (outbox / "report.bin").write_bytes(payload)
    (inbox / "report.bin").write_bytes(b"already here")
    async with (
        running_server(320, 240, file_transfer_dir=inbox) as server,
        server.agent_events() as events,
    ):
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await agent_ready(client)
            await client.command({"cmd": "file_copy", "paths": [str(outbox / "report.bin")]})
            done = await client.wait_for("file-copy-done", timeout=30)
            assert done["ok"], done
            received = await next_event(events, spice.FileReceived)
            # the name was taken: the file gets a free one, nothing is replaced
            assert received.name == "report (1).bin" and received.size == len(payload)
            assert Path(received.path).read_bytes() == payload
            assert (inbox / "report.bin").read_bytes() == b"already here"
            assert listing(inbox) == ["report (1).bin", "report.bin"]


async def test_cancelled_transfer_leaves_no_partial_file(tmp_path: Path) -> None:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    outbox.mkdir()
    (outbox / "big.bin").write_bytes(os.urandom(8 << 20))
    async with (
        running_server(320, 240, file_transfer_dir=inbox) as server,
        server.agent_events() as events,
    ):
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await agent_ready(client)
            await client.command(
                {"cmd": "file_copy", "paths": [str(outbox / "big.bin")], "cancel_at": 256 << 10}
            )
            done = await client.wait_for("file-copy-done", timeout=30)
            assert not done["ok"]
            aborted = await next_event(events, spice.FileTransferAborted)
            assert aborted.name == "big.bin"
            assert listing(inbox) == []
            # the session still takes the next file
            (outbox / "small.txt").write_bytes(b"after the cancel\n")
            await client.command({"cmd": "file_copy", "paths": [str(outbox / "small.txt")]})
            assert (await client.wait_for("file-copy-done", timeout=30))["ok"]
            assert (inbox / "small.txt").read_bytes() == b"after the cancel\n"
            assert listing(inbox) == ["small.txt"]


@pytest.mark.parametrize("options", [{"file_transfer": False}, {}], ids=["disabled", "no-dir"])
async def test_file_transfer_off_refuses(tmp_path: Path, options: dict[str, Any]) -> None:
    (tmp_path / "a.txt").write_bytes(b"nope")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    if options:
        options = {**options, "file_transfer_dir": inbox}
    async with running_server(320, 240, **options) as server:
        async with open_gtk_client("127.0.0.1", server.port_bound) as client:
            await agent_ready(client)
            await client.command({"cmd": "file_copy", "paths": [str(tmp_path / "a.txt")]})
            done = await client.wait_for("file-copy-done", timeout=30)
            assert not done["ok"]
            assert listing(inbox) == []
            # clipboard still works
            await client.command({"cmd": "clipboard_grab", "data": {TEXT: b"still".hex()}})
            with trio.fail_after(10):
                while server.clipboard.offered() != (TEXT,):
                    await trio.sleep(0.02)
            assert await server.clipboard.read_text() == "still"


_ = np
