"""The TLS port against a real server on 127.0.0.1: SPICE, HTTPS and WebSocket over TLS,
per-channel security (NEED_SECURED / NEED_UNSECURED), bad handshakes dropped in bounded time
with one log line while a good TLS client carries on, certificate generation and options."""

from __future__ import annotations

import os
import ssl
import stat
import struct
from pathlib import Path

import pytest
import rawclient as rc
import trio
import webclient as wc
from cryptography import x509

import spice
from spice.certs import write_certificates
from spice.cli import main as cli_main
from spice.server import channel_security

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def x509_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("x509")
    write_certificates(directory)
    return directory


@pytest.fixture
async def server(server_factory, x509_dir: Path) -> spice.Server:
    return await server_factory(
        tls_port=0,
        x509_dir=x509_dir,
        tls_channels=["main"],
        plaintext_channels=["cursor"],
        handshake_timeout=TIMEOUT,
    )


def ca(x509_dir: Path) -> str:
    return str(x509_dir / "ca-cert.pem")


async def tls_session(server: spice.Server, x509_dir: Path) -> tuple[rc.Channel, int]:
    stream = await wc.tls_stream(server.tls_port_bound, ca(x509_dir))
    result = await rc.link(stream, channel_type=rc.MAIN)
    assert result.ok, result
    _, body = await result.channel.recv_until(rc.MSG_MAIN_INIT)
    return result.channel, struct.unpack_from("<I", body)[0]


async def test_secure_and_plaintext_channels(server: spice.Server, x509_dir: Path, caplog) -> None:
    # main is TLS-only: on the plain port the link reply says NEED_SECURED...
    stream = await trio.open_tcp_stream("127.0.0.1", server.port_bound)
    ours = wc.local_port(stream)
    result = await rc.link(stream, channel_type=rc.MAIN)
    assert result.reply.error == rc.NEED_SECURED and result.result is None
    await rc.read_until_closed(stream)
    lines = wc.lines_about(caplog, ours)
    assert len(lines) == 1 and "NEED_SECURED" in lines[0], lines

    # ...and over TLS it links.
    main, session_id = await tls_session(server, x509_dir)
    # display may use either port (the default, as in the C server)...
    for stream in (
        await trio.open_tcp_stream("127.0.0.1", server.port_bound),
        await wc.tls_stream(server.tls_port_bound, ca(x509_dir)),
    ):
        result = await rc.link(stream, channel_type=rc.DISPLAY, connection_id=session_id)
        assert result.ok, result
        await result.channel.aclose()
    # ...and cursor is plaintext-only: NEED_UNSECURED over TLS.
    stream = await wc.tls_stream(server.tls_port_bound, ca(x509_dir))
    result = await rc.link(stream, channel_type=rc.CURSOR, connection_id=session_id)
    assert result.reply.error == rc.NEED_UNSECURED
    await stream.aclose()
    await main.aclose()


async def test_https_and_wss_on_the_tls_port(
    server_factory, x509_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "main.js").write_text("export {};\n")
    server = await server_factory(
        tls_port=0, x509_dir=x509_dir, html5_dir=tmp_path, tls_channels=["default"]
    )
    stream = await wc.tls_stream(server.tls_port_bound, ca(x509_dir))
    async with stream:
        await stream.send_all(
            b"GET /main.js HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        response = b""
        with trio.fail_after(5):
            while data := await stream.receive_some():
                response += data
    assert wc.status_of(response) == 200 and response.endswith(b"export {};\n")

    tls = wc.client_tls_context(ca(x509_dir))
    async with wc.ws_stream(server.tls_port_bound, tls=tls) as ws:
        result = await rc.link(ws, channel_type=rc.MAIN)
        assert result.ok, result  # a TLS-only main channel: wss counts as secure
    async with wc.ws_stream(server.port_bound) as ws:
        result = await rc.link(ws, channel_type=rc.MAIN)
        assert result.reply.error == rc.NEED_SECURED


def tls10_client_hello() -> bytes:
    """A TLS 1.0-only ClientHello (one cipher suite, no extensions)."""
    body = b"\x03\x01" + os.urandom(32) + b"\x00" + b"\x00\x02\x00\x2f" + b"\x01\x00"
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        pytest.param(name, data, needle, id=name)
        for name, data, needle in [
            ("garbage", b"\x16\x03\x01\x00\x05hello, this is not TLS" * 4, "TLS handshake failed"),
            ("plain-spice", rc.link_packet(channel_type=rc.MAIN), "TLS handshake failed"),
            ("tls1.0-only", tls10_client_hello(), "TLS handshake failed"),
            ("stalled-mid-handshake", tls10_client_hello()[:20], "not finished within"),
            ("silent", b"", "not finished within"),
        ]
    ],
)
async def test_bad_tls_handshakes_are_dropped(
    server: spice.Server, x509_dir: Path, caplog, name: str, data: bytes, needle: str
) -> None:
    main, session_id = await tls_session(server, x509_dir)  # a good client meanwhile
    stream = await trio.open_tcp_stream("127.0.0.1", server.tls_port_bound)
    ours = wc.local_port(stream)
    start = trio.current_time()
    async with stream:
        if data:
            await stream.send_all(data)
        await rc.read_until_closed(stream, timeout=TIMEOUT + 3)
    assert trio.current_time() - start < TIMEOUT + 2
    lines = wc.lines_about(caplog, ours)
    assert len(lines) == 1 and needle in lines[0], (name, lines)

    # The good client's session is intact: its display links and gets drawing.
    stream = await wc.tls_stream(server.tls_port_bound, ca(x509_dir))
    result = await rc.link(stream, channel_type=rc.DISPLAY, connection_id=session_id)
    assert result.ok, result
    await result.channel.send_msg(rc.MSGC_DISPLAY_INIT, struct.pack("<BqBi", 1, 1 << 20, 1, 0))
    await result.channel.recv_until(rc.MSG_DISPLAY_MARK)
    await server.displays[0].fill(1, 2, 3, 4, 0x778899)
    _, body = await result.channel.recv_until(rc.MSG_DISPLAY_DRAW_FILL)
    assert rc.parse_draw_fill(body).color & 0xFFFFFF == 0x778899
    await result.channel.aclose()
    await main.aclose()


