"""The one check of a ``batch_index=`` argument, shared by the views, the analyses and the commands.

``probe.show``, ``probe.plot``, the HTML viewers and the analysis functions (``probe.coref``,
``probe.patch_maps``, ``probe.attention_flow``, ``probe.head_stats``, ``probe.alignment``, ...)
pick a batch item the same way: an integer (Python or numpy, not a bool) in ``0..n-1``, or
``-n..-1`` counting from the end as Python does; anything else is a :class:`~probe.ProbeError`
whose message names the range (and ``None`` where the function also takes it for every item).
"""

from __future__ import annotations

import numbers
from typing import Any

from probe._errors import ProbeError

__all__ = ["batch_position", "is_flag", "is_int", "is_real"]


def is_int(value: Any) -> bool:
    """An integer argument: a Python or numpy integer, not a bool (``layer=np.int64(2)`` is
    layer 2; ``True`` and ``1.0`` are not layers)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_flag(value: Any) -> bool:
    """A True/False argument: a Python or numpy bool (``np.True_`` counts; ``"no"``, ``None``
    and ``1`` are no flags, whose truthiness would decide silently)."""
    return isinstance(value, bool) or (type(value).__name__ in ("bool", "bool_")
                                       and type(value).__module__ == "numpy")


def is_real(value: Any) -> bool:
    """A real-number argument: a Python or numpy int or float, not a bool
    (``discard_ratio=np.float32(0.5)`` is 0.5)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def batch_position(batch_index: Any, n: int, *, none_for_all: bool = False) -> int:
    """``batch_index`` checked against a batch of ``n`` items, as a position in ``range(n)``.

    Args:
        batch_index: the batch item; negative counts from the end (``-1`` is the last).
        n: the batch size.
        none_for_all: the caller also takes ``None`` (every item) and has handled it before
            this check; the message then names ``None`` too.

    Raises:
        ProbeError: not an integer (a bool, float or ``None``), or outside ``-n..n-1``.
    """
    span = f"0..{n - 1} (or {-n}..-1 from the end)"
    if none_for_all:
        span += ", or None for every item"
    if isinstance(batch_index, bool) or not isinstance(batch_index, numbers.Integral):
        raise ProbeError(f"batch_index must be an integer in {span}, got {batch_index!r}")
    if not -n <= int(batch_index) < n:
        raise ProbeError(f"batch_index must be in {span}, got {batch_index!r}")
    return int(batch_index) % n
