"""Cursor channel bodies against layouts written out by hand from spice.proto."""

from __future__ import annotations

import pytest

from spice.domain.enums import CursorFlags, CursorType, MsgCursor
from spice.domain.messages import cursor as m


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def shape_1x1(**kwargs: object) -> m.CursorShape:
    args: dict[str, object] = {
        "unique": 0x99,
        "width": 1,
        "height": 1,
        "hot_x": 0,
        "hot_y": 0,
        "pixels": h("11223344"),
    } | kwargs
    return m.CursorShape(**args)  # type: ignore[arg-type]


def test_init_without_shape() -> None:
    msg = m.CursorInit(x=10, y=-2, visible=True, shape=None)
    assert msg.MSG_TYPE == MsgCursor.INIT
    assert msg.MSG_TYPE == 101
    assert msg.encode() == h(
        "0a00 feff"  # position (int16)
        " 0000 0000"  # trail length, frequency
        " 01"  # visible
        " 0100"  # SpiceCursor flags NONE
    )


def test_init_with_shape_and_trail() -> None:
    msg = m.CursorInit(1, 2, False, shape_1x1(), trail_length=3, trail_frequency=4)
    body = msg.encode()
    assert body == h(
        "0100 0200 0300 0400 00"
        " 0000"  # flags
        " 9900000000000000 00 0100 0100 0000 0000"  # unique, ALPHA, w, h, hot x, hot y
        " 11223344"
    )
    assert len(body) == 9 + 2 + 17 + 4


def test_set() -> None:
    msg = m.CursorSet(5, 6, True, shape_1x1(hot_x=1, hot_y=1, flags=CursorFlags.CACHE_ME))
    assert msg.MSG_TYPE == 103
    assert msg.encode() == h("0500 0600 01 0200 9900000000000000 00 0100 0100 0100 0100 11223344")


def test_set_hidden() -> None:
    assert m.CursorSet(0, 0, False, None).encode() == h("0000 0000 00 0100")


def test_set_from_cache_has_header_only() -> None:
    shape = shape_1x1(pixels=b"", flags=CursorFlags.FROM_CACHE)
    assert m.CursorSet(0, 0, True, shape).encode() == h(
        "0000 0000 01 0400 9900000000000000 00 0100 0100 0000 0000"
    )


def test_move_trail_inval() -> None:
    assert m.CursorMove(-1, 2).encode() == h("ffff 0200")
    assert m.CursorTrail(3, 4).encode() == h("0300 0400")
    assert m.CursorInvalOne(0x0102030405060708).encode() == h("0807060504030201")
    assert (m.CursorMove.MSG_TYPE, m.CursorTrail.MSG_TYPE, m.CursorInvalOne.MSG_TYPE) == (
        104,
        106,
        107,
    )


@pytest.mark.parametrize(
    ("cls", "number"), [(m.CursorReset, 102), (m.CursorHide, 105), (m.CursorInvalAll, 108)]
)
def test_empty_messages(cls: type[m.CursorHide], number: int) -> None:
    assert cls.MSG_TYPE == number
    assert cls().encode() == b""


def test_alpha_shape_size() -> None:
    shape = m.CursorShape(1, 32, 16, 0, 0, bytes(32 * 16 * 4))
    assert len(shape.encode()) == 2 + 17 + 32 * 16 * 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pixels": bytes(3)},  # ALPHA size mismatch
        {"width": 513, "pixels": bytes(513 * 4)},
        {"height": 600, "pixels": bytes(600 * 4)},
        {"flags": CursorFlags.NONE},
        {"flags": CursorFlags.FROM_CACHE},  # with pixels
        {"hot_x": -1},
        {"unique": 1 << 64},
    ],
)
def test_shape_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        shape_1x1(**kwargs)


def test_non_alpha_shape_is_not_size_checked() -> None:
    shape = shape_1x1(type=CursorType.MONO, pixels=h("00ff"))
    assert shape.encode()[10] == CursorType.MONO


def test_position_must_fit_int16() -> None:
    with pytest.raises(ValueError):
        m.CursorMove(0x8000, 0)


def test_client_sends_nothing_cursor_specific() -> None:
    assert m.CLIENT_MESSAGES == {}
