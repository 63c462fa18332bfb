"""The command's browser and TLS options end to end (it prints where to point a browser), and
the browsers-only ``ws_port``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import rawclient as rc
import trio
import webclient as wc

import spice
from spice.certs import write_certificates

ROOT = Path(__file__).resolve().parents[2]


async def test_command_prints_urls_and_serves_page_and_tls(tmp_path: Path) -> None:
    write_certificates(tmp_path / "x509")
    (tmp_path / "html5" / "src").mkdir(parents=True)
    (tmp_path / "html5" / "src" / "main.js").write_text("export {};\n")
    argv = [
        sys.executable,
        "-m",
        "spice",
        "--port",
        "0",
        "--tls-port",
        "0",
        "--x509-dir",
        str(tmp_path / "x509"),
        "--html5-dir",
        str(tmp_path / "html5"),
        "--tls-channel",
        "inputs",
        "--size",
        "320x240",
    ]
    process = await trio.lowlevel.open_process(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    try:
        assert process.stdout is not None
        out = b""
        with trio.fail_after(20):
            while out.count(b"open http") < 1 or out.count(b"open https") < 1:
                chunk = await process.stdout.receive_some()
                assert chunk, out
                out += chunk
        text = out.decode()
        http_port = int(re.search(r"open http://127\.0\.0\.1:(\d+)/", text).group(1))  # type: ignore[union-attr]
        https_port = int(re.search(r"open https://127\.0\.0\.1:(\d+)/", text).group(1))  # type: ignore[union-attr]
        assert f"tls-port={https_port}" in text

        response = await wc.http_exchange(
            http_port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        assert wc.status_of(response) == 200 and b"./src/main.js" in response
        stream = await wc.tls_stream(https_port, str(tmp_path / "x509" / "ca-cert.pem"))
        result = await rc.link(stream, channel_type=rc.MAIN)
        assert result.ok
        await stream.aclose()
    finally:
        process.terminate()
        with trio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.stdout.aclose()  # type: ignore[union-attr]


def test_command_refuses_bad_tls_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from spice.cli import main

    assert main(["--port", "0", "--tls-port", "0", "--x509-dir", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--port", "0", "--tls-channel", "main"]) == 2
    assert "tls_port" in capsys.readouterr().err


async def test_ws_port_takes_browsers_only(
    server_factory, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    (tmp_path / "main.js").write_text("export {};\n")
    server: spice.Server = await server_factory(ws_port=0, html5_dir=tmp_path, websocket=False)
    assert server.urls == [f"http://127.0.0.1:{server.ws_port_bound}/"]
    response = await wc.http_exchange(
        server.ws_port_bound,
        b"GET /main.js HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    assert wc.status_of(response) == 200
    async with wc.ws_stream(server.ws_port_bound) as ws:
        result = await rc.link(ws, channel_type=rc.MAIN)
        assert result.ok

    # Native SPICE is not taken on the browsers' port...
    stream = await trio.open_tcp_stream("127.0.0.1", server.ws_port_bound)
    ours = wc.local_port(stream)
    async with stream:
        await stream.send_all(rc.link_packet(channel_type=rc.MAIN))
        assert await rc.read_until_closed(stream) == 0
    lines = wc.lines_about(caplog, ours)
    assert len(lines) == 1 and "spice connection not taken" in lines[0], lines
    # ...and with websocket=False, the SPICE port takes no HTTP.
    stream = await trio.open_tcp_stream("127.0.0.1", server.port_bound)
    async with stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert await rc.read_until_closed(stream) == 0
    session = await rc.open_session("127.0.0.1", server.port_bound)
    await session.aclose()
