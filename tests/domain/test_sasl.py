"""SASL in the link machine, against byte vectors written from red-stream's framing
(PROTOCOL.md §1.6), and the SCRAM/PLAIN server logic and users file of domain/sasl.py."""

from __future__ import annotations

import struct

import pytest
import scramp
from hypothesis import given, settings
from hypothesis import strategies as st

from spice.domain.caps import CapabilitySet
from spice.domain.enums import LinkError
from spice.domain.errors import LocalProtocolError, RemoteProtocolError
from spice.domain.link import (
    NEED_DATA,
    LinkServer,
    LinkState,
    SaslRequested,
    SaslResponse,
    SaslStart,
    encode_sasl_challenge,
    encode_sasl_mechanisms,
)
from spice.domain.sasl import (
    SaslAuthenticator,
    SaslAuthFailed,
    UsersFileError,
    make_user,
    mechanisms_for,
    parse_users,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


#: spice-gtk's main channel link with caps word 0x0d (AUTH_SELECTION, AUTH_SASL, MINI_HEADER).
LINK = h("52454451 02000000 02000000 16000000") + h(
    "00000000 01 00 01000000 00000000 12000000 0d000000"
)
NO_SELECTION = h("52454451 02000000 02000000 16000000") + h(
    "00000000 01 00 01000000 00000000 12000000 08000000"
)
KEY = bytes(162)
CAPS = CapabilitySet.of(0, 2, 3)


def linked_to_sasl() -> LinkServer:
    link = LinkServer(sasl=True)
    link.receive_data(LINK)
    link.next_event()
    link.send_reply(KEY, CAPS, CapabilitySet())
    link.receive_data(h("02000000"))  # SpiceLinkAuthMechanism: AUTH_SASL
    assert link.next_event() == SaslRequested()
    return link


def test_mechanism_list_bytes() -> None:
    # length 27, then ",SCRAM-SHA-256,SCRAM-SHA-1," with no NUL
    assert encode_sasl_mechanisms(["SCRAM-SHA-256", "SCRAM-SHA-1"]) == h("1b000000") + (
        b",SCRAM-SHA-256,SCRAM-SHA-1,"
    )
    with pytest.raises(LocalProtocolError):
        encode_sasl_mechanisms(["A,B"])
    with pytest.raises(LocalProtocolError):
        encode_sasl_mechanisms([])


def test_challenge_bytes() -> None:
    # data "r=ab": length 5 (counting the NUL), the data, NUL, complete 0
    assert encode_sasl_challenge(b"r=ab", False) == h("05000000 723d6162 00 00")
    # no data, complete: length 0 then 1
    assert encode_sasl_challenge(None, True) == h("00000000 01")
    assert encode_sasl_challenge(b"", True) == h("00000000 01")


def test_full_exchange_in_bytes() -> None:
    link = linked_to_sasl()
    assert link.send_sasl_mechanisms(["SCRAM-SHA-256", "PLAIN"]) == h("15000000") + (
        b",SCRAM-SHA-256,PLAIN,"
    )
    # mechname length 5 "PLAIN", data length 4 "a\0b" + NUL: split over chunks
    wire = h("05000000") + b"PLAIN" + h("04000000") + b"a\0b\0"
    for i in range(len(wire)):
        link.receive_data(wire[i : i + 1])
        event = link.next_event()
        if i < len(wire) - 1:
            assert event is NEED_DATA
    assert event == SaslStart("PLAIN", b"a\0b")
    assert link.send_sasl_challenge(b"x", complete=False) == h("02000000 78 00 00")
    link.receive_data(h("00000000") + b"CHANNEL")  # no data; then the channel's first bytes
    assert link.next_event() == SaslResponse(None)
    # complete: no data, complete byte 1, then red-stream's "accepted" word 0
    assert link.send_sasl_challenge(None, complete=True) == h("00000000 01 00000000")
    assert link.send_result(LinkError.OK) == h("00000000")
    assert link.state is LinkState.DONE
    assert link.trailing_data() == b"CHANNEL"


def test_start_without_initial_response() -> None:
    link = linked_to_sasl()
    link.send_sasl_mechanisms(["SCRAM-SHA-1"])
    link.receive_data(h("0b000000") + b"SCRAM-SHA-1" + h("00000000"))
    assert link.next_event() == SaslStart("SCRAM-SHA-1", None)


def test_ticket_mechanism_refused_when_sasl() -> None:
    link = LinkServer(sasl=True)
    link.receive_data(LINK)
    link.next_event()
    link.send_reply(KEY, CAPS, CapabilitySet())
    link.receive_data(h("01000000"))
    with pytest.raises(RemoteProtocolError) as exc:
        link.next_event()
    assert exc.value.link_error == LinkError.INVALID_DATA
    assert link.fail(exc.value.link_error) == h("03000000")


def test_sasl_refused_when_not_enabled() -> None:
    link = LinkServer()
    link.receive_data(LINK)
    link.next_event()
    link.send_reply(KEY, CAPS, CapabilitySet())
    link.receive_data(h("02000000"))
    with pytest.raises(RemoteProtocolError):
        link.next_event()


def test_client_without_auth_selection_gets_version_mismatch() -> None:
    link = LinkServer(sasl=True)
    link.receive_data(NO_SELECTION)
    with pytest.raises(RemoteProtocolError) as exc:
        link.next_event()
    assert exc.value.link_error == LinkError.VERSION_MISMATCH


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (h("00000000"), None),  # empty mechanism name: closed, as red-stream
        (h("65000000"), None),  # 101 bytes: over the limit
        (h("05000000") + b"CRAM5", LinkError.INVALID_DATA),  # not offered
        (h("05000000") + b"PL,IN", LinkError.INVALID_DATA),
        (h("05000000") + b"PLAIN" + h("01001000"), LinkError.INVALID_DATA),  # > 1 MiB
    ],
)
def test_bad_sasl_frames(wire: bytes, error: LinkError | None) -> None:
    link = linked_to_sasl()
    link.send_sasl_mechanisms(["PLAIN"])
    link.receive_data(wire)
    with pytest.raises(RemoteProtocolError) as exc:
        link.next_event()
    assert exc.value.link_error == error
    assert link.state is LinkState.FAILED


