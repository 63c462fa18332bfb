"""Inputs channel bodies against layouts written out by hand from spice.proto."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spice.domain.enums import KeyboardModifier, MsgcInputs, MsgInputs
from spice.domain.errors import MessageDecodeError
from spice.domain.messages import inputs as m


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_server_messages() -> None:
    mods = KeyboardModifier.NUM_LOCK | KeyboardModifier.CAPS_LOCK
    assert m.InputsInit(mods).encode() == h("0600")
    assert m.InputsKeyModifiers(KeyboardModifier.SCROLL_LOCK).encode() == h("0100")
    assert m.MouseMotionAck().encode() == b""
    assert (m.InputsInit.MSG_TYPE, m.InputsKeyModifiers.MSG_TYPE, m.MouseMotionAck.MSG_TYPE) == (
        MsgInputs.INIT,
        102,
        111,
    )


def test_key_down_up() -> None:
    assert m.KeyDown.decode(h("e0480000")) == m.KeyDown(0x48E0)
    assert m.KeyUp.decode(h("9e000000")) == m.KeyUp(0x9E)


def test_key_modifiers() -> None:
    assert m.ClientKeyModifiers.decode(h("0700")) == m.ClientKeyModifiers(7)


def test_key_scancode_is_the_whole_body() -> None:
    assert m.KeyScancode.decode(h("e048e0c8")).data == h("e048e0c8")
    assert m.KeyScancode.decode(b"").data == b""


def test_mouse_motion() -> None:
    body = h("ffffffff 02000000 0400")
    assert len(body) == 10
    assert m.MouseMotion.decode(body) == m.MouseMotion(dx=-1, dy=2, buttons=4)


def test_mouse_position_is_11_bytes() -> None:
    body = h("00010000 00020000 0100 02")
    assert m.MousePosition.decode(body) == m.MousePosition(
        x=0x100, y=0x200, buttons=1, display_id=2
    )
    with pytest.raises(MessageDecodeError):
        m.MousePosition.decode(body[:10])


def test_mouse_press_release() -> None:
    assert m.MousePress.decode(h("01 0100")) == m.MousePress(button=1, buttons=1)
    assert m.MouseRelease.decode(h("04 0000")) == m.MouseRelease(button=4, buttons=0)
    with pytest.raises(MessageDecodeError):
        m.MouseRelease.decode(h("04 00"))


def test_client_registry() -> None:
    assert set(m.CLIENT_MESSAGES) == set(MsgcInputs)
    for number, cls in m.CLIENT_MESSAGES.items():
        assert cls.MSG_TYPE == number


@pytest.mark.parametrize("cls", list(m.CLIENT_MESSAGES.values()), ids=lambda c: c.__name__)
@given(body=st.binary(max_size=32))
def test_client_decode_never_fails_otherwise(cls: Any, body: bytes) -> None:
    try:
        msg = cls.decode(body)
    except MessageDecodeError:
        return
    assert isinstance(msg, cls)
