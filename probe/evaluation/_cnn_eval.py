"""Evaluation of ``cnn-shapes``: does CBAM's spatial attention point at the object, and are
late-stage channel gates class-specific?

:func:`eval_cnn_faithfulness` runs the protocol of ``probe eval faithfulness`` (the same
images, ``make_shapes(n, EVAL_IMAGE_SEED + 1000 * seed)``; the same pointing game, mass on
object and deletion/insertion AUC on the unit grid) for CBAM's spatial gate of every stage and
their mean, GradCAM on the last stage, Integrated Gradients and the random baseline.
:func:`eval_cnn_gates` measures how class-specific the channel gates of each stage are
(between-class over within-class spread, :func:`probe.analysis._gates.gate_specificity`) and
returns the per-class profiles the SENet paper plots.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "CNN_METHODS",
    "GRID_TASKS",
    "cnn_faithfulness_markdown",
    "default_methods",
    "eval_cnn_faithfulness",
    "eval_cnn_gates",
    "grid_task",
    "is_cnn",
    "is_windowed",
    "SWIN_METHODS",
]

CNN_METHODS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("cbam-spatial", {"stage": 0}),
    ("cbam-spatial", {"stage": 1}),
    ("cbam-spatial", {"stage": 2}),
    ("cbam-spatial", {"stage": 3}),
    ("cbam-spatial", {"stage": None}),
    ("gradcam", {}),
    ("ig", {"n_steps": 16}),
    ("random", {}),
)
"""``(method, options)`` evaluated by default; labels as :attr:`probe.Attribution.label`."""


def _mean_se(values: Sequence[float]) -> tuple[float, float, int]:
    kept = [v for v in values if not math.isnan(v)]
    n = len(kept)
    if n == 0:
        return float("nan"), float("nan"), 0
    mean = sum(kept) / n
    var = sum((v - mean) ** 2 for v in kept) / (n - 1) if n > 1 else float("nan")
    return mean, math.sqrt(var / n) if n > 1 else float("nan"), n


def is_cnn(model: Any) -> bool:
    """Whether probe treats ``model`` as a CNN (scored on its unit grid, no attention)."""
    from probe.capture import adapter_for

    return hasattr(adapter_for(model), "feature_layer")


SWIN_METHODS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("gradcam", {}),
    ("ig", {"n_steps": 16}),
    ("saliency", {}),
    ("random", {}),
)
"""``(method, options)`` evaluated by default on windowed-attention models (Swin)."""


#: the ``"task"`` of :func:`eval_cnn_faithfulness`'s result, by model family (it said
#: "cnn-faithfulness" for Swin models too, e.g. ``benchmarks/eval-faithfulness-swin-shapes.json``
#: before it was corrected)
GRID_TASKS = ("cnn-faithfulness", "swin-faithfulness")


def grid_task(model: Any) -> str:
    """``"swin-faithfulness"`` for windowed-attention models, else ``"cnn-faithfulness"``."""
    return GRID_TASKS[1] if is_windowed(model) else GRID_TASKS[0]


def is_windowed(model: Any) -> bool:
    """Whether ``model`` has windowed attention (Swin): scored on its stage-0 patch grid, with
    no attention over the whole image to read."""
    from probe.capture import adapter_for

    return bool(getattr(adapter_for(model), "windowed", False))


def default_methods(model: nn.Module) -> tuple[tuple[str, dict[str, Any]], ...]:
    """:data:`CNN_METHODS` for models with CBAM spatial gates, else GradCAM, IG and random;
    :data:`SWIN_METHODS` for windowed-attention models."""
    from probe.capture import adapter_for

    if is_windowed(model):
        return SWIN_METHODS
    find = getattr(adapter_for(model), "find_gates", None)  # a CNN probe has no gate finder for
    sites = find()[0] if find is not None else []
    if any(s.kind == "spatial" for s in sites):
        return CNN_METHODS
    return tuple(m for m in CNN_METHODS if m[0] != "cbam-spatial")


def eval_cnn_faithfulness(
    model: nn.Module,
    *,
    n: int = 500,
    seed: int = 0,
    methods: Sequence[tuple[str, dict[str, Any]]] | None = None,
    batch_size: int = 50,
    steps: int = 16,
    baseline: str = "mean",
    image_size: int = 32,
) -> dict[str, Any]:
    """Pointing game, mass on object and deletion/insertion AUC of CNN attribution maps.

    Args:
        model: a CNN classifier of :data:`probe.SHAPE_CLASSES` with CBAM (``cnn-shapes``).
        n: number of generated images; seed: evaluation seed (as ``probe eval``).
        methods: ``(method, options)`` pairs (default :func:`default_methods`).
        batch_size, steps, baseline: as for ``probe eval faithfulness``.
        image_size: side of the generated images (``cnn-shapes`` takes 32).

    Returns:
        A JSON-ready dict: ``task`` (:func:`grid_task`: ``"cnn-faithfulness"`` or
        ``"swin-faithfulness"``), ``accuracy``, ``chance`` (mean object-cell fraction, the
        random level of pointing game and mass), ``grid`` and per method label the means,
        standard errors and ``n``.
    """
    from probe.attribution._registry import attribute
    from probe.capture import adapter_for
    from probe.evaluation._distributed import gather, gather_list, shard
    from probe.evaluation._faithfulness import faithfulness
    from probe.evaluation._geometry import mass_on_object, object_patch_mask, pointing_game
    from probe.evaluation.tasks._common import EVAL_IMAGE_SEED
    from probe.models._shapes import make_shapes

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ProbeError(f"n must be a positive integer, got {n!r}")
    methods = default_methods(model) if methods is None else tuple(methods)
    adapter = adapter_for(model)
    data = make_shapes(n, seed=EVAL_IMAGE_SEED + 1000 * seed, image_size=image_size)
    units = adapter.vision_geometry(adapter.prepare(data.images[:1]).main).grid
    if units[0] * units[1] < 2:  # one cell: every map ranks it first, every score is 1.0
        raise ProbeError(
            f"{adapter.name} scores {image_size}x{image_size} images on a {units[0]}x{units[1]} "
            "grid (its last feature map): there is nothing to rank or point at; evaluate a "
            "model whose last feature map has at least 2 cells at this size (e.g. cnn-shapes)"
        )
    per: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, float] = {}
    correct, chance = 0, []
    grid: tuple[int, int] | None = None
    started = time.perf_counter()
    # under accelerate launch / torchrun each process takes a block of batches (seeds per
    # batch number, not per process), gathered below
    for number, start in shard(list(enumerate(range(0, n, batch_size)))):
        images = data.images[start : start + batch_size]
        masks = data.masks[start : start + batch_size]
        predicted = adapter.predicted_class(adapter.prepare(images))  # on the CPU
        correct += int((predicted == data.labels[start : start + batch_size]).sum())
        attrs = {}
        for method, options in methods:
            t0 = time.perf_counter()
            attr = attribute(model, images, method, seed=1000 * seed + number, **options)
            seconds[attr.label] = seconds.get(attr.label, 0.0) + time.perf_counter() - t0
            attrs[attr.label] = attr
        grid = next(iter(attrs.values())).grid
        cells = object_patch_mask(masks, grid)  # type: ignore[arg-type]
        chance += cells.flatten(1).double().mean(1).tolist()
        table = faithfulness(model, images, attrs, steps=steps, baseline=baseline, n_random=0,
                             batch_size=1024)
        for label, attr in attrs.items():
            maps = attr.as_grid()
            entry = per.setdefault(label,
                                   {"pointing": [], "mass": [], "deletion": [], "insertion": []})
            entry["pointing"] += pointing_game(maps, masks, seed=seed + start).double().tolist()
            entry["mass"] += mass_on_object(maps, cells).tolist()
            deletion, insertion = table.curves[label]
            entry["deletion"] += deletion.auc.tolist()
            entry["insertion"] += insertion.auc.tolist()
    merged = gather({"per": per, "seconds": seconds, "correct": correct, "chance": chance})
    per, seconds, correct, chance = (merged[k] for k in ("per", "seconds", "correct", "chance"))
    grid = next((g for g in gather_list(grid) if g is not None), None)
    results: dict[str, Any] = {}
    for label, entry in per.items():
        row: dict[str, Any] = {}
        for key, name in (("pointing", "pointing_game"), ("mass", "mass_on_object"),
                          ("deletion", "deletion_auc"), ("insertion", "insertion_auc")):
            row[name], row[f"{name}_se"], row[f"{name}_n"] = _mean_se(per[label][key])
        row["seconds_per_image"] = seconds[label] / n
        results[label] = row
    mean, se, _ = _mean_se(chance)
    return {
        "task": grid_task(model),
        "model": getattr(model, "probe_name", None) or type(model).__name__,
        "n": n,
        "seed": seed,
        "image_seed": EVAL_IMAGE_SEED + 1000 * seed,
        "grid": list(grid) if grid else None,
        "steps": steps,
        "baseline": baseline,
        "accuracy": correct / n,
        "chance": mean,
        "chance_se": se,
        "methods": results,
        "seconds": time.perf_counter() - started,
    }


def eval_cnn_gates(model: nn.Module, *, n: int = 500, seed: int = 0) -> dict[str, Any]:
    """Class-specificity of the channel gates per stage, and their per-class profiles.

    Returns:
        ``{"stages": {stage: {"between", "within", "ratio", "channels"}}, "profiles": {stage:
        [class][channel] list}}`` over ``n`` images of :func:`eval_cnn_faithfulness`'s split.
    """
    import torch

    from probe.analysis._gates import channel_profiles, gate_specificity
    from probe.capture._gate_capture import trace_gates
    from probe.evaluation.tasks._common import EVAL_IMAGE_SEED
    from probe.models._shapes import SHAPE_CLASSES, make_shapes

    data = make_shapes(n, seed=EVAL_IMAGE_SEED + 1000 * seed, image_size=32)
    per_stage: dict[int, list[torch.Tensor]] = {}
    for start in range(0, n, 100):
        gt = trace_gates(model, data.images[start : start + 100], modules=["channel"])
        for g in gt.gates:
            per_stage.setdefault(g.stage, []).append(g.values.float())
    stages, profiles = {}, {}
    for stage, chunks in sorted(per_stage.items()):
        values = torch.cat(chunks)
        stats = gate_specificity(values, data.labels)
        stages[str(stage)] = {**stats, "channels": int(values.shape[1])}
        profiles[str(stage)] = channel_profiles(values, data.labels, len(SHAPE_CLASSES)).tolist()
    return {"task": "cnn-gates", "n": n, "seed": seed, "stages": stages, "profiles": profiles}


def cnn_faithfulness_markdown(result: dict[str, Any]) -> str:
    """A markdown table of :func:`eval_cnn_faithfulness` (mean ± standard error)."""
    def cell(row: dict[str, Any], key: str) -> str:
        return f"{row[key]:.3f} ± {row[key + '_se']:.3f}"

    lines = [
        f"{result.get('model', 'cnn')}, N = {result['n']} images (seed {result['image_seed']}), "
        f"grid {result['grid'][0]}x{result['grid'][1]}, accuracy {result['accuracy']:.3f}; chance "
        f"(object-cell fraction) {result['chance']:.3f}",
        "",
        "| method | pointing game ↑ | mass on object ↑ | deletion AUC ↓ | insertion AUC ↑ | "
        "s/image |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in result["methods"].items():
        lines.append(
            f"| {label} | {cell(row, 'pointing_game')} | {cell(row, 'mass_on_object')} | "
            f"{cell(row, 'deletion_auc')} | {cell(row, 'insertion_auc')} | "
            f"{row['seconds_per_image']:.4f} |"
        )
    return "\n".join(lines)