def test_oversized_step_closes_without_answer() -> None:
    link = linked_to_sasl()
    link.send_sasl_mechanisms(["PLAIN"])
    link.receive_data(h("05000000") + b"PLAIN" + h("00000000"))
    link.next_event()
    link.send_sasl_challenge(b"", complete=False)
    link.receive_data(h("01001000"))
    with pytest.raises(RemoteProtocolError) as exc:
        link.next_event()
    assert exc.value.link_error is None


def test_send_out_of_order_is_local_error() -> None:
    link = linked_to_sasl()
    with pytest.raises(LocalProtocolError):
        link.send_sasl_challenge(b"", complete=True)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(1, 17))
def test_fuzz_after_mechanism_list(data: bytes, chunk: int) -> None:
    link = linked_to_sasl()
    link.send_sasl_mechanisms(["SCRAM-SHA-256", "PLAIN"])
    try:
        for i in range(0, len(data), chunk):
            link.receive_data(data[i : i + chunk])
            event = link.next_event()
            if event is not NEED_DATA:
                assert isinstance(event, SaslStart)
                assert event.mechanism in ("SCRAM-SHA-256", "PLAIN")
                return
    except RemoteProtocolError:
        assert link.state is LinkState.FAILED


# -- accounts and mechanisms ----------------------------------------------------------------

SALTS = (b"0123456789abcdef", b"fedcba9876543210")
ALICE = make_user("alice", "pencil", view_only=False, salts=SALTS, iterations=4096)
BOB = make_user("bob", "secret", view_only=True, salts=SALTS, iterations=4096)
USERS = {"alice": ALICE, "bob": BOB}


def test_users_file_round_trip_and_no_password() -> None:
    text = "# comment\n\n" + ALICE.line() + "\n" + BOB.line() + "\n"
    assert "pencil" not in text and "secret" not in text
    users = parse_users(text)
    assert users == USERS
    assert users["bob"].view_only and not users["alice"].view_only


