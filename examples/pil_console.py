"""A text console drawn with Pillow: what a client types appears line by line; Enter starts a
new line and old lines scroll up (sent as COPY_BITS, so clients move pixels they have)."""

import trio
from PIL import Image, ImageDraw, ImageFont

import spice

WIDTH, HEIGHT = 640, 400
LINE = 20
BG, FG = (16, 24, 16), (120, 255, 120)
#: Set-1 scan codes of a US keyboard's printable keys.
KEYS = {
    **dict(zip(range(0x02, 0x0E), "1234567890-=", strict=True)),
    **dict(zip(range(0x10, 0x1C), "qwertyuiop[]", strict=True)),
    **dict(zip(range(0x1E, 0x29), "asdfghjkl;'", strict=True)),
    **dict(zip(range(0x2C, 0x36), "zxcvbnm,./", strict=True)),
    0x39: " ",
}
ENTER, BACKSPACE = 0x1C, 0x0E


class Console:
    def __init__(self, display: spice.Display) -> None:
        self.display = display
        self.font = ImageFont.load_default()
        self.line = ""
        self.rows = HEIGHT // LINE

    async def clear(self) -> None:
        await self.display.fill(0, 0, WIDTH, HEIGHT, 0x101810)
        await self.draw_line()

    async def draw_line(self) -> None:
        img = Image.new("RGB", (WIDTH, LINE), BG)
        ImageDraw.Draw(img).text((4, 4), "> " + self.line + "_", fill=FG, font=self.font)
        await self.display.update(0, (self.rows - 1) * LINE, img)

    async def key(self, event: spice.KeyEvent) -> None:
        if not event.pressed:
            return
        if event.scancode == ENTER:
            self.line = self.line.removesuffix("_")
            await self.draw_line_final()
            await self.display.scroll(0, 0, WIDTH, HEIGHT, dy=-LINE)
            self.line = ""
        elif event.scancode == BACKSPACE:
            self.line = self.line[:-1]
        elif event.scancode in KEYS:
            self.line += KEYS[event.scancode]
        await self.draw_line()

    async def draw_line_final(self) -> None:
        img = Image.new("RGB", (WIDTH, LINE), BG)
        ImageDraw.Draw(img).text((4, 4), "> " + self.line, fill=FG, font=self.font)
        await self.display.update(0, (self.rows - 1) * LINE, img)


async def main() -> None:
    server = spice.Server(port=5900, disable_ticketing=True)
    console = Console(server.add_display(WIDTH, HEIGHT))
    await console.clear()  # drawing before serving is fine: clients get it when they connect
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        print("serving on", server.addresses, flush=True)
        async with server.input_events() as events:
            async for event in events:
                if isinstance(event, spice.KeyEvent):
                    await console.key(event)
                    print(f"line: {console.line}", flush=True)


if __name__ == "__main__":
    trio.run(main)
