"""The one check of a ``batch_index=`` argument, and of a model layer or head among those a trace
kept, shared by the views, the analyses and the commands.

``probe.show``, ``probe.plot``, the HTML viewers and the analysis functions (``probe.coref``,
``probe.patch_maps``, ``probe.attention_flow``, ``probe.head_stats``, ``probe.alignment``, ...)
pick a batch item the same way: an integer (Python or numpy, not a bool) in ``0..n-1``, or
``-n..-1`` counting from the end as Python does; anything else is a :class:`~probe.ProbeError`
whose message names the range (and ``None`` where the function also takes it for every item).

A ``layer=`` / ``head=`` counts the MODEL's layers and heads, even in a trace that kept only
some (``probe.trace(layers=[1, 3])``): :func:`model_position` finds where the model's layer
sits among the kept ones, a negative one counting back from the model's last.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from probe._errors import ProbeError

__all__ = ["batch_position", "in_range", "is_flag", "is_int", "is_real", "model_position"]


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


def in_range(value: int, count: int, *, name: str = "layer", unit: str = "layers",
             owner: str = "the model") -> int:
    """``value`` (an integer) checked against ``count`` of them, as a position in
    ``range(count)``: the one "out of range" message of a layer (head, block) of the model.

    Raises:
        ProbeError: outside ``-count..count-1``: "layer 5 is out of range: the model has 3
            layers (use -3..2; negative counts from the end)".
    """
    if not -count <= value < count:
        raise ProbeError(f"{name} {value} is out of range: {owner} has {count} {unit} (use "
                         f"{-count}..{count - 1}; negative counts from the end)")
    return value % count


def model_position(value: Any, kept: Sequence[int], count: int, *, name: str = "layer",
                   unit: str = "layers", owner: str = "the model", fix: str | None = None,
                   missing: str = "was not captured") -> int:
    """Position in ``kept`` (the model's indices a stack holds, in its order) of the model's
    ``name`` ``value``.

    Args:
        value: the model's layer (or head); negative counts back from the model's last, as
            ``probe.trace(layers=...)`` does.
        kept: the model's index of each kept layer (head), e.g. ``stack.layer_indices``.
        count: the model's number of them (``stack.num_model_layers`` / ``num_heads``); 0 when
            unknown: then a negative ``value`` counts back from the last one kept.
        name, unit, owner: words of the messages: ``"head"``, ``"heads"``, ``"the decoder"``
            give "head 5 is out of range: the decoder has 4 heads".
        fix: what to do when ``value`` was not kept (default: capture it again with
            ``{name}s=[...]`` including it).
        missing: how a value not kept is said ("was not captured", "is not in this
            alignment").

    Raises:
        ProbeError: not an integer (a bool, float, ``None``), beyond the model, or not kept;
            the message names the range or the kept ones, and the fix.
    """
    kept = [int(k) for k in kept]
    if not is_int(value):
        raise ProbeError(f"{name} must be an integer ({owner}'s {name}; negative counts from "
                         f"the end), got {value!r}")
    value = int(value)
    if count:
        in_range(value, count, name=name, unit=unit, owner=owner)
    index = value
    if value < 0 and count:
        index = value % count  # -1: the model's last, kept or not
    elif value < 0:  # count unknown: -1 is the last kept
        if value < -len(kept):
            raise ProbeError(f"{name} {value} is out of range: {len(kept)} {unit} were kept "
                             f"(use {kept} or {-len(kept)}..-1 from the last kept)")
        index = kept[value]
    if index not in kept:
        alias = "" if index == value else f" ({owner}'s {name} {index})"
        todo = fix if fix is not None else (
            f"capture it again with {name}s=[...] including {index} (or {name}s=None)")
        raise ProbeError(f"{name} {value}{alias} {missing} (kept {name}s: {kept}); {todo}")
    return kept.index(index)
