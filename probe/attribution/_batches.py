"""Attribution over datasets: any iterable or DataLoader, in batches, with bounded memory.

:func:`attribute_batches` runs a registered method batch by batch and keeps only the scores
(on the CPU): memory grows with one batch of model activations plus ``N x num_units``
floats, not with the dataset. The result is one :class:`Attribution` whose rows are the
items in order, equal to the attribution of the whole dataset in one call.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from probe._errors import ProbeError
from probe.attribution._registry import Attribution, attribute, resolve_run
from probe.attribution._targets import (
    LABELS,
    ClassOutOfRangeError,
    batch_label_classes,
    plain_index,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["attribute_batches", "batch_count", "check_batch_target", "iter_batches"]


def check_batch_target(target: Any, what: str, labels: bool = False) -> None:
    """Refuse classes per item (a tensor, array or list) as the ``target=`` that ``what``
    applies to every batch: the same positions of each batch would get the same classes (or
    every batch but one of that size was refused). ``labels``: ``what`` takes
    ``target='labels'``, the fix to name."""
    shape = getattr(target, "shape", None)
    if not (isinstance(target, (list, tuple)) or (shape is not None and len(shape) > 0)):
        return
    from probe._text import short_repr

    fix = ("pass (inputs, labels) batches with target='labels' (each batch its own classes)"
           if labels else "call it per batch with that batch's classes")
    raise ProbeError(f"{what} applies target= to every batch, so classes per item "
                     f"({short_repr(target)}) would repeat in each: {fix}, or pass one class "
                     "index for every item")


#: the labels of a batch that carries none (``iter_batches(..., with_labels=True)``)
NO_LABELS: Any = object()


def iter_batches(
    data: Any, batch_size: int | None, *, with_labels: bool = False
) -> Iterator[Any]:
    """Model inputs, one batch at a time, from a dataset in any of the usual forms.

    Everything that can be checked is checked when this is called, not when the batches are
    iterated: the batch size, the form of ``data``, and that it holds at least one batch (an
    iterable's first batch is read for that, and yielded first).

    Args:
        data: a tensor ``[N, ...]`` (pixels or ids), a list of strings, a mapping of forward
            tensors ``[N, ...]`` (a tokenizer output): split into chunks of ``batch_size``;
            or any other iterable (a ``DataLoader``, a generator) yielding batches as
            ``probe.attribute`` takes them, or ``(inputs, labels, ...)`` tuples whose first
            element is the batch.
        batch_size: chunk size for the splittable forms (ignored for iterables, whose
            batches are used as they come).
        with_labels: yield ``(inputs, labels)`` pairs: the labels are a tuple batch's second
            element, or the ``"labels"`` entry of a mapping (taken out of the inputs), else
            :data:`NO_LABELS`.

    Raises:
        ProbeError: a bad ``batch_size``, a form of ``data`` that is not a dataset, or an
            empty dataset.
    """
    import numbers

    import torch

    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise ProbeError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    if batch_size is not None:
        batch_size = int(batch_size)  # np.int64 from a sweep counts as the int it holds
    if isinstance(data, (str, bytes)):
        raise ProbeError("pass a list of texts (a dataset), not one string: use probe.attribute")
    if isinstance(data, torch.Tensor) or (
        isinstance(data, Sequence) and data and all(isinstance(t, str) for t in data)
    ):
        if with_labels:
            raise ProbeError(
                f"target='labels' needs batches that carry labels, but a {type(data).__name__} "
                "of inputs has none: pass an iterable/DataLoader of (inputs, labels) batches"
            )
        batches = _chunks(data, len(data), batch_size)
    elif isinstance(data, Mapping):
        sizes = {int(v.shape[0]) for v in data.values() if isinstance(v, torch.Tensor)}
        if len(sizes) != 1:
            raise ProbeError("a mapping dataset needs tensors with one batch size [N, ...]")
        batches = _mapping_chunks(data, sizes.pop(), batch_size)
    elif isinstance(data, Iterable):
        batches = (_split(batch, with_labels) for batch in data)
    else:
        raise ProbeError(
            f"cannot iterate over a {type(data).__name__}: pass a tensor, a list of texts, a "
            "tokenizer output or an iterable/DataLoader of batches"
        )
    if with_labels and isinstance(data, Mapping):  # a "labels" entry [N] is chunked too
        batches = (_split(batch, True) for batch in batches)
    empty = object()
    first = next(batches, empty)
    if first is empty:
        raise ProbeError("the dataset is empty: pass at least one item")
    return itertools.chain([first], batches)


def batch_count(data: Any, batch_size: int | None) -> int | None:
    """How many batches :func:`iter_batches` yields for ``data``, where that is known without
    reading it (a tensor, a list of texts, a mapping of tensors, a sized iterable such as a
    ``DataLoader``); ``None`` otherwise (a generator). The total of a progress bar."""
    import math

    import torch

    n: int | None = None
    if isinstance(data, torch.Tensor) or (
        isinstance(data, Sequence) and data and all(isinstance(t, str) for t in data)
    ):
        n = len(data)
    elif isinstance(data, Mapping):
        sizes = {int(v.shape[0]) for v in data.values() if isinstance(v, torch.Tensor)}
        n = sizes.pop() if len(sizes) == 1 else None
    else:
        try:
            return len(data)  # its batches as they come: a DataLoader, a list of batches
        except TypeError:  # a generator, an IterableDataset's loader
            return None
    if n is None:
        return None
    return max(1, math.ceil(n / batch_size)) if batch_size else 1


def _with_label_targets(batches: Iterator[Any]) -> Iterator[tuple[Any, torch.Tensor]]:
    """``(inputs, labels)`` batches as ``(inputs, class-index target [batch])``, checked."""
    for number, (inputs, labels) in enumerate(batches):
        if labels is NO_LABELS:
            raise ProbeError(
                f"target='labels': batch {number} carries no labels ({type(inputs).__name__}); "
                "pass (inputs, labels) batches (a DataLoader over a labelled dataset), or "
                "target=None / a class index"
            )
        yield inputs, batch_label_classes(labels, _count(inputs), number)


def _split(batch: Any, with_labels: bool) -> Any:
    """A batch's model inputs, or ``(inputs, labels)`` when ``with_labels``."""
    labels = NO_LABELS
    if isinstance(batch, (tuple, list)) and batch and not isinstance(batch[0], str):
        inputs = batch[0]
        if len(batch) > 1:
            labels = batch[1]
    elif with_labels and isinstance(batch, Mapping) and "labels" in batch:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        labels = batch["labels"]
    else:
        inputs = batch
    return (inputs, labels) if with_labels else inputs


def _count(inputs: Any) -> int | None:
    """Items in a batch of model inputs, where the form tells it."""
    import torch

    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0])
    if isinstance(inputs, Sequence) and not isinstance(inputs, (str, bytes)):
        return len(inputs)
    if isinstance(inputs, Mapping):
        sizes = {int(v.shape[0]) for v in inputs.values() if isinstance(v, torch.Tensor)}
        return sizes.pop() if len(sizes) == 1 else None
    return None


