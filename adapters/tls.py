"""The TLS transport: the server's certificate, and the handshake of each connection to the
TLS port, bounded in time.

TLS starts at the first byte (no STARTTLS); once the handshake is done the connection is
sniffed like a plain one, so the TLS port takes spice-gtk's SPICE and browsers' ``https://``
and ``wss://`` alike. Those connections count as secure for the per-channel policy
(NEED_SECURED / NEED_UNSECURED in :mod:`adapters.link`). A handshake that fails (garbage, an
old protocol version, no shared cipher) or does not finish within the deadline is dropped with
one log line.
"""

from __future__ import annotations

import logging
import os
import ssl

import trio

log = logging.getLogger(__name__)

#: trio's SSLStream encrypts a whole write into a memory BIO before sending any of it: with
#: full-screen updates (megabytes per write) that growing buffer cost more than the cipher.
#: Writes are fed to it in pieces of this size instead (measured best here: ~40% less time
#: per 8 MB frame than one write; 64 KiB and 1 MiB were both slower).
TLS_WRITE_BYTES = 256 * 1024


def server_context(
    cert_file: str | os.PathLike[str],
    key_file: str | os.PathLike[str],
    ca_file: str | os.PathLike[str] | None = None,
) -> ssl.SSLContext:
    """A server context: TLS 1.2 or newer, the certificate chain and its key.

    ``ca_file`` (QEMU's x509-cacert-file) is checked for readability and loaded as trust
    anchors, but client certificates are not asked for, as in QEMU's default.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(os.fspath(cert_file), os.fspath(key_file))
    if ca_file is not None:
        context.load_verify_locations(cafile=os.fspath(ca_file))
    context.verify_mode = ssl.CERT_NONE
    # Browsers offer h2 first; what follows the handshake here is HTTP/1.1 or SPICE.
    context.set_alpn_protocols(["http/1.1"])
    return context


def describe_tls_error(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__ or exc
    if isinstance(cause, ssl.SSLError):
        return cause.reason.lower().replace("_", " ") if cause.reason else str(cause)
    return str(cause) or type(cause).__name__


class TlsStream(trio.abc.Stream):
    """A finished :class:`trio.SSLStream` whose large writes go in :data:`TLS_WRITE_BYTES`
    pieces; everything else passes through."""

    def __init__(self, tls: trio.SSLStream[trio.abc.Stream]) -> None:
        self.tls = tls

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.tls.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if len(data) <= TLS_WRITE_BYTES:
            await self.tls.send_all(data)
            return
        view = memoryview(data)
        for start in range(0, len(view), TLS_WRITE_BYTES):
            await self.tls.send_all(view[start : start + TLS_WRITE_BYTES])

    async def wait_send_all_might_not_block(self) -> None:
        await self.tls.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.tls.aclose()


async def tls_handshake(
    stream: trio.abc.Stream, context: ssl.SSLContext, peer: str, timeout: float
) -> TlsStream | None:
    """Run the server side of the handshake; the TLS stream, or None after one log line (the
    caller closes ``stream``)."""
    tls = trio.SSLStream(stream, context, server_side=True, https_compatible=True)
    try:
        with trio.fail_after(timeout):
            await tls.do_handshake()
    except trio.TooSlowError:
        log.warning("%s: TLS handshake not finished within %g s, closing", peer, timeout)
        return None
    except trio.BrokenResourceError as exc:
        log.warning("%s: TLS handshake failed: %s", peer, describe_tls_error(exc))
        return None
    except trio.ClosedResourceError:
        log.info("%s: closed during the TLS handshake", peer)
        return None
    return TlsStream(tls)
