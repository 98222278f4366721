"""Refusing non-finite attention before an analysis turns it into a plausible-looking result.

A float16 overflow or a query row whose every key is masked makes a softmax return NaN (or
inf), and rollout, flow, statistics and coreference would carry it into their output, or rank
it silently. :func:`check_finite` costs one reduction over each tensor read; only
when that fails does it look for the first bad value, to name its layer, head and stack.
The one reduction is a sum (NaN and inf propagate through it), with the exact elementwise
test only when the sum is not finite, so an overflowing sum of finite values never raises.

``probe.trace`` itself never checks: it records exactly what the model computed (the NaN is
what one wants to see when debugging an overflow), and the check belongs to what reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch

__all__ = [
    "all_finite", "check_finite", "check_tensor_finite", "check_trace_finite",
    "check_view_finite", "stack_labels",
]

CAUSES = (
    "likely causes: a float16 overflow (load the model in float32 or bfloat16) or a query row "
    "with every key masked (give each item at least one real token); capture again once fixed"
)


def stack_labels(stack: Any, name: str) -> dict[str, Any]:
    """The labels :func:`check_finite` reads from a trace or :class:`AttentionStack`.

    Args:
        stack: a ``Trace``, ``AttentionStack`` or ``GenerationTrace`` (duck-typed: its
            ``layer_indices``, ``head_indices`` and ``query_indices``).
        name: what the stack is, for the message (``"self-attention"``, ``"cross-attention"``).
    """
    return {
        "stack": name,
        "layers": tuple(stack.layer_indices),
        "heads": stack.head_indices,
        "queries": getattr(stack, "query_indices", None),
    }


def all_finite(tensor: torch.Tensor) -> bool:
    """Whether every value of ``tensor`` is finite (integer tensors always are).

    One reduction: a sum is finite iff every term is, unless it overflows, and only then does
    the exact elementwise test decide; several times cheaper than ``isfinite().all()`` on CPU.
    """
    import math

    import torch

    if not tensor.is_floating_point():
        return True
    wide = torch.float64 if tensor.dtype == torch.float64 else torch.float32
    return math.isfinite(float(tensor.sum(dtype=wide))) or bool(torch.isfinite(tensor).all())


def check_finite(
    attn: torch.Tensor,
    analysis: str,
    *,
    stack: str = "attention",
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    queries: Sequence[int] | None = None,
    items: Sequence[int] | None = None,
    what: str = "attention",
) -> None:
    """Raise :class:`ProbeError` naming the first NaN or inf of ``attn``; otherwise nothing.

    Args:
        attn: ``[layer, batch, head, query, key]`` tensor the analysis is about to read.
        analysis: the caller's name, first in the message (``"rollout"``).
        stack: which attention this is (``"self-attention"``, ``"cross-attention"``).
        layers: the model layer of each entry of the layer dimension (``None``: positions).
        heads: the model head of each entry of the head dimension (``None``: heads averaged
            during capture when ``attn`` has one head, else positions).
        queries: the query position of each entry of the query dimension (row-selected
            traces); ``None``: positions.
        items: the batch item of each entry of the batch dimension; ``None``: positions.
        what: the tensor's name in the message (``"attention"``, ``"attention gradient"``).

    Raises:
        ProbeError: ``attn`` holds a NaN or an infinite value.
    """
    import torch

    if all_finite(attn):
        return
    bad = (~torch.isfinite(attn)).nonzero()
    layer, item, head, query, key = (int(v) for v in bad[0].tolist())
    value = float(attn[layer, item, head, query, key])
    kind = "NaN" if value != value else ("+inf" if value > 0 else "-inf")

    def label(index: int, names: Sequence[int] | None) -> int:
        return int(names[index]) if names is not None and index < len(names) else index

    if heads is None and attn.shape[2] == 1:
        head_text = "heads averaged"
    else:
        head_text = f"head {label(head, heads)}"
    where = (
        f"layer {label(layer, layers)}, {head_text} of the {stack} (batch item "
        f"{label(item, items)}, query {label(query, queries)}, key {key})"
    )
    scope = "that layer" if attn.shape[0] == 1 else "the layers read"
    raise ProbeError(
        f"{analysis}: the captured {what} is not finite: {kind} at {where}, {len(bad)} "
        f"non-finite value(s) in {scope}; {CAUSES}"
    )


def check_trace_finite(
    attn: torch.Tensor,
    analysis: str,
    source: Any,
    *,
    positions: Sequence[int] | None = None,
    queries: Sequence[int] | None = None,
    items: Sequence[int] | None = None,
    stack: str = "self-attention",
    what: str = "attention",
) -> None:
    """:func:`check_finite` with the labels of ``source`` (a trace or stack).

    Args:
        attn: ``[layer, batch, head, query, key]`` read from ``source``.
        positions: the kept-layer position of each entry of ``attn``'s layer dimension
            (``None``: all of ``source``'s layers, in order).
        queries: query positions of ``attn``'s rows (default: ``source.query_indices``).
        items: batch items of ``attn``'s batch dimension (default: all, in order).
        stack, what: as in :func:`check_finite`.
    """
    if all_finite(attn):
        return
    labels = stack_labels(source, stack)
    if positions is not None:
        labels["layers"] = tuple(labels["layers"][p] for p in positions)
    if queries is not None:
        labels["queries"] = tuple(queries)
    check_finite(attn, analysis, items=items, what=what, **labels)


def check_tensor_finite(tensor: torch.Tensor, analysis: str, dims: Sequence[str]) -> None:
    """:func:`check_finite` for a bare tensor of any rank (the building blocks, which know no
    trace): the first NaN or inf is named by its index along ``dims``.

    Args:
        tensor: the tensor the building block is about to read.
        analysis: the function's name, first in the message (``"fuse_heads"``).
        dims: the name of each dimension, last ones last (``("head", "query", "key")``);
            the index along leading dimensions beyond them is given as a tuple.

    Raises:
        ProbeError: ``tensor`` holds a NaN or an infinite value.
    """
    import torch

    if all_finite(tensor):
        return
    bad = (~torch.isfinite(tensor)).nonzero()
    index = [int(v) for v in bad[0].tolist()]
    value = float(tensor[tuple(index)])
    kind = "NaN" if value != value else ("+inf" if value > 0 else "-inf")
    names = list(dims)[-tensor.dim():] if tensor.dim() else []
    lead = len(index) - len(names)
    parts = [f"{name} {i}" for name, i in zip(names, index[lead:])]
    if lead:
        parts.insert(0, f"index {tuple(index[:lead])} of the leading dimensions")
    where = ", ".join(parts)
    raise ProbeError(
        f"{analysis}: the attention is not finite: {kind} at {where}, {len(bad)} non-finite "
        f"value(s) in the tensor passed; {CAUSES}"
    )


DRAW_ANYWAY = (
    "to draw it anyway, view trace.replace(attentions=torch.nan_to_num(trace.attentions)) "
    "(a trace is frozen: it makes a new one)"
)


def check_view_finite(
    trace: Any,
    view: str,
    batch_index: int,
    layer_positions: Sequence[int] | None = None,
    head_positions: Sequence[int] | None = None,
    stack: Any = None,
    stack_name: str = "self-attention",
) -> None:
    """Refuse to draw non-finite attention of a trace, naming the first NaN or inf by layer,
    head, item, query and key, the likely causes and a fix that works on a frozen trace.

    Args:
        trace: the trace the view reads (``stack`` defaults to it).
        view: the caller, first in the message (``"probe.plot 'model' view"``).
        batch_index: the item drawn.
        layer_positions, head_positions: positions (not model indices) in the stack's layer
            and head dimensions of what is drawn; ``None``: all.
        stack: a ``Trace`` or ``AttentionStack`` whose ``attentions`` are drawn.
        stack_name: what the stack is, for the message.
    """
    stack = trace if stack is None else stack
    attn = stack.attentions
    lpos = list(range(attn.shape[0])) if layer_positions is None else list(layer_positions)
    hpos = list(range(attn.shape[2])) if head_positions is None else list(head_positions)
    drawn = attn[lpos][:, batch_index:batch_index + 1][:, :, hpos]
    if all_finite(drawn):
        return
    layers = tuple(stack.layer_indices)
    heads = stack.head_indices
    try:
        check_finite(
            drawn, view, stack=stack_name, layers=[layers[p] for p in lpos],
            heads=None if heads is None else [heads[p] for p in hpos],
            queries=getattr(stack, "query_indices", None), items=[batch_index],
        )
    except ProbeError as err:
        fix = DRAW_ANYWAY
        if stack is not trace:
            fix = ("to draw it anyway, view trace.replace(cross=dataclasses.replace(trace.cross, "
                   "attentions=torch.nan_to_num(trace.cross.attentions))) (a trace is frozen: "
                   "it makes a new one)")
        raise ProbeError(f"{err}; or {fix}") from None
