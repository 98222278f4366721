"""Agreement between attribution maps over the same units (tokens or patches).

Two methods that explain the same prediction can be compared by how similarly they *rank*
the input units, independently of their scales: Spearman's rank correlation, Kendall's tau-b
(the measure Jain & Wallace 2019, "Attention is not Explanation", use between attention and
gradient importance) and the overlap of the top-k units. :func:`compare` tabulates one of
them for every pair of methods as an :class:`AgreementTable`.

Every function takes one map ``[num_units]`` or a batch ``[batch, num_units]``, scores each
item on its own valid units (``mask``: padding and special tokens excluded) and by default
averages the per-item values, ignoring items where the value is undefined (``nan``: fewer
than two valid units, or a map that is constant over them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from probe.attribution._registry import Attribution
from probe._errors import ProbeError
from probe._index import is_int, is_real
from probe._report import markdown_table

if TYPE_CHECKING:
    import torch

    from probe.capture._trace import Trace

__all__ = [
    "AgreementTable",
    "compare",
    "kendall",
    "spearman",
    "topk_overlap",
    "unit_mask",
]

Metric = Literal["spearman", "kendall", "topk"]
Reduction = Literal["mean", "none"]
_METRICS: tuple[str, ...] = ("spearman", "kendall", "topk")

# Kendall's pairwise sign matrices are built this many entries at a time (memory bound).
_PAIR_CHUNK = 1 << 22


# --------------------------------------------------------------------------- inputs
def unit_mask(trace: Trace) -> torch.Tensor:
    """Valid attribution units of a trace: ``[batch, num_units]`` bool.

    Text: real (non-padding) tokens that are not special tokens ([CLS], [SEP], BOS, ...), one
    entry per token position, as in :attr:`probe.Attribution.scores`. Vision: every patch of the
    grid (prefix tokens are not units of vision attributions).
    """
    import torch

    if trace.grid is not None:
        rows, cols = trace.grid
        return torch.ones(trace.batch_size, rows * cols, dtype=torch.bool)
    return trace.attention_mask.bool() & ~trace.special_tokens_mask.bool()


def _scores(x: Any, name: str) -> torch.Tensor:
    import torch

    if isinstance(x, Attribution):
        x = x.scores
    if isinstance(x, (list, tuple)) or type(x).__name__ == "ndarray":
        import numpy as np

        try:  # np.argsort-era scores, json-loaded lists (were refused as no tensor)
            x = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError):
            pass
    if not isinstance(x, torch.Tensor):
        raise ProbeError(
            f"{name} must be scores [num_units] or [batch, num_units] (a tensor, numpy array "
            f"or list of numbers) or an Attribution, got {type(x).__name__}"
        )
    if x.dim() not in (1, 2) or x.shape[-1] == 0:
        raise ProbeError(
            f"{name} must have shape [num_units] or [batch, num_units], got {tuple(x.shape)}"
        )
    if x.is_complex():
        raise ProbeError(f"{name} must hold real scores, got {x.dtype}")
    x = x.detach().to("cpu", torch.float64)
    if torch.isnan(x).any():
        raise ProbeError(f"{name} contains NaN scores: fix the attribution before comparing")
    return x if x.dim() == 2 else x[None]


def _pair(
    a: Any, b: Any, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Both maps and the mask as ``[batch, num_units]`` (float64, float64, bool)."""
    import torch

    sa, sb = _scores(a, "a"), _scores(b, "b")
    if sa.shape[-1] != sb.shape[-1]:
        raise ProbeError(
            f"the maps score different units: {sa.shape[-1]} vs {sb.shape[-1]} per item; "
            "compare attributions of the same inputs"
        )
    if sa.shape[0] != sb.shape[0] and 1 not in (sa.shape[0], sb.shape[0]):
        raise ProbeError(
            f"the maps have different batch sizes ({sa.shape[0]} vs {sb.shape[0]}); "
            "compare attributions of the same inputs"
        )
    sa, sb = torch.broadcast_tensors(sa, sb)
    valid = _mask(mask, tuple(sa.shape))
    if valid.shape[0] != sa.shape[0]:
        sa, sb = (x.expand(valid.shape[0], -1) for x in (sa, sb))
    return sa, sb, valid


