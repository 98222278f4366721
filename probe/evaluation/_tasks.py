"""``probe eval``: evaluate every registered attribution method against ground truth.

Three tasks, each printing a markdown table and optionally writing a JSON file:

``faithfulness`` (vision, default model ``vit-shapes``)
    ``N`` generated shape images (:func:`probe.make_shapes`, seed ``EVAL_IMAGE_SEED + 1000 *
    --seed``: the ``vit-shapes`` recipe trains on seeds >= 1,000,000 and reports its held-out
    accuracy on seed 10,000, so these images are seen by neither). Every method of
    ``probe.list_methods("vision")`` explains the predicted class of every image (methods that
    refuse the input size, e.g. exact attention flow on 65 tokens, are listed as skipped with
    their reason), in batches of ``batch_size`` images per call. Per method:

    * **pointing game** (Zhang et al. 2016, "Top-down Neural Attention by Excitation Backprop"),
      on one common grid so methods are comparable: every map is brought to the model's patch
      grid (:func:`to_patch_grid`; pixel maps by average pooling), the top patch is the one
      with the highest raw score (ties broken uniformly at random with a fixed seed), and it
      is a hit when it contains at least one object pixel (:func:`pointing_game`). Chance level
      is the mean fraction of object patches, which is reported next to it.
    * **mass on object**: the fraction of the map's *positive* mass that lies on object patches
      (a patch containing any object pixel, :func:`object_patch_mask`); negative scores are
      ignored, maps without positive mass are left out of the mean (:func:`mass_on_object`).
      Chance level is again the mean object-patch fraction.
    * **deletion and insertion AUC** from :func:`probe.evaluation._faithfulness.faithfulness`: patches
      are removed (replaced by the image's own mean colour, ``baseline="mean"``) or revealed
      on an all-mean-colour image in order of decreasing raw score, in ``steps=16`` equal
      steps (4 of the 64 patches each); the score is the softmax probability of the class
      predicted on the clean image; AUC by the trapezoid rule over the fraction in ``[0, 1]``.
      Deletion: lower is better; insertion: higher is better.
    * **time per image**: wall-clock seconds of :func:`probe.attribute` per image (batched,
      including the method's own forward and backward passes).

    Also the model's accuracy on the images, and a comparison with the ordering Chefer et al.
    2021 report on ImageNet (:data:`PUBLISHED_REFERENCE`, :func:`chefer_ordering`).

``sanity`` (vision, default ``vit-shapes``, ``N = 16``)
    The cascading model-parameter randomisation test (Adebayo et al. 2018) of
    :func:`probe.evaluation._sanity.sanity_check` for every vision method: the rank correlation of each
    map with the original after each randomisation step, averaged over the images. Attention-
    only methods are reported like every other method, whatever they show.

``text`` (default ``minilm``)
    The sentence pairs shipped in ``probe/models/data/sentence_pairs.json``: for each pair the first
    sentence is explained with the target "cosine similarity of its embedding to the second
    sentence's" (:func:`probe.attribution._targets.similarity_target`). Per method: Spearman and Kendall
    agreement with Integrated Gradients over the real, non-special tokens (IG taken in absolute
    value: a strongly negative token matters as much as a strongly positive one; signed values
    are in the JSON too), and ERASER comprehensiveness/sufficiency (``[MASK]`` replacement,
    next to random orders and the ``random`` method).

Run time, measured on the 2-core shared CPU with ``OMP_NUM_THREADS=1`` (wall clock, including
start-up and model loading; ``"run_time_s"`` in ``benchmarks/eval-*.json`` is the evaluation
alone): ``faithfulness`` with ``N = 500`` 5 min 8 s (Integrated Gradients is 70% of it, 0.22 s
per image; 4.5 GB peak memory), ``--quick`` (``N = 48``) about 1 min; ``sanity`` (``N = 16``)
42 s; ``text`` (25 pairs) 68 s. On a CPU shared with other jobs, set ``OMP_NUM_THREADS=1``:
these evals run many small forward passes, and two OpenMP threads spin-waiting for each other
on busy cores made them about 10x slower in our measurements.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._report import format_value
from probe._report import jsonable, markdown_table, write_json

if TYPE_CHECKING:
    import torch
    from torch import nn


__all__ = [
    "CHEFER_ORDER",
    "EVAL_IMAGE_SEED",
    "PUBLISHED_REFERENCE",
    "chefer_ordering",
    "eval_faithfulness",
    "eval_sanity",
    "eval_text",
    "load_sentence_pairs",
    "mass_on_object",
    "object_patch_mask",
    "pointing_game",
    "to_patch_grid",
]

EVAL_IMAGE_SEED: int = 20_000
"""Base seed of the evaluation images: ``make_shapes(n, EVAL_IMAGE_SEED + 1000 * seed)``.

