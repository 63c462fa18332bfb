"""One entry of an Xauthority file, as libXau reads it: family, address, display number,
authorisation name and data, each a big-endian 16-bit length and the bytes (the family a
bare 16-bit number). FamilyWild with empty address and number matches any display, which is
what a private server with its own file wants."""

from __future__ import annotations

import struct

FAMILY_WILD = 0xFFFF
MIT_MAGIC_COOKIE = b"MIT-MAGIC-COOKIE-1"


def _counted(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError("an Xauthority field is at most 65535 bytes")
    return struct.pack(">H", len(data)) + data


def xauthority_entry(
    cookie: bytes,
    *,
    family: int = FAMILY_WILD,
    address: bytes = b"",
    number: bytes = b"",
    name: bytes = MIT_MAGIC_COOKIE,
) -> bytes:
    return struct.pack(">H", family) + b"".join(
        _counted(field) for field in (address, number, name, cookie)
    )
