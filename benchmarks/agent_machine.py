"""The agent machine's own cost, in process (no sockets): how fast file-transfer data and a
large clipboard go through it, fed as spice-gtk feeds it (64 KiB FILE_XFER_DATA messages cut
into 2048-byte AGENT_DATA bodies, tokens returned as the machine grants them).

    .venv/bin/python benchmarks/agent_machine.py [--mib 64] [--json FILE]

Prints a table, then one JSON object. Starts no process.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from spice.domain.agent import messages as am
from spice.domain.agent.events import ClipboardData, FileTransferStarted
from spice.domain.agent.machine import AgentConfig, AgentMachine
from spice.domain.caps import CapabilitySet
from spice.domain.link import NEED_DATA
from spice.domain.messages.main import ServerAgentData, ServerAgentToken

CHUNK = 32 * am.VD_AGENT_MAX_DATA_SIZE  # spice-gtk's and spice-html5's file read size


class Client:
    """Just enough of a client: token counting and 2048-byte cutting."""

    def __init__(self, machine: AgentMachine) -> None:
        self.machine = machine
        self.tokens = machine.window
        self.events: list[Any] = []
        self.received = 0
        machine.agent_start(0xFFFFFFFF)

    def send(self, msg: am.AgentMessage) -> None:
        stream = am.encode_message(msg)
        for at in range(0, len(stream), am.VD_AGENT_MAX_DATA_SIZE):
            assert self.tokens > 0
            self.tokens -= 1
            self.machine.receive_data(stream[at : at + am.VD_AGENT_MAX_DATA_SIZE])
            while (event := self.machine.next_event()) is not NEED_DATA:
                self.events.append(event)
            for out in self.machine.data_to_send():
                if isinstance(out, ServerAgentToken):
                    self.tokens += out.num_tokens
                elif isinstance(out, ServerAgentData):
                    self.received += len(out.data)


def file_transfer(mib: int) -> dict[str, float]:
    machine = AgentMachine()
    client = Client(machine)
    size = mib << 20
    client.send(am.FileXferStart.for_file(1, "bench.bin", size))
    assert isinstance(client.events[-1], FileTransferStarted)
    machine.accept_transfer(1)
    piece = bytes(range(256)) * (CHUNK // 256)
    start = time.perf_counter()
    for _ in range(size // CHUNK):
        client.send(am.FileXferData(1, piece))
        client.events.clear()
    elapsed = time.perf_counter() - start
    assert 1 in machine.transfers and machine.transfers[1].received == size
    return {"mib": mib, "seconds": elapsed, "mib_per_s": mib / elapsed}


def clipboard(mib: int) -> dict[str, float]:
    machine = AgentMachine(AgentConfig(clipboard_limit=mib << 20))
    client = Client(machine)
    client.send(am.AnnounceCapabilities(True, CapabilitySet.of(am.AgentCap.CLIPBOARD_BY_DEMAND)))
    client.send(am.ClipboardGrab((am.ClipboardType.IMAGE_PNG,)))
    machine.request_clipboard(0, am.ClipboardType.IMAGE_PNG)
    data = b"\x89PNG\r\n\x1a\n" + bytes((mib << 20) - 8)
    start = time.perf_counter()
    client.send(am.Clipboard(am.ClipboardType.IMAGE_PNG, data))
    inbound = time.perf_counter() - start
    assert isinstance(client.events[-1], ClipboardData) and len(client.events[-1].data) == len(data)
    machine.set_clipboard_image(data)
    before = client.received
    start = time.perf_counter()
    client.send(am.ClipboardRequest(am.ClipboardType.IMAGE_PNG))
    outbound = time.perf_counter() - start
    assert client.received - before >= len(data)
    return {"mib": mib, "client_to_app_s": inbound, "app_to_client_s": outbound}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="file size (default 64 MiB)")
    parser.add_argument("--json", help="also write the JSON result here")
    args = parser.parse_args()
    xfer = file_transfer(args.mib)
    clip = clipboard(16)
    print(f"{'measure':40} {'value':>12}")
    print(f"{'file transfer through the machine':40} {xfer['mib_per_s']:>8.0f} MiB/s")
    print(f"{'16 MiB clipboard, client -> app':40} {clip['client_to_app_s'] * 1000:>9.1f} ms")
    print(f"{'16 MiB clipboard, app -> client':40} {clip['app_to_client_s'] * 1000:>9.1f} ms")
    result = {"file_transfer": xfer, "clipboard": clip}
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
