"""SASL user accounts on disk: loading the users file and adding a user to it.

The format and the checks are in :mod:`spice.domain.sasl`; this module reads and writes the
file (mode 0600, replaced atomically) and draws the random salts.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from spice.domain.sasl import (
    DEFAULT_ITERATIONS,
    SaslUser,
    UsersFileError,
    make_user,
    parse_users,
)

__all__ = ["UsersFileError", "add_user", "load_users"]


def load_users(path: str | os.PathLike[str]) -> dict[str, SaslUser]:
    """The accounts in a users file (:class:`UsersFileError` names a bad line)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsersFileError(f"{p} is not UTF-8 text") from None
    try:
        return parse_users(text)
    except UsersFileError as exc:
        raise UsersFileError(f"{p}: {exc}") from None


def add_user(
    path: str | os.PathLike[str],
    name: str,
    password: str,
    *,
    view_only: bool = False,
    iterations: int = DEFAULT_ITERATIONS,
) -> SaslUser:
    """Add ``name`` to the users file (created if missing), or replace its entry."""
    p = Path(path)
    user = make_user(
        name,
        password,
        view_only=view_only,
        salts=(secrets.token_bytes(16), secrets.token_bytes(16)),
        iterations=iterations,
    )
    lines = p.read_text(encoding="utf-8").splitlines() if p.exists() else []
    if lines:
        parse_users("\n".join(lines))  # refuse to rewrite a file that does not parse
    kept = [line for line in lines if line.split(maxsplit=1)[:1] != [name]]
    if not lines:
        kept = ["# trio-spice SASL users: NAME ROLE SCRAM-SHA-256:... SCRAM-SHA-1:..."]
    kept.append(user.line())
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(kept) + "\n")
    os.replace(tmp, p)
    return user
