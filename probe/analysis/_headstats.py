"""Per-head attention statistics (Clark et al. 2019; Dosovitskiy et al. 2021).

Kevin Clark, Urvashi Khandelwal, Omer Levy and Christopher D. Manning, "What Does BERT Look
At? An Analysis of BERT's Attention", BlackboxNLP 2019: entropy, attention to special
tokens, to the token itself and to its neighbours. Alexey Dosovitskiy et al., "An Image is
Worth 16x16 Words", ICLR 2021, Fig. 7: mean attention distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._index import batch_position
from probe.analysis._finite import check_trace_finite
from probe.analysis._trace_input import require_trace

if TYPE_CHECKING:
    import torch

    from probe.capture._trace import Trace

__all__ = ["HeadStats", "head_stats"]

_METRICS = ("entropy", "mean_distance", "special_mass", "self_mass", "prev_mass", "next_mass")


@dataclass(frozen=True)
class HeadStats:
    """Statistics of every captured head; each metric is a ``[layer, head]`` float64 tensor.

    Attributes:
        entropy: entropy of each query's attention row in nats.
        mean_distance: attention-weighted distance between query and key: in token
            positions for text, in patch units (Euclidean, over patch tokens) for vision.
        special_mass: attention on special tokens ([CLS], [SEP], BOS/EOS, vision prefix).
        self_mass: attention of a token on itself.
        prev_mass: attention on the previous token.
        next_mass: attention on the next token.
        layer_indices: the model's layer index of each row.
        head_indices: the model's head index of each column (``None``: heads averaged).
    """

    entropy: torch.Tensor
    mean_distance: torch.Tensor
    special_mass: torch.Tensor
    self_mass: torch.Tensor
    prev_mass: torch.Tensor
    next_mass: torch.Tensor
    layer_indices: tuple[int, ...]
    head_indices: tuple[int, ...] | None

    def as_dict(self) -> dict[str, torch.Tensor]:
        """The metrics by name, each ``[layer, head]``."""
        return {name: getattr(self, name) for name in _METRICS}

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per head (``layer``, ``head`` and every metric as a float), for tables.

        ``head`` is ``None`` when heads were averaged during capture.
        """
        rows = []
        for li, layer in enumerate(self.layer_indices):
            for hi in range(self.entropy.shape[1]):
                head = None if self.head_indices is None else self.head_indices[hi]
                row: dict[str, Any] = {"layer": layer, "head": head}
                row.update({name: float(getattr(self, name)[li, hi]) for name in _METRICS})
                rows.append(row)
        return rows


def head_stats(trace: Trace, batch_index: int | None = None) -> HeadStats:
    """Statistics of every captured head (Clark et al. 2019; Dosovitskiy et al. 2021).

    Following Clark et al. 2019 ("What Does BERT Look At?"), for each head: the entropy of
    the attention distribution of a query (nats, ``-sum_k a log a``), the attention mass on
    special tokens (``trace.special_tokens_mask`` and the prefix tokens), on the token itself,
    on the previous token and on the next token; and, following Dosovitskiy et al. 2021
    (ViT, Fig. 7), the mean attention distance ``sum_k a[q, k] * d(q, k)``. For text,
    ``d = |q - k|`` in token positions. For vision, ``d`` is the Euclidean distance between
    patch centres in patch units (multiply by the patch size for pixels); only patch queries
    count and each row's weights are renormalised over patch keys, so attention to prefix
    tokens (which have no position) does not shrink the distance.

    Every statistic is computed per query row and averaged over the real (non-padding)
    query tokens; ``prev_mass`` only counts queries that have a real previous token and
    ``next_mass`` only queries that have a real next token (an item without any such query
    has no value, ``nan``). With ``batch_index=None`` the per-item averages are then averaged
    over the batch items that have a value (``nan`` only when none has).

    Args:
        trace: any trace with per-layer attention.
        batch_index: one batch item, or ``None`` for the average over the batch.

    Non-finite attention (NaN, inf) raises :class:`ProbeError` naming its layer and head.

    Returns:
        :class:`HeadStats` of ``[layer, head]`` float64 tensors.
    """
    require_trace(trace, "probe.head_stats")
    import torch

    attentions = trace.require_attentions()
    if batch_index is None:
        items = list(range(trace.batch_size))
    else:
        items = [batch_position(batch_index, trace.batch_size, none_for_all=True)]
    if trace.is_vision and trace.grid is None:
        raise ProbeError("this vision trace has no patch grid; capture it with probe.trace")

    check_trace_finite(
        attentions if len(items) == trace.batch_size else attentions[:, items], "head_stats",
        trace, items=items,
    )
    per_item = [_item_stats(trace, attentions[:, b].double(), b) for b in items]
    # an item where a statistic is undefined (NaN: a one-token item has no previous token)
    # is left out of that statistic's batch average; it made the whole batch's NaN
    stacked = {name: torch.stack([s[name] for s in per_item]).nanmean(0) for name in _METRICS}
    return HeadStats(
        **stacked, layer_indices=tuple(trace.layer_indices), head_indices=trace.head_indices
    )