Distinct from the ``vit-shapes`` training seeds (>= 1,000,000) and its held-out split (10,000).
"""

_TRAINING_SEEDS_FROM = 1_000_000
_RECIPE_EVAL_SEED = 10_000

DEFAULT_N: dict[str, int | None] = {"faithfulness": 500, "sanity": 16, "text": None}
"""Default ``--n`` per task (``None``: every sentence pair)."""

QUICK_N: dict[str, int] = {"faithfulness": 48, "sanity": 4, "text": 8}
"""``--n`` under ``--quick`` (an explicit ``--n`` wins)."""

DEFAULT_MODEL: dict[str, str] = {
    "faithfulness": "vit-shapes", "sanity": "vit-shapes", "text": "minilm",
}

CHEFER_ORDER: tuple[str, ...] = ("relevance", "rollout", "attention", "gradcam")
"""Best-to-worst order of these probe methods in Chefer et al. 2021, Table 1 (both tests)."""

PUBLISHED_REFERENCE: dict[str, Any] = {
    "source": (
        "Chefer, Gur & Wolf 2021, 'Transformer Interpretability Beyond Attention Visualization', "
        "CVPR 2021, Table 1: perturbation tests on the ImageNet validation set, ViT-B/16, "
        "explaining the predicted class"
    ),
    "metric": (
        "area under the top-1 accuracy curve (%) while 10%..90% of the pixels are removed "
        "(set to zero), most relevant first (positive perturbation) or least relevant first "
        "(negative perturbation)"
    ),
    "positive_perturbation_auc_lower_is_better": {
        "relevance": 17.03, "rollout": 20.05, "attention": 23.99, "gradcam": 34.06,
    },
    "negative_perturbation_auc_higher_is_better": {
        "relevance": 54.16, "rollout": 53.10, "attention": 45.55, "gradcam": 41.52,
    },
    "method_names": {
        "relevance": "the paper's LRP-based relevance propagation ('Ours'); probe's 'relevance' "
        "is the gradient-weighted attention rule of Chefer, Gur & Wolf, ICCV 2021, the "
        "authors' LRP-free successor",
        "rollout": "attention rollout, heads averaged (Abnar & Zuidema 2020)",
        "attention": "raw attention of the last layer, CLS row, heads averaged",
        "gradcam": "GradCAM (Selvaraju et al. 2017) on the last block",
    },
    "correspondence": (
        "deletion AUC ~ positive perturbation; insertion AUC ~ negative perturbation (revealing "
        "the top fraction f on a blank image equals removing the bottom 1 - f). probe's curves "
        "score the predicted-class probability (not top-1 accuracy) over 0..100% of the patches "
        "with the image's mean colour as the removed value, so only orderings compare, not values"
    ),
}


# --------------------------------------------------------------------------- metrics
def _grid_tuple(grid: Any) -> tuple[int, int]:
    if (
        not isinstance(grid, (tuple, list))
        or len(grid) != 2
        or not all(isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in grid)
    ):
        raise ProbeError(f"grid must be (rows, cols) of positive ints, got {grid!r}")
    return int(grid[0]), int(grid[1])


def _pool_factors(height: int, width: int, grid: tuple[int, int], what: str) -> tuple[int, int]:
    rows, cols = grid
    if height % rows or width % cols:
        raise ProbeError(
            f"{what} of {height}x{width} pixels do not split into a {rows}x{cols} patch grid; "
            "pass pixel maps whose size is a multiple of the grid (the model's input size)"
        )
    return height // rows, width // cols


def to_patch_grid(maps: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Bring saliency maps to the patch grid, so that every method is scored on the same units.

    Args:
        maps: one of ``[n, rows * cols]`` (patch scores, row-major, as in
            :attr:`probe.Attribution.scores`), ``[n, rows, cols]`` (already on the grid),
            ``[n, H, W]`` (pixel maps) or ``[n, channel, H, W]`` (pixel attributions; the
            channels are summed first). ``H`` and ``W`` must be multiples of ``rows``/``cols``.
        grid: ``(rows, cols)`` of the model's patch grid.

    Returns:
        ``[n, rows, cols]`` float64 new tensor. Pixel maps are *average pooled* over each
        patch's ``H / rows x W / cols`` pixels (for a constant patch, its value).
    """
    import torch
    import torch.nn.functional as F

    rows, cols = _grid_tuple(grid)
    if not isinstance(maps, torch.Tensor):
        raise ProbeError(f"maps must be a tensor, got {type(maps).__name__}")
    x = maps.detach().to("cpu", torch.float64)
    if x.dim() == 2:
        if x.shape[1] != rows * cols:
            raise ProbeError(
                f"maps [n, units] must have rows * cols = {rows * cols} units, got {tuple(x.shape)}"
            )
        return x.reshape(-1, rows, cols).clone()
    if x.dim() == 4:
        x = x.sum(1)
    if x.dim() != 3:
        raise ProbeError(
            f"maps must be [n, rows*cols], [n, rows, cols], [n, H, W] or [n, C, H, W], got "
            f"{tuple(maps.shape)}"
        )
    if tuple(x.shape[1:]) == (rows, cols):
        return x.clone()
    ph, pw = _pool_factors(int(x.shape[1]), int(x.shape[2]), (rows, cols), "maps")
    return F.avg_pool2d(x[:, None], kernel_size=(ph, pw), stride=(ph, pw))[:, 0]


