"""Deletion and insertion curves of one map, and the unit orders every faithfulness test uses.

**Deletion and insertion curves** (Petsiuk et al. 2018, "RISE: Randomized Input Sampling for
Explanation of Black-box Models"; the positive/negative perturbation tests of Chefer et al.
2021, "Transformer Interpretability Beyond Attention Visualization"). Units (image patches
or tokens) are removed from the input (deletion) or revealed on a blank input (insertion) in
order of decreasing score, in ``steps`` equal steps; the target score is recorded at every
step and summarised by the area under the curve over the removed/revealed fraction in
``[0, 1]``. A faithful map gives a *low* deletion AUC and a *high* insertion AUC.
Units, baselines and scores: see :mod:`probe.evaluation._perturb`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from probe.attribution._registry import Attribution
from probe._errors import ProbeError
from probe._index import is_int
from probe.evaluation._curves_math import auc64
from probe.evaluation._perturb import (
    Baseline,
    Output,
    ScoreFn,
    Scores,
    _eval_mode,
    _Problem,
    _problem,
    _text_problem,
    _vision_problem,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["Curve", "CurveKind", "deletion_curve", "insertion_curve", "perturbed_input",
           "score_label"]

CurveKind = Literal["deletion", "insertion"]


# --------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class Curve:
    """A deletion or insertion curve for every batch item.

    Attributes:
        fractions: ``[steps + 1]`` fraction of units removed (deletion) or revealed
            (insertion), ``0, 1/steps, ..., 1``.
        values: ``[batch, steps + 1]`` target score after each step (``values[:, 0]`` is the
            unperturbed input for deletion, the all-baseline input for insertion).
        auc: ``[batch]`` area under each curve (trapezoid rule over ``fractions``).
        kind: ``"deletion"`` or ``"insertion"``.
        method: the name of the scored attribution (``"random"`` for the random baseline).
    """

    fractions: torch.Tensor
    values: torch.Tensor
    auc: torch.Tensor
    kind: CurveKind
    method: str = ""

    @property
    def mean_auc(self) -> float:
        """AUC averaged over the batch."""
        return float(self.auc.mean())


# --------------------------------------------------------------------------- orders
def _scores(scores: Any, p: _Problem, name: str) -> torch.Tensor:
    import torch

    if isinstance(scores, Attribution):
        _check_tokens(scores, p, name)
        scores = scores.scores
    if not isinstance(scores, torch.Tensor):
        raise ProbeError(
            f"scores of {name} must be a tensor [batch, num_units] or an Attribution, got "
            f"{type(scores).__name__}"
        )
    s = scores.detach().to("cpu", torch.float64)
    batch, n = p.valid.shape
    if s.dim() == 1 and batch == 1:
        s = s[None]
    unit = "patches" if p.modality == "vision" else "token positions"
    if s.dim() != 2 or tuple(s.shape) != (batch, n):
        raise ProbeError(
            f"scores of {name} have shape {tuple(scores.shape)} but the inputs have {batch} "
            f"items of "
            f"{n} {unit}: pass scores [batch, num_units] of these inputs"
        )
    if bool(torch.isnan(s).any()):
        raise ProbeError(f"scores of {name} contain NaN: fix the attribution first")
    return s


def _check_tokens(attribution: Attribution, p: _Problem, name: str) -> None:
    """A text attribution's tokens must be those of the inputs (padding aside)."""
    if attribution.tokens is None or p.tokens is None:
        return
    theirs = [tuple(t for t in row if t != p.pad_token) for row in attribution.tokens]
    for b, (mine, other) in enumerate(zip(p.tokens, theirs)):
        if mine != other:
            raise ProbeError(
                f"{name} was computed on other tokens than these inputs (batch item {b}: "
                f"{len(other)} tokens starting {list(other[:4])}, the inputs have {len(mine)} "
                f"starting {list(mine[:4])}): attribute these inputs, in this order"
            )