async def test_tls_1_2_and_1_3_accepted(server: spice.Server, x509_dir: Path) -> None:
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = wc.client_tls_context(ca(x509_dir))
        context.minimum_version = context.maximum_version = version
        raw = await trio.open_tcp_stream("127.0.0.1", server.tls_port_bound)
        stream = trio.SSLStream(raw, context, server_hostname="127.0.0.1")
        await stream.do_handshake()
        result = await rc.link(stream, channel_type=rc.MAIN)
        assert result.ok
        await stream.aclose()


# ------------------------------------------------------------------ certificates and options
def test_gen_cert_writes_qemu_files(tmp_path: Path, capsys) -> None:
    target = tmp_path / "certs"
    assert cli_main(["gen-cert", str(target)]) == 0
    assert "remote-viewer --spice-ca-file=" in capsys.readouterr().out
    ca_cert = x509.load_pem_x509_certificate((target / "ca-cert.pem").read_bytes())
    cert = x509.load_pem_x509_certificate((target / "server-cert.pem").read_bytes())
    cert.verify_directly_issued_by(ca_cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert stat.S_IMODE((target / "server-key.pem").stat().st_mode) == 0o600
    assert not (target / "ca-key.pem").exists()
    # Existing files are kept unless --force.
    assert cli_main(["gen-cert", str(target)]) == 1
    assert cli_main(["gen-cert", str(target), "--force", "--host", "spice.test"]) == 0
    cert = x509.load_pem_x509_certificate((target / "server-cert.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["spice.test"]


def test_certificate_options(x509_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tls_port"):
        spice.Server(port=0, x509_dir=x509_dir)
    with pytest.raises(ValueError, match="x509"):
        spice.Server(port=0, tls_port=0)
    with pytest.raises(FileNotFoundError):
        spice.Server(port=0, tls_port=0, x509_dir=tmp_path)
    with pytest.raises(ValueError, match="tls_port"):
        spice.Server(port=0, tls_channels=["main"])
    (tmp_path / "server-cert.pem").write_bytes((x509_dir / "server-cert.pem").read_bytes())
    (tmp_path / "server-key.pem").write_bytes((x509_dir / "ca-cert.pem").read_bytes())
    with pytest.raises(ValueError, match="cannot use the certificate"):
        spice.Server(port=0, tls_port=0, x509_dir=tmp_path)
    spice.Server(
        port=0,
        tls_port=0,
        x509_cert_file=x509_dir / "server-cert.pem",
        x509_key_file=x509_dir / "server-key.pem",
        x509_cacert_file=x509_dir / "ca-cert.pem",
    )


def test_channel_security_rules() -> None:
    from spice.domain.enums import ChannelType as T

    assert channel_security(["main", "inputs"], ["cursor"]) == (
        frozenset({T.MAIN, T.INPUTS}),
        frozenset({T.CURSOR}),
    )
    secure, plain = channel_security(["default"], ["cursor"])
    assert (
        plain == {T.CURSOR} and T.CURSOR not in secure and {T.MAIN, T.DISPLAY, T.WEBDAV} <= secure
    )
    secure, plain = channel_security(["inputs"], ["default"])
    assert secure == {T.INPUTS} and T.INPUTS not in plain and T.MAIN in plain
    with pytest.raises(ValueError, match="both"):
        channel_security(["main"], ["main"])
    with pytest.raises(ValueError, match="unknown channel"):
        channel_security(["tunnel"], [])
