"""ERASER comprehensiveness and sufficiency (DeYoung et al. 2020, "ERASER: A Benchmark to
Evaluate Rationalized NLP Models"): how much the score drops when the top-k% units are removed
(comprehensiveness, higher is better) or when only they are kept (sufficiency, lower is
better), averaged over ``k`` in 1, 5, 10, 20, 50% (the paper's AOPC variant). Units, baselines
and scores: see :mod:`probe.evaluation._perturb`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from probe.attribution._registry import Attribution
from probe._errors import ProbeError
from probe.evaluation._tables import ScoreTable
from probe.evaluation._curves import (
    _map_problem,
    _methods_problem,
    _random_scores,
    _ranks,
    _scores,
    _settings,
)
from probe.evaluation._perturb import (
    Baseline,
    Output,
    ScoreFn,
    Scores,
    _eval_mode,
    _Problem,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["ERASER_BINS", "EraserTable", "comprehensiveness", "eraser", "sufficiency"]

ERASER_BINS: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20, 0.50)
"""The top-k% bins of ERASER's AOPC comprehensiveness and sufficiency (DeYoung et al. 2020)."""


@dataclass(frozen=True, eq=False)
class EraserTable(ScoreTable):
    """ERASER comprehensiveness and sufficiency of several methods, with a random baseline.

    Attributes:
        methods: method names, one row each.
        comprehensiveness: ``[num_methods]`` AOPC comprehensiveness averaged over the batch
            (higher is better).
        sufficiency: ``[num_methods]`` AOPC sufficiency averaged over the batch (lower is better).
        random_comprehensiveness, random_sufficiency: the same for random unit orders (mean over
            ``n_random`` seeded orders and the batch).
        per_item: method -> ``(comprehensiveness [batch], sufficiency [batch])``.
        bins, n_random, seed, baseline: the settings used.
    """

    SCORES = (("comprehensiveness", "comprehensiveness ↑"), ("sufficiency", "sufficiency ↓"))

    methods: tuple[str, ...]
    comprehensiveness: torch.Tensor
    sufficiency: torch.Tensor
    random_comprehensiveness: float
    random_sufficiency: float
    per_item: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(repr=False)
    bins: tuple[float, ...] = ERASER_BINS
    n_random: int = 0
    seed: int = 0
    baseline: str = ""


# --------------------------------------------------------------------------- ERASER
def _check_bins(bins: Any) -> tuple[float, ...]:
    try:
        values = tuple(float(b) for b in bins)
    except TypeError:
        raise ProbeError(f"bins must be a sequence of fractions in (0, 1], got {bins!r}") from None
    if not values or not all(0.0 < b <= 1.0 for b in values):
        raise ProbeError(f"bins must be a non-empty sequence of fractions in (0, 1], got {bins!r}")
    return values


