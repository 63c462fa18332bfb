"""Which error a Trio task group stands for: the server's own nurseries wrap what ended them
in exception groups, and a caller wants the one cause (the public API, a channel's writer)."""

from __future__ import annotations

import trio


def single_error(
    group: BaseExceptionGroup[BaseException], *, prefer: tuple[type[BaseException], ...] = ()
) -> BaseException:
    """The one error ``group`` stands for: its only leaf that is not a cancellation; with
    several, the first of a ``prefer`` type (the client leaving, seen by two tasks at once);
    else the group itself."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)

    walk(group)
    if len(leaves) == 1:
        return leaves[0]
    preferred = [exc for exc in leaves if isinstance(exc, prefer)]
    return preferred[0] if preferred else group
