"""Agreement between methods over datasets: :func:`probe.compare`, batch by batch.

:func:`compare_batches` computes every method's attribution of one batch, the per-item
agreement of every pair of methods, and keeps only those per-item values (``N`` floats per
pair of methods): memory is bounded by one batch of attributions and model activations, not
by the dataset. The table is the mean over all items, as :func:`probe.compare` takes it over
one batch holding everything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.attribution._batches import batch_count, check_batch_target, iter_batches
from probe.evaluation._agreement import (
    AgreementTable,
    Metric,
    _named_maps,
    _pair,
    _top_count,
    kendall,
    spearman,
    topk_overlap,
    unit_counts,
    unit_mask,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["compare_batches"]


def compare_batches(
    model: nn.Module,
    data: Any,
    methods: (
        Sequence[str | tuple[str, Mapping[str, Any]]]
        | Mapping[str, str | tuple[str, Mapping[str, Any]]]
    ),
    metric: Metric = "spearman",
    *,
    k: int | float | None = None,
    absolute: bool | None = None,
    batch_size: int | None = 32,
    tokenizer: Any = None,
    target: int | Callable[[Any], torch.Tensor] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> AgreementTable:
    """:func:`probe.compare` of registered methods over a dataset, batch by batch.

    Each batch is attributed by every method exactly as :func:`probe.attribute_batches` would
    (the same ``seed`` for every batch), the agreement of every pair is computed per item,
    and only those values are kept. Text batches are scored over their real, non-special
    tokens (:func:`probe.unit_mask` of the batch's trace, also reused by the methods), so
    padding, which depends on how the data is batched, never counts; vision maps over every
    patch. The table equals ``probe.compare([probe.attribute_batches(...) for each method],
    metric, mask=...)`` with the same masks, and, for deterministic methods, the comparison
    of single calls on the whole dataset.

    Args:
        model: the model (left unchanged).
        data: a dataset as :func:`probe.attribute_batches` takes it: a tensor ``[N, ...]``, a
            list of texts, a tokenizer output, or any iterable/``DataLoader`` of batches
            (``(inputs, labels)`` tuples included).
        methods: at least two registered method names, or ``(name, options)`` pairs to
            compare variants of one method (labelled like :attr:`Attribution.label`, e.g.
            ``"rollout[head_fusion=max]"``), or a mapping ``{label: name or (name, options)}``
            to choose the labels.
        metric: ``"spearman"``, ``"kendall"`` or ``"topk"`` (needs ``k``), as for
            :func:`probe.compare`.
        k: for ``"topk"``: a count of units or a fraction in ``(0, 1]``.
        absolute: as for :func:`probe.compare` (``None``: absolute values of signed methods).
        batch_size: items per batch for tensors, texts and mappings (ignored for iterables,
            whose batches are used as they come).
        tokenizer, target: as for :func:`probe.attribute` (the target applies to every batch).
        seed: seed of stochastic methods.
        progress: show a progress bar (tqdm), one step per batch.

    Returns:
        An :class:`AgreementTable` over every item of ``data``: ``values[i, j]`` is the mean
        of the per-item agreement (items where it is undefined are skipped, as in
        :func:`probe.compare`).

    Raises:
        ProbeError: fewer than two methods, duplicate labels (pass a mapping), a bad metric or
        ``k``, an
            empty dataset, or whatever :func:`probe.attribute` refuses.
    """
    import torch

    from probe.attribution._registry import attribute
    from probe.capture import adapter_for
    from probe.capture._capture import trace as capture

    labels, runs = _runs(methods)
    fn = _metric(metric, k)
    _check_labels(model, labels, runs)  # before the first batch and the progress bar
    check_batch_target(target, "compare_batches")
    text = adapter_for(model).modality == "text"
    batches = iter_batches(data, batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="compare", unit="batch", leave=False,
                       total=batch_count(data, batch_size))
    names: tuple[str, ...] = ()
    per_item: dict[tuple[int, int], list[torch.Tensor]] = {}
    units: list[int] = []
    for batch in batches:
        tr = capture(model, batch, tokenizer=tokenizer) if text else None
        attrs = [
            attribute(model, batch, name, tokenizer=tokenizer, target=target, seed=seed,
                      trace=tr, **options)
            for name, options in runs
        ]
        named = attrs if labels is None else dict(zip(labels, attrs))
        names, maps = _named_maps(named, absolute)  # labels depend on the options only
        mask = unit_mask(tr) if tr is not None else None
        units.extend(unit_counts(_pair(maps[0], maps[1], mask)[2]))
        for i in range(len(maps)):
            for j in range(i + 1, len(maps)):
                per_item.setdefault((i, j), []).append(fn(maps[i], maps[j], mask))
    values = torch.eye(len(names), dtype=torch.float64)
    for (i, j), parts in per_item.items():
        items = torch.cat(parts)
        mean = (
            torch.tensor(float("nan"), dtype=torch.float64)
            if bool(torch.isnan(items).all()) else torch.nanmean(items)
        )
        values[i, j] = values[j, i] = mean
    return AgreementTable(names, values, metric, k, units=tuple(units),
                          unit="tokens" if text else "patches")


def _runs(methods: Any) -> tuple[tuple[str, ...] | None, list[tuple[str, dict[str, Any]]]]:
    """``methods`` as ``(labels, [(name, options)])``, at least two; ``labels`` are the keys of
    a mapping, ``None`` for a list (labelled by :attr:`Attribution.label`)."""
    fix = (
        "pass a list of at least two method names or (name, options) pairs, or a mapping "
        "{label: name or (name, options)}"
    )
    if isinstance(methods, Mapping):
        labels: tuple[str, ...] | None = tuple(str(k) for k in methods)
        items = list(methods.values())
    elif isinstance(methods, (str, bytes)) or not isinstance(methods, Sequence):
        raise ProbeError(f"methods must be several methods, got {type(methods).__name__}: {fix}")
    else:
        labels, items = None, list(methods)
    runs = []
    for m in items:
        if isinstance(m, str):
            runs.append((m, {}))
        elif (
            isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str)
            and isinstance(m[1], Mapping)
        ):
            runs.append((m[0], dict(m[1])))
        else:
            raise ProbeError(
                f"each method must be a registered name or a (name, options) pair, got {m!r}"
            )
    if len(runs) < 2:
        raise ProbeError(f"compare_batches needs at least two methods, got {len(runs)}: {fix}")
    return labels, runs


def _check_labels(
    model: nn.Module, labels: tuple[str, ...] | None, runs: list[tuple[str, dict[str, Any]]]
) -> None:
    """Every run's method and options as :func:`probe.attribute` checks them, and distinct
    labels: those given, or the :attr:`Attribution.label` each run will get."""
    from probe.attribution._registry import method_label, resolve_run

    resolved = [resolve_run(model, name, options)[1] for name, options in runs]
    names = labels or tuple(method_label(name, r) for (name, _), r in zip(runs, resolved))
    if len(set(names)) != len(names):
        raise ProbeError(
            f"duplicate method names {sorted(n for n in set(names) if names.count(n) > 1)}: pass "
            "a mapping with distinct labels, e.g. {'ig-32': ('ig', {'n_steps': 32}), "
            "'ig-64': ('ig', {'n_steps': 64})}"
        )


def _metric(metric: Any, k: int | float | None) -> Callable[..., torch.Tensor]:
    """The per-item agreement function ``f(a, b, mask) -> [batch]`` of ``metric``."""
    if metric == "topk":
        if k is None:
            raise ProbeError("metric='topk' needs k=: an int count or a fraction in (0, 1]")
        _top_count(k, 1)
        return lambda a, b, mask: topk_overlap(a, b, k, mask, reduction="none")
    if k is not None:
        raise ProbeError(f"k applies to metric='topk' only, not {metric!r}: drop k=")
    table = {"spearman": spearman, "kendall": kendall}
    if metric not in table:
        raise ProbeError(f"unknown metric {metric!r}: use one of ['spearman', 'kendall', 'topk']")
    chosen = table[metric]
    return lambda a, b, mask: chosen(a, b, mask, reduction="none")
