"""Self-signed certificates for first use and tests: ``trio-spice gen-cert DIR``.

Writes a certificate authority (``ca-cert.pem``) and a server certificate it signed
(``server-cert.pem``, key in ``server-key.pem``, mode 0600), in the file names QEMU's
``x509-dir`` uses, so the same directory works with ``--x509-dir`` here and with QEMU. The
server certificate names localhost, 127.0.0.1 and ::1 (and whatever else is asked for) as
subject alternative names, which is what spice-gtk and browsers check. The CA's private key
is thrown away once it has signed: this CA can vouch for this one server and nothing else.
Give clients ``ca-cert.pem`` (``remote-viewer --spice-ca-file``, spice-gtk's ``ca-file``).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca-cert.pem"
SERVER_CERT = "server-cert.pem"
SERVER_KEY = "server-key.pem"
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


@attrs.frozen
class CertificateFiles:
    """Where a directory in QEMU's layout keeps its files."""

    ca_cert: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def in_dir(cls, directory: str | os.PathLike[str]) -> CertificateFiles:
        d = Path(directory)
        return cls(d / CA_CERT, d / SERVER_CERT, d / SERVER_KEY)


@attrs.frozen
class GeneratedCertificates:
    ca_cert_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trio-spice"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def generate(
    hosts: Iterable[str] = DEFAULT_HOSTS,
    *,
    days: int = 825,
    now: datetime.datetime | None = None,
) -> GeneratedCertificates:
    """A new CA and a server certificate for ``hosts`` valid for ``days`` (825 is the longest
    that Apple's and some browsers' rules accept for a server certificate)."""
    hosts = list(hosts)
    if not hosts:
        raise ValueError("a server certificate needs at least one host name or address")
    start = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(minutes=5)
    end = start + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("trio-spice local CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(hosts), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return GeneratedCertificates(
        ca_cert_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        server_cert_pem=server_cert.public_bytes(serialization.Encoding.PEM),
        server_key_pem=server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def write_certificates(
    directory: str | os.PathLike[str],
    hosts: Iterable[str] = DEFAULT_HOSTS,
    *,
    days: int = 825,
    overwrite: bool = False,
) -> CertificateFiles:
    """Generate and write the three files into ``directory`` (created if missing). Refuses
    to replace existing files unless ``overwrite``."""
    files = CertificateFiles.in_dir(directory)
    existing = [p for p in (files.ca_cert, files.server_cert, files.server_key) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(map(str, existing))} already exist (use --force to replace)"
        )
    Path(directory).mkdir(parents=True, exist_ok=True)
    generated = generate(hosts, days=days)
    _write(files.server_key, generated.server_key_pem, 0o600)
    _write(files.server_cert, generated.server_cert_pem, 0o644)
    _write(files.ca_cert, generated.ca_cert_pem, 0o644)
    return files


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
