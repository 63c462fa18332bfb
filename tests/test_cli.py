"""The ``trio-spice`` command's guard rails and lifecycle."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import trio

from spice.cli import main


def test_refuses_a_public_address_without_password_or_explicit_no_ticketing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--addr", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0" in err
    assert "--password" in err and "--disable-ticketing" in err


def test_bad_size_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--size", "big"])
    assert exc.value.code == 2


def test_file_transfer_dir_must_exist(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    missing = f"{tmp_path}/nowhere"
    assert main(["--port", "1", "--file-transfer-dir", missing]) == 2
    assert f"file_transfer_dir {missing} is not a directory" in capsys.readouterr().err


def test_agent_switches_reach_the_server(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    import spice.cli as cli

    seen: dict[str, object] = {}
    real = cli.Server

    def spy(**options: object) -> object:
        seen.update(options)
        raise ValueError("stop here")

    monkeypatch.setattr(cli, "Server", spy)
    argv = ["--port", "1", "--disable-copy-paste", "--disable-agent-file-xfer"]
    assert main([*argv, "--file-transfer-dir", str(tmp_path)]) == 2
    assert seen["copy_paste"] is False and seen["file_transfer"] is False
    assert seen["file_transfer_dir"] == str(tmp_path)
    assert main(["--port", "1"]) == 2
    assert seen["copy_paste"] is True and seen["file_transfer"] is True
    assert seen["file_transfer_dir"] is None
    assert real is not spy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_demo_prints_where_to_connect_and_exits_on_disconnect() -> None:
    port = free_port()
    proc = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "spice",
            "--port",
            str(port),
            "--exit-on-disconnect",
            "--size",
            "320x200",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        output = b""
        with trio.fail_after(20):
            while f"spice://127.0.0.1:{port}".encode() not in output:
                chunk = await proc.stdout.receive_some(4096)
                assert chunk, output
                output += chunk
        assert b"remote-viewer spice://127.0.0.1:" in output
        shot = await trio.run_process(
            ["spicy-screenshot", "-h", "127.0.0.1", "-p", str(port), "-o", "/dev/null"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert shot.returncode == 0, shot.stderr
        with trio.fail_after(10):
            await proc.wait()
        rest = b""
        while chunk := await proc.stdout.receive_some(4096):
            rest += chunk
        output += rest
        assert proc.returncode == 0, output
        assert b"client connected" in output and b"client disconnected" in output
        assert b"last client disconnected; exiting" in output
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
