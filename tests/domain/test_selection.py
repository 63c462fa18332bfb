"""X selections and SPICE clipboard types (domain/sources/selection.py): the targets offered
for a client's copy, the target read from an X owner, and text between UTF-8 and ICCCM's
Latin-1 STRING, with vectors written from ICCCM and the agent's type numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spice.domain.sources.selection import (
    png_from_x,
    spice_type_for,
    targets_for,
    text_from_x,
    text_target,
    x_value,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR"


def test_targets_for_a_clients_copy() -> None:
    assert targets_for((1,)) == [
        "TARGETS", "TIMESTAMP", "UTF8_STRING", "text/plain;charset=utf-8", "STRING", "TEXT",
    ]  # fmt: skip
    assert targets_for((2,)) == ["TARGETS", "TIMESTAMP", "image/png"]
    assert targets_for((3, 5)) == ["TARGETS", "TIMESTAMP"]  # BMP, JPG: not offered to X


@pytest.mark.parametrize(
    ("target", "kind"),
    [("UTF8_STRING", 1), ("STRING", 1), ("TEXT", 1), ("image/png", 2), ("image/bmp", None),
     ("COMPOUND_TEXT", None), ("TARGETS", None)],
)  # fmt: skip
def test_spice_type_for_target(target: str, kind: int | None) -> None:
    assert spice_type_for(target) == kind


def test_x_value_of_client_text() -> None:
    text = "é✓".encode()  # c3 a9 e2 9c 93
    assert x_value("UTF8_STRING", text + b"\0") == ("UTF8_STRING", b"\xc3\xa9\xe2\x9c\x93")
    assert x_value("TEXT", text) == ("UTF8_STRING", b"\xc3\xa9\xe2\x9c\x93")
    mime = "text/plain;charset=utf-8"
    assert x_value(mime, text) == (mime, b"\xc3\xa9\xe2\x9c\x93")
    assert x_value("STRING", text) == ("STRING", b"\xe9?")  # Latin-1; no check mark there
    assert x_value("image/png", PNG) == ("image/png", PNG)


def test_text_target_prefers_utf8() -> None:
    assert text_target(["TARGETS", "STRING", "UTF8_STRING"]) == "UTF8_STRING"
    assert text_target(["STRING", "TEXT"]) == "STRING"
    assert text_target(["TEXT", "COMPOUND_TEXT", "image/png"]) is None
    assert text_target(None) == "UTF8_STRING"  # no TARGETS answer: ask the usual one


def test_text_from_x() -> None:
    assert text_from_x("UTF8_STRING", b"caf\xc3\xa9\0junk") == b"caf\xc3\xa9"
    assert text_from_x("STRING", b"caf\xe9") == b"caf\xc3\xa9"
    assert text_from_x("UTF8_STRING", b"\xff") == b"\xef\xbf\xbd"  # invalid: U+FFFD
    assert text_from_x("ATOM", b"abcd") is None
    assert png_from_x("image/png", PNG) == PNG
    assert png_from_x("image/png", b"GIF89a") is None
    assert png_from_x("STRING", PNG) is None


@given(st.sampled_from(["UTF8_STRING", "STRING", "text/plain;charset=utf-8", "X"]), st.binary())
def test_text_from_x_is_valid_utf8_or_none(prop_type: str, data: bytes) -> None:
    text = text_from_x(prop_type, data)
    if text is not None:
        text.decode("utf-8")
        assert b"\0" not in text