def object_patch_mask(masks: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Object patches: a patch is an object patch when it contains any object pixel.

    Args:
        masks: ``[n, H, W]`` bool object masks (e.g. :attr:`probe.ShapesBatch.masks`); ``H``
            and ``W`` multiples of ``rows`` and ``cols``.
        grid: ``(rows, cols)`` patch grid.

    Returns:
        ``[n, rows, cols]`` bool.
    """
    import torch

    rows, cols = _grid_tuple(grid)
    if not isinstance(masks, torch.Tensor) or masks.dim() != 3:
        shape = tuple(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__
        raise ProbeError(f"masks must be a bool tensor [n, H, W], got {shape}")
    n, height, width = (int(s) for s in masks.shape)
    ph, pw = _pool_factors(height, width, (rows, cols), "masks")
    m = masks.detach().cpu().bool().reshape(n, rows, ph, cols, pw)
    return m.any(dim=4).any(dim=2)


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """Pointing game on the patch grid: does the top patch of each map touch the object?

    Zhang et al. 2016 ("Top-down Neural Attention by Excitation Backprop") count a hit when
    the maximum of a saliency map falls on the object. Here the map lives on the patch grid:
    the top patch is the one with the highest raw score (for signed maps the most positive
    evidence); ties (e.g. an all-zero GradCAM map) are broken uniformly at random by a
    generator seeded with ``seed``, so a constant map scores the object-patch fraction on
    average, like the random baseline. A hit means the top patch contains at least one
    object pixel (:func:`object_patch_mask`).

    Args:
        maps: ``[n, rows, cols]`` scores on the patch grid (see :func:`to_patch_grid`).
        masks: ``[n, H, W]`` bool object masks of the same images.
        seed: seed of the tie-breaking generator.

    Returns:
        ``[n]`` bool: hit or miss per image.
    """
    import torch

    if not isinstance(maps, torch.Tensor) or maps.dim() != 3:
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise ProbeError(
            f"maps must be [n, rows, cols] on the patch grid, got {shape}; see to_patch_grid"
        )
    n, rows, cols = (int(s) for s in maps.shape)
    patches = object_patch_mask(masks, (rows, cols))
    if patches.shape[0] != n:
        raise ProbeError(f"{n} maps but {patches.shape[0]} masks: pass one mask per map")
    flat = maps.detach().to("cpu", torch.float64).reshape(n, -1)
    if bool(torch.isnan(flat).any()):
        raise ProbeError("maps contain NaN: fix the attribution before scoring it")
    tied = flat == flat.amax(dim=1, keepdim=True)
    generator = torch.Generator().manual_seed(int(seed))
    keys = torch.rand(flat.shape, generator=generator, dtype=torch.float64)
    top = torch.where(tied, keys, torch.full_like(keys, -1.0)).argmax(dim=1)
    return patches.reshape(n, -1).gather(1, top[:, None])[:, 0]


def mass_on_object(maps: torch.Tensor, patch_masks: torch.Tensor) -> torch.Tensor:
    """Fraction of each map's positive mass that lies on object patches.

    ``sum(relu(map) * object) / sum(relu(map))`` over the patch grid: negative scores
    (evidence against the class in signed maps) are ignored. An iid random map scores the
    object-patch fraction ``k / (rows * cols)`` in expectation.

    Args:
        maps: ``[n, rows, cols]`` scores on the patch grid (see :func:`to_patch_grid`).
        patch_masks: ``[n, rows, cols]`` bool object patches (see :func:`object_patch_mask`).

    Returns:
        ``[n]`` float64 in ``[0, 1]``; ``nan`` for a map without positive mass.
    """
    import torch

    if not isinstance(maps, torch.Tensor) or not isinstance(patch_masks, torch.Tensor):
        raise ProbeError("maps and patch_masks must be tensors [n, rows, cols]")
    if maps.dim() != 3 or tuple(maps.shape) != tuple(patch_masks.shape):
        raise ProbeError(
            f"maps {tuple(maps.shape)} and patch_masks {tuple(patch_masks.shape)} must both be "
            "[n, rows, cols] of the same shape"
        )
    positive = maps.detach().to("cpu", torch.float64).clamp_min(0.0).flatten(1)
    total = positive.sum(1)
    on = (positive * patch_masks.detach().cpu().bool().flatten(1)).sum(1)
    undefined = torch.full_like(total, float("nan"))
    return torch.where(total > 0, on / total.clamp_min(1e-300), undefined)


# --------------------------------------------------------------------------- helpers
def _mean_se(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, standard error and count of the finite values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return float("nan"), float("nan"), 0
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, float("nan"), len(xs)
    var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
    return mean, math.sqrt(var / len(xs)), len(xs)




def _progress(
    iterable: Iterable[Any], quiet: bool, desc: str, total: int | None = None
) -> Iterable[Any]:
    if quiet:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


def _select_methods(modality: str, methods: Sequence[str]) -> tuple[str, ...]:
    from probe.attribution._registry import list_methods, method_spec

    available = list_methods(modality)  # type: ignore[arg-type]
    if not methods:
        return available
    for name in methods:
        method_spec(name)  # unknown names raise
        if name not in available:
            raise ProbeError(
                f"method {name!r} does not apply to {modality} models: use one of {list(available)}"
            )
    return tuple(dict.fromkeys(methods))


def _vision_input(model: nn.Module) -> int:
    """The square input size of a vision model (images are generated at this size)."""
    from probe.capture import adapter_for

    adapter = adapter_for(model)
    if adapter.modality != "vision":
        raise ProbeError(
            f"{type(model).__name__} is not a vision model: the faithfulness and sanity evals "
            "run on images (use --model vit-shapes or a timm ViT)"
        )
    size = adapter.input_size()
    if size is None:
        raise ProbeError(
            f"cannot tell the input size of {type(model).__name__}; use a timm or HF ViT"
        )
    h, w = size
    if h != w or h < 16:
        raise ProbeError(
            f"the shapes images are square and at least 16 pixels, but the model takes {h}x{w}; "
            "use a model with a square input of 16 pixels or more"
        )
    return h


def _check_options(options: Any, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``options`` (method -> keyword options) checked against the methods' declarations, so
    a bad option fails before any work instead of marking the method as skipped."""
    from probe.attribution._registry import method_options

    if options is None:
        return {}
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ProbeError("options must map a method name to a dict of its keyword options")
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ProbeError(
            f"options for methods that do not run: {unknown}; evaluated: {list(names)}"
        )
    for name, given in options.items():
        method_options(name, given)
    return {k: dict(v) for k, v in options.items()}


def _image_seed(seed: int) -> int:
    value = EVAL_IMAGE_SEED + 1000 * seed
    if value >= _TRAINING_SEEDS_FROM or value == _RECIPE_EVAL_SEED:
        raise ProbeError(
            f"--seed {seed} would draw images from a vit-shapes training seed; use a --seed "
            f"below {(_TRAINING_SEEDS_FROM - EVAL_IMAGE_SEED) // 1000}"
        )
    return value


def _predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``[batch]`` predicted classes of a timm or HF vision classifier (CPU tensor)."""
    import torch

    from probe.capture import adapter_for

    adapter = adapter_for(model)
    return adapter.predicted_class(adapter.prepare(images))


def _paired(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Mean and standard error of the per-image differences ``a - b`` (same images)."""
    mean, se, _ = _mean_se([x - y for x, y in zip(a, b)])
    return {"mean_difference": mean, "se": se}


def _model_name(model: nn.Module, name: str | None) -> str:
    return name or getattr(model, "probe_name", None) or type(model).__name__


# --------------------------------------------------------------------------- chefer
def chefer_ordering(deletion: dict[str, float], insertion: dict[str, float]) -> dict[str, Any]:
    """Does a model reproduce the method ordering of Chefer et al. 2021 (Table 1)?

    Chefer et al. rank relevance > rollout > raw attention > GradCAM in both perturbation
    tests. Here the same four probe methods (:data:`CHEFER_ORDER`) are ordered by deletion AUC
    (ascending, ~ positive perturbation) and by insertion AUC (descending, ~ negative
    perturbation).

    Args:
        deletion: method -> mean deletion AUC (must hold the four methods).
        insertion: method -> mean insertion AUC.

    Returns:
        ``{"reproduced": bool | None, "deletion_reproduced", "insertion_reproduced",
        "deletion_order", "insertion_order", "expected_order", "concordant_pairs", "explanation"}``
        (``None`` when a method is missing or undefined). ``concordant_pairs`` counts the 6
        method pairs ordered as in the paper, per test.
    """
    expected = list(CHEFER_ORDER)
    missing = [
        m for m in expected
        if not (isinstance(deletion.get(m), float) and math.isfinite(deletion[m]))
        or not (isinstance(insertion.get(m), float) and math.isfinite(insertion[m]))
    ]
    if missing:
        return {
            "reproduced": None, "deletion_reproduced": None, "insertion_reproduced": None,
            "deletion_order": None, "insertion_order": None, "expected_order": expected,
            "concordant_pairs": None,
            "explanation": f"cannot compare: no deletion/insertion AUC for {missing}",
        }
    del_order = sorted(expected, key=lambda m: deletion[m])
    ins_order = sorted(expected, key=lambda m: -insertion[m])

    def concordant(order: list[str]) -> int:
        pos = {m: i for i, m in enumerate(order)}
        return sum(
            pos[a] < pos[b] for i, a in enumerate(expected) for b in expected[i + 1 :]
        )

    del_ok, ins_ok = del_order == expected, ins_order == expected
    fmt_del = " < ".join(f"{m} {deletion[m]:.3f}" for m in del_order)
    fmt_ins = " > ".join(f"{m} {insertion[m]:.3f}" for m in ins_order)
    verdict = "reproduced" if del_ok and ins_ok else (
        "partly reproduced" if del_ok or ins_ok else "not reproduced"
    )
    explanation = (
        f"Chefer et al. 2021 order (best first): {' > '.join(expected)} in both tests. "
        f"Here, deletion AUC (lower is better): {fmt_del} "
        f"({concordant(del_order)}/6 pairs as in the paper); insertion AUC (higher is better): "
        f"{fmt_ins} ({concordant(ins_order)}/6 pairs as in the paper). Ordering {verdict}."
    )
    return {
        "reproduced": del_ok and ins_ok,
        "deletion_reproduced": del_ok,
        "insertion_reproduced": ins_ok,
        "deletion_order": del_order,
        "insertion_order": ins_order,
        "expected_order": expected,
        "concordant_pairs": {"deletion": concordant(del_order), "insertion": concordant(ins_order)},
        "explanation": explanation,
    }


# --------------------------------------------------------------------------- faithfulness
def eval_faithfulness(
    model: nn.Module,
    *,
    n: int = 500,
    seed: int = 0,
    methods: Sequence[str] = (),
    batch_size: int = 50,
    steps: int = 16,
    baseline: str = "mean",
    quiet: bool = True,
    model_name: str | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Pointing game, mass on object, deletion/insertion AUC and time of every vision method.

    See the module docstring for the protocol. ``model`` must be a vision classifier whose
    classes are :data:`probe.SHAPE_CLASSES` for the accuracy to mean anything (the other
    metrics only need a vision model with a square input).

    Args:
        model: vision model (left unchanged).
        n: number of generated images.
        seed: evaluation seed; images come from ``make_shapes(n, EVAL_IMAGE_SEED + 1000 * seed)``.
        methods: restrict to these methods (default: every vision method).
        batch_size: images per attribution call.
        steps: steps of the deletion/insertion curves.
        baseline: value of removed patches (see :mod:`probe.evaluation._faithfulness`).
        quiet: no progress bar.
        model_name: name recorded in the result.
        options: method -> keyword options for :func:`probe.attribute` (e.g.
            ``{"ig": {"n_steps": 16}}``); default: every method's defaults.

    Returns:
        A JSON-ready dict (``"methods"``: one entry per method; ``"skipped"``: method -> reason).
    """
    from probe.attribution._registry import attribute, method_spec
    from probe.evaluation._faithfulness import faithfulness
    from probe.models._shapes import make_shapes

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ProbeError(f"--n must be a positive integer, got {n!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ProbeError(f"batch_size must be a positive integer, got {batch_size!r}")
    image_size = _vision_input(model)
    names = _select_methods("vision", methods)
    opts = _check_options(options, names)
    image_seed = _image_seed(seed)
    data = make_shapes(n, seed=image_seed, image_size=image_size)

    per: dict[str, dict[str, list[float]]] = {
        m: {"pointing": [], "mass": [], "deletion": [], "insertion": []} for m in names
    }
    seconds = {m: 0.0 for m in names}
    skipped: dict[str, str] = {}
    correct = 0
    object_fraction: list[float] = []
    grid: tuple[int, int] | None = None
    started = time.perf_counter()
    batches = range(0, n, batch_size)
    for number, start in enumerate(_progress(batches, quiet, "faithfulness", len(batches))):
        images = data.images[start : start + batch_size]
        masks = data.masks[start : start + batch_size]
        labels = data.labels[start : start + batch_size]
        correct += int((_predict(model, images) == labels).sum())
        attributions = {}
        for name in names:
            if name in skipped:
                continue
            t0 = time.perf_counter()
            try:
                attr = attribute(
                    model, images, name, seed=1000 * seed + number, **dict(opts.get(name, {}))
                )
            except ProbeError as exc:
                skipped[name] = str(exc)
                continue
            seconds[name] += time.perf_counter() - t0
            attributions[name] = attr
        if not attributions:
            continue
        grid = next(iter(attributions.values())).grid
        patch_masks = object_patch_mask(masks, grid)  # type: ignore[arg-type]
        object_fraction += patch_masks.flatten(1).double().mean(1).tolist()
        table = faithfulness(
            model, images, attributions, steps=steps, baseline=baseline, n_random=0,
            batch_size=1024,
        )
        for name, attr in attributions.items():
            maps = to_patch_grid(attr.scores, grid)  # type: ignore[arg-type]
            per[name]["pointing"] += pointing_game(maps, masks, seed=seed + start).double().tolist()
            per[name]["mass"] += mass_on_object(maps, patch_masks).tolist()
            deletion, insertion = table.curves[name]
            per[name]["deletion"] += deletion.auc.tolist()
            per[name]["insertion"] += insertion.auc.tolist()
    elapsed = time.perf_counter() - started

    results: dict[str, Any] = {}
    for name in names:
        if name in skipped:
            continue
        spec = method_spec(name)
        entry: dict[str, Any] = {"signed": spec.signed, "uses_gradients": spec.uses_gradients}
        for key, label in (
            ("pointing", "pointing_game"), ("mass", "mass_on_object"),
            ("deletion", "deletion_auc"), ("insertion", "insertion_auc"),
        ):
            mean, se, count = _mean_se(per[name][key])
            entry[label] = mean
            entry[f"{label}_se"] = se
            if key == "mass":
                entry["mass_on_object_n"] = count
        entry["seconds_per_image"] = seconds[name] / n
        results[name] = entry
    chance, chance_se, _ = _mean_se(object_fraction)
    deletion = {m: r["deletion_auc"] for m, r in results.items()}
    insertion = {m: r["insertion_auc"] for m, r in results.items()}
    ordering = chefer_ordering(deletion, insertion)
    if ordering["reproduced"] is not None:
        # how sure is each adjacent step of the measured order? paired over the same images
        ordering["adjacent_differences"] = {
            kind: [
                {"better": a, "worse": b, **_paired(per[a][kind], per[b][kind])}
                for a, b in zip(ordering[f"{kind}_order"], ordering[f"{kind}_order"][1:])
            ]
            for kind in ("deletion", "insertion")
        }
        close = [
            f"{d['better']}/{d['worse']} ({kind})"
            for kind, diffs in ordering["adjacent_differences"].items()
            for d in diffs
            if not abs(d["mean_difference"]) > 2 * d["se"]
        ]
        ordering["explanation"] += (
            " Adjacent steps within 2 paired standard errors (not resolved at this N): "
            + (", ".join(close) if close else "none")
            + "."
        )
    return {
        "task": "faithfulness",
        "model": _model_name(model, model_name),
        "n": n,
        "seed": seed,
        "image_seed": image_seed,
        "image_size": image_size,
        "grid": list(grid) if grid else None,
        "model_accuracy": correct / n,
        "object_patch_fraction": chance,
        "object_patch_fraction_se": chance_se,
        "protocol": {
            "images": f"probe.make_shapes({n}, seed={image_seed}, image_size={image_size}); "
            f"vit-shapes trains on seeds >= {_TRAINING_SEEDS_FROM} and its recipe's held-out split "
            f"uses seed {_RECIPE_EVAL_SEED}",
            "target": "the class the model predicts on the clean image, for every method",
            "common_grid": "every map on the model's patch grid: patch scores as returned, pixel "
            "maps average pooled per patch (probe.evaluation._tasks.to_patch_grid)",
            "pointing_game": "hit when the highest-scoring patch (raw score; ties broken at random "
            "with a fixed seed) contains at least one object pixel; chance = object_patch_fraction",
            "mass_on_object": "sum of positive scores on object patches / sum of positive scores "
            "(object patch = patch containing any object pixel; maps without positive mass left "
            "out, mass_on_object_n counts the rest); chance = object_patch_fraction",
            "deletion_insertion": f"probe.evaluation._faithfulness.faithfulness: patches removed/revealed in "
            f"order of decreasing raw score, {steps} equal steps, removed patches replaced by "
            f"baseline={baseline!r}"
            + (" (each image's own per-channel mean colour)" if baseline == "mean" else "")
            + ", score = softmax "
            "probability of the predicted class, AUC by the trapezoid rule over the fraction "
            "in [0, 1]; deletion lower is better, insertion higher is better",
            "seconds_per_image": f"wall-clock of probe.attribute per image, {batch_size} images "
            "per call, including the method's own forward/backward passes",
            "batch_size": batch_size,
            "method_options": opts,
            "steps": steps,
            "baseline": baseline,
            "se": "*_se: standard error of the mean over images",
        },
        "methods": results,
        "skipped": skipped,
        "published_reference": PUBLISHED_REFERENCE,
        "chefer_ordering": ordering,
        "run_time_s": elapsed,
    }


def faithfulness_markdown(result: dict[str, Any]) -> str:
    """The printed table of :func:`eval_faithfulness` (with the reference footer)."""
    rows = [
        [
            m, r["pointing_game"], r["mass_on_object"], r["deletion_auc"], r["insertion_auc"],
            f"{1000 * r['seconds_per_image']:.1f}",
        ]
        for m, r in result["methods"].items()
    ]
    header = ["method", "pointing game ↑", "mass on object ↑", "deletion AUC ↓",
              "insertion AUC ↑", "ms / image"]
    lines = [
        (
            f"probe eval faithfulness: {result['model']}, {result['n']} images (seed "
            f"{result['image_seed']}), model accuracy {result['model_accuracy']:.3f}"
        ),
        "",
        markdown_table(header, rows),
        "",
        (
            "Chance level of pointing game and mass on object: object-patch fraction "
            f"{format_value(result['object_patch_fraction'])}. Deletion/insertion: "
            f"{result['protocol']['steps']} steps, removed patches = baseline "
            f"{result['protocol']['baseline']!r}, score = predicted-class probability."
        ),
    ]
    for name, reason in result["skipped"].items():
        lines.append(f"Skipped {name}: {reason}")
    lines += _reference_footer(result)
    return "\n".join(lines)


def _reference_footer(result: dict[str, Any]) -> list[str]:
    ref = PUBLISHED_REFERENCE
    pos = ref["positive_perturbation_auc_lower_is_better"]
    neg = ref["negative_perturbation_auc_higher_is_better"]
    return [
        "",
        "Published reference (Chefer et al. 2021, ImageNet, ViT-B/16; top-1 accuracy AUC, %): "
        "positive perturbation (lower is better) "
        + ", ".join(f"{m} {v:.2f}" for m, v in pos.items())
        + "; negative perturbation (higher is better) "
        + ", ".join(f"{m} {v:.2f}" for m, v in neg.items())
        + ".",
        f"Ordering reproduced: {result['chefer_ordering']['reproduced']}. "
        + result["chefer_ordering"]["explanation"],
    ]


# --------------------------------------------------------------------------- sanity
def eval_sanity(
    model: nn.Module,
    *,
    n: int = 16,
    seed: int = 0,
    methods: Sequence[str] = (),
    quiet: bool = True,
    model_name: str | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Cascading randomisation (Adebayo et al. 2018) of every vision method, averaged over images.

    Runs :func:`probe.evaluation._sanity.sanity_check` on ``n`` generated images (seeded as for
    :func:`eval_faithfulness`) for each method and records the mean rank correlation with the
    original map after each randomisation step. Methods that refuse the input are skipped with
    their reason.

    Returns:
        A JSON-ready dict.
    """
    from probe.evaluation._sanity import sanity_check
    from probe.models._shapes import make_shapes

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ProbeError(f"--n must be a positive integer, got {n!r}")
    image_size = _vision_input(model)
    names = _select_methods("vision", methods)
    opts = _check_options(options, names)
    image_seed = _image_seed(seed)
    data = make_shapes(n, seed=image_seed, image_size=image_size)
    started = time.perf_counter()
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in _progress(names, quiet, "sanity"):
        t0 = time.perf_counter()
        try:
            check = sanity_check(
                model, data.images, name, seed=seed, **dict(opts.get(name, {}))
            )
        except ProbeError as exc:
            skipped[name] = str(exc)
            continue
        results[name] = _sanity_entry(check, name)
        results[name]["seconds"] = time.perf_counter() - t0
    return {
        "task": "sanity",
        "model": _model_name(model, model_name),
        "n": n,
        "seed": seed,
        "image_seed": image_seed,
        "protocol": {
            "test": "cascading model-parameter randomisation (Adebayo et al. 2018, 'Sanity "
            "Checks for Saliency Maps'), probe.evaluation._sanity.sanity_check: parameters are re-drawn from "
            "the output layer down, one step at a time, and each step's map is compared with the "
            "map of the trained model",
            "reading": "a method that depends on the learned parameters drops towards 0 "
            "correlation; a curve that stays high means the map does not reflect what the "
            "model learned. Attention-only methods are reported as measured; they ignore the "
            "classifier head by construction. 'random' draws the same seeded map at every step "
            "(a model-independent negative control): it stays at 1.",
            "images": f"probe.make_shapes({n}, seed={image_seed})",
        },
        "methods": results,
        "skipped": skipped,
        "run_time_s": time.perf_counter() - started,
    }


def _sanity_entry(check: Any, name: str) -> dict[str, Any]:
    """JSON-ready summary of one method's :class:`probe.evaluation._sanity.SanityResult`."""
    import torch

    per_item = check.per_item[name]  # [steps, batch]
    se = []
    for row in per_item:
        se.append(_mean_se(row.tolist())[1])
    values = check.correlations[name].double()
    finite = values[torch.isfinite(values)]
    return {
        "steps": list(check.steps),
        "spearman": values.tolist(),
        "spearman_se": se,
        "absolute": bool(check.absolute.get(name, False)),
        "after_first_step": float(values[1]) if len(values) > 1 else float("nan"),
        "fully_random": float(values[-1]),
        "max_after_randomising": float(finite[1:].max()) if finite.numel() > 1 else float("nan"),
    }


def sanity_markdown(result: dict[str, Any]) -> str:
    """The printed table of :func:`eval_sanity`: methods as rows, cumulative steps as columns."""
    steps: list[str] = next((list(e["steps"]) for e in result["methods"].values()), [])
    rows = [[name, *entry["spearman"]] for name, entry in result["methods"].items()]
    lines = [
        f"probe eval sanity: {result['model']}, {result['n']} images (seed {result['image_seed']})",
        "",
        (
            "Spearman rank correlation with the trained model's map after randomising, "
            "cumulatively from the output down, up to and including each column (Adebayo et "
            "al. 2018); signed maps compared by absolute value. Near 0 = the map depends on the "
            "weights; staying high = it does not reflect what the model learned."
        ),
        "",
        markdown_table(["method", *steps], rows, digits=2),
    ]
    for name, reason in result["skipped"].items():
        lines.append(f"Skipped {name}: {reason}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- text
def load_sentence_pairs(path: str | Path | None = None) -> list[dict[str, str]]:
    """The sentence pairs of ``probe/models/data/sentence_pairs.json`` (or of ``path``).

    Returns:
        A list of ``{"id", "kind", "first", "second"}`` dicts (coreference pairs also carry
        ``"pronoun"`` and ``"antecedent"``).
    """
    default = Path(__file__).resolve().parents[1] / "models" / "data" / "sentence_pairs.json"
    file = Path(path) if path is not None else default
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProbeError(f"cannot read sentence pairs from {file}: {exc}") from None
    pairs = data.get("pairs") if isinstance(data, dict) else None
    if not isinstance(pairs, list) or not all(
        isinstance(p, dict) and isinstance(p.get("first"), str) and isinstance(p.get("second"), str)
        for p in pairs
    ):
        raise ProbeError(f"{file} must hold {{'pairs': [{{'first': str, 'second': str}}, ...]}}")
    return pairs


def eval_text(
    model: nn.Module,
    tokenizer: Any,
    *,
    n: int | None = None,
    seed: int = 0,
    methods: Sequence[str] = (),
    pairs: Sequence[dict[str, str]] | None = None,
    quiet: bool = True,
    model_name: str | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Agreement with Integrated Gradients and ERASER scores of every text method.

    For each sentence pair the first sentence is explained with the target "cosine similarity
    of its embedding to the second sentence's" (:func:`probe.attribution._targets.similarity_target`).
    Agreement is measured over the real, non-special tokens against ``|IG|`` (and signed IG);
    ERASER comprehensiveness/sufficiency replace removed tokens by ``[MASK]`` and come with
    the mean of 3 random orders per pair.

    Args:
        model: a sentence-embedding text model (e.g. ``minilm``), left unchanged.
        tokenizer: its tokenizer.
        n: use the first ``n`` pairs (default: all).
        seed: seed of the random method and the random orders.
        methods: restrict to these methods (Integrated Gradients always runs: it is the reference).
        pairs: sentence pairs (default: :func:`load_sentence_pairs`).
        quiet: no progress bar.
        model_name: name recorded in the result.
        options: method -> keyword options for :func:`probe.attribute`.

    Returns:
        A JSON-ready dict.
    """
    import torch

    from probe.evaluation._agreement import kendall, spearman, unit_mask
    from probe.attribution._registry import attribute, method_spec
    from probe.capture._capture import trace as capture
    from probe.evaluation._faithfulness import eraser
    from probe.attribution._targets import similarity_target

    if tokenizer is None:
        raise ProbeError("the text eval needs a text model with a tokenizer: use --model minilm")
    all_pairs = list(pairs) if pairs is not None else load_sentence_pairs()
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ProbeError(f"--n must be a positive integer, got {n!r}")
        all_pairs = all_pairs[:n]
    if not all_pairs:
        raise ProbeError("no sentence pairs to evaluate")
    names = _select_methods("text", methods)
    if "ig" not in names:
        names = (*names, "ig")
    opts = _check_options(options, names)
    others = [m for m in names if m != "ig"]
    started = time.perf_counter()
    per: dict[str, dict[str, list[float]]] = {
        m: {k: [] for k in ("spearman", "kendall", "spearman_signed", "kendall_signed",
                             "comprehensiveness", "sufficiency")}
        for m in names
    }
    kinds: dict[str, dict[str, list[float]]] = {}
    random_orders: dict[str, list[float]] = {"comprehensiveness": [], "sufficiency": []}
    ig_delta: list[float] = []
    failed: dict[str, dict[str, str]] = {}  # method -> pair id -> reason
    for index, pair in enumerate(_progress(all_pairs, quiet, "text", len(all_pairs))):
        target = similarity_target(model, tokenizer, pair["second"])
        tr = capture(model, [pair["first"]], tokenizer=tokenizer)
        valid = unit_mask(tr)
        attrs = {}
        for name in names:
            try:
                attrs[name] = attribute(
                    model, [pair["first"]], name, tokenizer=tokenizer, target=target,
                    seed=1000 * seed + index, trace=tr, **dict(opts.get(name, {})),
                )
            except ProbeError as exc:
                if name == "ig":
                    raise
                failed.setdefault(name, {})[str(pair.get("id", index))] = str(exc)
        delta = attrs["ig"].info.get("delta")
        if isinstance(delta, torch.Tensor):
            ig_delta += delta.abs().double().tolist()
        ig = attrs["ig"].scores
        for name in others:
            if name not in attrs:
                continue
            s = attrs[name].scores
            s = s.abs() if method_spec(name).signed else s
            values = {
                "spearman": float(spearman(s, ig.abs(), valid)),
                "kendall": float(kendall(s, ig.abs(), valid)),
                "spearman_signed": float(spearman(attrs[name].scores, ig, valid)),
                "kendall_signed": float(kendall(attrs[name].scores, ig, valid)),
            }
            for key, v in values.items():
                per[name][key].append(v)
            kind = f"{pair.get('kind', 'all')}/{name}"
            kinds.setdefault(kind, {"spearman": []})["spearman"].append(values["spearman"])
        table = eraser(model, [pair["first"]], attrs, target=target, tokenizer=tokenizer,
                       n_random=3, seed=1000 * seed + index)
        for name, (comp, suff) in table.per_item.items():
            per[name]["comprehensiveness"] += comp.tolist()
            per[name]["sufficiency"] += suff.tolist()
        random_orders["comprehensiveness"].append(table.random_comprehensiveness)
        random_orders["sufficiency"].append(table.random_sufficiency)

    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in names:
        if len(failed.get(name, {})) == len(all_pairs):
            skipped[name] = next(iter(failed[name].values()))
            continue
        spec = method_spec(name)
        entry: dict[str, Any] = {
            "signed": spec.signed,
            "uses_gradients": spec.uses_gradients,
            "n": len(all_pairs) - len(failed.get(name, {})),
        }
        for key, values in per[name].items():
            if name == "ig" and key in ("spearman", "kendall", "spearman_signed", "kendall_signed"):
                entry[f"{key}_vs_ig"] = 1.0
                continue
            mean, se, _ = _mean_se(values)
            label = f"{key}_vs_ig" if key.startswith(("spearman", "kendall")) else key
            entry[label] = mean
            entry[f"{label}_se"] = se
        results[name] = entry
    by_kind: dict[str, dict[str, float]] = {}
    for key, values in kinds.items():
        kind, name = key.split("/", 1)
        by_kind.setdefault(kind, {})[name] = _mean_se(values["spearman"])[0]
    return {
        "task": "text",
        "model": _model_name(model, model_name),
        "n": len(all_pairs),
        "seed": seed,
        "pairs": [p.get("id", str(i)) for i, p in enumerate(all_pairs)],
        "protocol": {
            "target": "cosine similarity of the first sentence's mean-pooled, normalised "
            "embedding to the second sentence's (probe.similarity_target)",
            "agreement": "Spearman and Kendall tau-b over the real, non-special tokens between "
            "each method and Integrated Gradients (captum, 50 steps, [PAD] baseline); *_vs_ig "
            "compares with |IG| (and |scores| of signed methods), *_signed_vs_ig with signed "
            "values; mean over pairs",
            "eraser": "ERASER AOPC comprehensiveness (higher is better) and sufficiency (lower "
            "is better) over the top 1/5/10/20/50% tokens, removed tokens replaced by [MASK], "
            "score = the similarity target; random_orders = mean of 3 random orders per pair",
            "data": "probe/models/data/sentence_pairs.json",
            "method_options": opts,
        },
        "methods": results,
        "spearman_vs_ig_by_kind": by_kind,
        "random_orders": {k: _mean_se(v)[0] for k, v in random_orders.items()},
        "ig_abs_convergence_delta_mean": _mean_se(ig_delta)[0],
        "skipped": skipped,
        "failed_pairs": {m: f for m, f in failed.items() if m not in skipped},
        "run_time_s": time.perf_counter() - started,
    }


def text_markdown(result: dict[str, Any]) -> str:
    """The printed table of :func:`eval_text`."""
    rows = [
        [m, r["spearman_vs_ig"], r["kendall_vs_ig"], r["comprehensiveness"], r["sufficiency"]]
        for m, r in result["methods"].items()
    ]
    header = ["method", "Spearman vs abs(IG)", "Kendall vs abs(IG)", "comprehensiveness ↑",
              "sufficiency ↓"]
    rnd = result["random_orders"]
    lines = [
        (
            f"probe eval text: {result['model']}, {result['n']} sentence pairs, target = cosine "
            "similarity to the second sentence"
        ),
        "",
        markdown_table(header, rows),
        "",
        (
            "Random orders (3 per pair): comprehensiveness "
            f"{format_value(rnd['comprehensiveness'])}, sufficiency "
            f"{format_value(rnd['sufficiency'])}. Mean |IG convergence delta| "
            f"{float(result['ig_abs_convergence_delta_mean']):.1e}."
        ),
    ]
    for name, reason in result["skipped"].items():
        lines.append(f"Skipped {name}: {reason}")
    return "\n".join(lines)
