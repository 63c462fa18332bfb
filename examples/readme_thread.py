"""The README's example for programs that are not Trio: the server runs in its own thread."""

import spice

server = spice.Server(port=5900, disable_ticketing=True)
server.add_display(640, 480)
with spice.ServerThread(server) as st:
    st.displays[0].fill(0, 0, 640, 480, 0xFF0000)  # blocking calls
    print("serving on", server.addresses, flush=True)
    while True:
        event = st.events.get()  # a queue.Queue of input events
        # The first is usually a KeyboardModifiersEvent: the client's lock keys.
        if isinstance(event, spice.KeyEvent) and event.pressed:
            print(f"key {event.scancode:#x} from {event.client}", flush=True)
