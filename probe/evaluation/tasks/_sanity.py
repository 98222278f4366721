"""``probe eval sanity``: the cascading randomisation test (Adebayo et al. 2018) of every
vision method, averaged over generated shapes."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._report import format_value, markdown_table
from probe.evaluation.tasks._common import (
    _check_options,
    _image_seed,
    _mean_se,
    _model_name,
    _progress,
    _select_methods,
    _vision_input,
)

if TYPE_CHECKING:
    from torch import nn

__all__ = ["eval_sanity", "sanity_markdown"]


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
    batch_size: int = 4,
) -> dict[str, Any]:
    """Cascading randomisation (Adebayo et al. 2018) of every vision method, averaged over images.

    Runs :func:`probe.evaluation._sanity.sanity_check` on ``n`` generated images (seeded as for
    :func:`eval_faithfulness`) for each method, ``batch_size`` images at a time, and records the
    mean rank correlation with the original map after each randomisation step. Every batch
    meets the same randomised weights (the re-initialisation is seeded by ``seed`` alone);
    stochastic methods get a seed per batch (``1000 * seed + batch number``). Methods that
    refuse the input are skipped with their reason.

    Under ``torchrun``/``accelerate launch`` (:mod:`probe.evaluation._distributed`) the batches
    are split between the processes, each running the whole cascade on its batches; the
    per-image correlations are gathered in image order, so the result equals the one-process
    result to float tolerance.

    Returns:
        A JSON-ready dict.
    """
    from probe.evaluation._distributed import gather, shard
    from probe.evaluation._sanity import sanity_check
    from probe.models._shapes import make_shapes

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ProbeError(f"n must be a positive integer, got {n!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ProbeError(f"batch_size must be a positive integer, got {batch_size!r}")
    image_size = _vision_input(model)
    runs = _runs(model, methods, options)
    names = list(runs)
    image_seed = _image_seed(seed)
    data = make_shapes(n, seed=image_seed, image_size=image_size)
    started = time.perf_counter()
    per: dict[str, list[list[float]]] = {name: [] for name in names}  # per image: [steps]
    steps: dict[str, list[str]] = {}
    absolute: dict[str, bool] = {}
    seconds = {name: 0.0 for name in names}
    skipped: dict[str, str] = {}
    mine = shard(list(enumerate(range(0, n, batch_size))))  # (batch number, first image)
    work = [(number, first, name) for number, first in mine for name in names]
    for number, first, name in _progress(work, quiet, "sanity", len(work)):
        if name in skipped:
            continue
        t0 = time.perf_counter()
        try:
            check = sanity_check(
                model, data.images[first : first + batch_size], {name: runs[name]}, seed=seed,
                method_seed=1000 * seed + number,
            )
        except ProbeError as exc:
            skipped[name] = str(exc)
            continue
        per[name] += check.per_item[name].T.tolist()  # [batch, steps]
        steps[name] = list(check.steps)
        absolute[name] = bool(check.absolute.get(name, False))
        seconds[name] += time.perf_counter() - t0
    merged = gather({"per": per, "seconds": seconds, "skipped": skipped,
                     "steps": [steps], "absolute": [absolute]})
    skipped = merged["skipped"]
    steps = {k: v for part in merged["steps"] for k, v in part.items()}
    absolute = {k: v for part in merged["absolute"] for k, v in part.items()}
    if names and all(name in skipped for name in names):  # nothing to report: an error
        first = names[0]
        raise ProbeError(
            f"no method could run the sanity check ({first}: {skipped[first]}); pick methods "
            "that apply to this model (see 'probe models --methods')"
        )
    results: dict[str, Any] = {}
    for name in names:
        if name in skipped:
            continue
        results[name] = _sanity_entry(steps[name], merged["per"][name], absolute[name])
        results[name]["seconds"] = merged["seconds"][name]
    return {
        "task": "sanity",
        "model": _model_name(model, model_name),
        "n": n,
        "seed": seed,
        "image_seed": image_seed,
        "batch_size": batch_size,
        "protocol": {
            "test": "cascading model-parameter randomisation (Adebayo et al. 2018, 'Sanity "
            "Checks for Saliency Maps'), probe.evaluation._sanity.sanity_check: parameters are "
            "re-drawn from "
            "the output layer down, one step at a time, and each step's map is compared with the "
            "map of the trained model",
            "reading": "a method that depends on the learned parameters drops towards 0 "
            "correlation; a curve that stays high means the map does not reflect what the "
            "model learned. Attention-only methods are reported as measured; they ignore the "
            "classifier head by construction. 'random' draws the same seeded map at every step "
            "(a model-independent negative control): it stays at 1.",
            "images": f"probe.make_shapes({n}, seed={image_seed})",
            "batches": f"{batch_size} images per cascade, the same randomised weights (seed "
            f"{seed}) for every batch; stochastic methods seeded 1000 * seed + batch number",
        },
        "methods": results,
        "skipped": skipped,
        "run_time_s": time.perf_counter() - started,
    }


def _runs(
    model: nn.Module, methods: Sequence[str], options: dict[str, dict[str, Any]] | None
) -> dict[str, tuple[str, dict[str, Any]]]:
    """``{name: (method, options)}``: the methods to check with their checked options, named
    by the method (the CNN defaults, which run a method with several options, as
    :attr:`probe.Attribution.label`). Transformers: every vision method (or ``methods``). CNNs:
    by default :data:`probe.evaluation._cnn_eval.CNN_METHODS` (CBAM's spatial gate per stage
    and their mean where the model has CBAM, GradCAM, IG, random) plus input-gradient saliency
    and input x gradient, the maps Adebayo et al. tested; ``methods`` may name the gate methods
    too."""
    from probe.attribution._registry import method_label
    from probe.evaluation._cnn_eval import default_methods, is_cnn

    if not is_cnn(model):
        names = _select_methods("vision", methods)
        opts = _check_options(options, names)
        return {m: (m, dict(opts.get(m, {}))) for m in names}
    if methods:  # attention methods refuse a CNN when run: skipped with that reason
        names = _select_methods("vision", methods, needs="gates")
        opts = _check_options(options, names)
        return {m: (m, dict(opts.get(m, {}))) for m in names}
    defaults = [*default_methods(model), ("saliency", {}), ("inputxgrad", {})]
    opts = _check_options(options, list(dict.fromkeys(m for m, _ in defaults)))
    pairs = [(m, {**o, **opts.get(m, {})}) for m, o in defaults]
    return {method_label(m, o): (m, o) for m, o in pairs}


def _sanity_entry(steps: list[str], per_image: list[list[float]], absolute: bool) -> dict[str, Any]:
    """JSON-ready summary of one method: ``per_image[image][step]`` Spearman correlations,
    averaged over the images per step (NaN images left out, as ``torch.nanmean``)."""
    spearman, se = [], []
    for column in zip(*per_image):
        mean, error, _ = _mean_se(column)
        spearman.append(mean)
        se.append(error)
    finite = [v for v in spearman[1:] if math.isfinite(v)]
    return {
        "steps": steps,
        "spearman": spearman,
        "spearman_se": se,
        "absolute": absolute,
        "after_first_step": spearman[1] if len(spearman) > 1 else float("nan"),
        "fully_random": spearman[-1],
        "max_after_randomising": max(finite) if finite else float("nan"),
    }


def sanity_markdown(result: dict[str, Any]) -> str:
    """The printed table of :func:`eval_sanity`: methods as rows, cumulative steps as columns."""
    steps: list[str] = next((list(e["steps"]) for e in result["methods"].values()), [])
    rows = [[name, *_cells(entry)] for name, entry in result["methods"].items()]
    lines = [
        f"probe eval sanity: {result['model']}, {result['n']} images (seed {result['image_seed']})",
        "",
        (
            "Spearman rank correlation with the trained model's map after randomising, "
            "cumulatively from the output down, up to and including each column (Adebayo et "
            "al. 2018); signed maps compared by absolute value. Near 0 = the map depends on the "
            "weights; staying high = it does not reflect what the model learned. Mean ± "
            "standard error over images."
        ),
        "",
        markdown_table(["method", *steps], rows, digits=2),
    ]
    for name, reason in result["skipped"].items():
        lines.append(f"Skipped {name}: {reason}")
    return "\n".join(lines)


def _cells(entry: dict[str, Any]) -> list[str]:
    """``mean ± se`` per step (the first, the trained model itself, as the mean alone)."""
    means, errors = entry["spearman"], entry.get("spearman_se") or [None] * len(entry["spearman"])
    cells = []
    for index, (mean, error) in enumerate(zip(means, errors)):
        cell = format_value(mean, 2)
        if index and error is not None and math.isfinite(mean) and math.isfinite(error):
            cell += f" ± {error:.2f}"
        cells.append(cell)
    return cells