def _eraser(
    p: _Problem, scores: torch.Tensor, bins: tuple[float, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(comprehensiveness [batch], sufficiency [batch])`` AOPC over ``bins``."""
    import torch

    ranks = _ranks(scores, p.valid)
    n_valid = p.valid.sum(1)  # [batch]
    fracs = torch.tensor(bins, dtype=torch.float64)
    count = torch.ceil(fracs[None, :] * n_valid[:, None] - 1e-9).long().clamp(min=1)
    count = torch.minimum(count, n_valid[:, None])  # [batch, bins]
    top = ranks[:, None, :] < count[:, :, None]  # [batch, bins, units]
    full = torch.ones(p.valid.shape[0], 1, p.num_units, dtype=torch.bool)
    keep = torch.cat([full, ~top, top | ~p.valid[:, None, :]], dim=1)
    with _eval_mode(p.model):
        values = p.evaluate(keep)
    k = len(bins)
    f_x, without, only = values[:, :1], values[:, 1 : 1 + k], values[:, 1 + k :]
    comp = (f_x - without).mean(1)
    suff = (f_x - only).mean(1)
    empty = n_valid == 0
    return comp.masked_fill(empty, float("nan")), suff.masked_fill(empty, float("nan"))


def _eraser_one(
    which: int,
    model: nn.Module,
    inputs: Any,
    scores: Scores,
    bins: Sequence[float],
    grid: tuple[int, int] | None,
    **settings: Any,
) -> torch.Tensor:
    bins_t = _check_bins(bins)
    p = _map_problem(model, inputs, scores, grid, **settings)
    return _eraser(p, _scores(scores, p, "the map"), bins_t)[which]


def comprehensiveness(
    model: nn.Module,
    inputs: Any,
    scores: Scores,
    *,
    target: Any = None,
    bins: Sequence[float] = ERASER_BINS,
    baseline: Baseline = None,
    score_fn: ScoreFn | None = None,
    tokenizer: Any = None,
    grid: tuple[int, int] | None = None,
    batch_size: int = 64,
    output: Output = "probability",
) -> torch.Tensor:
    """ERASER comprehensiveness (DeYoung et al. 2020), AOPC over the top-k% ``bins``.

    ``mean_k [f(x) - f(x without its top-k% units)]``: how much the score drops when the
    highest-scoring units are removed (higher means the map found what the model uses). The
    top-k% of an item are ``ceil(k * n)`` of its ``n`` valid units (at least 1); ``f`` is the
    target score (class probability by default). The mean is over the bins (ERASER's AOPC
    divides by ``|B| + 1`` counting an empty ``k = 0`` removal; we leave that zero term out).
    Arguments as for :func:`deletion_curve`.

    Returns:
        ``[batch]`` float64 (``nan`` for items without valid units).
    """
    return _eraser_one(0, model, inputs, scores, bins, grid, **_settings(locals()))


def sufficiency(
    model: nn.Module,
    inputs: Any,
    scores: Scores,
    *,
    target: Any = None,
    bins: Sequence[float] = ERASER_BINS,
    baseline: Baseline = None,
    score_fn: ScoreFn | None = None,
    tokenizer: Any = None,
    grid: tuple[int, int] | None = None,
    batch_size: int = 64,
    output: Output = "probability",
) -> torch.Tensor:
    """ERASER sufficiency (DeYoung et al. 2020), AOPC over the top-k% ``bins``.

    ``mean_k [f(x) - f(only the top-k% units of x)]`` (special tokens kept): how much score is
    lost when everything but the highest-scoring units is removed (lower means the top units
    suffice). Bins and arguments as for :func:`comprehensiveness`.

    Returns:
        ``[batch]`` float64 (``nan`` for items without valid units).
    """
    return _eraser_one(1, model, inputs, scores, bins, grid, **_settings(locals()))


def eraser(
    model: nn.Module,
    inputs: Any,
    attributions: Sequence[Attribution] | Mapping[str, Scores] | Attribution,
    *,
    target: Any = None,
    bins: Sequence[float] = ERASER_BINS,
    baseline: Baseline = None,
    score_fn: ScoreFn | None = None,
    tokenizer: Any = None,
    grid: tuple[int, int] | None = None,
    n_random: int = 3,
    seed: int = 0,
    batch_size: int = 64,
    output: Output = "probability",
) -> EraserTable:
    """ERASER comprehensiveness and sufficiency of several methods, with a random baseline.

    Made for text rationales (DeYoung et al. 2020), works on image patches too. The random
    baseline averages ``n_random`` random unit orders from a generator seeded with ``seed``.
    Arguments as for :func:`comprehensiveness` and :func:`faithfulness`.

    Returns:
        An :class:`EraserTable` (``print`` it for a markdown table).
    """
    import torch

    bins_t = _check_bins(bins)
    items, p = _methods_problem(model, inputs, attributions, grid, **_settings(locals()))
    per_item = {name: _eraser(p, _scores(s, p, name), bins_t) for name, s in items}
    rand_c = rand_s = float("nan")
    randoms = [_eraser(p, s, bins_t) for s in _random_scores(p, n_random, seed)]
    if randoms:
        rand_c = float(torch.nanmean(torch.stack([c for c, _ in randoms])))
        rand_s = float(torch.nanmean(torch.stack([s for _, s in randoms])))
    names = tuple(name for name, _ in items)
    return EraserTable(
        methods=names,
        comprehensiveness=torch.stack([torch.nanmean(per_item[n][0]) for n in names]),
        sufficiency=torch.stack([torch.nanmean(per_item[n][1]) for n in names]),
        random_comprehensiveness=rand_c,
        random_sufficiency=rand_s,
        per_item=per_item,
        bins=bins_t,
        n_random=n_random,
        seed=int(seed),
        baseline=p.baseline,
    )
