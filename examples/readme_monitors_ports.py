"""The README's monitors and ports example: one display with two monitors side by side, and a
named port that greets the client that opens it and echoes what it sends, in capitals."""

import trio

import spice


async def main() -> None:
    server = spice.Server(port=5900, disable_ticketing=True)
    # One display, two monitors side by side: spice-gtk opens a window for each.
    display = server.add_display(1600, 600, monitors=[(0, 0, 800, 600), (800, 0, 800, 600)])
    port = server.open_port("org.example.echo")  # a trio.abc.Stream to the client holding it
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        await display.fill(0, 0, 800, 600, 0x336699)  # the left monitor
        await display.fill(800, 0, 800, 600, 0x993366)  # the right monitor
        print("serving on", server.addresses, flush=True)

        async def echo() -> None:
            while data := await port.receive_some():
                await port.send_all(bytes(data).upper())

        nursery.start_soon(echo)
        async for event in port.events():  # spice.PortOpened, PortClosed, PortEventReceived
            print(type(event).__name__, event.name, flush=True)
            if isinstance(event, spice.PortOpened):
                await port.send_all(b"hello\n")


if __name__ == "__main__":
    trio.run(main)
