"""Attention flow (Abnar & Zuidema 2020): maximum flow through the layered attention graph.

Samira Abnar and Willem Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from probe._errors import ProbeError
from probe.analysis._fusion import HeadFusion, check_head_fusion, fuse_heads
from probe.analysis._rollout import consecutive_layers, residual_attention

if TYPE_CHECKING:
    import torch

    from probe.capture._trace import Trace

__all__ = ["attention_flow", "DEFAULT_MAX_TOKENS"]

# networkx's max-flow algorithms are exact on integer capacities only (float round-off can
# break them), so capacities are stored as integers in units of 1e-9.
_CAPACITY_SCALE = 10**9

#: Default size limit of :func:`attention_flow`, in real tokens of one batch item.
DEFAULT_MAX_TOKENS = 24


def attention_flow(
    trace: Trace,
    head_fusion: HeadFusion = "mean",
    batch_index: int | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    start_layer: int = 0,
    normalize: bool = True,
) -> torch.Tensor:
    """Attention flow (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").

    The layered graph has a node ``(l, t)`` for every layer boundary ``l = 0..L`` and real
    token ``t``; the edge ``(l, j) -> (l + 1, i)`` has capacity ``A_hat_l[i, j]``, the
    head-fused attention of layer ``l`` with the residual connection
    (``0.5 * A + 0.5 * I``, rows renormalised, exactly as in :func:`probe.rollout` without
    discarding). ``flow[b, i, j]`` is the maximum flow from input node ``(0, j)`` to output
    node ``(L, i)``, computed with networkx (Boykov-Kolmogorov) on integer capacities in
    units of ``1e-9`` (networkx's max-flow algorithms are only exact on integers), so
    values are exact up to about ``1e-9`` per edge.

    Normalisation: each source/sink pair is solved separately, so the raw flows into one
    output token can add up to more than 1. With ``normalize=True`` (the paper's convention)
    each real row is divided by its sum, so every row sums to 1; ``normalize=False`` returns
    the raw max-flow values. Padded keys get 0 and padded query rows are identity rows.

    Cost: for ``T`` real tokens and ``L`` layers, ``T**2`` max-flow problems on a graph of
    ``(L + 1) * T`` nodes and ``L * T**2`` edges, so time grows like ``L * T**4``: on one CPU
    core about 3 s for 16 tokens and 6 layers, 15 s for 24 tokens, a minute for 32.
    Items with more than ``max_tokens`` real tokens raise :class:`ProbeError`; use
    :func:`probe.rollout` for long inputs, or raise ``max_tokens`` knowingly.

    Args:
        trace: a trace holding every layer from ``start_layer`` on.
        head_fusion: ``"mean"``, ``"max"``, ``"min"`` or a registered fusion.
        batch_index: compute only this batch item (the batch dimension is kept, size 1);
            ``None`` computes every item.
        max_tokens: size limit in real tokens per batch item (see Cost).
        start_layer: first model layer of the graph (the model's numbering).
        normalize: divide each row by its sum (see Normalisation).

    Returns:
        ``[batch, query, key]`` float64 tensor (``batch`` is 1 when ``batch_index`` is given).
    """
    import networkx as nx
    import torch
    from networkx.algorithms.flow import boykov_kolmogorov, build_residual_network

    check_head_fusion(head_fusion)
    attentions = trace.require_attentions()
    if trace.head_indices is None and head_fusion != "mean":
        raise ProbeError(
            f"heads were averaged during capture, so head_fusion={head_fusion!r} cannot be "
            "computed; use head_fusion='mean' or capture again with heads=None"
        )
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ProbeError(f"max_tokens must be a positive int, got {max_tokens!r}")
    positions = consecutive_layers(trace, start_layer, "attention_flow")
    items = _batch_items(trace, batch_index)
    lengths = {b: trace.valid_length(b) for b in items}
    too_long = {b: n for b, n in lengths.items() if n > max_tokens}
    if too_long:
        b, n = next(iter(too_long.items()))
        raise ProbeError(
            f"attention_flow is exact but slow: batch item {b} has {n} real tokens, above "
            f"max_tokens={max_tokens}; use probe.rollout for long inputs or pass "
            f"max_tokens={n} knowingly (cost grows like tokens**4 * layers)"
        )

    seq = trace.seq_len
    mask = trace.attention_mask.bool()
    out = torch.zeros(len(items), seq, seq, dtype=torch.float64)
    for row, b in enumerate(items):
        real = torch.nonzero(mask[b]).flatten().tolist()
        a_hats = [
            residual_attention(
                fuse_heads(attentions[pos, b : b + 1], head_fusion), key_mask=mask[b : b + 1]
            )[0].double().cpu()
            for pos in positions
        ]
        graph = nx.DiGraph()
        for layer, a_hat in enumerate(a_hats):
            weights = a_hat.tolist()
            for i in real:
                for j in real:
                    capacity = round(weights[i][j] * _CAPACITY_SCALE)
                    if capacity > 0:
                        graph.add_edge((layer, j), (layer + 1, i), capacity=capacity)
        top = len(a_hats)
        residual = build_residual_network(graph, "capacity")
        for i in real:
            for j in real:
                value = nx.maximum_flow_value(
                    graph, (0, j), (top, i), flow_func=boykov_kolmogorov, residual=residual
                )
                out[row, i, j] = value / _CAPACITY_SCALE
        if normalize:
            block = out[row][real][:, real]
            out[row, torch.tensor(real)[:, None], torch.tensor(real)[None, :]] = (
                block / block.sum(-1, keepdim=True)
            )
        for i in range(seq):
            if not bool(mask[b, i]):
                out[row, i, i] = 1.0
    return out


def _batch_items(trace: Trace, batch_index: int | None) -> list[int]:
    """Batch items to compute: all of them, or the one ``batch_index`` names."""
    if batch_index is None:
        return list(range(trace.batch_size))
    if isinstance(batch_index, bool) or not isinstance(batch_index, int):
        raise ProbeError(f"batch_index must be an int or None, got {batch_index!r}")
    if not -trace.batch_size <= batch_index < trace.batch_size:
        raise ProbeError(
            f"batch_index {batch_index} is out of range for a batch of {trace.batch_size}; "
            f"use 0..{trace.batch_size - 1} or None for all"
        )
    return [batch_index % trace.batch_size]
