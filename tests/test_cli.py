"""The ``trio-spice`` command's guard rails and lifecycle."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import rawclient as rc
import trio

import spice
from spice.cli import build_gen_cert_parser, build_parser, main, read_password


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


# -- startup errors: one line on stderr, a non-zero status, no traceback -----------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spice", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "ExceptionGroup" not in stderr, stderr
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_port_in_use_is_one_line(busy_port: int) -> None:
    result = run_cli("--port", str(busy_port))
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line == f"trio-spice: cannot listen on 127.0.0.1:{busy_port}: Address already in use"


def test_verbose_adds_the_traceback(busy_port: int) -> None:
    result = run_cli("--port", str(busy_port), "-v")
    assert result.returncode == 1
    assert result.stderr.startswith(f"trio-spice: cannot listen on 127.0.0.1:{busy_port}")
    assert "Traceback" in result.stderr and "spice.errors.ListenError" in result.stderr


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (["--port", "-1"], 2, "a port is 0 to 65535"),
        (["--port", "99999"], 2, "a port is 0 to 65535"),
        (["--port", "http"], 2, "not a port number"),
        (["--tls-port", "70000"], 2, "a port is 0 to 65535"),
        (["--ws-port", "-5"], 2, "a port is 0 to 65535"),
        (["--port", "0", "--ipv6-only"], 2, "ipv6_only with the IPv4 address 127.0.0.1"),
        (["--port", "0", "--addr", "::1", "--ipv4-only"], 2, "ipv4_only with the IPv6 address"),
        (
            ["--port", "0", "--addr", "192.0.2.1", "--disable-ticketing"],
            1,
            "cannot listen on 192.0.2.1:0: Cannot assign requested address",
        ),
        (
            ["--port", "0", "--addr", "no-such-host.invalid", "--disable-ticketing"],
            1,
            "cannot listen on no-such-host.invalid:0:",
        ),
        (["--password-expires", "0"], 2, "must be more than 0 seconds"),
        (["--size", "0x0"], 2, "between 16 and 8192"),
        (["--password-file", "/nonexistent/pw"], 2, "cannot read the password file"),
        (["--tls-port", "0"], 2, "a tls_port needs x509_dir"),
        (["--port", "0", "--monitors", "0"], 2, "--monitors takes 1 to 16, not 0"),
        (["--port", "0", "--monitors", "3", "--size", "4000x100"], 2, "1 to 8192 pixels"),
    ],
)
def test_startup_errors_are_one_line(args: list[str], status: int, words: str) -> None:
    result = run_cli(*args)
    assert result.returncode == status, result.stderr
    assert words in one_line(result.stderr)


@pytest.mark.parametrize("empty", [["--password", ""], ["--password="]])
def test_an_empty_password_is_no_password(empty: list[str]) -> None:
    """``--password "$UNSET"`` must not open a public address to everyone."""
    result = run_cli("--addr", "0.0.0.0", "--port", "0", *empty)
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in one_line(result.stderr)
    result = run_cli("--addr", "0.0.0.0", "--port", "0", env={"SPICE_PASSWORD": ""})
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in one_line(result.stderr)


def test_version_and_help_on_every_option() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"trio-spice {spice.__version__}"
    assert spice.__version__ != "0+unknown"
    for parser in (build_parser(), build_gen_cert_parser()):
        for action in parser._actions:
            assert action.help, f"{action.option_strings or action.dest} has no help"


# -- passwords from a file and from the environment --------------------------------------------


def test_read_password_sources(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("from-file\r\nsecond line\n")
    env = {"SPICE_PASSWORD": "from-env"}
    assert read_password("argv", None, "SPICE_PASSWORD", env) == "argv"
    assert read_password(None, str(pw), "SPICE_PASSWORD", env) == "from-file"
    assert read_password(None, None, "SPICE_PASSWORD", env) == "from-env"
    assert read_password(None, None, "SPICE_PASSWORD", {}) is None
    assert read_password("", None, "SPICE_PASSWORD", env) is None
    pw.write_text("\n")
    assert read_password(None, str(pw), "SPICE_PASSWORD", env) is None


@asynccontextmanager
async def cli_server(
    *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[trio.Process, int]]:
    """``python -m spice`` on a free port; yields once it serves. Always reaped."""
    port = free_port()
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "spice", "--port", str(port), "--size", "320x200", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        assert proc.stdout is not None
        output = b""
        with trio.fail_after(30):
            while b"serving; connect with" not in output:
                chunk = await proc.stdout.receive_some(4096)
                assert chunk, output
                output += chunk
        yield proc, port
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def read_stderr(proc: trio.Process) -> str:
    assert proc.stderr is not None
    data = b""
    with trio.fail_after(5):
        while chunk := await proc.stderr.receive_some(65536):
            data += chunk
    return data.decode()


async def link_result(port: int, password: str) -> int:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        result = await rc.link(stream, channel_type=rc.MAIN, password=password.encode())
    return result.error


@pytest.mark.parametrize("source", ["file", "env"])
async def test_password_from_a_file_or_the_environment(tmp_path: Path, source: str) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    args = ("--password-file", str(pw)) if source == "file" else ()
    env = {"SPICE_PASSWORD": "s3cret"} if source == "env" else {"SPICE_PASSWORD": "other"}
    async with cli_server(*args, env=env) as (proc, port):
        assert await link_result(port, "wrong") == rc.PERMISSION_DENIED
        assert await link_result(port, "s3cret") == rc.OK
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert b"s3cret" not in cmdline


# -- Ctrl-C and SIGTERM: DISCONNECTING to clients, one line, status 0 ---------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_signal_stops_gracefully_with_a_client(signum: signal.Signals) -> None:
    async with cli_server() as (proc, port):
        session = await rc.open_session("127.0.0.1", port)
        try:
            display = await session.open_display()
            proc.send_signal(signum)
            # DISCONNECTING on the main channel, then the server closes every channel.
            msg_type, _ = await session.main.recv_until(rc.MSG_DISCONNECTING, timeout=5)
            assert msg_type == rc.MSG_DISCONNECTING
            await rc.read_until_closed(session.main.wire)
            await rc.read_until_closed(display.wire)
            with trio.fail_after(5):
                await proc.wait()
        finally:
            await session.aclose()
        stderr = await read_stderr(proc)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "ExceptionGroup" not in stderr, stderr
    stops = [line for line in stderr.splitlines() if "stopped;" in line]
    assert len(stops) == 1, stderr
    assert f"{signum.name}: stopped; 1 client told DISCONNECTING" in stops[0]
    # The client's disconnect is one line, whatever number of channels it had.
    gone = [line for line in stderr.splitlines() if "client disconnected" in line]
    assert len(gone) == 1 and "server stopping" in gone[0], stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_signal_without_clients_exits_zero(signum: signal.Signals) -> None:
    async with cli_server() as (proc, _port):
        proc.send_signal(signum)
        with trio.fail_after(5):
            await proc.wait()
        stderr = await read_stderr(proc)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert f"{signum.name}: stopped; 0 clients told DISCONNECTING" in stderr


def test_qemu_needs_exactly_one_way_to_reach_qemu(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["qemu"], ["qemu", "--dbus-address", "unix:path=/x", "--qmp", "/y"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "trio-spice qemu" in err and "--qmp" in err
