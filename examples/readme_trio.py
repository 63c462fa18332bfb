"""The README's library example: draw, set a cursor, and print what clients type."""

import numpy as np
import trio

import spice


async def main() -> None:
    server = spice.Server(addr="127.0.0.1", port=5900, password="secret")
    display = server.add_display(800, 600)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        await display.fill(0, 0, 800, 600, 0x336699)  # 0xRRGGBB
        await display.update(10, 10, np.zeros((100, 200, 3), np.uint8))  # RGB array
        # also: a PIL image, an (h, w, 4) BGRX array, or BGRX bytes with width=, height=
        await display.scroll(0, 0, 800, 600, dy=-16)  # sent as COPY_BITS
        arrow = np.zeros((16, 16, 4), np.uint8)
        arrow[np.tril_indices(16)] = (255, 255, 255, 255)  # B, G, R, A
        await display.set_cursor(arrow, hot_x=0, hot_y=0)
        await display.move_cursor(400, 300)
        await server.set_keyboard_leds(4)  # caps lock
        print("serving on", server.addresses, flush=True)
        async with server.input_events() as events:
            async for event in events:
                match event:
                    case spice.KeyEvent(scancode=code, pressed=True, client=client):
                        print(f"key {code:#x} from {client}", flush=True)
                    case spice.MousePositionEvent(x=x, y=y, buttons=b) if b:
                        print(f"drag at {x},{y}", flush=True)  # client mouse mode
                    case spice.MouseMotionEvent(dx=dx, dy=dy, buttons=b) if b:
                        print(f"drag by {dx},{dy}", flush=True)  # server mouse mode
                    case spice.MouseButtonEvent(button=n, pressed=True):
                        print(f"button {n}", flush=True)
                    case _:
                        pass  # releases, the wheel, the client's lock keys on focus


if __name__ == "__main__":
    trio.run(main)
