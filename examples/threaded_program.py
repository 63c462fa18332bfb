"""A plain threaded program (no Trio, no async): a worker thread draws a progress bar while the
main thread reads input events and lists the clients. Typing q disconnects whoever typed it."""

import threading
import time

import spice

WIDTH, HEIGHT = 320, 120
Q = 0x10


def draw(st: spice.ServerThread, stop: threading.Event) -> None:
    display = st.displays[0]
    display.fill(0, 0, WIDTH, HEIGHT, 0x202020)
    step = 0
    while not stop.is_set():
        done = step % (WIDTH - 20)
        display.fill(10, 50, done, 20, 0x2EA043)
        display.fill(10 + done, 50, WIDTH - 20 - done, 20, 0x404040)
        step += 4
        time.sleep(0.05)


def main() -> None:
    server = spice.Server(port=5900, disable_ticketing=True)
    server.add_display(WIDTH, HEIGHT)
    stop = threading.Event()
    with spice.ServerThread(server) as st:
        painter = threading.Thread(target=draw, args=(st, stop), daemon=True)
        painter.start()
        print("serving on", server.addresses, flush=True)
        try:
            while True:
                event = st.events.get()
                if isinstance(event, spice.KeyEvent) and event.pressed and event.client:
                    print(f"key {event.scancode:#x}; clients: {st.clients}", flush=True)
                    if event.scancode == Q:
                        st.disconnect(event.client)
        finally:
            stop.set()
            painter.join()


if __name__ == "__main__":
    main()