def _chunks(data: Any, n: int, batch_size: int | None) -> Iterator[Any]:
    step = batch_size or max(n, 1)
    for start in range(0, n, step):
        yield data[start : start + step]


def _mapping_chunks(data: Mapping[str, Any], n: int, batch_size: int | None) -> Iterator[Any]:
    import torch

    step = batch_size or max(n, 1)
    for start in range(0, n, step):
        yield {
            k: (v[start : start + step] if isinstance(v, torch.Tensor) else v)
            for k, v in data.items()
        }


def attribute_batches(
    model: nn.Module,
    data: Any,
    method: str,
    *,
    batch_size: int | None = 32,
    tokenizer: Any = None,
    target: int | Callable[[Any], torch.Tensor] | Literal["labels"] | None = None,
    seed: int = 0,
    progress: bool = True,
    **options: Any,
) -> Attribution:
    """:func:`probe.attribute` over a dataset, batch by batch, with a progress bar.

    Each batch runs exactly as ``probe.attribute(model, batch, method, ...)`` would (the
    same seed for every batch, so a stochastic method gives each batch the same draws as a
    single call on it); only the scores are kept, detached on the CPU.

    Args:
        model, method, tokenizer, options: as for :func:`probe.attribute`.
        target: as for :func:`probe.attribute`, applied to every batch (a class index, a
            callable, or ``None``), or ``"labels"``: each batch's own labels (the second
            element of ``(inputs, labels)`` batches, or a mapping batch's ``"labels"``
            entry), one class index per item; a batch is then attributed as
            ``probe.attribute(model, inputs, method, target=labels)``. Methods that explain
            no class (rollout, raw attention, random) ignore the target, labels included.
        data: see :func:`iter_batches`.
        batch_size: items per batch for tensors, texts and mappings.
        seed: seed of stochastic methods.
        progress: show a progress bar (tqdm).

    Returns:
        One :class:`Attribution` with ``scores`` ``[N, num_units]``: text scores are padded
        with 0 to the longest batch's length (token labels stay per item); ``info`` holds
        ``"batches"``, the number of batches.

    Raises:
        ProbeError: besides :func:`probe.attribute`'s refusals, ``target="labels"`` with
            batches that carry no labels, labels that are not one class index per item, or a
            label out of the model's class range (naming the batch and the label).
    """
    import torch

    if not isinstance(method, str):
        raise ProbeError(
            "attribute_batches runs one method: pass a name, or use compare_batches for several"
            + (
                "" if isinstance(method, (list, tuple, Mapping))
                else f" (got {type(method).__name__})"
            )
        )
    resolve_run(model, method, options)  # before the first batch and the progress bar
    use_labels = isinstance(target, str) and target == LABELS
    check_batch_target(target, "attribute_batches", labels=True)
    if isinstance(target, str) and not use_labels:
        if target in (getattr(getattr(model, "config", None), "label2id", None) or {}):
            plain_index(target, model)  # a label name: named with its class index
        raise ProbeError(
            f"target={target!r} is not a target: the only named one is 'labels' (each "
            "batch's labels); else pass a class index, a callable or None"
        )
    batches = iter_batches(data, batch_size, with_labels=use_labels)
    if use_labels:  # the first batch is read: refuse it before the progress bar
        batches = _with_label_targets(batches)
        first_batch = next(batches)
        batches = itertools.chain([first_batch], batches)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=method, unit="batch", leave=False,
                       total=batch_count(data, batch_size))
    parts: list[Attribution] = []
    for number, batch in enumerate(batches):
        inputs, batch_target = batch if use_labels else (batch, target)
        try:
            parts.append(
                attribute(model, inputs, method, tokenizer=tokenizer, target=batch_target,
                          seed=seed, **options)
            )
        except ClassOutOfRangeError as exc:
            if not use_labels:
                raise
            raise ProbeError(
                f"target='labels': batch {number} has label {exc.cls}"
                + ("" if exc.item is None else f" (item {exc.item})")
                + f", but the model has {exc.num_classes} classes: the labels must be its "
                f"class indices 0..{exc.num_classes - 1} (map the dataset's labels to them)"
            ) from None
    first = parts[0]
    width = max(int(p.scores.shape[-1]) for p in parts)
    scores = torch.cat(
        [torch.nn.functional.pad(p.scores, (0, width - int(p.scores.shape[-1]))) for p in parts]
    )

    def joined(name: str) -> Any:
        values = [getattr(p, name) for p in parts]
        if any(v is None for v in values):
            return None
        return tuple(x for v in values for x in v)

    units = None
    if all(p.units is not None for p in parts):  # text: padding is never a unit
        units = torch.cat([torch.nn.functional.pad(p.units, (0, width - int(p.units.shape[-1])))
                           for p in parts])  # type: ignore[union-attr]
    return Attribution(
        scores=scores, method=first.method, modality=first.modality, signed=first.signed,
        tokens=joined("tokens"), words=joined("words"), word_scores=joined("word_scores"),
        grid=first.grid, image_size=first.image_size, model_name=first.model_name,
        info={"batches": len(parts)}, options=first.options, byte_level=first.byte_level,
        units=units,
    )
