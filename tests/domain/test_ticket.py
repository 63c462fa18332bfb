"""The ticket key and password policy."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa

from spice.domain.enums import LinkError
from spice.domain.ticket import TicketKey, TicketPolicy

KEY = TicketKey(rsa.generate_private_key(public_exponent=65537, key_size=1024))


def test_public_key_is_162_bytes_of_subject_public_key_info() -> None:
    der = KEY.public_der
    assert len(der) == 162
    assert der[:22] == bytes.fromhex("30819f300d06092a864886f70d010101050003818d00")
    assert der[-5:] == bytes.fromhex("0203010001")


def test_round_trip_and_garbage() -> None:
    assert KEY.decrypt(KEY.encrypt(b"secret")) == b"secret"
    assert KEY.decrypt(bytes(128)) is None
    assert KEY.decrypt(b"\xff" * 128) is None


def test_spice_html5_tickets_with_a_dropped_leading_zero_still_decrypt() -> None:
    """spice-html5 drops leading zero bytes of the RSA result and left-aligns the rest."""
    while (ct := KEY.encrypt(b"pw"))[0] != 0:
        pass
    as_sent_by_html5 = ct.lstrip(b"\0").ljust(128, b"\0")
    assert as_sent_by_html5 != ct
    assert KEY.decrypt(as_sent_by_html5) == b"pw"


def test_policy() -> None:
    policy = TicketPolicy(password="pw", expires_at=100.0)
    assert policy.check(b"pw", now=99.0) == LinkError.OK
    assert policy.check(b"pw", now=100.0) == LinkError.PERMISSION_DENIED
    assert policy.check(b"PW", now=0.0) == LinkError.PERMISSION_DENIED
    assert policy.check(None, now=0.0) == LinkError.PERMISSION_DENIED
    assert TicketPolicy(ticketing=False).check(b"", now=0.0) == LinkError.OK
    assert TicketPolicy(ticketing=False).check(None, now=0.0) == LinkError.PERMISSION_DENIED
    assert TicketPolicy().check(b"", now=0.0) == LinkError.PERMISSION_DENIED
