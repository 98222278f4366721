"""Which way a viewer lays tokens out: ``direction="auto" | "ltr" | "rtl"``.

``"auto"`` (every viewer's default) reads the direction off the tokens themselves
(:func:`probe._text.text_direction`: the first strong character, as HTML's ``dir="auto"``,
special tokens such as ``[CLS]`` skipped), so an Arabic or Hebrew sentence runs from right
to left and every other sentence exactly as before. Only the layout changes: each token
keeps its own weights, wherever it is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from probe._errors import ProbeError
from probe._text import text_direction

__all__ = ["DIRECTIONS", "Direction", "check_direction", "is_rtl"]

Direction = Literal["auto", "ltr", "rtl"]
DIRECTIONS: tuple[str, ...] = ("auto", "ltr", "rtl")


def check_direction(direction: object) -> str:
    """``direction`` if it is one of :data:`DIRECTIONS`, else a one-line :class:`ProbeError`."""
    if not isinstance(direction, str) or direction not in DIRECTIONS:
        raise ProbeError(
            f"direction must be 'auto', 'ltr' or 'rtl', got {direction!r}: 'auto' (the "
            "default) reads it from the tokens' first strong letter"
        )
    return direction


def is_rtl(direction: object, *texts: Sequence[str] | None) -> bool:
    """Whether to lay tokens out right to left: ``direction="rtl"``, or ``"auto"`` and the
    first strong character of ``texts`` (token lists, read in order) is right-to-left."""
    if check_direction(direction) != "auto":
        return direction == "rtl"
    return text_direction([t for seq in texts if seq is not None for t in seq]) == "rtl"
