"""Record the client-to-server bytes of real spice-gtk and spice-html5 sessions as a fuzz corpus.

    .venv/bin/python benchmarks/capture_corpus.py            # writes benchmarks/corpus/

A `spice.Server` runs in this process on 127.0.0.1 (one 320x240 display, audio on, the
spice-html5 files served). The recording is a tap on the two places the adapters hand a
connection's bytes to the pure core: `LinkServer.receive_data` (the link stage) and
`ChannelConnection.receive_data` (every channel machine after the link). So each corpus file
is exactly what one parser of ours received from one real client connection, after TLS or
WebSocket framing is taken off. Nothing in the server is changed; the tap only copies.

Sessions: spice-gtk (`tests/e2e/gtk_probe.py` under /usr/bin/python3) connects every channel,
types, moves and clicks the mouse in both mouse modes, grabs the clipboard and sends microphone
PCM; headless Chromium opens our page with spice-html5, types and clicks. Files are named
`<client>-<parser>-<n>.bin` (parser: link, main, display, inputs, cursor, playback, record);
`index.json` lists them with the header kind. Re-running replaces the corpus.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from browser_client import open_browser  # noqa: E402
from gtk_client import open_gtk_client  # noqa: E402

import spice  # noqa: E402
from spice.domain.channel import ChannelConnection  # noqa: E402
from spice.domain.link import LinkServer  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"
HTML5 = "/usr/share/spice-html5"

#: parser name by machine class name
PARSERS = {
    "MainChannel": "main",
    "DisplayChannel": "display",
    "InputsChannel": "inputs",
    "CursorChannel": "cursor",
    "PlaybackChannel": "playback",
    "RecordChannel": "record",
}


class Tap:
    """Copies of what each machine object was fed, in order, for the current client."""

    def __init__(self) -> None:
        self.client = "none"
        self.streams: dict[int, tuple[str, str, bytearray]] = {}
        self.order: list[int] = []

    def record(self, machine: Any, parser: str, data: bytes | bytearray) -> None:
        key = id(machine)
        if key not in self.streams:
            self.streams[key] = (self.client, parser, bytearray())
            self.order.append(key)
            # Keep the machine alive so its id is not reused by another connection.
            self._keep.append(machine)
        self.streams[key][2].extend(data)

    _keep: list[Any] = []

    def install(self) -> None:
        link_receive = LinkServer.receive_data
        chan_receive = ChannelConnection.receive_data
        tap = self

        def link_tap(self: LinkServer, data: bytes | bytearray) -> None:
            tap.record(self, "link", data)
            link_receive(self, data)

        def chan_tap(self: ChannelConnection, data: bytes | bytearray) -> None:
            tap.record(self, PARSERS.get(type(self).__name__, type(self).__name__), data)
            chan_receive(self, data)

        LinkServer.receive_data = link_tap  # type: ignore[method-assign]
        ChannelConnection.receive_data = chan_tap  # type: ignore[method-assign]


def tone_pcm(path: Path, seconds: float = 0.5) -> None:
    """S16LE stereo 48 kHz, what spice-gtk's microphone sends."""
    t = np.arange(int(48000 * seconds)) / 48000
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2")
    path.write_bytes(np.repeat(pcm[:, None], 2, axis=1).tobytes())


async def gtk_session(server: spice.Server, tmp: Path) -> None:
    display = server.displays[0]
    async with open_gtk_client(
        "127.0.0.1", server.port_bound, timeout=60, extra_args=["--audio"]
    ) as client:
        await client.wait_for("mark", timeout=20)
        await client.wait_for("channel-new", lambda e: e["type"] == "record", timeout=20)

        async def cmd(name: str, **args: Any) -> None:
            await client.command({"cmd": name, **args})

        for scancode in (0x1E, 0x30, 0x2A, 0x39, 0x1C, 0xE05B):
            await cmd("key_press", scancode=scancode)
            await cmd("key_release", scancode=scancode)
        await cmd("key_press_and_release", scancode=0x10)
        await cmd("set_key_locks", locks=2)
        for mode in (1, 2):  # SPICE_MOUSE_MODE_SERVER, CLIENT
            await cmd("request_mouse_mode", mode=mode)
            await trio.sleep(0.3)
            for i in range(6):
                await cmd("motion", dx=5 + i, dy=-3)
                await cmd("position", x=40 + i, y=50)
            for button in (1, 3, 4, 5):
                await cmd("button_press", button=button, buttons=1)
                await cmd("button_release", button=button)
        await client.flush()
        await display.fill(0, 0, 100, 80, 0x3366CC)
        await client.screenshot()
        await cmd("clipboard_grab", data={"1": b"corpus text".hex()})
        mic = tmp / "mic.pcm"
        tone_pcm(mic)
        while not server._core.record.clients:
            await trio.sleep(0.01)
        async with server.record_events() as events:
            server.record.start()
            await client.wait_for("record-start")
            await cmd("record_send", file=str(mic))
            with trio.move_on_after(3):
                async for _event in events:
                    break
            server.record.stop()
            await client.wait_for("record-stop")
        await client.flush()
        await trio.sleep(0.3)


async def html5_session(server: spice.Server) -> None:
    display = server.displays[0]
    async with open_browser() as browser:
        await browser.goto(f"http://127.0.0.1:{server.port_bound}/")
        await browser.wait_state("connected")
        await display.fill(10, 10, 50, 50, 0xCC3366)
        await trio.sleep(1.0)
        for key in ("a", "b", "Enter", "Shift"):
            await browser.press(key)
        await browser.click(30, 40)
        await browser.click(60, 20, button="right")
        await trio.sleep(1.0)


async def main(args: argparse.Namespace) -> int:
    tap = Tap()
    tap.install()
    server = spice.Server(
        addr="127.0.0.1", port=0, disable_ticketing=True, html5_dir=HTML5, audio=True
    )
    server.add_display(320, 240)
    with tempfile.TemporaryDirectory(prefix="corpus-") as tmp:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            await server.codecs_ready()
            await server.displays[0].fill(0, 0, 320, 240, 0x202020)
            if "gtk" in args.clients:
                tap.client = "gtk"
                await gtk_session(server, Path(tmp))
                await trio.sleep(0.5)
            if "html5" in args.clients:
                tap.client = "html5"
                await html5_session(server)
                await trio.sleep(0.5)
            nursery.cancel_scope.cancel()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.bin"):
        old.unlink()
    counts: dict[tuple[str, str], int] = defaultdict(int)
    index = []
    for key in tap.order:
        client, parser, data = tap.streams[key]
        if not data or client == "none":
            continue
        n = counts[(client, parser)]
        counts[(client, parser)] += 1
        name = f"{client}-{parser}-{n}.bin"
        (out / name).write_bytes(bytes(data[: args.max_bytes]))
        index.append(
            {
                "file": name,
                "client": client,
                "parser": parser,
                "mini_header": True,
                "bytes": min(len(data), args.max_bytes),
            }
        )
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    for entry in index:
        print(f"{entry['file']:32} {entry['bytes']:8} bytes")
    print(json.dumps({"files": len(index), "bytes": sum(e["bytes"] for e in index)}))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(CORPUS))
    parser.add_argument("--clients", default="gtk,html5")
    parser.add_argument(
        "--max-bytes",
        type=int,
        default=16384,
        help="keep at most this much of each connection (the corpus stays small)",
    )
    sys.exit(trio.run(main, parser.parse_args()))
