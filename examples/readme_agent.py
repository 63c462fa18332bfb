"""The README's agent example: clipboard both ways, resizing to the client's window, and files
dropped by the client into a folder."""

import sys
import tempfile

import trio

import spice


async def main(inbox: str) -> None:
    server = spice.Server(port=5900, disable_ticketing=True, file_transfer_dir=inbox)
    display = server.add_display(800, 600)

    async def resize(display: spice.Display, width: int, height: int) -> bool:
        if width < 400:
            return False  # refused: the client keeps the old size
        await display.resize(width, height)  # clients get a new primary surface
        await display.fill(0, 0, width, height, 0x336699)  # redraw at the new size
        return True

    server.on_resize(resize)  # without it, the display simply takes the size
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        await display.fill(0, 0, 800, 600, 0x336699)
        await server.clipboard.set_text("hello")  # clients can paste it (or set_image(png))
        print("serving on", server.addresses, flush=True)
        async with server.agent_events() as events:
            async for event in events:
                match event:
                    case spice.ClipboardOffered(has_text=True):
                        text = await server.clipboard.read_text()  # what the client copied
                        print("copied:", text, flush=True)
                    case spice.FileReceived(name=name, path=path, size=size):
                        print(f"received {name} ({size} bytes) at {path}", flush=True)
                    case spice.DisplayResizeRequested(width=w, height=h, accepted=ok):
                        print(f"resize to {w}x{h}: {'done' if ok else 'refused'}", flush=True)
                    case _:
                        pass  # progress, aborted transfers, a cleared clipboard


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="inbox-"))