def _mask(mask: Any, shape: tuple[int, int]) -> torch.Tensor:
    import torch

    batch, n = shape
    if mask is None:
        return torch.ones(batch, n, dtype=torch.bool)
    if not isinstance(mask, torch.Tensor):
        from probe.capture._trace import Trace

        if isinstance(mask, Trace):
            mask = unit_mask(mask)
        else:
            raise ProbeError(
                f"mask must be a bool tensor [num_units] or [batch, num_units] or a Trace, "
                f"got {type(mask).__name__}"
            )
    if mask.dim() not in (1, 2) or mask.shape[-1] != n:
        raise ProbeError(
            f"mask shape {tuple(mask.shape)} does not match the maps' {n} units per item; "
            "pass [num_units] or [batch, num_units]"
        )
    if mask.dtype != torch.bool:
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ProbeError("mask must hold only True/False (or 0/1) values")
        mask = mask.bool()
    mask = mask.cpu()
    mask = mask if mask.dim() == 2 else mask[None]
    if mask.shape[0] not in (1, batch) and batch != 1:
        raise ProbeError(
            f"mask has {mask.shape[0]} rows but the maps have {batch} items; pass one row "
            "per item or a single row for all"
        )
    rows = max(batch, mask.shape[0])
    return mask.expand(rows, n)


