"""The one check of a ``batch_index=`` argument, shared by the views and the commands.

``probe.show``, ``probe.plot`` and the HTML viewers pick a batch item the same way: an
integer (Python or numpy, not a bool) in ``0..n-1``, or ``-n..-1`` counting from the end
as Python does; anything else is a :class:`~probe.ProbeError` whose message names the range.
"""

from __future__ import annotations

import numbers
from typing import Any

from probe._errors import ProbeError

__all__ = ["batch_position"]


def batch_position(batch_index: Any, n: int) -> int:
    """``batch_index`` checked against a batch of ``n`` items, as a position in ``range(n)``.

    Args:
        batch_index: the batch item; negative counts from the end (``-1`` is the last).
        n: the batch size.

    Raises:
        ProbeError: not an integer (a bool, float or ``None``), or outside ``-n..n-1``.
    """
    span = f"0..{n - 1} (or {-n}..-1 from the end)"
    if isinstance(batch_index, bool) or not isinstance(batch_index, numbers.Integral):
        raise ProbeError(f"batch_index must be an integer in {span}, got {batch_index!r}")
    if not -n <= int(batch_index) < n:
        raise ProbeError(f"batch_index must be in {span}, got {batch_index!r}")
    return int(batch_index) % n
