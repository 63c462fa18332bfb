"""X selections and the SPICE clipboard: which X targets stand for which clipboard type, and
how text changes encoding on the way. Pure: the X side (:mod:`adapters.sources.x11_selection`)
asks these questions with names it read from the X server and bytes it got.

ICCCM's rules, as spice-vdagent applies them in a guest: text is offered as UTF8_STRING (and
its MIME name), STRING (ISO Latin-1) and TEXT (the owner picks: UTF-8 here, as GTK does); a
PNG image as ``image/png``. When reading an X owner, UTF-8 forms win over Latin-1 ones and
TEXT/COMPOUND_TEXT are not asked for (their encoding is the owner's choice).
"""

from __future__ import annotations

from spice.domain.agent.machine import PNG_SIGNATURE
from spice.domain.agent.messages import ClipboardSelection, ClipboardType

#: X selection atom names by SPICE selection (SECONDARY is not shared: no X program uses it).
X_SELECTIONS: dict[int, str] = {
    ClipboardSelection.CLIPBOARD: "CLIPBOARD",
    ClipboardSelection.PRIMARY: "PRIMARY",
}
#: The names :class:`spice.Clipboard` calls them.
SELECTION_NAMES: dict[int, str] = {
    ClipboardSelection.CLIPBOARD: "clipboard",
    ClipboardSelection.PRIMARY: "primary",
}

UTF8_TARGETS = ("UTF8_STRING", "text/plain;charset=utf-8")
LATIN1_TARGETS = ("STRING",)
#: Every target offered for text, in the order TARGETS lists them.
TEXT_TARGETS = (*UTF8_TARGETS, "STRING", "TEXT")
PNG_TARGET = "image/png"
#: Targets answered without asking a client.
META_TARGETS = ("TARGETS", "TIMESTAMP")


def targets_for(types: tuple[int, ...]) -> list[str]:
    """What to list in TARGETS for a client's offer of these ClipboardType numbers."""
    targets = list(META_TARGETS)
    if ClipboardType.UTF8_TEXT in types:
        targets += TEXT_TARGETS
    if ClipboardType.IMAGE_PNG in types:
        targets.append(PNG_TARGET)
    return targets


def spice_type_for(target: str) -> int | None:
    """The ClipboardType a target is read as from the client, None for one not offered."""
    if target in TEXT_TARGETS:
        return ClipboardType.UTF8_TEXT
    if target == PNG_TARGET:
        return ClipboardType.IMAGE_PNG
    return None


def x_value(target: str, data: bytes) -> tuple[str, bytes]:
    """The property type and bytes that answer ``target`` with a client's ``data`` (UTF-8
    text, perhaps NUL-terminated as Windows clients send it, or a PNG)."""
    if target == PNG_TARGET:
        return PNG_TARGET, data
    text = data.split(b"\0", 1)[0]
    if target in LATIN1_TARGETS:
        return "STRING", text.decode("utf-8", "replace").encode("latin-1", "replace")
    # UTF-8 targets answer in their own type; TEXT leaves the choice to us: UTF-8.
    type_name = target if target in UTF8_TARGETS else "UTF8_STRING"
    return type_name, text.decode("utf-8", "replace").encode("utf-8")


def text_target(targets: list[str] | None) -> str | None:
    """Which target to read an X owner's text as (None: it has none). An owner that did not
    answer TARGETS is asked for UTF8_STRING, as most programs hold text."""
    if targets is None:
        return UTF8_TARGETS[0]
    for name in (*UTF8_TARGETS, *LATIN1_TARGETS):
        if name in targets:
            return name
    return None


def text_from_x(prop_type: str, data: bytes) -> bytes | None:
    """An X owner's text as UTF-8, None when its type is not text we know."""
    if prop_type in ("UTF8_STRING", "text/plain;charset=utf-8"):
        return data.split(b"\0", 1)[0].decode("utf-8", "replace").encode("utf-8")
    if prop_type == "STRING":
        return data.split(b"\0", 1)[0].decode("latin-1").encode("utf-8")
    return None


def png_from_x(prop_type: str, data: bytes) -> bytes | None:
    """An X owner's ``image/png`` answer, if it is one."""
    if prop_type == PNG_TARGET and data.startswith(PNG_SIGNATURE):
        return data
    return None