def _ranks(scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``[batch, num_units]`` rank of every valid unit by decreasing score (0 = highest; ties
    by position); invalid units get ``num_units`` (never removed)."""
    import torch

    batch, n = scores.shape
    keyed = scores.masked_fill(~valid, float("-inf"))
    order = torch.sort(keyed, dim=1, descending=True, stable=True).indices
    ranks = torch.empty(batch, n, dtype=torch.long)
    ranks.scatter_(1, order, torch.arange(n).expand(batch, n).contiguous())
    return ranks.masked_fill(~valid, n)


def _check_steps(steps: Any) -> int:
    if not is_int(steps) or steps < 1:  # np.int64(4) counts
        raise ProbeError(f"steps must be a positive int, got {steps!r}")
    return int(steps)


def _curve_keep(
    ranks: torch.Tensor, valid: torch.Tensor, steps: int, kind: CurveKind
) -> torch.Tensor:
    """``keep [batch, steps + 1, num_units]``: at step ``s`` the ``round(s n / steps)`` top-ranked
    valid units are removed (deletion) or are the only ones revealed (insertion)."""
    import torch

    n_valid = valid.sum(1)  # [batch]
    s = torch.arange(steps + 1)
    count = (2 * s[None, :] * n_valid[:, None] + steps) // (2 * steps)  # round half up
    top = ranks[:, None, :] < count[:, :, None]  # [batch, steps + 1, units]
    if kind == "deletion":
        return ~top
    return top | ~valid[:, None, :]


def _curve(p: _Problem, scores: torch.Tensor, steps: int, kind: CurveKind, method: str) -> Curve:
    import torch

    keep = _curve_keep(_ranks(scores, p.valid), p.valid, steps, kind)
    with _eval_mode(p.model):
        values = p.evaluate(keep)
    fractions = torch.arange(steps + 1, dtype=torch.float64) / steps
    return Curve(fractions, values, auc64(fractions, values), kind, method)


def _check_n_random(n_random: Any) -> int:
    if not is_int(n_random) or n_random < 0:
        raise ProbeError(f"n_random must be a non-negative int, got {n_random!r}")
    return int(n_random)


def _random_scores(p: _Problem, n_random: int, seed: int) -> list[torch.Tensor]:
    import torch

    _check_n_random(n_random)
    gen = torch.Generator().manual_seed(int(seed))
    return [torch.rand(p.valid.shape, generator=gen, dtype=torch.float64) for _ in range(n_random)]


def _mean_curve(curves: list[Curve]) -> Curve:
    import torch

    values = torch.stack([c.values for c in curves]).mean(0)
    auc = torch.stack([c.auc for c in curves]).mean(0)
    return Curve(curves[0].fractions, values, auc, curves[0].kind, "random")


_SETTINGS = ("tokenizer", "target", "baseline", "score_fn", "batch_size", "output")


def _settings(args: Mapping[str, Any]) -> dict[str, Any]:
    """The settings every faithfulness test passes on to :func:`_problem` as they are (all its
    keyword arguments but ``grid``), picked by name from a public function's ``locals()``."""
    return {name: args[name] for name in _SETTINGS}


def _map_problem(
    model: nn.Module, inputs: Any, scores: Scores, grid: tuple[int, int] | None, **settings: Any
) -> _Problem:
    """The problem of one map; ``grid`` defaults to the map's own (an :class:`Attribution`'s)."""
    if grid is None and isinstance(scores, Attribution):
        grid = scores.grid
    return _problem(model, inputs, grid=grid, **settings)


def _one_curve(
    kind: CurveKind,
    model: nn.Module,
    inputs: Any,
    scores: Scores,
    steps: int,
    grid: tuple[int, int] | None,
    **settings: Any,
) -> Curve:
    steps = _check_steps(steps)
    p = _map_problem(model, inputs, scores, grid, **settings)
    method = scores.label if isinstance(scores, Attribution) else ""
    return _curve(p, _scores(scores, p, method or "the map"), steps, kind, method)


def deletion_curve(
    model: nn.Module,
    inputs: Any,
    scores: Scores,
    *,
    target: Any = None,
    steps: int = 20,
    baseline: Baseline = None,
    score_fn: ScoreFn | None = None,
    tokenizer: Any = None,
    grid: tuple[int, int] | None = None,
    batch_size: int = 64,
    output: Output = "probability",
) -> Curve:
    """Deletion curve (Petsiuk et al. 2018, RISE; Chefer et al. 2021 "positive perturbation").

    Units are removed in order of decreasing score (the raw score: for signed maps the most
    positive evidence first; pass ``scores.abs()`` to order by magnitude; ties by position):
    after step ``s`` of ``steps``, the ``round(s * n / steps)`` top units of each item (``n``
    its number of valid units) are replaced by the baseline, and the target score is recorded.
    A faithful map makes the score fall fast: low AUC.

    Args:
        model: a vision or text classifier (HF or timm), or any module with the same call
            convention (``model(images)`` / ``model(**text_kwargs)``).
        inputs: images ``[batch, channel, height, width]`` (normalised as the model expects), or
            text: strings (with ``tokenizer``), a tokenizer output, or ``input_ids [batch, seq]``.
        scores: ``[batch, num_units]`` (patches row-major over the grid, or token positions) or
            an :class:`Attribution` of these inputs.
        target: ``None`` (the class predicted on the unperturbed input), an ``int`` class, a
            ``Tensor [batch]`` of classes, or a callable ``output -> [batch]`` (its value is used
            as is, e.g. :func:`probe.similarity_target`).
        steps: number of equal steps from 0 to all units.
        baseline: what replaces a removed unit (see the module docstring): images ``"mean"``
            (default), ``"zero"``, ``"blur"`` or a tensor; text ``"mask"`` (default when the
            tokenizer has a mask token, else ``"pad"``), ``"pad"`` or a token id.
        score_fn: instead of ``target``: ``score_fn(model, inputs) -> [batch]`` called on each
            perturbed batch (a pixel tensor, or a dict of forward keyword tensors for text).
        tokenizer: text models: the tokenizer (encodes strings, names special tokens).
        grid: vision: ``(rows, cols)`` patch grid; default from ``scores`` or the model.
        batch_size: perturbed inputs per forward pass.
        output: ``"probability"`` (softmax of the target class) or ``"logit"``; ignored for
            callable targets and ``score_fn``.

    Returns:
        A :class:`Curve` with ``values [batch, steps + 1]`` and ``auc [batch]``.
    """
    return _one_curve("deletion", model, inputs, scores, steps, grid, **_settings(locals()))


def insertion_curve(
    model: nn.Module,
    inputs: Any,
    scores: Scores,
    *,
    target: Any = None,
    steps: int = 20,
    baseline: Baseline = None,
    score_fn: ScoreFn | None = None,
    tokenizer: Any = None,
    grid: tuple[int, int] | None = None,
    batch_size: int = 64,
    output: Output = "probability",
) -> Curve:
    """Insertion curve (Petsiuk et al. 2018, RISE; Chefer et al. 2021 "negative perturbation"
    read in reverse).

    Starts from the all-baseline input (every valid unit removed; special tokens kept) and
    reveals units in order of decreasing score, ``round(s * n / steps)`` after step ``s``. A
    faithful map makes the score rise fast: high AUC. Arguments as for :func:`deletion_curve`.

    Returns:
        A :class:`Curve` with ``values [batch, steps + 1]`` and ``auc [batch]``.
    """
    return _one_curve("insertion", model, inputs, scores, steps, grid, **_settings(locals()))


def perturbed_input(
    model: nn.Module,
    inputs: Any,
    scores: Scores,
    step: int,
    *,
    kind: CurveKind = "deletion",
    steps: int = 20,
    baseline: Baseline = None,
    tokenizer: Any = None,
    grid: tuple[int, int] | None = None,
) -> Any:
    """The input a deletion or insertion curve scores at step ``step``, built as the curve
    builds it (:func:`deletion_curve` / :func:`insertion_curve` with the same ``scores``,
    ``steps``, ``baseline`` and ``grid``): the ``round(step * n / steps)`` top-ranked units
    replaced by the baseline (deletion) or the only ones kept (insertion). Runs no model.

    Args:
        model, inputs, scores, steps, baseline, tokenizer, grid: as for :func:`deletion_curve`.
        step: ``0..steps``.
        kind: ``"deletion"`` or ``"insertion"``.

    Returns:
        Images ``[batch, channel, height, width]`` on the model's device, or for text the
        model's keyword tensors (``input_ids [batch, seq]``, ``attention_mask``, ...).
    """
    import torch

    steps = _check_steps(steps)
    if kind not in ("deletion", "insertion"):
        raise ProbeError(f"kind must be 'deletion' or 'insertion', got {kind!r}")
    if not is_int(step) or not 0 <= step <= steps:
        raise ProbeError(f"step must be an int in 0..{steps} (steps={steps}), got {step!r}")
    step = int(step)
    if grid is None and isinstance(scores, Attribution):
        grid = scores.grid
    if isinstance(inputs, torch.Tensor) and inputs.is_floating_point():
        p = _vision_problem(model, inputs, baseline, grid, 1)
    else:
        p = _text_problem(model, inputs, tokenizer, baseline, 1)
    method = scores.label if isinstance(scores, Attribution) else ""
    keep = _curve_keep(_ranks(_scores(scores, p, method or "the map"), p.valid), p.valid,
                       steps, kind)[:, step]
    return p.build(keep, torch.arange(int(keep.shape[0])))


def _named(attributions: Any) -> list[tuple[str, Any]]:
    if isinstance(attributions, Attribution):
        return [(attributions.label, attributions)]
    if isinstance(attributions, Mapping):
        items = [(str(k), v) for k, v in attributions.items()]
    elif isinstance(attributions, Sequence) and not isinstance(attributions, (str, bytes)):
        items = []
        for a in attributions:
            if not isinstance(a, Attribution):
                raise ProbeError(
                    f"a sequence of attributions must hold Attributions, got {type(a).__name__}; "
                    "pass a mapping name -> scores for plain tensors"
                )
            items.append((a.label, a))
    else:
        raise ProbeError(
            f"attributions must be Attributions or a mapping name -> scores, got "
            f"{type(attributions).__name__}"
        )
    names = [n for n, _ in items]
    if not items:
        raise ProbeError("no attributions given: pass at least one")
    if len(set(names)) != len(names):
        raise ProbeError(f"duplicate method names {names}: pass a mapping with distinct names")
    return items


def _grid_of(items: list[tuple[str, Any]], grid: tuple[int, int] | None) -> tuple[int, int] | None:
    if grid is not None:
        return grid
    grids = {a.grid for _, a in items if isinstance(a, Attribution) and a.grid is not None}
    if len(grids) > 1:
        raise ProbeError(
            f"the attributions have different patch grids {sorted(grids)}; compute them on the "
            "same model"
        )
    return grids.pop() if grids else None


def _methods_problem(
    model: nn.Module,
    inputs: Any,
    attributions: Sequence[Attribution] | Mapping[str, Scores] | Attribution,
    grid: tuple[int, int] | None,
    **settings: Any,
) -> tuple[list[tuple[str, Any]], _Problem]:
    """``(name, scores)`` of every method and their common problem (``grid`` defaults to the
    one the attributions share)."""
    items = _named(attributions)
    return items, _problem(model, inputs, grid=_grid_of(items, grid), **settings)


def score_label(target: Any = None, output: Literal["probability", "logit"] = "probability") -> str:
    """What the curves' y axis is for ``target`` (as :func:`deletion_curve` takes it): the
    cosine similarity of a :func:`probe.similarity_target`, the value of another callable,
    else the probability (or logit) of the target class."""
    from probe.attribution._targets import SimilarityTarget

    if isinstance(target, SimilarityTarget):
        return "cosine similarity (to the second sentence)"
    if callable(target):
        return "model score (target function)"
    return f"{output} (target class)"
