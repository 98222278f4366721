"""``probe eval faithfulness``: pointing game, mass on object, deletion/insertion AUC and time
per image of every vision method on generated shapes, next to the method ordering of Chefer
et al. 2021 (see :mod:`probe.evaluation.tasks` for the protocol)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._report import format_value, markdown_table
from probe.evaluation._geometry import (
    mass_on_object,
    object_patch_mask,
    pointing_game,
    to_patch_grid,
)
from probe.evaluation.tasks._common import (
    _RECIPE_EVAL_SEED,
    _TRAINING_SEEDS_FROM,
    _check_options,
    _image_seed,
    _mean_se,
    _model_name,
    _paired,
    _predict,
    _progress,
    _select_methods,
    _vision_input,
)

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "CHEFER_ORDER",
    "PUBLISHED_REFERENCE",
    "chefer_ordering",
    "eval_faithfulness",
    "faithfulness_markdown",
]

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
        "verdict", "deletion_order", "insertion_order", "expected_order", "concordant_pairs",
        "explanation"}`` (``None`` when a method is missing or undefined). ``reproduced`` is
        true only when both tests give the paper's order; ``verdict`` says it in words
        ("reproduced", "partly reproduced (deletion only)", "not reproduced", "undefined").
        ``concordant_pairs`` counts the 6 method pairs ordered as in the paper, per test.
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
            "verdict": "undefined", "deletion_order": None, "insertion_order": None,
            "expected_order": expected,
            "concordant_pairs": None,
            "explanation": (
                f"Chefer et al.'s ordering is not compared, because this run has no deletion "
                f"and insertion AUC for {_listed(missing)}, and the comparison needs all four "
                f"of {_listed(expected)}."
            ),
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
    verdict = "reproduced in both tests" if del_ok and ins_ok else (
        f"partly reproduced ({'deletion' if del_ok else 'insertion'} only)"
        if del_ok or ins_ok else "not reproduced in either test"
    )
    explanation = (
        f"Chefer et al. 2021 order (best first): {' > '.join(expected)} in both tests. "
        f"Here, deletion AUC (lower is better): {fmt_del} "
        f"({concordant(del_order)}/6 pairs as in the paper); insertion AUC (higher is better): "
        f"{fmt_ins} ({concordant(ins_order)}/6 pairs as in the paper)."
    )
    return {
        "reproduced": del_ok and ins_ok,
        "deletion_reproduced": del_ok,
        "insertion_reproduced": ins_ok,
        "verdict": verdict,
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
        baseline: value of removed patches (see :mod:`probe.evaluation._perturb`).
        quiet: no progress bar.
        model_name: name recorded in the result.
        options: method -> keyword options for :func:`probe.attribute` (e.g.
            ``{"ig": {"n_steps": 16}}``); default: every method's defaults.

    Returns:
        A JSON-ready dict (``"methods"``: one entry per method; ``"skipped"``: method -> reason).
    """
    from probe.attribution._registry import attribute, method_spec
    from probe.evaluation._distributed import gather, gather_list, shard
    from probe.evaluation._faithfulness import faithfulness
    from probe.models._shapes import make_shapes

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ProbeError(f"n must be a positive integer, got {n!r}")
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
    mine = shard(list(enumerate(range(0, n, batch_size))))  # (batch number, first image)
    for number, start in _progress(mine, quiet, "faithfulness", len(mine)):
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
    merged = gather({"per": per, "seconds": seconds, "correct": correct,
                     "object_fraction": object_fraction, "skipped": skipped})
    per, seconds, correct = merged["per"], merged["seconds"], merged["correct"]
    object_fraction, skipped = merged["object_fraction"], merged["skipped"]
    grid = next((g for g in gather_list(grid) if g is not None), None)
    elapsed = time.perf_counter() - started
    if names and all(name in skipped for name in names):  # an empty table: an error
        raise ProbeError(
            f"no method could run the faithfulness eval ({names[0]}: {skipped[names[0]]}); fix "
            "its options or pick methods that apply to this model (see 'probe models --methods')"
        )

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
            "maps average pooled per patch (probe.evaluation._geometry.to_patch_grid)",
            "pointing_game": "hit when the highest-scoring patch (raw score; ties broken at random "
            "with a fixed seed) contains at least one object pixel; chance = object_patch_fraction",
            "mass_on_object": "sum of positive scores on object patches / sum of positive scores "
            "(object patch = patch containing any object pixel; maps without positive mass left "
            "out, mass_on_object_n counts the rest); chance = object_patch_fraction",
            "deletion_insertion": "probe.evaluation._faithfulness.faithfulness: patches "
                                  "removed/revealed in "
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
    metrics = ("pointing_game", "mass_on_object", "deletion_auc", "insertion_auc")
    rows = [
        [m, *(_with_se(r, k) for k in metrics), f"{1000 * r['seconds_per_image']:.1f}"]
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
            "Mean ± standard error over images. Chance level of pointing game and mass on "
            f"object: object-patch fraction {format_value(result['object_patch_fraction'])}. "
            "Deletion/insertion: "
            f"{result['protocol']['steps']} steps, removed patches = baseline "
            f"{result['protocol']['baseline']!r}, score = predicted-class probability."
        ),
    ]
    for name, reason in result["skipped"].items():
        lines.append(f"Skipped {name}: {reason}")
    lines += _reference_footer(result)
    return "\n".join(lines)


def _with_se(row: dict[str, Any], key: str) -> str:
    """``0.418 ± 0.013``: a metric with its standard error (the mean alone when the result
    has none or it is not finite)."""
    cell = format_value(row[key])
    se = row.get(f"{key}_se")
    if isinstance(se, (int, float)) and math.isfinite(se) and cell != format_value(None):
        cell += f" ± {se:.3f}"
    return cell


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
        _ordering_line(result["chefer_ordering"]),
    ]


def _ordering_line(ordering: dict[str, Any]) -> str:
    """The verdict on Chefer et al.'s ordering and its explanation; an undefined one is the
    explanation alone (one sentence saying which methods are missing)."""
    explanation = str(ordering["explanation"])
    if _verdict(ordering) == "undefined" and explanation.startswith("Chefer et al.'s"):
        return explanation
    return f"Chefer et al.'s ordering: {_verdict(ordering)}. {explanation}"


def _listed(names: list[str]) -> str:
    """``relevance and gradcam``; ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def _verdict(ordering: dict[str, Any]) -> str:
    """The ordering verdict in words (results saved before ``verdict`` existed included)."""
    if "verdict" in ordering:
        return str(ordering["verdict"])
    if ordering.get("reproduced") is None:
        return "undefined"
    if ordering["reproduced"]:
        return "reproduced in both tests"
    one = [k for k in ("deletion", "insertion") if ordering.get(f"{k}_reproduced")]
    return f"partly reproduced ({one[0]} only)" if one else "not reproduced in either test"
