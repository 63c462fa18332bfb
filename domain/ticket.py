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


def _none_if_empty(value: str | None) -> str | None:
    return value or None


@attrs.frozen
class TicketVerdict:
    """The outcome of a ticket check: the link result, whether the ticket grants only a
    view (no input), and why it was refused, in words fit for a log line."""

    error: LinkError
    view_only: bool = False
    reason: str = ""


@attrs.frozen
class TicketPolicy:
    """What passes the ticket check. ``expires_at`` is seconds since the epoch or None.

    ``view_only_password`` is a second ticket whose holders see the displays but whose input
    is dropped; it expires with the main password. An empty password is no password.
    """

    password: str | None = attrs.field(default=None, converter=_none_if_empty)
    expires_at: float | None = None
    ticketing: bool = True
    view_only_password: str | None = attrs.field(default=None, converter=_none_if_empty)

    def __attrs_post_init__(self) -> None:
        for value in (self.password, self.view_only_password):
            if value is not None and len(value.encode()) > SPICE_MAX_PASSWORD_LENGTH:
                raise ValueError(f"SPICE passwords are at most {SPICE_MAX_PASSWORD_LENGTH} bytes")
        if self.password is not None and self.password == self.view_only_password:
            raise ValueError("the view-only password must differ from the password")

    def check(self, password: bytes | None, now: float) -> LinkError:
        """The link result for a decrypted ticket (None: it did not decrypt)."""
        return self.verdict(password, now).error

    def verdict(self, password: bytes | None, now: float) -> TicketVerdict:
        """The full outcome for a decrypted ticket (None: it did not decrypt)."""
        denied = LinkError.PERMISSION_DENIED
        if password is None:
            return TicketVerdict(denied, reason="the ticket did not decrypt")
        if not self.ticketing:
            return TicketVerdict(LinkError.OK)
        if self.password is None and self.view_only_password is None:
            # Ticketing on but no password set: nobody gets in (QEMU's behaviour).
            return TicketVerdict(
                denied, reason="no password is set on the server, so nobody may log in"
            )
        matched: bool | None = None  # None: no match; else whether view-only
        for candidate, view_only in ((self.password, False), (self.view_only_password, True)):
            if candidate is not None and hmac.compare_digest(password, candidate.encode()):
                matched = view_only
        if matched is None:
            return TicketVerdict(denied, reason="wrong password")
        if self.expires_at is not None and now >= self.expires_at:
            return TicketVerdict(denied, reason="the password has expired")
        return TicketVerdict(LinkError.OK, view_only=matched)
