"""single_error: the one cause a task group stands for."""

from __future__ import annotations

from spice.adapters.connection import ClientGone
from spice.adapters.task_errors import single_error


def test_a_lone_leaf_is_the_cause_however_deep() -> None:
    cause = ValueError("x")
    assert single_error(ExceptionGroup("a", [ExceptionGroup("b", [cause])])) is cause


def test_several_leaves_give_the_preferred_one_or_the_group() -> None:
    gone = ClientGone("c: connection reset")
    group = ExceptionGroup("a", [ClientGone("c: first"), ExceptionGroup("b", [gone])])
    assert single_error(group, prefer=(ClientGone,)) is group.exceptions[0]
    mixed = ExceptionGroup("a", [ValueError("x"), KeyError("y")])
    assert single_error(mixed, prefer=(ClientGone,)) is mixed
    assert single_error(group) is group
