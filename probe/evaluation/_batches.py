"""Faithfulness over datasets: deletion and insertion curves batch by batch.

:func:`faithfulness_batches` computes each method's attribution and curves one batch at a
time and keeps only the per-item curves, so memory is bounded by the batch. The result is
the :class:`~probe.evaluation._faithfulness.FaithfulnessTable` of the whole dataset: AUCs
are means over every item; the random baseline is the item-weighted mean of the batches'
random curves (each batch draws its orders from ``seed``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.attribution._batches import batch_count, check_batch_target, iter_batches
from probe.attribution._registry import resolve_run
from probe.evaluation._curves import Curve, _check_n_random, _check_steps
from probe.evaluation._faithfulness import FaithfulnessTable, faithfulness
from probe.evaluation._perturb import _check_output

if TYPE_CHECKING:
    from torch import nn

__all__ = ["faithfulness_batches"]


def faithfulness_batches(
    model: nn.Module,
    data: Any,
    methods: str | Sequence[str] | Mapping[str, Mapping[str, Any]],
    *,
    batch_size: int | None = 32,
    tokenizer: Any = None,
    target: Any = None,
    seed: int = 0,
    progress: bool = True,
    **faithfulness_options: Any,
) -> FaithfulnessTable:
    """:func:`probe.faithfulness` of registered methods over a dataset, batch by batch.

    Args:
        model: the model.
        data: a dataset as :func:`probe.attribute_batches` takes it.
        methods: a method name, method names, or a mapping name -> that method's options.
        batch_size: items per batch for tensors, texts and mappings.
        tokenizer, target: as for :func:`probe.attribute` and :func:`probe.faithfulness`.
        seed: seed of stochastic methods and of the random orders.
        progress: show a progress bar.
        **faithfulness_options: ``steps``, ``baseline``, ``n_random``, ... of
            :func:`probe.faithfulness`.

    Returns:
        A :class:`FaithfulnessTable` over every item of ``data``.
    """
    import torch

    from probe.attribution._registry import attribute

    if isinstance(methods, str):
        methods = [methods]  # one method, as faithfulness takes one Attribution
    named = dict(methods) if isinstance(methods, Mapping) else {m: {} for m in methods}
    if not named:
        raise ProbeError("methods is empty: name at least one registered method")
    for m, o in named.items():  # before the first batch and the progress bar
        resolve_run(model, m, dict(o))
    _check_options(faithfulness_options)
    check_batch_target(target, "faithfulness_batches")
    batches = iter_batches(data, batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="faithfulness", unit="batch", leave=False,
                       total=batch_count(data, batch_size))
    tables: list[tuple[int, FaithfulnessTable]] = []
    for batch in batches:
        attrs = [
            attribute(model, batch, m, tokenizer=tokenizer, target=target, seed=seed, **dict(o))
            for m, o in named.items()
        ]
        table = faithfulness(
            model, batch, attrs, target=target, tokenizer=tokenizer, seed=seed,
            **faithfulness_options,
        )
        size = int(next(iter(table.curves.values()))[0].auc.shape[0])
        tables.append((size, table))
    first = tables[0][1]
    total = sum(size for size, _ in tables)

    def joined(curves: list[Curve]) -> Curve:
        return Curve(
            curves[0].fractions, torch.cat([c.values for c in curves]),
            torch.cat([c.auc for c in curves]), curves[0].kind, curves[0].method,
        )

    def weighted(curves: list[tuple[int, Curve]]) -> Curve:
        values = sum(size * c.values.mean(0, keepdim=True) for size, c in curves) / total
        auc = torch.tensor([sum(size * float(c.auc.mean()) for size, c in curves) / total])
        return Curve(curves[0][1].fractions, values, auc, curves[0][1].kind, "random")

    curves = {
        name: tuple(joined([t.curves[name][k] for _, t in tables]) for k in (0, 1))
        for name in first.methods
    }
    random_curves = None
    if first.random_curves is not None:
        random_curves = tuple(
            weighted([(size, t.random_curves[k]) for size, t in tables]) for k in (0, 1)
        )
    nan = float("nan")
    return FaithfulnessTable(
        methods=first.methods,
        deletion_auc=torch.tensor([curves[m][0].mean_auc for m in first.methods],
                                  dtype=torch.float64),
        insertion_auc=torch.tensor([curves[m][1].mean_auc for m in first.methods],
                                   dtype=torch.float64),
        random_deletion_auc=random_curves[0].mean_auc if random_curves else nan,
        random_insertion_auc=random_curves[1].mean_auc if random_curves else nan,
        curves=curves,  # type: ignore[arg-type]
        random_curves=random_curves,  # type: ignore[arg-type]
        steps=first.steps,
        n_random=first.n_random,
        seed=first.seed,
        baseline=first.baseline,
    )


def _check_options(options: Mapping[str, Any]) -> None:
    """The keyword options of :func:`probe.faithfulness` that can be checked without data."""
    taken = set(inspect.signature(faithfulness).parameters) - _SET_PER_BATCH
    unknown = sorted(set(options) - taken)
    if unknown:
        raise ProbeError(
            f"faithfulness_batches does not take {', '.join(map(repr, unknown))}: its "
            f"faithfulness options are {sorted(taken)}"
        )
    if "steps" in options:
        _check_steps(options["steps"])
    if "n_random" in options:
        _check_n_random(options["n_random"])
    if "output" in options:
        _check_output(options["output"])


#: arguments of :func:`probe.faithfulness` that ``faithfulness_batches`` sets itself (its own
#: ``batch_size`` splits the data; each batch is scored with faithfulness's default)
_SET_PER_BATCH = {"model", "inputs", "attributions", "target", "tokenizer", "seed", "batch_size"}
