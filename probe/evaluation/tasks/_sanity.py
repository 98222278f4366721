"""``probe eval sanity``: the cascading randomisation test (Adebayo et al. 2018) of every
vision method, averaged over generated shapes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._report import markdown_table
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
