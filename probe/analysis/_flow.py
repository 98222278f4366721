"""Attention flow (Abnar & Zuidema 2020): maximum flow through the layered attention graph.

Samira Abnar and Willem Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from probe._index import batch_position, is_flag, is_int
from probe._errors import ProbeError
from probe.analysis._finite import check_trace_finite
from probe.analysis._fusion import HeadFusion, check_head_fusion, fuse_heads
from probe.analysis._rollout import consecutive_layers, residual_attention
from probe.analysis._trace_input import require_trace

if TYPE_CHECKING:
    import numpy as np
    import torch

    from probe.capture._trace import Trace

__all__ = ["attention_flow", "DEFAULT_MAX_ROW_TOKENS", "DEFAULT_MAX_TOKENS"]

#: Default size limit of :func:`attention_flow` for the full matrix, in real tokens of one item.
DEFAULT_MAX_TOKENS = 24
#: Default size limit when only some query rows are asked for (``rows=``).
DEFAULT_MAX_ROW_TOKENS = 256

_INT32_MAX = 2**31 - 1


def attention_flow(
    trace: Trace,
    head_fusion: HeadFusion = "mean",
    batch_index: int | None = None,
    max_tokens: int | None = None,
    start_layer: int = 0,
    normalize: bool = True,
    rows: Sequence[int] | None = None,
) -> torch.Tensor:
    """Attention flow (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").

    The layered graph has a node ``(l, t)`` for every layer boundary ``l = 0..L`` and real
    token ``t``; the edge ``(l, j) -> (l + 1, i)`` has capacity ``A_hat_l[i, j]``, the
    head-fused attention of layer ``l`` with the residual connection
    (``0.5 * A + 0.5 * I``, rows renormalised, exactly as in :func:`probe.rollout` without
    discarding). ``flow[b, i, j]`` is the maximum flow from input node ``(0, j)`` to output
    node ``(L, i)``, computed with scipy's Dinic solver on a sparse graph with integer
    capacities (``A_hat * S`` rounded, ``S = (2**31 - 1) // (T + 2)`` for ``T`` real tokens,
    about ``8.6e7`` at 24 tokens and ``1.6e7`` at 128), so values are exact up to about
    ``T / (2 S)``: below ``1e-6`` up to 256 tokens.

    Normalisation: each source/sink pair is solved separately, so the raw flows into one
    output token can add up to more than 1. With ``normalize=True`` (the paper's convention)
    each real row is divided by its sum, so every row sums to 1; ``normalize=False`` returns
    the raw max-flow values. Padded keys get 0 and padded query rows are identity rows.

    Rows: callers usually read one row (the CLS row of a ViT, the last token of a decoder).
    ``rows=[i, ...]`` solves only those output tokens (``T`` max-flow problems per row instead
    of ``T**2`` for the full matrix); the other rows of the result are 0. A row is normalised
    by its own sum, so a requested row equals the same row of the full matrix.

    Cost: one max-flow problem per (row, real token) on a graph of ``(L + 1) * T`` nodes and
    ``L * T**2`` edges. On one CPU core: the CLS row of vit-shapes (65 tokens, 4 layers) well
    under a second (see ``probe bench``), the full matrix of 24 tokens and 6 layers a few
    seconds. Items with more than ``max_tokens`` real tokens raise :class:`ProbeError`
    (default: 24 for the full matrix, 256 with ``rows``); use :func:`probe.rollout` for long
    inputs, or raise ``max_tokens`` knowingly.

    Args:
        trace: a trace holding every layer from ``start_layer`` on.
        head_fusion: ``"mean"``, ``"max"``, ``"min"`` or a registered fusion.
        batch_index: compute only this batch item (the batch dimension is kept, size 1);
            ``None`` computes every item.
        max_tokens: size limit in real tokens per batch item (see Cost).
        start_layer: first model layer of the graph (the model's numbering).
        normalize: divide each row by its sum (see Normalisation).
        rows: query positions to compute (negative counts from the end); ``None``: all.

    Non-finite attention (NaN, inf) raises :class:`ProbeError` naming its layer and head.

    Returns:
        ``[batch, query, key]`` float64 tensor (``batch`` is 1 when ``batch_index`` is given).
    """
    require_trace(trace, "probe.attention_flow")
    import torch

    check_head_fusion(head_fusion)
    if not is_flag(normalize):  # "False" and None normalised or not, silently
        raise ProbeError(f"normalize must be True or False, got {normalize!r}")
    attentions = trace.require_attentions()
    if trace.head_indices is None and head_fusion != "mean":
        raise ProbeError(
            f"heads were averaged during capture, so head_fusion={head_fusion!r} cannot be "
            "computed; use head_fusion='mean' or capture again with heads=None"
        )
    seq = trace.seq_len
    wanted = _rows(rows, seq)
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS if wanted is None else DEFAULT_MAX_ROW_TOKENS
    if not is_int(max_tokens) or max_tokens < 1:
        raise ProbeError(f"max_tokens must be a positive int, got {max_tokens!r}")
    positions = consecutive_layers(trace, start_layer, "attention_flow")
    items = _batch_items(trace, batch_index)
    lengths = {b: trace.valid_length(b) for b in items}
    too_long = {b: n for b, n in lengths.items() if n > max_tokens}
    if too_long:
        b, n = next(iter(too_long.items()))
        per = "tokens**4" if wanted is None else "rows * tokens**3"
        raise ProbeError(
            f"attention_flow is exact but slow: batch item {b} has {n} real tokens, above "
            f"max_tokens={max_tokens}; use probe.rollout for long inputs, ask for fewer rows "
            f"(rows=[...]) or pass max_tokens={n} knowingly (cost grows like {per} * layers)"
        )

    every = len(items) == trace.batch_size
    for pos in positions:  # the layers and items the graph is built from
        read = attentions[pos : pos + 1] if every else attentions[pos : pos + 1, items]
        check_trace_finite(read, "attention_flow", trace, positions=[pos], items=items)
    mask = trace.attention_mask.bool()
    out = torch.zeros(len(items), seq, seq, dtype=torch.float64)
    for row, b in enumerate(items):
        real = torch.nonzero(mask[b]).flatten().tolist()
        a_hats = [
            residual_attention(
                fuse_heads(attentions[pos, b : b + 1], head_fusion, check=False),
                key_mask=mask[b : b + 1],
            )[0].double().cpu()[real][:, real]
            for pos in positions
        ]
        index = {t: k for k, t in enumerate(real)}
        sinks = real if wanted is None else [i for i in wanted if i in index]
        flows = _max_flows([a.numpy() for a in a_hats], [index[i] for i in sinks])
        if normalize:
            flows = flows / flows.sum(-1, keepdims=True)
        cols = torch.tensor(real)
        for k, i in enumerate(sinks):
            out[row, i, cols] = torch.from_numpy(flows[k])
        for i in range(seq):
            if not bool(mask[b, i]) and (wanted is None or i in wanted):
                out[row, i, i] = 1.0
    return out


def _rows(rows: Sequence[int] | None, seq: int) -> list[int] | None:
    if rows is None:
        return None
    shown = rows
    if hasattr(rows, "tolist") and not is_int(rows) and getattr(rows, "dtype", None) is not None \
            and "bool" not in str(rows.dtype):  # a numpy array or tensor of positions
        rows = rows.tolist()
    if is_int(rows):  # 3 or np.int64(3): that one row
        rows = [rows]
    if not isinstance(rows, (list, tuple, range, set, frozenset)) or not all(
        is_int(r) for r in rows  # a float, a string or a generator used to be a TypeError
    ):
        raise ProbeError(f"rows must be a list of token positions (ints), got {shown!r}")
    rows = [int(r) for r in rows]
    if len(rows) == 0:
        raise ProbeError("rows is empty: pass None for every row")
    for r in rows:
        if not -seq <= r < seq:
            raise ProbeError(f"row {r} is out of range for {seq} tokens; use 0..{seq - 1}")
    return sorted({r % seq for r in rows})


def _max_flows(a_hats: list[np.ndarray], sinks: list[int]) -> np.ndarray:
    """Raw max flows ``[len(sinks), T]`` from every input node to each output node ``sinks``.

    Node ``l * T + t`` is token ``t`` at layer boundary ``l``; ``a_hats[l][i, j]`` is the
    capacity of the edge ``(l, j) -> (l + 1, i)``.
    """
    import numpy as np
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import maximum_flow

    n, layers = a_hats[0].shape[0], len(a_hats)
    scale = _INT32_MAX // (n + 2)  # no sum of n + 1 capacities can overflow int32
    src, dst, cap = [], [], []
    grid_i, grid_j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    for layer, a_hat in enumerate(a_hats):
        c = np.rint(a_hat * scale).astype(np.int64)
        keep = c > 0
        src.append(layer * n + grid_j[keep])
        dst.append((layer + 1) * n + grid_i[keep])
        cap.append(c[keep])
    size = (layers + 1) * n
    graph = csr_array(
        (np.concatenate(cap).astype(np.int32), (np.concatenate(src), np.concatenate(dst))),
        shape=(size, size),
    )
    out = np.zeros((len(sinks), n), dtype=np.float64)
    for k, i in enumerate(sinks):
        sink = layers * n + i
        for j in range(n):
            out[k, j] = maximum_flow(graph, j, sink).flow_value
    return out / scale


def _batch_items(trace: Trace, batch_index: int | None) -> list[int]:
    """Batch items to compute: all of them, or the one ``batch_index`` names."""
    if batch_index is None:
        return list(range(trace.batch_size))
    return [batch_position(batch_index, trace.batch_size, none_for_all=True)]
