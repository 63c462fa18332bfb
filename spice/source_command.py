"""What `trio-spice x11` and `trio-spice qemu` share: stopping on signals, and serving a
display source until the command ends."""

from __future__ import annotations

import logging
import signal
from typing import Protocol

import trio

from spice.server import Server

log = logging.getLogger(__name__)


class InputSource(Protocol):
    async def release_input(self) -> None:
        """Release keys and buttons still held (the last client left)."""


async def stop_on_signals(server: Server, scope: trio.CancelScope) -> None:
    """SIGINT, SIGTERM and SIGHUP stop the command: clients are told DISCONNECTING, then
    ``scope`` is cancelled (a private X server or session under it stops too)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async for signum in signals:
            count = await server.stop()
            log.info(
                "%s: stopped; %d client(s) told DISCONNECTING", signal.Signals(signum).name, count
            )
            scope.cancel()
            return


async def serve_source(
    server: Server,
    source: InputSource,
    shown_name: str,
    nursery: trio.Nursery,
    exit_on_disconnect: bool,
) -> None:
    """Serve, say where to connect, and release the source's input whenever the last client
    leaves (ending the command then with ``exit_on_disconnect``)."""
    await nursery.start(server.serve)
    for host, port in server.addresses:
        shown = f"[{host}]" if ":" in host else host
        print(
            f"trio-spice: showing {shown_name}; connect with: remote-viewer spice://{shown}:{port}",
            flush=True,
        )
    for url in server.urls:
        print(f"trio-spice: in a browser, open {url}", flush=True)
    while True:
        count = await server.wait_clients_changed()
        if count == 0:
            await source.release_input()
            if exit_on_disconnect:
                log.info("last client disconnected; exiting")
                nursery.cancel_scope.cancel()
                return
