"""spice-html5's own agent code (spicemsg.js, cut as main.js cuts) talks to the agent machine
under node: what html5 writes must mean the same to us, and every body we answer must parse
in html5, which reads each AGENT_DATA as one whole VDAgentMessage."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from agent_peer import HTML5_CAPS, AgentPeer

from spice.domain.agent import events as ev
from spice.domain.agent import messages as am
from spice.domain.agent.machine import AgentMachine

ROOT = Path(__file__).resolve().parents[3]


def html5_src() -> Path:
    for candidate in (
        ROOT / "node_modules/@spice-project/spice-html5/src",
        Path("/usr/share/spice-html5"),
    ):
        if (candidate / "spicemsg.js").is_file():
            return candidate
    pytest.fail("spice-html5 not found: run `npm ci` or install Debian's spice-html5")


def run_html5(mode: str, stdin: bytes = b"") -> bytes:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js) is not installed; the html5 cross-checks need it")
    done = subprocess.run(
        [node, str(ROOT / "tests/html5_agent.mjs"), str(html5_src()), mode],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def frames(data: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        (length,) = struct.unpack_from("<I", data, at)
        out.append(data[at + 4 : at + 4 + length])
        at += 4 + length
    return out


def test_html5_session_against_the_machine() -> None:
    bodies = frames(run_html5("encode"))
    assert max(len(b) for b in bodies) == 2042  # main.js cuts below a mini header
    client = AgentPeer(AgentMachine(), caps=HTML5_CAPS, chunk=2042)
    client.machine.agent_start(0xFFFFFFFF)  # html5's connect_agent sends ~0
    seen: list[Any] = []
    for body in bodies:
        client.outbox.append(body)
        client.pump()
        for event in client.take_events():
            if isinstance(event, ev.FileTransferData):
                seen.append(("data", event.id, len(event.data), set(event.data), event.received))
                continue
            seen.append(event)
            if isinstance(event, ev.ResizeRequest):
                client.machine.accept_resize(event.request_id)
            elif isinstance(event, ev.FileTransferStarted):
                client.machine.accept_transfer(event.id)
            elif isinstance(event, ev.FileTransferCompleted):
                client.machine.finish_transfer(event.id)
        client.collect()

    assert seen == [
        ev.ResizeRequest(1, (am.MonConfig(800, 600, 32, 0, 0),), 0),
        ev.FileTransferStarted(0, "café.txt", 5),
        ("data", 0, 5, set(b"hello"), 5),
        ev.FileTransferCompleted(0, "café.txt", 5),
        ev.FileTransferStarted(1, "big.bin", 70000),
        ("data", 1, 65536, {0x5A}, 65536),
        ev.FileTransferCancelled(1),
    ]
    assert client.machine.client_caps == HTML5_CAPS
    assert client.machine.transfers == {}

    parsed = [json.loads(line) for line in run_html5("decode", _framed(client.bodies)).split()]
    for p in parsed:  # html5 reads each body as a whole message
        assert p["protocol"] == 1 and p["size"] == p["carried"]
    caps_word = client.machine.caps.words()[0]
    S = am.FileXferStatus
    assert [(p["type"], p.get("request"), p.get("caps")) for p in parsed[:1]] == [
        (am.AgentMessageType.ANNOUNCE_CAPABILITIES, 0, caps_word)
    ]
    assert [p["type"] for p in parsed[1:2]] == [am.AgentMessageType.REPLY]
    statuses = [(p["id"], p["result"]) for p in parsed if "result" in p]
    assert statuses == [
        (0, S.CAN_SEND_DATA),
        (0, S.SUCCESS),
        (1, S.CAN_SEND_DATA),
        (2, S.ERROR),  # "../evil": html5 did not announce detailed errors
    ]


def _framed(bodies: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(b)) + b for b in bodies)
