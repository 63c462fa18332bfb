"""Every program in ``examples/`` runs, briefly, with a real spice-gtk client connected; the
README's code blocks are those programs, so the README cannot drift from code that runs."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
import trio
from gtk_client import GtkClient, inputs_open, open_gtk_client
from serving import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HOST = "127.0.0.1"


class Example:
    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.output = ""

    async def wait_output(self, text: str, timeout: float = 20.0) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        with trio.fail_after(timeout):
            while text not in self.output:
                chunk = await stdout.receive_some(4096)
                assert chunk, f"the example exited; its output: {self.output}"
                self.output += chunk.decode()


@asynccontextmanager
async def run_example(name: str, tmp_path: Path) -> AsyncIterator[tuple[Example, int]]:
    """``examples/NAME`` on a free port (its one ``port=5900`` replaced); stopped at the end."""
    source = (EXAMPLES / name).read_text()
    assert source.count("port=5900") == 1, name
    port = free_port()
    script = tmp_path / name
    script.write_text(source.replace("port=5900", f"port={port}"))
    process = await trio.lowlevel.open_process(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    example = Example(process)
    try:
        await example.wait_output("serving on")
        yield example, port
        assert process.returncode is None, f"the example stopped: {example.output}"
        assert "Traceback" not in example.output, example.output
    finally:
        if process.returncode is None:
            process.terminate()
        with trio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def settled_screenshot(client: GtkClient) -> np.ndarray:
    await client.wait_for("mark", timeout=20)
    return await client.screenshot()


async def until_pixel(client: GtkClient, x: int, y: int, bgr: tuple[int, int, int]) -> None:
    with trio.fail_after(10):
        while tuple((await client.screenshot())[y, x, :3]) != bgr:
            await trio.sleep(0.05)


async def type_key(client: GtkClient, scancode: int) -> None:
    await client.command({"cmd": "key_press_and_release", "scancode": scancode})
    await client.flush()


@pytest.mark.e2e
async def test_readme_trio_example(tmp_path: Path) -> None:
    async with run_example("readme_trio.py", tmp_path) as (example, port):
        async with open_gtk_client(HOST, port, password="secret") as client:
            await settled_screenshot(client)
            await until_pixel(client, 300, 400, (0x99, 0x66, 0x33))
            await inputs_open(client)
            await type_key(client, 0x1E)
            await example.wait_output("key 0x1e from <spice.Client ")


@pytest.mark.e2e
async def test_readme_thread_example(tmp_path: Path) -> None:
    async with run_example("readme_thread.py", tmp_path) as (example, port):
        async with open_gtk_client(HOST, port) as client:
            await settled_screenshot(client)
            await until_pixel(client, 320, 240, (0, 0, 255))
            await inputs_open(client)
            await type_key(client, 0x1E)
            await example.wait_output("key 0x1e from <spice.Client ")


@pytest.mark.e2e
async def test_numpy_animation_example(tmp_path: Path) -> None:
    async with run_example("numpy_animation.py", tmp_path) as (_example, port):
        async with open_gtk_client(HOST, port) as client:
            first = await settled_screenshot(client)
            assert len(np.unique(first[..., :3].reshape(-1, 3), axis=0)) > 100  # a plasma
            with trio.fail_after(10):
                while np.array_equal(await client.screenshot(), first):
                    await trio.sleep(0.1)


@pytest.mark.e2e
async def test_pil_console_example(tmp_path: Path) -> None:
    async with run_example("pil_console.py", tmp_path) as (example, port):
        async with open_gtk_client(HOST, port) as client:
            shot = await settled_screenshot(client)
            assert tuple(shot[10, 10, :3]) == (0x10, 0x18, 0x10)  # drawn before serving
            await inputs_open(client)
            await type_key(client, 0x23)  # h
            await type_key(client, 0x17)  # i
            await example.wait_output("line: hi")
            with trio.fail_after(10):  # the typed text shows in the bottom line
                while not (await client.screenshot())[380:400, :, 1].max() > 200:
                    await trio.sleep(0.05)


@pytest.mark.e2e
async def test_threaded_program_example(tmp_path: Path) -> None:
    async with run_example("threaded_program.py", tmp_path) as (example, port):
        async with open_gtk_client(HOST, port) as client:
            await settled_screenshot(client)
            await until_pixel(client, 12, 60, (0x43, 0xA0, 0x2E))  # the bar's start
            await inputs_open(client)
            await type_key(client, 0x10)  # q: the program disconnects whoever typed it
            await example.wait_output("clients: [<spice.Client ")
            await client.wait_for(
                "channel-event", lambda e: e["channel"] == "main" and e["name"] == "closed"
            )


@pytest.mark.e2e
async def test_readme_agent_example(tmp_path: Path) -> None:
    async with run_example("readme_agent.py", tmp_path) as (example, port):
        async with open_gtk_client(HOST, port) as client:
            await settled_screenshot(client)
            await client.wait_for("main-agent-update", lambda e: e["caps0"] & (1 << 1))
            text = "copied in spice-gtk"
            await client.command({"cmd": "clipboard_grab", "data": {"1": text.encode().hex()}})
            await example.wait_output(f"copied: {text}")
            await client.command({"cmd": "monitor_config", "width": 640, "height": 400})
            await example.wait_output("resize to 640x400: done")
            await client.wait_for("primary-create", lambda e: e["width"] == 640)
            await until_pixel(client, 600, 380, (0x99, 0x66, 0x33))


async def test_readme_monitors_ports_example(tmp_path: Path) -> None:
    async with run_example("readme_monitors_ports.py", tmp_path) as (example, port):
        async with open_gtk_client(HOST, port) as client:
            await settled_screenshot(client)
            reply = await client.command({"cmd": "monitors"}, "monitors")
            heads = [(m["x"], m["y"], m["width"], m["height"]) for m in reply["monitors"]]
            assert heads == [(0, 0, 800, 600), (800, 0, 800, 600)]
            await until_pixel(client, 400, 300, (0x99, 0x66, 0x33))
            await until_pixel(client, 1200, 300, (0x66, 0x33, 0x99))
            opened = await client.wait_for("port-opened", lambda e: e["opened"])
            assert opened["name"] == "org.example.echo"
            await example.wait_output("PortOpened org.example.echo")
            hello = await client.wait_for("port-data")
            assert bytes.fromhex(hello["data"]) == b"hello\n"
            await client.command({"cmd": "port_write", "data": b"shout".hex()}, "port-written")
            echoed = await client.wait_for("port-data")
            assert bytes.fromhex(echoed["data"]) == b"SHOUT"


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_readme_code_blocks_are_the_examples() -> None:
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 2
    for block in blocks:
        assert any(block in path.read_text() for path in EXAMPLES.glob("*.py")), block


def test_readme_links_stay_inside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)", readme):
        if re.match(r"[a-z]+://", target):
            continue
        resolved = (ROOT / target).resolve()
        assert resolved.is_relative_to(ROOT), target
        assert resolved.exists(), target
    for path in re.findall(r"`((?:\.\./|/)[\w./-]+\.md)`", readme):
        pytest.fail(f"README names a file outside the repository: {path}")