def _reduce(values: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    import torch

    if reduction == "none":
        return values
    if reduction != "mean":
        raise ProbeError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if bool(torch.isnan(values).all()):
        return torch.tensor(float("nan"), dtype=values.dtype)
    return torch.nanmean(values)


# --------------------------------------------------------------------------- metrics
def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks of ``x`` ``[n]``, tied values sharing the mean of their ranks.

    ``average_ranks([10, 20, 20, 30]) == [1, 2.5, 2.5, 4]`` (the "fractional ranking" that
    Spearman's coefficient with ties is defined on).
    """
    import torch

    n = int(x.shape[0])
    ordered, order = torch.sort(x, stable=True)
    starts_group = torch.ones(n, dtype=torch.bool)
    starts_group[1:] = ordered[1:] != ordered[:-1]
    group = torch.cumsum(starts_group.long(), 0) - 1
    counts = torch.bincount(group).to(torch.float64)
    first = torch.cumsum(counts, 0) - counts  # 0-based position of each group's first value
    mean_rank = first + (counts + 1.0) / 2.0
    ranks = torch.empty(n, dtype=torch.float64)
    ranks[order] = mean_rank[group]
    return ranks


def _pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((xc * xc).sum()) * float((yc * yc).sum()))
    if denom == 0.0:
        return float("nan")
    return max(-1.0, min(1.0, float((xc * yc).sum()) / denom))


def _spearman_1d(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape[0] < 2:
        return float("nan")
    return _pearson(average_ranks(a), average_ranks(b))


def _kendall_1d(a: torch.Tensor, b: torch.Tensor) -> float:
    import torch

    n = int(a.shape[0])
    if n < 2:
        return float("nan")
    # Over ordered pairs (i, j): sum sign(a_i - a_j) sign(b_i - b_j) = 2 (C - D), and the
    # number of pairs untied in a (in b) is 2 (n0 - n1) (2 (n0 - n2)): the factors cancel.
    concord = untied_a = untied_b = 0
    rows = max(1, _PAIR_CHUNK // n)
    for start in range(0, n, rows):
        sa = torch.sign(a[start : start + rows, None] - a[None, :])
        sb = torch.sign(b[start : start + rows, None] - b[None, :])
        concord += int((sa * sb).sum())
        untied_a += int((sa != 0).sum())
        untied_b += int((sb != 0).sum())
    if untied_a == 0 or untied_b == 0:
        return float("nan")
    return max(-1.0, min(1.0, concord / math.sqrt(untied_a * untied_b)))


def _per_item(fn: Any, a: torch.Tensor, b: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    import torch

    values = [fn(a[i][valid[i]], b[i][valid[i]]) for i in range(a.shape[0])]
    return torch.tensor(values, dtype=torch.float64)


def spearman(
    a: torch.Tensor | Attribution,
    b: torch.Tensor | Attribution,
    mask: torch.Tensor | Trace | None = None,
    *,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Spearman's rank correlation between two maps over the same units.

    The Pearson correlation of the two maps' average ranks (Spearman 1904), so ties are
    handled exactly as ``scipy.stats.spearmanr`` does.

    Args:
        a, b: ``[num_units]`` or ``[batch, num_units]`` scores (or :class:`Attribution`); a
            single map is broadcast against a batch.
        mask: ``[num_units]`` or ``[batch, num_units]`` bool, True for units to include (e.g.
            :func:`unit_mask` of the trace: padding and special tokens excluded), or a
            :class:`Trace` to take that mask from. Default: every unit.
        reduction: ``"mean"``: the mean over items (items where it is undefined are skipped;
            ``nan`` if none is defined); ``"none"``: one value per item ``[batch]``.

    Returns:
        A 0-dim float64 tensor in ``[-1, 1]`` (``reduction="mean"``) or ``[batch]``. An item
        with fewer than two valid units, or whose map is constant over them, gives ``nan``.
    """
    sa, sb, valid = _pair(a, b, mask)
    return _reduce(_per_item(_spearman_1d, sa, sb, valid), reduction)


def kendall(
    a: torch.Tensor | Attribution,
    b: torch.Tensor | Attribution,
    mask: torch.Tensor | Trace | None = None,
    *,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Kendall's tau-b between two maps over the same units.

    ``tau_b = (C - D) / sqrt((n0 - n1) (n0 - n2))`` (Kendall 1945) with ``C``/``D`` the
    concordant/discordant pairs, ``n0 = n (n - 1) / 2`` and ``n1``/``n2`` the pairs tied in
    ``a``/``b``; equal to ``scipy.stats.kendalltau``'s default. Ties are exact float equality.
    Cost is ``O(num_units^2)`` per item, computed in bounded-memory chunks.

    Args:
        a, b, mask, reduction: as for :func:`spearman`.

    Returns:
        A 0-dim float64 tensor in ``[-1, 1]`` or ``[batch]`` (``reduction="none"``); ``nan``
        for items with fewer than two valid units or a constant map.
    """
    sa, sb, valid = _pair(a, b, mask)
    return _reduce(_per_item(_kendall_1d, sa, sb, valid), reduction)


def _top_count(k: int | float, n: int) -> int:
    if not is_real(k):
        raise ProbeError(f"k must be an int count or a float fraction in (0, 1], got {k!r}")
    if not is_int(k):  # a float (np.float32 too): a fraction
        k = float(k)
        if not 0.0 < k <= 1.0:
            raise ProbeError(f"a fractional k must lie in (0, 1], got {k}; pass an int for a count")
        return max(1, math.ceil(k * n - 1e-9))
    if k < 1:
        raise ProbeError(f"k must be at least 1, got {k}")
    return min(int(k), n)  # np.int64(3) is 3


def topk_overlap(
    a: torch.Tensor | Attribution,
    b: torch.Tensor | Attribution,
    k: int | float,
    mask: torch.Tensor | Trace | None = None,
    *,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Share of the ``k`` highest-scoring units that two maps have in common.

    ``|topk(a) ∩ topk(b)| / k`` per item, among its valid units. Ties at the cut are broken by
    position (the earlier unit first), the same way for both maps.

    Args:
        a, b, mask, reduction: as for :func:`spearman`.
        k: an ``int`` count of units (capped at the item's number of valid units, which then
            is the denominator) or a ``float`` fraction in ``(0, 1]`` of each item's valid
            units (rounded up, at least 1).

    Returns:
        A 0-dim float64 tensor in ``[0, 1]`` or ``[batch]``; ``nan`` for items without valid
        units.
    """
    import torch

    sa, sb, valid = _pair(a, b, mask)
    values = []
    for i in range(sa.shape[0]):
        xa, xb = sa[i][valid[i]], sb[i][valid[i]]
        n = int(xa.shape[0])
        if n == 0:
            _top_count(k, 1)  # validate k all the same
            values.append(float("nan"))
            continue
        count = _top_count(k, n)
        top_a = torch.zeros(n, dtype=torch.bool)
        top_b = torch.zeros(n, dtype=torch.bool)
        top_a[torch.sort(xa, descending=True, stable=True).indices[:count]] = True
        top_b[torch.sort(xb, descending=True, stable=True).indices[:count]] = True
        values.append(int((top_a & top_b).sum()) / count)
    return _reduce(torch.tensor(values, dtype=torch.float64), reduction)


# --------------------------------------------------------------------------- table
@dataclass(frozen=True, eq=False)
class AgreementTable:
    """Agreement of every pair of methods: a symmetric ``methods x methods`` table.

    Attributes:
        methods: method names, in the order of rows and columns.
        values: ``[num_methods, num_methods]`` float64; ``values[i, j]`` is the agreement of
            ``methods[i]`` and ``methods[j]`` (mean over the batch); the diagonal is 1.
        metric: ``"spearman"``, ``"kendall"`` or ``"topk"``.
        k: the ``k`` of ``"topk"`` (``None`` otherwise).
        units: per item, how many units (tokens, patches) its agreement is over; ``None``
            when unknown (a table built by hand).
        unit: what a unit is: ``"tokens"``, ``"patches"`` or ``"units"``.

    Printed (``str``), the table says N and writes in bold only the Spearman / Kendall
    values distinguishable from chance at that N (two-sided ``p < 0.05``, a permutation test:
    :mod:`probe.evaluation._significance`); over 3 tokens no value is.
    """

    methods: tuple[str, ...]
    values: torch.Tensor
    metric: Metric
    k: int | float | None = None
    units: tuple[int, ...] | None = None
    unit: str = "units"

    def __getitem__(self, pair: tuple[str, str]) -> float:
        """``table["attention", "ig"]``: the agreement of two methods."""
        a, b = pair
        for name in (a, b):
            if name not in self.methods:
                raise ProbeError(
                    f"no method {name!r} in this table: use one of {list(self.methods)}"
                )
        return float(self.values[self.methods.index(a), self.methods.index(b)])

    @property
    def label(self) -> str:
        return f"top-{self.k} overlap" if self.metric == "topk" else self.metric

    def to_rows(self) -> list[dict[str, Any]]:
        """Tidy rows, one per ordered pair of methods (diagonal included):
        ``{"method_a", "method_b", "metric", "k", "value"}``."""
        return [
            {
                "method_a": a,
                "method_b": b,
                "metric": self.metric,
                "k": self.k,
                "value": float(self.values[i, j]),
            }
            for i, a in enumerate(self.methods)
            for j, b in enumerate(self.methods)
        ]

    def p_values(self) -> torch.Tensor:
        """``[num_methods, num_methods]`` two-sided ``p`` of each value under independence
        at this table's N (:func:`~probe.evaluation._significance.agreement_p_value`);
        ``nan`` on the diagonal, for ``"topk"``, undefined values and unknown ``units``."""
        import torch

        from probe.evaluation._significance import agreement_p_value

        m = len(self.methods)
        p = torch.full((m, m), float("nan"), dtype=torch.float64)
        if self.metric == "topk" or not self.units:
            return p
        for i in range(m):
            for j in range(m):
                if i != j:
                    p[i, j] = agreement_p_value(float(self.values[i, j]), self.units,
                                                self.metric)  # type: ignore[arg-type]
        return p

    def to_markdown(self, digits: int = 3) -> str:
        """The table as GitHub markdown, values rounded to ``digits`` decimals; a value
        distinguishable from chance at this N (``p < 0.05``, :meth:`p_values`) in bold."""
        from probe._report import format_value
        from probe.evaluation._significance import ALPHA

        p = self.p_values()
        rows = []
        for i, name in enumerate(self.methods):
            row: list[Any] = [name]
            for j, v in enumerate(self.values[i]):
                significant = bool(p[i, j] < ALPHA)  # nan: False
                row.append(f"**{format_value(float(v), digits, missing=None)}**" if significant
                           else float(v))
            rows.append(row)
        return markdown_table([self.label, *self.methods], rows, digits, missing=None)

    def note(self) -> str:
        """What N the values are over and what bold means (``N = 7 tokens · **bold**: p <
        0.05, two-sided (exact permutation test: |ρ| ≥ 0.79)``)."""
        from probe.evaluation._significance import significance_note, units_text

        if not self.units:
            return "N unknown: no value is marked as distinguishable from chance"
        if self.metric == "topk":
            return f"{units_text(self.units, self.unit)} · no significance test for top-k"
        return significance_note(self.units, self.metric, self.unit,  # type: ignore[arg-type]
                                 bold="**bold**")

    def __str__(self) -> str:
        return f"{self.to_markdown()}\n\n{self.note()}"


def _units_of(
    attributions: Sequence[Attribution] | Mapping[str, Any],
) -> torch.Tensor | None:
    """The valid units the text Attributions among ``attributions`` share (``None`` when none
    carries any); attributions of different tokens are refused."""
    import torch

    values = attributions.values() if isinstance(attributions, Mapping) else attributions
    units = [a.units for a in values if isinstance(a, Attribution) and a.units is not None]
    if not units:
        return None
    first = units[0]
    if any(u.shape != first.shape or not torch.equal(u, first) for u in units[1:]):
        raise ProbeError(
            "the attributions mark different tokens as valid (padding / special tokens): they "
            "were computed on different inputs; compare attributions of the same inputs"
        )
    return first


def _named_maps(
    attributions: Sequence[Attribution] | Mapping[str, Any], absolute: bool | None
) -> tuple[tuple[str, ...], list[torch.Tensor]]:
    import torch

    if isinstance(attributions, Mapping):
        items = [(str(name), value) for name, value in attributions.items()]
    elif isinstance(attributions, Sequence) and not isinstance(attributions, (str, bytes)):
        items = []
        for value in attributions:
            if not isinstance(value, Attribution):
                raise ProbeError(
                    f"a sequence passed to compare must hold Attributions, got "
                    f"{type(value).__name__}; pass a mapping name -> scores for plain tensors"
                )
            items.append((value.label, value))
    else:
        raise ProbeError(
            f"compare takes a sequence of Attributions or a mapping name -> scores, got "
            f"{type(attributions).__name__}"
        )
    names = tuple(name for name, _ in items)
    if len(names) < 2:
        raise ProbeError(f"compare needs at least two attributions, got {len(names)}")
    if len(set(names)) != len(names):
        raise ProbeError(
            f"duplicate method names {sorted(n for n in set(names) if names.count(n) > 1)}: pass a "
            "mapping with distinct names, e.g. {'ig-32': a, 'ig-64': b}"
        )
    maps = []
    for name, value in items:
        scores = _scores(value, name)
        signed = value.signed if isinstance(value, Attribution) else False
        if absolute or (absolute is None and signed):
            scores = scores.abs()
        maps.append(scores)
    shapes = {tuple(m.shape) for m in maps}
    if len(shapes) != 1:
        detail = ", ".join(f"{n}: {tuple(m.shape)}" for n, m in zip(names, maps))
        raise ProbeError(
            f"the attributions have different shapes ({detail}); compute them on the same inputs"
        )
    return names, [torch.as_tensor(m) for m in maps]


def compare(
    attributions: Sequence[Attribution] | Mapping[str, torch.Tensor | Attribution],
    metric: Metric = "spearman",
    *,
    k: int | float | None = None,
    mask: torch.Tensor | Trace | None = None,
    absolute: bool | None = None,
) -> AgreementTable:
    """Agreement between every pair of methods, as a table.

    Args:
        attributions: :class:`Attribution` objects of the same inputs (named by
            ``Attribution.label``: the method, plus the options that differ from its defaults,
            e.g. ``"rollout[head_fusion=median]"``), or a mapping name -> scores
            ``[batch, num_units]`` (tensor or Attribution).
        metric: ``"spearman"`` (:func:`spearman`), ``"kendall"`` (:func:`kendall`) or
            ``"topk"`` (:func:`topk_overlap`, needs ``k``).
        k: for ``"topk"``: a count of units or a fraction in ``(0, 1]``.
        mask: valid units as for :func:`spearman` (a :class:`Trace` gives :func:`unit_mask`:
            text padding and special tokens excluded). Default: the units the text
            Attributions mark valid (:attr:`Attribution.units`, the same as ``mask=trace``),
            so padding and special tokens never count as agreement; plain tensors and vision
            attributions: every unit.
        absolute: compare absolute scores: ``None`` (default) for signed attributions only
            (``Attribution.signed``, e.g. Integrated Gradients, where a large negative score is
            as important as a large positive one); ``True`` for all maps; ``False`` never.

    Returns:
        An :class:`AgreementTable`: symmetric, per-item values averaged over the batch, unit
        diagonal (a method agrees with itself by definition).
    """
    import torch

    if metric not in _METRICS:
        raise ProbeError(f"unknown metric {metric!r}: use one of {list(_METRICS)}")
    if metric == "topk":
        if k is None:
            raise ProbeError("metric='topk' needs k=: an int count or a fraction in (0, 1]")
        _top_count(k, 1)
    elif k is not None:
        raise ProbeError(f"k applies to metric='topk' only, not {metric!r}: drop k=")
    names, maps = _named_maps(attributions, absolute)
    if mask is None:
        mask = _units_of(attributions)
    fn: Any = {"spearman": spearman, "kendall": kendall}.get(metric)
    m = len(names)
    values = torch.eye(m, dtype=torch.float64)
    for i in range(m):
        for j in range(i + 1, m):
            if metric == "topk":
                v = topk_overlap(maps[i], maps[j], k, mask)  # type: ignore[arg-type]
            else:
                v = fn(maps[i], maps[j], mask)
            values[i, j] = values[j, i] = v
    _, _, valid = _pair(maps[0], maps[1], mask)
    return AgreementTable(names, values, metric, k, units=unit_counts(valid),
                          unit=unit_name(attributions))


def unit_counts(valid: torch.Tensor) -> tuple[int, ...]:
    """Per item, the number of valid units of a ``[batch, num_units]`` mask."""
    return tuple(int(c) for c in valid.sum(-1))


def unit_name(attributions: Sequence[Attribution] | Mapping[str, Any]) -> str:
    """``"tokens"`` or ``"patches"`` when the Attributions say which, else ``"units"``."""
    values = attributions.values() if isinstance(attributions, Mapping) else attributions
    kinds = {a.modality for a in values if isinstance(a, Attribution)}
    return {frozenset({"text"}): "tokens", frozenset({"vision"}): "patches"}.get(
        frozenset(kinds), "units")