def test_users_file_rfc7677_vector() -> None:
    # RFC 7677 §3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, i=4096.
    import base64

    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    user = make_user("user", "pencil", view_only=False, salts=(salt, salt), iterations=4096)
    keys = user.keys["SCRAM-SHA-256"]
    # The RFC's ServerSignature derives from this server key; check the whole exchange.
    server = SaslAuthenticator({"user": user}, "SCRAM-SHA-256", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    step = server.start(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    assert step.data == (
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    final = server.step(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    assert final.complete and final.user == user
    assert final.data == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert len(keys.stored_key) == 32


@pytest.mark.parametrize(
    "text",
    [
        "alice full",
        "al ice full x y",
        "alice admin " + " ".join(ALICE.line().split()[2:]),
        ALICE.line() + "\n" + ALICE.line(),
        ALICE.line().replace(":4096:", ":10:", 1),
        ALICE.line().replace("SCRAM-SHA-1:", "SCRAM-MD5:"),
    ],
)
def test_bad_users_files(text: str) -> None:
    with pytest.raises(UsersFileError):
        parse_users(text)


def test_mechanisms_plain_only_over_tls() -> None:
    assert "PLAIN" not in mechanisms_for(False)
    assert mechanisms_for(True) == ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
@pytest.mark.parametrize("authzid", [False, True])
def test_scram_with_scramp_client(mechanism: str, authzid: bool) -> None:
    client = scramp.ScramClient([mechanism], "alice", "pencil")
    server = SaslAuthenticator(USERS, mechanism, "servernonce")
    first = client.get_client_first()
    header = "n,,"
    if authzid:
        # cyrus-sasl's form: the authorisation id repeats the user name.
        first = "n,a=alice," + first[3:]
        header = "n,a=alice,"
    step = server.start(first.encode())
    assert step.data is not None and not step.complete
    client.set_server_first(step.data.decode())
    final = client.get_client_final()
    if authzid:
        # The client binds the header it sent; recompute its proof over that header.
        final = _final_with_header(mechanism, first, step.data.decode(), header)
    done = server.step(final.encode())
    assert done.complete and done.user == ALICE
    if not authzid:
        assert done.data is not None
        client.set_server_final(done.data.decode())


def _final_with_header(mechanism: str, first: str, server_first: str, header: str) -> str:
    """A client-final computed by hand (RFC 5802 §3) for a gs2 header with an authzid."""
    import base64
    import hashlib
    import hmac

    hf = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-1": hashlib.sha1}[mechanism]
    attrs_ = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac(
        hf().name, b"pencil", base64.b64decode(attrs_["s"]), int(attrs_["i"])
    )
    client_key = hmac.new(salted, b"Client Key", hf).digest()
    stored = hf(client_key).digest()
    without_proof = "c=" + base64.b64encode(header.encode()).decode() + ",r=" + attrs_["r"]
    bare = first[len(header) :]
    auth_message = ",".join([bare, server_first, without_proof]).encode()
    signature = hmac.new(stored, auth_message, hf).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return without_proof + ",p=" + base64.b64encode(proof).decode()


def test_scram_wrong_password_fails() -> None:
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "wrong")
    server = SaslAuthenticator(USERS, "SCRAM-SHA-256", "servernonce")
    step = server.start(client.get_client_first().encode())
    assert step.data is not None
    client.set_server_first(step.data.decode())
    with pytest.raises(SaslAuthFailed, match="proof"):
        server.step(client.get_client_final().encode())
    with pytest.raises(SaslAuthFailed):
        server.step(b"again")


def test_scram_unknown_user_and_foreign_authzid() -> None:
    with pytest.raises(SaslAuthFailed, match="unknown user"):
        SaslAuthenticator(USERS, "SCRAM-SHA-1", "n").start(b"n,,n=carol,r=abc")
    with pytest.raises(SaslAuthFailed, match="authorisation"):
        SaslAuthenticator(USERS, "SCRAM-SHA-1", "n").start(b"n,a=alice,n=bob,r=abc")


@pytest.mark.parametrize(
    ("data", "ok"),
    [
        (b"\0alice\0pencil", True),
        (b"alice\0alice\0pencil", True),
        (b"\0alice\0pencil2", False),
        (b"bob\0alice\0pencil", False),
        (b"\0carol\0pencil", False),
        (b"alice\0pencil", False),
        (b"\0alice\0\xff", False),
    ],
)
def test_plain(data: bytes, ok: bool) -> None:
    server = SaslAuthenticator(USERS, "PLAIN", "n")
    if ok:
        step = server.start(data)
        assert step.complete and step.user == ALICE
    else:
        with pytest.raises(SaslAuthFailed):
            server.start(data)


def test_plain_without_initial_response_asks_for_it() -> None:
    server = SaslAuthenticator(USERS, "PLAIN", "n")
    assert server.start(None) == server.start(None).__class__(b"", complete=False)
    assert server.step(b"\0bob\0secret").user == BOB


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120), st.binary(max_size=120))
def test_fuzz_scram_only_fails_cleanly(first: bytes, final: bytes) -> None:
    server = SaslAuthenticator(USERS, "SCRAM-SHA-256", "n")
    try:
        server.start(first)
        server.step(final)
    except SaslAuthFailed:
        pass
    else:  # pragma: no cover - a random proof cannot pass
        raise AssertionError("random bytes authenticated")


def test_wire_lengths_are_le_u32() -> None:
    assert struct.pack("<I", 27) == h("1b000000")
