"""Faithfulness of attribution maps: does removing what a map ranks high change the output?

Two families of perturbation tests, both with a random-order baseline next to every method
(a map is only informative if it beats random orders):

* **Deletion and insertion curves** (Petsiuk et al. 2018, "RISE: Randomized Input Sampling for
  Explanation of Black-box Models"; the positive/negative perturbation tests of Chefer et al.
  2021, "Transformer Interpretability Beyond Attention Visualization"). Units (image patches
  or tokens) are removed from the input (deletion) or revealed on a blank input (insertion) in
  order of decreasing score, in ``steps`` equal steps; the target score is recorded at every
  step and summarised by the area under the curve over the removed/revealed fraction in
  ``[0, 1]``. A faithful map gives a *low* deletion AUC and a *high* insertion AUC.
* **ERASER comprehensiveness and sufficiency** (DeYoung et al. 2020, "ERASER: A Benchmark to
  Evaluate Rationalized NLP Models"): how much the score drops when the top-k% units are
  removed (comprehensiveness, higher is better) or when only they are kept (sufficiency, lower
  is better), averaged over ``k`` in 1, 5, 10, 20, 50% (the paper's AOPC variant).

This module: :func:`faithfulness`, the deletion and insertion AUC of several methods on the
same inputs next to random orders. The curves themselves and the unit orders are in
:mod:`probe.evaluation._curves`, ERASER in :mod:`probe.evaluation._eraser`, and what a removed
unit becomes (baselines), which units count and how a perturbed input is scored in
:mod:`probe.evaluation._perturb`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from probe.attribution._registry import Attribution
from probe.evaluation._tables import ScoreTable
from probe.evaluation._curves import (
    Curve,
    _check_steps,
    _curve,
    _mean_curve,
    _methods_problem,
    _random_scores,
    _scores,
    _settings,
)
from probe.evaluation._perturb import Baseline, Output, ScoreFn, Scores

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["FaithfulnessTable", "faithfulness"]


@dataclass(frozen=True, eq=False)
class FaithfulnessTable(ScoreTable):
    """Deletion and insertion AUC of several methods, each next to the random-order baseline.

    Attributes:
        methods: method names, one row each.
        deletion_auc: ``[num_methods]`` deletion AUC averaged over the batch (lower is better).
        insertion_auc: ``[num_methods]`` insertion AUC averaged over the batch (higher is better).
        random_deletion_auc, random_insertion_auc: the same for random unit orders, averaged
            over ``n_random`` seeded orders and the batch; identical for every method.
        curves: method -> ``(deletion, insertion)`` :class:`Curve` (per-item values).
        random_curves: ``(deletion, insertion)`` of the random orders (values averaged over
            the orders).
        steps, n_random, seed, baseline: the settings used.
    """

    SCORES = (("deletion_auc", "deletion AUC ↓"), ("insertion_auc", "insertion AUC ↑"))

    methods: tuple[str, ...]
    deletion_auc: torch.Tensor
    insertion_auc: torch.Tensor
    random_deletion_auc: float
    random_insertion_auc: float
    curves: dict[str, tuple[Curve, Curve]] = field(repr=False)
    random_curves: tuple[Curve, Curve] | None = field(default=None, repr=False)
    steps: int = 0
    n_random: int = 0
    seed: int = 0
    baseline: str = ""


def faithfulness(
    model: nn.Module,
    inputs: Any,
    attributions: Sequence[Attribution] | Mapping[str, Scores] | Attribution,
    *,
    target: Any = None,
    steps: int = 20,
    baseline: Baseline = None,
    score_fn: ScoreFn | None = None,
    tokenizer: Any = None,
    grid: tuple[int, int] | None = None,
    n_random: int = 3,
    seed: int = 0,
    batch_size: int = 64,
    output: Output = "probability",
) -> FaithfulnessTable:
    """Deletion and insertion AUC of several methods, each next to a random-order baseline.

    Every method is scored with :func:`deletion_curve` and :func:`insertion_curve` on the same
    inputs, target and baseline; the random baseline is the mean over ``n_random`` random unit
    orders drawn from a generator seeded with ``seed`` (the same orders for every method, so the
    same ``seed`` gives the same numbers).

    Args:
        attributions: :class:`Attribution` objects (named by ``Attribution.label``) or a mapping
            name -> scores ``[batch, num_units]``.
        n_random: number of random orders (0: no random baseline: ``nan`` in the table, printed
            as a dash).
        seed: seed of the random orders.
        Others: as for :func:`deletion_curve`.

    Returns:
        A :class:`FaithfulnessTable` (``print`` it for a markdown table).
    """
    import torch

    steps = _check_steps(steps)
    items, p = _methods_problem(model, inputs, attributions, grid, **_settings(locals()))
    score_maps = [(name, _scores(s, p, name)) for name, s in items]
    random_maps = _random_scores(p, n_random, seed)
    curves = {
        name: (_curve(p, s, steps, "deletion", name), _curve(p, s, steps, "insertion", name))
        for name, s in score_maps
    }
    random_curves = None
    rand_del = rand_ins = float("nan")
    if random_maps:
        dels = [_curve(p, s, steps, "deletion", "random") for s in random_maps]
        ins = [_curve(p, s, steps, "insertion", "random") for s in random_maps]
        random_curves = (_mean_curve(dels), _mean_curve(ins))
        rand_del, rand_ins = random_curves[0].mean_auc, random_curves[1].mean_auc
    names = tuple(name for name, _ in items)
    return FaithfulnessTable(
        methods=names,
        deletion_auc=torch.tensor([curves[n][0].mean_auc for n in names], dtype=torch.float64),
        insertion_auc=torch.tensor([curves[n][1].mean_auc for n in names], dtype=torch.float64),
        random_deletion_auc=rand_del,
        random_insertion_auc=rand_ins,
        curves=curves,
        random_curves=random_curves,
        steps=steps,
        n_random=n_random,
        seed=int(seed),
        baseline=p.baseline,
    )
