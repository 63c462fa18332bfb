"""SASL user accounts: the users file and the server side of SCRAM and PLAIN.

The link machine (:mod:`domain.link`) carries the SASL frames; this module decides what the
server answers. A :class:`SaslAuthenticator` is made per link for the mechanism the client
chose, fed the client's data, and returns the next challenge or the final verdict. SCRAM
(RFC 5802/7677) is done by ``scramp`` from stored keys; PLAIN (RFC 4616) derives the same
SCRAM-SHA-256 stored key from the password it receives (PBKDF2) and compares, so the users file
never holds a password. PLAIN is offered only over TLS (:func:`mechanisms_for`).

The users file: one user a line, ``#`` comments, fields separated by spaces::

    NAME ROLE SCRAM-SHA-256:ITER:SALT:STOREDKEY:SERVERKEY SCRAM-SHA-1:ITER:SALT:STOREDKEY:SERVERKEY

ROLE is ``full`` or ``view-only``; SALT and the keys are base64. Randomness (salts, nonces) is
passed in, as time is elsewhere in the domain.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Collection, Mapping

import attrs
import scramp

#: In the order the server prefers them (cyrus-sasl's client picks by its own strength order).
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-1")
PLAIN = "PLAIN"
ROLES = ("full", "view-only")
#: PBKDF2 rounds for new users: above RFC 7677's minimum of 4096, still quick for a client.
DEFAULT_ITERATIONS = 10000
#: Longest name and password accepted (a PLAIN message is bounded by the link's buffer anyway).
MAX_NAME = 64
MAX_PASSWORD = 256
_NAME = re.compile(r"[A-Za-z0-9._@+-]{1,64}")


class UsersFileError(ValueError):
    """The users file does not parse."""


class SaslAuthFailed(Exception):
    """The client failed to authenticate; the message says why (for the log, not the wire)."""


@attrs.frozen
class ScramKeys:
    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    def encode(self, mechanism: str) -> str:
        b64 = base64.b64encode
        return ":".join(
            [
                mechanism,
                str(self.iterations),
                b64(self.salt).decode(),
                b64(self.stored_key).decode(),
                b64(self.server_key).decode(),
            ]
        )


@attrs.frozen
class SaslUser:
    name: str
    view_only: bool
    #: Stored keys per SCRAM mechanism name.
    keys: Mapping[str, ScramKeys]

    def line(self) -> str:
        role = "view-only" if self.view_only else "full"
        fields = [self.name, role, *(self.keys[m].encode(m) for m in SCRAM_MECHANISMS)]
        return " ".join(fields)


def valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def make_user(
    name: str,
    password: str,
    *,
    view_only: bool,
    salts: tuple[bytes, bytes],
    iterations: int = DEFAULT_ITERATIONS,
) -> SaslUser:
    """A user record with fresh keys; ``salts`` are two random 16-byte strings (one per SCRAM
    mechanism)."""
    if not valid_name(name):
        raise ValueError(f"user names are 1-{MAX_NAME} of A-Z a-z 0-9 . _ @ + -, not {name!r}")
    if not password or len(password) > MAX_PASSWORD:
        raise ValueError(f"a password is 1-{MAX_PASSWORD} characters")
    keys = {}
    for mechanism, salt in zip(SCRAM_MECHANISMS, salts, strict=True):
        s, stored, server, i = scramp.ScramMechanism(mechanism).make_auth_info(
            password, iteration_count=iterations, salt=salt
        )
        keys[mechanism] = ScramKeys(i, s, stored, server)
    return SaslUser(name, view_only, keys)


def parse_users(text: str) -> dict[str, SaslUser]:
    """Parse a users file; raises :class:`UsersFileError` naming the line."""
    users: dict[str, SaslUser] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            user = _parse_line(line)
        except (ValueError, binascii.Error) as exc:
            raise UsersFileError(f"line {number}: {exc}") from None
        if user.name in users:
            raise UsersFileError(f"line {number}: user {user.name!r} appears twice")
        users[user.name] = user
    return users


def _parse_line(line: str) -> SaslUser:
    fields = line.split()
    if len(fields) != 2 + len(SCRAM_MECHANISMS):
        raise ValueError(f"expected {2 + len(SCRAM_MECHANISMS)} fields, found {len(fields)}")
    name, role, *key_fields = fields
    if not valid_name(name):
        raise ValueError(f"bad user name {name!r}")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    keys: dict[str, ScramKeys] = {}
    for field in key_fields:
        parts = field.split(":")
        if len(parts) != 5:
            raise ValueError("a key field is MECHANISM:ITER:SALT:STOREDKEY:SERVERKEY")
        mechanism, iterations, salt, stored, server = parts
        if mechanism not in SCRAM_MECHANISMS or mechanism in keys:
            raise ValueError(f"unexpected key field {mechanism!r}")
        count = int(iterations)
        if not 4096 <= count <= 10_000_000:
            raise ValueError(f"iteration count {count} out of range")
        b64 = base64.b64decode
        keys[mechanism] = ScramKeys(
            count, b64(salt, validate=True), b64(stored, validate=True), b64(server, validate=True)
        )
    return SaslUser(name, role == "view-only", keys)


def mechanisms_for(secure: bool, allowed: Collection[str] | None = None) -> list[str]:
    """What a link offers: SCRAM always, PLAIN only when the link is TLS; of those, only the
    ``allowed`` ones when given (possibly none: then the link is refused)."""
    offer = [*SCRAM_MECHANISMS, PLAIN] if secure else list(SCRAM_MECHANISMS)
    return offer if allowed is None else [m for m in offer if m in allowed]


@attrs.frozen
class SaslStep:
    """The server's next answer: data for the client and whether the exchange is complete.
    ``user`` is set once the client is authenticated."""

    data: bytes | None
    complete: bool
    user: SaslUser | None = None


class SaslAuthenticator:
    """The server side of one SASL exchange.

    Call :meth:`start` with the client's initial response, then :meth:`step` with each of its
    responses while the last step was not complete. Any failure raises
    :class:`SaslAuthFailed`; the authenticator is then spent.
    """

    def __init__(self, users: Mapping[str, SaslUser], mechanism: str, nonce: str) -> None:
        """``nonce`` is the server's random part of the SCRAM nonce (printable, no comma)."""
        if mechanism not in (*SCRAM_MECHANISMS, PLAIN):
            raise SaslAuthFailed(f"mechanism {mechanism} is not supported")
        self.mechanism = mechanism
        self._users = users
        self._nonce = nonce
        self._scram: scramp.ScramServer | None = None
        self._name: str | None = None
        self._done = False
        self._gs2_sent: str | None = None
        self._client_first_bare = ""
        #: Why authentication failed (set by the adapter for its log line).
        self.failure = ""

    def start(self, data: bytes | None) -> SaslStep:
        if self.mechanism == PLAIN:
            if data is None:
                # PLAIN's client speaks first; an empty challenge asks it to.
                return SaslStep(b"", complete=False)
            return self._plain(data)
        if data is None:
            return SaslStep(b"", complete=False)
        return self._scram_first(data)

    def step(self, data: bytes | None) -> SaslStep:
        if self._done:
            raise SaslAuthFailed("step after the exchange ended")
        if self.mechanism == PLAIN:
            return self._plain(data or b"")
        if self._scram is None:
            return self._scram_first(data or b"")
        return self._scram_final(data or b"")

    @property
    def user_name(self) -> str | None:
        """The name the client claimed (for the log), once it sent one."""
        return self._name

    def _fail(self, why: str) -> SaslAuthFailed:
        self._done = True
        return SaslAuthFailed(why)

    def _plain(self, data: bytes) -> SaslStep:
        parts = data.split(b"\0")
        if len(parts) != 3:
            raise self._fail("malformed PLAIN message")
        try:
            authzid, authcid, password = (p.decode("utf-8") for p in parts)
        except UnicodeDecodeError:
            raise self._fail("PLAIN message is not UTF-8") from None
        self._name = authcid[:MAX_NAME]
        if authzid and authzid != authcid:
            raise self._fail(f"user {authcid!r} may not act as {authzid!r}")
        user = self._users.get(authcid)
        if user is None or len(password) > MAX_PASSWORD or not password:
            raise self._fail(
                f"unknown user {authcid[:MAX_NAME]!r}" if user is None else "bad password"
            )
        keys = user.keys["SCRAM-SHA-256"]
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), keys.salt, keys.iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), keys.stored_key):
            raise self._fail(f"wrong password for user {authcid!r}")
        self._done = True
        return SaslStep(None, complete=True, user=user)

    def _scram_first(self, data: bytes) -> SaslStep:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail("SCRAM client-first is not UTF-8") from None
        text = self._drop_own_authzid(text)
        mechanism = scramp.ScramMechanism(self.mechanism)
        server = mechanism.make_server(self._lookup, s_nonce=self._nonce)
        try:
            server.set_client_first(text)
            first = server.get_server_first()
        except scramp.ScramException as exc:
            if self._name is not None and self._name not in self._users:
                raise self._fail(f"unknown user {self._name!r}") from None
            raise self._fail(f"SCRAM client-first refused: {exc}") from None
        self._scram = server
        return SaslStep(first.encode(), complete=False)

    def _drop_own_authzid(self, text: str) -> str:
        """cyrus-sasl's client (spice-gtk's) names the user twice: ``n,a=NAME,n=NAME,...``;
        scramp takes no authorisation id. One equal to the authenticated name grants nothing
        more, so scramp gets the message without it, and the final proof is checked here
        against the header the client really sent (:meth:`_scram_final`)."""
        parts = text.split(",", 3)
        if len(parts) == 4 and parts[1].startswith("a="):
            authzid, bare_user = parts[1][2:], parts[2]
            if not bare_user.startswith("n=") or authzid != bare_user[2:]:
                raise self._fail("SCRAM authorisation id differs from the user name")
            self._gs2_sent = f"{parts[0]},{parts[1]},"
            self._client_first_bare = f"{parts[2]},{parts[3]}"
            return f"{parts[0]},,{parts[2]},{parts[3]}"
        return text

    def _lookup(self, name: str) -> tuple[bytes, bytes, bytes, int]:
        self._name = name[:MAX_NAME]
        user = self._users.get(name)
        if user is None:
            raise KeyError(name)
        keys = user.keys[self.mechanism]
        return keys.salt, keys.stored_key, keys.server_key, keys.iterations

    def _scram_final(self, data: bytes) -> SaslStep:
        assert self._scram is not None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail("SCRAM client-final is not UTF-8") from None
        if self._gs2_sent is not None:
            final = self._verify_with_authzid(text)
        else:
            try:
                self._scram.set_client_final(text)
                final = self._scram.get_server_final()
            except scramp.ScramException as exc:
                raise self._fail(f"SCRAM proof refused for user {self._name!r}: {exc}") from None
        self._done = True
        user = self._users[self._name or ""]
        return SaslStep(final.encode(), complete=True, user=user)

    def _verify_with_authzid(self, text: str) -> str:
        """RFC 5802 §3's proof check, for a header with an authorisation id: ClientProof is
        ClientKey XOR HMAC(StoredKey, AuthMessage), and H(ClientKey) must be StoredKey."""
        assert self._scram is not None and self._gs2_sent is not None
        fields = text.split(",")
        binding = "c=" + base64.b64encode(self._gs2_sent.encode()).decode()
        nonce = "r=" + str(self._scram.nonce)
        if len(fields) < 3 or fields[0] != binding or fields[1] != nonce:
            raise self._fail(f"SCRAM client-final for user {self._name!r} does not match")
        if not fields[-1].startswith("p="):
            raise self._fail("SCRAM client-final has no proof")
        try:
            proof = base64.b64decode(fields[-1][2:], validate=True)
        except binascii.Error:
            raise self._fail("SCRAM proof is not base64") from None
        keys = self._users[self._name or ""].keys[self.mechanism]
        digest = hashlib.sha256 if self.mechanism == "SCRAM-SHA-256" else hashlib.sha1
        without_proof = text[: text.rindex(",p=")]
        auth_message = ",".join(
            [self._client_first_bare, self._scram.server_first, without_proof]
        ).encode()
        signature = hmac.new(keys.stored_key, auth_message, digest).digest()
        if len(proof) != len(signature):
            raise self._fail(f"SCRAM proof refused for user {self._name!r}: bad length")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(digest(client_key).digest(), keys.stored_key):
            raise self._fail(f"SCRAM proof refused for user {self._name!r}: wrong password")
        server_signature = hmac.new(keys.server_key, auth_message, digest).digest()
        return "v=" + base64.b64encode(server_signature).decode()