def _row_mean(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` ``[layer, head, query]`` over the query rows selected by ``rows``."""
    if not bool(rows.any()):
        return values.new_full(values.shape[:2], float("nan"))
    return values[..., rows].mean(-1)


def _item_stats(trace: Trace, attn: torch.Tensor, b: int) -> dict[str, torch.Tensor]:
    """Statistics of batch item ``b``; ``attn`` is its ``[layer, head, query, key]``."""
    import torch

    n = attn.shape[-1]
    real = trace.attention_mask[b].to(device=attn.device, dtype=torch.bool)
    attn = attn * real.to(attn.dtype)  # weight on padded keys does not count
    positions = torch.arange(n, device=attn.device)
    special = trace.special_tokens_mask[b].to(device=attn.device, dtype=torch.bool)
    special = (special | (positions < trace.num_prefix_tokens)) & real

    entropy = -torch.special.xlogy(attn, attn).sum(-1)
    diag = attn.diagonal(dim1=-2, dim2=-1)
    prev = torch.zeros_like(diag)
    prev[..., 1:] = attn.diagonal(offset=-1, dim1=-2, dim2=-1)
    nxt = torch.zeros_like(diag)
    nxt[..., :-1] = attn.diagonal(offset=1, dim1=-2, dim2=-1)
    has_prev = real & torch.cat([real.new_zeros(1), real[:-1]])
    has_next = real & torch.cat([real[1:], real.new_zeros(1)])

    if trace.is_vision:
        distance, distance_rows = _patch_distance(trace, attn, real)
    else:
        dist = (positions[:, None] - positions[None, :]).abs().to(attn.dtype)
        distance, distance_rows = (attn * dist).sum(-1), real
    return {
        "entropy": _row_mean(entropy, real),
        "mean_distance": _row_mean(distance, distance_rows),
        "special_mass": _row_mean(attn[..., special].sum(-1), real),
        "self_mass": _row_mean(diag, real),
        "prev_mass": _row_mean(prev, has_prev),
        "next_mass": _row_mean(nxt, has_next),
    }


def _patch_distance(
    trace: Trace, attn: torch.Tensor, real: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query, the patch-space distance ``[layer, head, query]`` and the rows that count."""
    import torch

    rows, cols = trace.grid  # type: ignore[misc]
    prefix = trace.num_prefix_tokens
    n = attn.shape[-1]
    if prefix + rows * cols + trace.num_suffix_tokens != n:
        raise ProbeError(
            f"the trace has {n} tokens but num_prefix_tokens={prefix} and grid {rows}x{cols} "
            f"need {prefix + rows * cols + trace.num_suffix_tokens}; fix the trace's grid or "
            "num_prefix_tokens"
        )
    end = prefix + rows * cols
    index = torch.arange(rows * cols, device=attn.device)
    coords = torch.stack([index // cols, index % cols], -1).to(attn.dtype)  # [patch, 2]
    dist = torch.cdist(coords, coords)  # [patch, patch]
    patch_attn = attn[..., prefix:end, prefix:end]
    mass = patch_attn.sum(-1)
    distance = torch.zeros(attn.shape[:-1], dtype=attn.dtype, device=attn.device)
    distance[..., prefix:end] = (patch_attn * dist).sum(-1) / mass.clamp_min(1e-30)
    counted = real.clone()
    counted[:prefix] = False
    counted[end:] = False  # tokens after the patches (YOLOS) have no place on the grid
    return distance, counted
