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

Removed units:

* vision (``inputs`` a float tensor ``[batch, channel, height, width]``): the pixels of the
  patch are replaced by a baseline image: ``"mean"`` (default) the image's own per-channel mean
  colour, ``"zero"`` zero in the model's normalised input space (the dataset mean colour when
  the normalisation subtracts it), ``"blur"`` a Gaussian blur of the image (``sigma`` = the
  patch size, as RISE's insertion canvas), or any tensor broadcastable to the images. The patch
  grid comes from ``grid=``, from an :class:`Attribution`'s grid, or from the model
  (``patch_embed.grid_size`` for timm, ``config.patch_size`` for HF); the patch size is the
  image size divided by the grid.
* text (strings with ``tokenizer``, a tokenizer output, or ``input_ids``): the token is replaced
  by ``"mask"`` (``[MASK]``, default when the tokenizer has one) or ``"pad"`` (the padding
  token with its attention-mask entry set to 0, so the model no longer sees it: the closest
  equivalent of ERASER's token deletion that keeps positions and batch shapes), or an ``int``
  token id (attention mask kept). Special tokens ([CLS], [SEP], ...) and padding are never
  removed and are not units: fractions count the real, non-special tokens of each item.

The score of an input is, by default, the softmax probability of the target class (the class
predicted on the unperturbed input when ``target=None``, held fixed for every perturbation);
``output="logit"`` uses the logit instead. A callable ``target`` (``output -> [batch]``, e.g.
:func:`probe.similarity_target` for sentence embeddings) or ``score_fn(model, inputs) ->
[batch]`` score anything else. Perturbed inputs are evaluated many per forward pass
(``batch_size``), without gradients, with the model in eval mode; the model (including its
train/eval flags) and the inputs are left unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union

from probe.attribution._registry import Attribution
from probe._errors import ProbeError
from probe._report import markdown_table
from probe.evaluation._curves_math import curve_auc

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.capture.adapters import ModelAdapter

__all__ = [
    "ERASER_BINS",
    "Curve",
    "EraserTable",
    "FaithfulnessTable",
    "comprehensiveness",
    "curve_auc",
    "deletion_curve",
    "eraser",
    "faithfulness",
    "insertion_curve",
    "sufficiency",
]

CurveKind = Literal["deletion", "insertion"]
BaselineName = Literal["mean", "zero", "blur", "mask", "pad"]
Baseline = Union[BaselineName, int, "torch.Tensor", None]
Output = Literal["probability", "logit"]
ScoreFn = Callable[[Any, Any], "torch.Tensor"]
Scores = Union["torch.Tensor", Attribution]

ERASER_BINS: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20, 0.50)
"""The top-k% bins of ERASER's AOPC comprehensiveness and sufficiency (DeYoung et al. 2020)."""

_VISION_BASELINES = ("mean", "zero", "blur")
_TEXT_BASELINES = ("mask", "pad")


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


@dataclass(frozen=True, eq=False)
class FaithfulnessTable:
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

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per method: ``method, deletion_auc, deletion_auc_random, insertion_auc,
        insertion_auc_random``."""
        return [
            {
                "method": m,
                "deletion_auc": float(self.deletion_auc[i]),
                "deletion_auc_random": self.random_deletion_auc,
                "insertion_auc": float(self.insertion_auc[i]),
                "insertion_auc_random": self.random_insertion_auc,
            }
            for i, m in enumerate(self.methods)
        ]

    def to_markdown(self, digits: int = 3) -> str:
        header = ["method", "deletion AUC ↓", "random", "insertion AUC ↑", "random"]
        return markdown_table(header, [list(r.values()) for r in self.to_rows()], digits,
                              missing=None)

    def __str__(self) -> str:
        return self.to_markdown()


@dataclass(frozen=True, eq=False)
class EraserTable:
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

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per method: ``method, comprehensiveness, comprehensiveness_random,
        sufficiency, sufficiency_random``."""
        return [
            {
                "method": m,
                "comprehensiveness": float(self.comprehensiveness[i]),
                "comprehensiveness_random": self.random_comprehensiveness,
                "sufficiency": float(self.sufficiency[i]),
                "sufficiency_random": self.random_sufficiency,
            }
            for i, m in enumerate(self.methods)
        ]

    def to_markdown(self, digits: int = 3) -> str:
        header = ["method", "comprehensiveness ↑", "random", "sufficiency ↓", "random"]
        return markdown_table(header, [list(r.values()) for r in self.to_rows()], digits,
                              missing=None)

    def __str__(self) -> str:
        return self.to_markdown()


# --------------------------------------------------------------------------- the model
@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode and no gradients inside; every module's training flag restored after."""
    import torch

    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, flag in flags:
            module.training = flag


@dataclass
class _Problem:
    """One batch of inputs, prepared for perturbation: which units, how to build and score."""

    model: Any
    modality: Literal["vision", "text"]
    valid: torch.Tensor  # [batch, num_units] bool: units that may be removed
    build: Callable[[torch.Tensor, torch.Tensor], Any]  # (keep [C, N], items [C]) -> inputs
    forward: Callable[[Any], Any]  # inputs -> model output
    score: Callable[[Any, Any, torch.Tensor], torch.Tensor]  # (inputs, output, items) -> [C]
    batch_size: int
    baseline: str
    grid: tuple[int, int] | None = None

    @property
    def num_units(self) -> int:
        return int(self.valid.shape[1])

    def evaluate(self, keep: torch.Tensor) -> torch.Tensor:
        """Scores of perturbed inputs: ``keep [batch, variants, units]`` -> ``[batch, variants]``.

        ``keep[b, v, u]`` is False where unit ``u`` of item ``b`` is replaced by the baseline.
        """
        import torch

        batch, variants, n = keep.shape
        flat = keep.reshape(batch * variants, n)
        items = torch.arange(batch).repeat_interleave(variants)
        out = torch.empty(batch * variants, dtype=torch.float64)
        for start in range(0, flat.shape[0], self.batch_size):
            stop = start + self.batch_size
            inputs = self.build(flat[start:stop], items[start:stop])
            output = self.forward(inputs)
            values = self.score(inputs, output, items[start:stop])
            count = int(items[start:stop].shape[0])
            if tuple(values.shape) != (count,):
                raise ProbeError(
                    f"the score of a batch of {count} perturbed inputs has shape "
                    f"{tuple(values.shape)}: return one scalar per input [{count}]"
                )
            out[start:stop] = values.detach().to("cpu", torch.float64)
        return out.reshape(batch, variants)


def _problem(
    model: nn.Module,
    inputs: Any,
    *,
    tokenizer: Any,
    target: Any,
    baseline: Baseline,
    score_fn: ScoreFn | None,
    grid: tuple[int, int] | None,
    batch_size: int,
    output: Output,
) -> _Problem:
    import torch

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ProbeError(f"batch_size must be a positive int, got {batch_size!r}")
    if output not in ("probability", "logit"):
        raise ProbeError(f"output must be 'probability' or 'logit', got {output!r}")
    if score_fn is not None and not callable(score_fn):
        raise ProbeError(
            f"score_fn must be a callable (model, inputs) -> [batch], got {score_fn!r}"
        )
    if score_fn is not None and target is not None:
        raise ProbeError(
            "pass either target= or score_fn=, not both (score_fn computes the score itself)"
        )
    vision = isinstance(inputs, torch.Tensor) and inputs.is_floating_point()
    if vision:
        p = _vision_problem(model, inputs, baseline, grid, batch_size)
    else:
        p = _text_problem(model, inputs, tokenizer, baseline, batch_size)
    if score_fn is not None:
        p.forward = lambda inputs: None  # score_fn runs the model itself
    p.score = _scorer(model, p, target, score_fn, output)
    return p


def _vision_problem(
    model: nn.Module,
    x: torch.Tensor,
    baseline: Baseline,
    grid: tuple[int, int] | None,
    batch_size: int,
) -> _Problem:
    import torch
    import torch.nn.functional as F

    if x.dim() != 4:
        raise ProbeError(
            f"images must be [batch, channel, height, width], got shape {tuple(x.shape)}"
            + ("; use x.unsqueeze(0)" if x.dim() == 3 else "")
        )
    from probe.capture import adapter_for

    adapter = adapter_for(model)
    device = adapter.device
    x = x.detach().to(device)
    height, width = int(x.shape[-2]), int(x.shape[-1])
    rows, cols = _model_grid(adapter, x) if grid is None else _check_grid(grid)
    ph, pw = height // rows, width // cols
    if ph < 1 or pw < 1:
        raise ProbeError(
            f"a {rows}x{cols} patch grid does not fit {height}x{width} images; fix grid="
        )
    if baseline is None:
        baseline = "mean"
    if isinstance(baseline, torch.Tensor):
        try:
            base = torch.broadcast_to(baseline.detach().to(device, x.dtype), x.shape)
        except RuntimeError:
            raise ProbeError(
                f"a baseline tensor must broadcast to the images {tuple(x.shape)}, got "
                f"{tuple(baseline.shape)}"
            ) from None
        name = "tensor"
    elif baseline == "mean":
        base = x.mean(dim=(2, 3), keepdim=True).expand_as(x)
        name = baseline
    elif baseline == "zero":
        base = torch.zeros_like(x)
        name = baseline
    elif baseline == "blur":
        base = _blur(x, float(max(ph, pw)))
        name = baseline
    else:
        raise ProbeError(
            f"unknown image baseline {baseline!r}: use one of {list(_VISION_BASELINES)} or a tensor"
        )

    def build(keep: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        pix = keep.reshape(-1, rows, cols).repeat_interleave(ph, 1).repeat_interleave(pw, 2)
        # pixels beyond the last full patch (image size not a multiple of the grid) stay as they are
        pix = F.pad(pix, (0, width - cols * pw, 0, height - rows * ph), value=True)
        idx = items.to(device)
        return torch.where(pix.to(device)[:, None], x[idx], base[idx])

    return _Problem(
        model=model,
        modality="vision",
        valid=torch.ones(int(x.shape[0]), rows * cols, dtype=torch.bool),
        build=build,
        forward=adapter.call,
        score=None,  # type: ignore[arg-type]  # set by _problem
        batch_size=batch_size,
        baseline=name,
        grid=(rows, cols),
    )


def _check_grid(grid: Any) -> tuple[int, int]:
    if (
        not isinstance(grid, (tuple, list))
        or len(grid) != 2
        or not all(isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in grid)
    ):
        raise ProbeError(f"grid must be (rows, cols) of positive ints, got {grid!r}")
    return int(grid[0]), int(grid[1])


def _model_grid(adapter: ModelAdapter, x: torch.Tensor) -> tuple[int, int]:
    if adapter.modality != "vision" or adapter.generic:
        raise ProbeError(
            f"cannot tell the patch grid of {adapter.name}: pass grid=(rows, cols) or an "
            "Attribution (it carries its grid)"
        )
    return _check_grid(adapter.vision_geometry(x).grid)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``[batch, channel, H, W]`` (edges replicated)."""
    import torch
    import torch.nn.functional as F

    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(t * t) / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    c = int(x.shape[1])
    out = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def text_inputs(
    model: nn.Module, inputs: Any, tokenizer: Any
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Text inputs as forward keyword tensors ``[batch, seq]`` and the valid-unit mask.

    Args:
        model: the text model (its config names special token ids when no tokenizer is given).
        inputs: a string or list of strings (needs ``tokenizer``), a tokenizer output / mapping
            with ``input_ids``, or an ``input_ids`` tensor ``[batch, seq]``.
        tokenizer: the model's tokenizer (names the special tokens).

    Returns:
        ``(kwargs, valid)``: new tensors (the inputs are not modified), ``attention_mask``
        always present; ``valid [batch, seq]`` bool is True on real, non-special tokens.
    """
    import torch

    from probe.capture import adapter_for

    adapter = adapter_for(model)
    if (adapter.modality != "text" and not adapter.generic) or (
        isinstance(inputs, torch.Tensor) and inputs.is_floating_point()
    ):
        raise ProbeError(
            f"unsupported inputs of type {type(inputs).__name__}: pass images [batch, channel, "
            "height, width] to a vision model, or to a text model strings with tokenizer=, a "
            "tokenizer output or input_ids [batch, seq]"
        )
    prepared = adapter.prepare(inputs, tokenizer=tokenizer)
    ids = prepared.kwargs.get("input_ids")
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        raise ProbeError("text inputs need 'input_ids' [batch, seq]: pass a tokenizer's output")
    kwargs = {
        k: (v.detach().clone() if isinstance(v, torch.Tensor) else v)
        for k, v in prepared.kwargs.items()
    }
    if kwargs.get("attention_mask") is None:
        kwargs["attention_mask"] = torch.ones_like(ids)
    mask = kwargs["attention_mask"].bool().cpu()
    special = prepared.special_tokens_mask
    if special is None:
        special = torch.zeros_like(mask)
    return kwargs, mask & ~special


def _text_problem(
    model: nn.Module, inputs: Any, tokenizer: Any, baseline: Baseline, batch_size: int
) -> _Problem:
    import torch

    kwargs, valid = text_inputs(model, inputs, tokenizer)
    ids = kwargs["input_ids"]
    batch = int(ids.shape[0])
    if baseline is None:
        baseline = "mask" if getattr(tokenizer, "mask_token_id", None) is not None else "pad"
    drop_attention = False
    if isinstance(baseline, (bool, torch.Tensor)):
        raise ProbeError(
            f"text baselines are 'mask', 'pad' or a token id (int), got {type(baseline).__name__}"
        )
    if isinstance(baseline, int):
        token, name = baseline, f"token {baseline}"
    elif baseline == "mask":
        token = getattr(tokenizer, "mask_token_id", None)
        if token is None:
            raise ProbeError(
                "baseline='mask' needs a tokenizer with a mask token: pass tokenizer= or use "
                "baseline='pad'"
            )
        name = "mask"
    elif baseline == "pad":
        token = getattr(tokenizer, "pad_token_id", None)
        if token is None:
            token = getattr(getattr(model, "config", None), "pad_token_id", None)
        if token is None:
            raise ProbeError(
                "baseline='pad' needs a padding token id: pass tokenizer= or an int token id"
            )
        drop_attention, name = True, "pad"
    else:
        raise ProbeError(
            f"unknown text baseline {baseline!r}: use one of {list(_TEXT_BASELINES)} or a token id"
        )
    from probe.capture import adapter_for

    adapter = adapter_for(model)
    device = adapter.device
    per_item = {
        k: v
        for k, v in kwargs.items()
        if isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == batch
    }
    fixed = {k: v for k, v in kwargs.items() if k not in per_item}
    valid_dev = valid.to(device)
    per_item = {k: v.to(device) for k, v in per_item.items()}

    def build(keep: torch.Tensor, items: torch.Tensor) -> dict[str, Any]:
        idx = items.to(device)
        out = {k: v[idx] for k, v in per_item.items()}
        drop = ~keep.to(device) & valid_dev[idx]
        out["input_ids"] = out["input_ids"].masked_fill(drop, int(token))
        if drop_attention:
            out["attention_mask"] = out["attention_mask"].masked_fill(drop, 0)
        return {**fixed, **out}

    return _Problem(
        model=model,
        modality="text",
        valid=valid,
        build=build,
        forward=adapter.forward,
        score=None,  # type: ignore[arg-type]  # set by _problem
        batch_size=batch_size,
        baseline=name,
    )


def _scorer(
    model: nn.Module, p: _Problem, target: Any, score_fn: ScoreFn | None, output: Output
) -> Callable[[Any, Any, torch.Tensor], torch.Tensor]:
    import torch

    from probe.attribution._targets import check_scalar_per_item, model_logits, predicted_class, resolve_target

    if score_fn is not None:

        def by_fn(inputs: Any, out: Any, items: torch.Tensor) -> torch.Tensor:
            return check_scalar_per_item(score_fn(model, inputs), score_fn)

        return by_fn
    if callable(target) and not isinstance(target, torch.Tensor):

        def by_target(inputs: Any, out: Any, items: torch.Tensor) -> torch.Tensor:
            mask = inputs.get("attention_mask") if isinstance(inputs, dict) else None
            return resolve_target(target, out, model, attention_mask=mask)

        return by_target

    batch = int(p.valid.shape[0])
    if target is None:
        chunks = []
        with _eval_mode(model):
            for start in range(0, batch, p.batch_size):
                items = torch.arange(start, min(batch, start + p.batch_size))
                keep = torch.ones(len(items), p.num_units, dtype=torch.bool)
                chunks.append(predicted_class(p.forward(p.build(keep, items)), model).cpu())
        classes = torch.cat(chunks)
    elif isinstance(target, bool):
        raise ProbeError(
            f"target must be a class index, a tensor of classes, a callable or None, got {target!r}"
        )
    elif isinstance(target, int):
        classes = torch.full((batch,), target, dtype=torch.long)
    elif isinstance(target, torch.Tensor):
        if target.dtype not in (torch.int64, torch.int32) or tuple(target.shape) != (batch,):
            raise ProbeError(
                f"a tensor target must hold one integer class per batch item [{batch}], got "
                f"{target.dtype} {tuple(target.shape)}"
            )
        classes = target.long().cpu()
    else:
        raise ProbeError(
            f"target must be None, a class index, a tensor of classes or a callable output -> "
            f"[batch], got {type(target).__name__}"
        )

    from probe.capture import adapter_for

    device = adapter_for(model).device

    def by_class(inputs: Any, out: Any, items: torch.Tensor) -> torch.Tensor:
        cls = classes[items].to(device)
        logit = resolve_target(cls, out, model)  # checks the classes against the logits
        if output == "logit":
            return logit
        logits = model_logits(out, model).double()  # type: ignore[union-attr]
        return logits.softmax(-1).gather(1, (cls % logits.shape[-1])[:, None])[:, 0]

    return by_class


# --------------------------------------------------------------------------- orders
def _scores(scores: Any, p: _Problem, name: str) -> torch.Tensor:
    import torch

    if isinstance(scores, Attribution):
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
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ProbeError(f"steps must be a positive int, got {steps!r}")
    return steps


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
    return Curve(fractions, values, curve_auc(fractions, values), kind, method)


def _random_scores(p: _Problem, n_random: int, seed: int) -> list[torch.Tensor]:
    import torch

    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 0:
        raise ProbeError(f"n_random must be a non-negative int, got {n_random!r}")
    gen = torch.Generator().manual_seed(int(seed))
    return [torch.rand(p.valid.shape, generator=gen, dtype=torch.float64) for _ in range(n_random)]


def _mean_curve(curves: list[Curve]) -> Curve:
    import torch

    values = torch.stack([c.values for c in curves]).mean(0)
    auc = torch.stack([c.auc for c in curves]).mean(0)
    return Curve(curves[0].fractions, values, auc, curves[0].kind, "random")


def _one_curve(
    kind: CurveKind,
    model: nn.Module,
    inputs: Any,
    scores: Scores,
    target: Any,
    steps: int,
    baseline: Baseline,
    score_fn: ScoreFn | None,
    tokenizer: Any,
    grid: tuple[int, int] | None,
    batch_size: int,
    output: Output,
) -> Curve:
    steps = _check_steps(steps)
    if grid is None and isinstance(scores, Attribution):
        grid = scores.grid
    p = _problem(
        model,
        inputs,
        tokenizer=tokenizer,
        target=target,
        baseline=baseline,
        score_fn=score_fn,
        grid=grid,
        batch_size=batch_size,
        output=output,
    )
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
    return _one_curve(
        "deletion",
        model,
        inputs,
        scores,
        target,
        steps,
        baseline,
        score_fn,
        tokenizer,
        grid,
        batch_size,
        output,
    )


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
    return _one_curve(
        "insertion",
        model,
        inputs,
        scores,
        target,
        steps,
        baseline,
        score_fn,
        tokenizer,
        grid,
        batch_size,
        output,
    )


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
        n_random: number of random orders (0: no random baseline, reported as ``nan``).
        seed: seed of the random orders.
        Others: as for :func:`deletion_curve`.

    Returns:
        A :class:`FaithfulnessTable` (``print`` it for a markdown table).
    """
    import torch

    steps = _check_steps(steps)
    items = _named(attributions)
    p = _problem(
        model,
        inputs,
        tokenizer=tokenizer,
        target=target,
        baseline=baseline,
        score_fn=score_fn,
        grid=_grid_of(items, grid),
        batch_size=batch_size,
        output=output,
    )
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
    **kwargs: Any,
) -> torch.Tensor:
    bins_t = _check_bins(bins)
    if grid is None and isinstance(scores, Attribution):
        grid = scores.grid
    p = _problem(model, inputs, grid=grid, **kwargs)
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
    return _eraser_one(
        0,
        model,
        inputs,
        scores,
        bins,
        grid,
        target=target,
        baseline=baseline,
        score_fn=score_fn,
        tokenizer=tokenizer,
        batch_size=batch_size,
        output=output,
    )


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
    return _eraser_one(
        1,
        model,
        inputs,
        scores,
        bins,
        grid,
        target=target,
        baseline=baseline,
        score_fn=score_fn,
        tokenizer=tokenizer,
        batch_size=batch_size,
        output=output,
    )


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
    items = _named(attributions)
    p = _problem(
        model,
        inputs,
        tokenizer=tokenizer,
        target=target,
        baseline=baseline,
        score_fn=score_fn,
        grid=_grid_of(items, grid),
        batch_size=batch_size,
        output=output,
    )
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
