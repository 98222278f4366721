"""``labels`` for a HuggingFace model's loss, checked against the head that computes it.

A model with a head computes its loss when it is given ``labels`` (``trace.output.loss``),
and transformers fails deep inside the loss on labels that do not fit (a class out of range,
a wrong length, float class indices). The head decides what fits:

* sequence (and image) classification: ``config.problem_type`` (or, unset, what transformers
  infers from ``num_labels`` and the labels' dtype): single-label takes ``torch.long`` class
  indices ``[batch]`` in ``0..num_labels-1`` (``-100`` ignores an item); multi-label takes
  floats ``[batch, num_labels]``; regression floats ``[batch]`` (one label) or
  ``[batch, num_labels]``;
* token classification: ``torch.long`` ``[batch, seq]`` in ``0..num_labels-1`` or ``-100``;
* causal and masked language models: ``torch.long`` ``[batch, seq]`` token ids of the
  model's vocabulary or ``-100`` (the causal shift happens inside the model);
* sequence-to-sequence language models: ``torch.long`` ``[batch, target]`` token ids, as long
  as the decoder input (without decoder inputs the decoder reads the labels shifted right,
  as transformers does itself).

Models of other heads (object detection's list of dicts, pre-training, ...) judge their own.
transformers writes the problem type it infers into ``model.config``; :func:`keeping_config`
puts it back, so the model is left as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch

__all__ = ["check_labels", "keeping_config", "label_head", "shifted_labels"]

Head = Literal["sequence", "token", "lm", "seq2seq"]

#: transformers' auto-class mappings of each head kind
_MAPPINGS: dict[Head, tuple[str, ...]] = {
    "seq2seq": ("MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",),
    "lm": ("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "MODEL_FOR_MASKED_LM_MAPPING_NAMES"),
    "token": ("MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",),
    "sequence": ("MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
                 "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES"),
}
_IGNORE = -100  # CrossEntropyLoss' ignore_index, what transformers' losses skip


@lru_cache(maxsize=None)
def _names(mapping: str) -> frozenset[str]:
    from transformers.models.auto import modeling_auto

    names: set[str] = set()
    for value in getattr(modeling_auto, mapping, {}).values():
        names.update([value] if isinstance(value, str) else value)
    return frozenset(names)


def label_head(model: Any) -> Head | None:
    """The kind of loss head ``model`` has (by its class or a base class), else ``None``."""
    try:
        classes = [c.__name__ for c in type(model).__mro__]
    except AttributeError:  # pragma: no cover - every object has a type
        return None
    for head, mappings in _MAPPINGS.items():
        known = frozenset().union(*(_names(m) for m in mappings))
        if any(name in known for name in classes):
            return head
    return None


@contextmanager
def keeping_config(model: Any, kwargs: dict[str, Any]) -> Iterator[None]:
    """Put ``config.problem_type`` back after a forward with ``labels`` (transformers sets it
    from the first labels it sees, and later labels of another kind then fail)."""
    config = getattr(model, "config", None)
    if "labels" not in kwargs or config is None or not hasattr(config, "problem_type"):
        yield
        return
    before = config.problem_type
    try:
        yield
    finally:
        config.problem_type = before


def _name(model: Any) -> str:
    return type(model).__name__


def _tensor(labels: Any) -> torch.Tensor:
    import torch

    if not isinstance(labels, torch.Tensor):
        raise ProbeError(
            f"labels must be a tensor, got {type(labels).__name__}: pass torch.tensor(labels)"
        )
    if labels.is_complex() or labels.dtype == torch.bool:
        raise ProbeError(f"labels must be numbers, got {labels.dtype}")
    return labels


def _indices(labels: torch.Tensor, shape: tuple[int, ...], what: str, count: int | None,
             noun: str, model: Any, fix: str) -> None:
    """``torch.long`` ``labels`` of ``shape``, each in ``0..count-1`` or ``-100``."""
    import torch

    if tuple(labels.shape) != shape:
        raise ProbeError(
            f"labels {tuple(labels.shape)} do not fit {_name(model)}: it takes {what}, an "
            f"integer tensor {shape}; {fix}"
        )
    if labels.dtype != torch.long:
        raise ProbeError(
            f"labels are {labels.dtype} but {_name(model)}'s loss takes {what} as torch.long "
            "(int64): pass labels.long()"
        )
    if labels.is_meta or not labels.numel() or count is None:
        return
    bad = (labels != _IGNORE) & ((labels < 0) | (labels >= count))
    if bool(bad.any()):
        value = int(labels[bad].flatten()[0])
        raise ProbeError(
            f"label {value} is outside the {count} {noun} of {_name(model)} (0..{count - 1}; "
            "-100 ignores a label): pass labels in that range"
        )


def _vocab(model: Any) -> int | None:
    """Width of the logits of a language-model head (its output embedding)."""
    get = getattr(model, "get_output_embeddings", None)
    try:
        layer = get() if callable(get) else None
    except (AttributeError, NotImplementedError):
        layer = None
    n = getattr(layer, "out_features", None) or getattr(layer, "num_embeddings", None)
    if isinstance(n, int):
        return n
    config = getattr(model, "config", None)
    for name in ("decoder_vocab_size", "vocab_size"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _classes(labels: torch.Tensor, batch: int, model: Any) -> None:
    """Sequence/image classification labels against ``config.problem_type``."""
    import torch

    config = model.config
    count = int(getattr(config, "num_labels", 0) or 0)
    kind = config.problem_type
    if kind is None:  # what transformers would infer (and write into the config)
        kind = ("regression" if count == 1 else "single_label_classification"
                if labels.dtype in (torch.long, torch.int) else "multi_label_classification")
    single = tuple(labels.shape) in ((batch,), (batch, 1)) or (labels.dim() == 0 and batch == 1)
    if kind == "single_label_classification" or (
            config.problem_type is None and count > 1 and single):
        if labels.is_floating_point():
            raise ProbeError(
                f"labels are {labels.dtype} but {_name(model)} is a single-label classifier: "
                f"pass class indices as torch.long [batch] (labels.long()); floats "
                f"[batch, {count}] are for config.problem_type 'multi_label_classification'"
            )
        flat = labels.reshape(-1) if single else labels  # transformers reads labels.view(-1)
        _indices(flat, (batch,), "one class index per item", count,
                 "classes (config.num_labels)", model,
                 f"pass one class in 0..{count - 1} per input")
        return
    shape = (batch,) if kind == "regression" and count == 1 else (batch, count)
    what = ("one target value per item" if shape == (batch,) else
            f"{count} target values per item" if kind == "regression" else
            f"a 0/1 float per item and class ({count} classes)")
    # regression's MSE loss takes integer targets too (ratings, counts); multi-label's BCE not
    numeric = labels.is_floating_point() or (
        kind == "regression" and labels.dtype != torch.bool and not labels.is_complex())
    if not numeric:
        raise ProbeError(
            f"labels are {labels.dtype} but {_name(model)} is a {kind} head "
            f"(config.problem_type, or as transformers reads num_labels and the labels): it "
            f"takes {what}, floats {shape}; pass labels.float()"
        )
    if tuple(labels.shape) != shape and not (shape == (batch,) and tuple(labels.shape) == (
            batch, 1)):
        raise ProbeError(
            f"labels {tuple(labels.shape)} do not fit {_name(model)} ({kind}, config."
            f"num_labels={count}): it takes {what}, floats {shape}"
        )


def check_labels(model: Any, labels: Any, tokens: tuple[int, int] | None,
                 decoder: tuple[int, int] | None = None, batch: int | None = None) -> None:
    """Refuse ``labels`` that do not fit ``model``'s loss head (see the module docstring).

    Args:
        model: the HuggingFace model.
        labels: what the user passed as ``labels``.
        tokens: ``(batch, seq)`` of the text input (``None`` for images).
        decoder: ``(batch, target)`` of the decoder input (encoder-decoders).
        batch: the batch size (images; text reads it from ``tokens``).

    Raises:
        ProbeError: naming what the model expects and the fix.
    """
    head = label_head(model)
    if head is None or labels is None:
        return
    labels = _tensor(labels)
    rows = tokens[0] if tokens is not None else batch
    if rows is None:
        return
    if head == "sequence":
        _classes(labels, rows, model)
    elif head == "token" and tokens is not None:
        count = int(getattr(model.config, "num_labels", 0) or 0) or None
        _indices(labels, tokens, "one class index per token", count,
                 "classes (config.num_labels)", model,
                 "pass one label per token, -100 for tokens without one")
    elif head == "lm" and tokens is not None:
        _indices(labels, tokens, "one token id per input token", _vocab(model),
                 "ids of the vocabulary", model,
                 "pass labels shaped like input_ids (the model shifts them itself), -100 "
                 "where no token is predicted")
    elif head == "seq2seq":
        shape = decoder if decoder is not None else (rows, int(labels.shape[-1]) if
                                                     labels.dim() else 0)
        fix = ("pass [batch, target] token ids (the decoder reads them shifted right)"
               if decoder is None else "pass labels as long as the decoder input (or leave "
               "decoder_inputs out: the decoder then reads the labels shifted right)")
        _indices(labels, shape, "one target token id per decoder token", _vocab(model),
                 "ids of the vocabulary", model, fix)


def shifted_labels(model: Any, labels: Any, batch: int) -> torch.Tensor:
    """The decoder input an encoder-decoder reads beside ``labels`` without decoder inputs:
    the labels shifted right after the decoder start token (transformers' own rule).

    Raises:
        ProbeError: labels that do not fit, or a model that cannot shift them.
    """
    check_labels(model, labels, None, None, batch=batch)
    if labels.dim() != 2 or not labels.shape[1]:
        raise ProbeError(
            f"labels {tuple(labels.shape)} hold no target tokens: pass [batch, target] ids"
        )
    shift = getattr(model, "prepare_decoder_input_ids_from_labels", None)
    if not callable(shift):
        raise ProbeError(
            f"{_name(model)} cannot make its decoder input from labels: pass decoder_inputs= "
            "as long as the labels"
        )
    return shift(labels=labels).detach()
