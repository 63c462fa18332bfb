"""The SPICE ticket: the server's RSA key pair and the password check.

The client encrypts its password plus a terminating NUL with RSA-OAEP (SHA-1 for the hash and
MGF1, empty label) under the 1024-bit key the server sent in its link reply. An unset password
arrives as the encryption of a lone NUL, so the server always decrypts the 128 bytes.
Time is passed in (seconds since the epoch) so that expiry is testable without a clock.
"""

from __future__ import annotations

import hmac

import attrs
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from spice.domain.enums import SPICE_MAX_PASSWORD_LENGTH, LinkError

_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


class TicketKey:
    """An RSA-1024 key pair (exponent 65537), used for one link only, as the reference server
    does: a ticket encrypted under it cannot be replayed on another link. The key is made by
    the caller (:mod:`adapters.ticket_keys` keeps a pool made in a worker thread)."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self._key = private_key
        self.public_der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def encrypt(self, password: bytes) -> bytes:
        """What a client sends for ``password`` (used by tests and test clients)."""
        return self._key.public_key().encrypt(password + b"\0", _OAEP)

    def decrypt(self, ciphertext: bytes) -> bytes | None:
        """The password (without its NUL), or None if the ciphertext does not decrypt.

        spice-html5 turns the RSA result into bytes through a hex string, which drops leading
        zero bytes, and then writes it left-aligned into the 128-byte field: about one
        ticket in 256 arrives shifted, with zeros at the end. Such a ticket is tried again
        realigned; OAEP's integrity check makes a wrong realignment fail, never pass.
        """
        for shift in range(4):
            if shift and ciphertext[-shift:] != bytes(shift):
                break
            candidate = bytes(shift) + ciphertext[: len(ciphertext) - shift]
            try:
                plain = self._key.decrypt(candidate, _OAEP)
            except ValueError:
                continue
            return plain.split(b"\0", 1)[0]
        return None


@attrs.frozen
class TicketPolicy:
    """What passes the ticket check. ``expires_at`` is seconds since the epoch or None."""

    password: str | None = None
    expires_at: float | None = None
    ticketing: bool = True

    def __attrs_post_init__(self) -> None:
        if self.password is not None and len(self.password.encode()) > SPICE_MAX_PASSWORD_LENGTH:
            raise ValueError(f"SPICE passwords are at most {SPICE_MAX_PASSWORD_LENGTH} bytes")

    def check(self, password: bytes | None, now: float) -> LinkError:
        """The link result for a decrypted ticket (None: it did not decrypt)."""
        if password is None:
            return LinkError.PERMISSION_DENIED
        if not self.ticketing:
            return LinkError.OK
        if self.password is None:
            # Ticketing on but no password set: nobody gets in (QEMU's behaviour).
            return LinkError.PERMISSION_DENIED
        if self.expires_at is not None and now >= self.expires_at:
            return LinkError.PERMISSION_DENIED
        if not hmac.compare_digest(password, self.password.encode()):
            return LinkError.PERMISSION_DENIED
        return LinkError.OK
