"""Targets: which scalar of the model output an attribution explains.

Every gradient-based method explains one number per batch item, the *target*. A target is:

* ``None``: the logit of the predicted class (classifiers only; the class is fixed once from
  the unmodified input, so that every Integrated Gradients step explains the same class);
* an ``int``: the logit of that class;
* a ``Tensor [batch]`` of class indices: one class per batch item;
* a callable ``output -> Tensor [batch]`` (``output`` is what the model returns: a HF
  ``ModelOutput`` or a timm logits tensor).

Over a dataset (:func:`probe.attribute_batches`) a target may also be ``"labels"``
(:data:`LABELS`): each ``(inputs, labels)`` batch is explained for its own labels, passed as
the ``Tensor [batch]`` target of that batch (:func:`batch_label_classes` checks them).

Some targets also need the padding mask, e.g. a mean-pooled sentence embedding. Such callables
set the attribute ``needs_attention_mask = True`` and are called as
``target(output, attention_mask)``; probe passes the mask of the very batch the model just
ran on. This matters inside captum: Integrated Gradients runs the model on ``n_steps`` copies
of the batch, and probe hands captum the attention mask as an additional forward argument, so
captum expands it together with the inputs and the target always sees a mask that matches
the output. :func:`similarity_target` is the built-in example ("which words make these two
sentences similar?").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Union

from probe._errors import ProbeError
from probe.capture._outputs import model_logits, predicted_class
from probe.capture._outputs import require_logits as _require_logits

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "LABELS",
    "ClassLogit",
    "ClassOutOfRangeError",
    "SimilarityTarget",
    "Target",
    "batch_label_classes",
    "class_logit",
    "class_tensor_message",
    "mean_pooled_embedding",
    "plain_index",
    "predicted_class",
    "resolve_target",
    "similarity_target",
]

#: What ``target=`` accepts everywhere in probe (see the module docstring).
Target = Union[int, "torch.Tensor", Callable[..., "torch.Tensor"], None]

#: ``target=LABELS`` (``"labels"``) in :func:`probe.attribute_batches`: each batch's labels.
LABELS: Final = "labels"


class ClassOutOfRangeError(ProbeError):
    """A target class index the model does not have (``cls`` of ``num_classes``)."""

    def __init__(self, message: str, cls: int, num_classes: int, item: int | None = None):
        super().__init__(message)
        self.cls, self.num_classes, self.item = cls, num_classes, item



# --------------------------------------------------------------------------- resolution
def resolve_target(
    target: Target,
    output: Any,
    model: nn.Module | None = None,
    *,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The scalar each batch item's attribution explains: ``Tensor [batch]``.

    Args:
        target: ``None`` (predicted-class logit), an ``int`` class, a ``Tensor [batch]`` of class
            indices, or a callable ``output -> [batch]`` (``(output, attention_mask) -> [batch]``
            when it has ``needs_attention_mask = True``).
        output: the model's output for the batch.
        model: the model (used to tell classifiers from embedding models, and in messages).
        attention_mask: ``[batch, seq]`` padding mask of the batch, passed to targets that
            need it (``None``: every token is real).

    Returns:
        ``[batch]`` tensor in the autograd graph of ``output``.

    Raises:
        ProbeError: ``target=None`` on an embedding model, a class index out of range, or a
            callable returning something other than one scalar per batch item.
    """
    import torch

    if target is None:
        logits = _require_logits(output, model, "target=None (the predicted class)")
        return logits.gather(1, logits.detach().argmax(-1, keepdim=True)).squeeze(1)
    if isinstance(target, bool):
        raise ProbeError(f"target must be a class index, a callable or None, got {target!r}")
    target = plain_index(target, model)
    if isinstance(target, int):
        logits = _require_logits(output, model, f"target={target}")
        n = logits.shape[-1]
        if not -n <= target < n:
            raise ClassOutOfRangeError(
                f"target class {target} is out of range: the model has {n} classes", target, n
            )
        return logits[:, target]
    if isinstance(target, torch.Tensor):
        logits = _require_logits(output, model, "a tensor target")
        index = target.to(device=logits.device)
        integer = index.dtype in (torch.int64, torch.int32)
        if not integer or tuple(index.shape) != (logits.shape[0],):
            raise ProbeError(class_tensor_message(index, int(logits.shape[0])))
        n = logits.shape[-1]
        bad = ((index < -n) | (index >= n)).nonzero()
        if len(bad):
            item = int(bad[0, 0])
            raise ClassOutOfRangeError(
                f"target class {int(index[item])} (batch item {item}) is out of range: the model "
                f"has {n} classes", int(index[item]), n, item,
            )
        return logits.gather(1, (index.long() % n)[:, None]).squeeze(1)
    if callable(target):
        if getattr(target, "needs_attention_mask", False):
            value = target(output, attention_mask)
        else:
            value = target(output)
        value = check_scalar_per_item(value, target)
        if torch.is_grad_enabled() and not value.requires_grad and _in_graph(output):
            name = getattr(target, "__name__", type(target).__name__)
            raise ProbeError(
                f"target {name} returned a tensor cut from the model output's graph (.detach(), "
                ".item(), torch.tensor(...), .numpy()), so no gradient reaches the inputs: "
                "return an expression of the output, e.g. output.logits[:, 0]"
            )
        return value
    if isinstance(target, str) and target == LABELS:
        raise ProbeError(
            "target='labels' is for probe.attribute_batches over (inputs, labels) batches; for "
            "one batch pass its labels themselves (a tensor of class indices [batch])"
        )
    raise ProbeError(
        f"target must be None, a class index, a tensor of class indices or a callable "
        f"output -> [batch], got {type(target).__name__}"
    )


def _in_graph(output: Any) -> bool:
    """Whether any tensor of the model output is in an autograd graph."""
    import torch

    if isinstance(output, torch.Tensor):
        return output.requires_grad
    values = output.values() if hasattr(output, "values") else (
        output if isinstance(output, (tuple, list)) else ())
    return any(isinstance(v, torch.Tensor) and v.requires_grad for v in values)


def plain_index(target: Any, model: Any) -> Any:
    """A numpy integer as the ``int`` it holds; a label name, a list or an array refused with
    the fix (``model.config.label2id``, ``torch.tensor``)."""
    import numbers

    if isinstance(target, numbers.Integral) and not isinstance(target, (int, bool)):
        return int(target)  # np.int64 from np.argmax: a class index
    if isinstance(target, str) and target != LABELS:
        label2id = getattr(getattr(model, "config", None), "label2id", None) or {}
        if target in label2id:
            raise ProbeError(f"target={target!r} is a label name: pass its class index, "
                             f"target={int(label2id[target])} (model.config.label2id)")
        names = sorted(label2id, key=lambda k: label2id[k])[:8]
        known = f" (its labels: {names})" if names else ""
        raise ProbeError(f"target={target!r} is not a class of the model{known}: target must "
                         "be None (the predicted class), a class index, a tensor of class "
                         "indices or a callable")
    if isinstance(target, (list, tuple)) or type(target).__name__ == "ndarray":
        raise ProbeError(f"target is a {type(target).__name__}: pass one class per batch item as "
                         "a tensor, torch.tensor([...]), or one int for every item")
    return target


def class_tensor_message(target: torch.Tensor, batch: int) -> str:
    """Why a tensor ``target`` is no ``[batch]`` of integer classes, and the fix."""
    import torch

    shape = tuple(target.shape)
    integer = target.dtype in (torch.int64, torch.int32)
    if shape in ((), (1,)) and shape != (batch,) and integer:
        fix = f"pass the int itself for every item, target={int(target.reshape(-1)[0])}"
    elif shape != (batch,):
        fix = f"pass {batch} class indices, e.g. torch.tensor([...])"
    else:
        fix = "pass class indices, e.g. target.long()"
    return (f"a tensor target must hold one integer class per batch item [{batch}], got "
            f"{target.dtype} {shape}: {fix}")


def batch_label_classes(labels: Any, batch_size: int | None, batch_number: int) -> torch.Tensor:
    """The labels of one dataset batch as a class-index target ``Tensor [batch]``.

    Args:
        labels: the batch's labels (a tensor or a list of ints), one per item.
        batch_size: items in the batch's inputs (``None``: not known from their form).
        batch_number: the batch's position in the dataset (for messages).

    Raises:
        ProbeError: labels that are not one integer class index per item (a one-hot or
            multi-label matrix, floats, a negative index, or another count than the inputs).
    """
    import torch

    where = f"target='labels': batch {batch_number}"
    if isinstance(labels, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in labels
    ):
        labels = torch.tensor(labels, dtype=torch.long)
    if not isinstance(labels, torch.Tensor):
        raise ProbeError(
            f"{where} has labels of type {type(labels).__name__}; they must be class indices "
            "(a tensor or list of ints, one per item)"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ProbeError(
            f"{where} has {labels.dtype} labels; they must be integer class indices (one per item)"
        )
    if labels.dim() != 1 or (batch_size is not None and labels.shape[0] != batch_size):
        raise ProbeError(
            f"{where} has labels of shape {tuple(labels.shape)} for {batch_size or 'its'} "
            "inputs; they must be one class index per item (not one-hot or multi-label)"
        )
    if len(labels) and int(labels.min()) < 0:
        raise ProbeError(
            f"{where} has label {int(labels.min())}; class indices are 0 or more (an ignore "
            "index such as -100 names no class to explain)"
        )
    return labels.detach().long()


def check_scalar_per_item(value: Any, target: Any) -> torch.Tensor:
    import torch

    name = getattr(target, "__name__", type(target).__name__)
    if not isinstance(value, torch.Tensor):
        raise ProbeError(f"target {name} returned {type(value).__name__}; return a tensor [batch]")
    if value.dim() == 2 and value.shape[1] == 1:
        value = value[:, 0]
    if value.dim() != 1:
        raise ProbeError(
            f"target {name} returned shape {tuple(value.shape)}; return one scalar per batch item "
            "[batch] (no .sum() or .mean() over the batch)"
        )
    finite = torch.isfinite(value.detach())
    if not bool(finite.all()):
        item = int((~finite).nonzero()[0, 0])
        raise ProbeError(
            f"target {name} returned {float(value.detach()[item])} for batch item {item}: the "
            "explained score must be finite (e.g. clamp probabilities before a log)"
        )
    return value


# --------------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class ClassLogit:
    """Target: the logit of class ``index`` (``output -> [batch]``)."""

    index: int

    def __call__(self, output: Any) -> torch.Tensor:
        return resolve_target(self.index, output)


def class_logit(index: int) -> ClassLogit:
    """A target callable returning the logit of class ``index`` for every batch item."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise ProbeError(f"class_logit needs an int class index, got {index!r}")
    return ClassLogit(index)


def _hidden_states(output: Any) -> torch.Tensor:
    import torch

    if isinstance(output, torch.Tensor):
        hidden = output
    elif getattr(output, "last_hidden_state", None) is not None:
        hidden = output.last_hidden_state
    elif isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        hidden = output[0]
    else:
        raise ProbeError(
            f"cannot find token embeddings in a {type(output).__name__}; pass the output of a base "
            "model (it has last_hidden_state [batch, seq, dim])"
        )
    if hidden.dim() != 3:
        raise ProbeError(
            f"mean pooling needs token embeddings [batch, seq, dim], got {tuple(hidden.shape)}"
        )
    return hidden


def mean_pooled_embedding(output: Any, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Sentence embedding ``[batch, dim]``: mean over real tokens, then L2-normalised.

    This is the pooling of sentence-transformers models such as all-MiniLM-L6-v2 (Reimers &
    Gurevych 2019, "Sentence-BERT"): ``normalize(sum_t m_t h_t / sum_t m_t)``.

    Args:
        output: a base model's output (``last_hidden_state [batch, seq, dim]``) or that tensor.
        attention_mask: ``[batch, seq]`` padding mask (1/True for real tokens); ``None``: all real.
    """
    import torch

    hidden = _hidden_states(output)
    if attention_mask is None:
        mask = torch.ones(hidden.shape[:2], dtype=hidden.dtype, device=hidden.device)
    else:
        if tuple(attention_mask.shape) != tuple(hidden.shape[:2]):
            raise ProbeError(
                f"attention_mask {tuple(attention_mask.shape)} does not match the token embeddings "
                f"{tuple(hidden.shape[:2])}; pass the mask of the same batch"
            )
        mask = attention_mask.to(device=hidden.device, dtype=hidden.dtype)
    summed = (hidden * mask[..., None]).sum(1)
    pooled = summed / mask.sum(1, keepdim=True).clamp_min(1e-9)
    return torch.nn.functional.normalize(pooled, p=2.0, dim=-1)


@dataclass(frozen=True, eq=False)
class SimilarityTarget:
    """Target: cosine similarity of each input's sentence embedding with a fixed reference.

    Called as ``target(output, attention_mask) -> [batch]`` (``needs_attention_mask`` is
    ``True``); embeddings are :func:`mean_pooled_embedding`. Build it with
    :func:`similarity_target`.

    Attributes:
        reference: ``[dim]`` L2-normalised embedding of the reference sentence.
        text: the reference sentence.
    """

    needs_attention_mask: ClassVar[bool] = True
    reference: torch.Tensor = field(repr=False)
    text: str = ""

    def __call__(self, output: Any, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        emb = mean_pooled_embedding(output, attention_mask)
        ref = self.reference.to(device=emb.device, dtype=emb.dtype)
        return emb @ ref


def similarity_target(model: nn.Module, tokenizer: Any, other_text: str) -> SimilarityTarget:
    """Target "how similar is each input sentence to ``other_text``?".

    The returned callable gives, for each batch item, the cosine similarity between the
    item's mean-pooled, L2-normalised embedding and that of ``other_text`` (the
    sentence-transformers similarity, Reimers & Gurevych 2019). The reference embedding is
    computed once here, without gradients; attributions then answer "which words of the input
    make it similar to ``other_text``?"::

        target = probe.similarity_target(model, tokenizer, "A man is playing guitar.")
        probe.attribute(model, "Someone plays an instrument.", "ig", tokenizer=tokenizer,
                        target=target)

    Args:
        model: a sentence-embedding base model (its output has ``last_hidden_state``).
        tokenizer: its tokenizer.
        other_text: the reference sentence.

    Returns:
        A :class:`SimilarityTarget` (``needs_attention_mask = True``).
    """
    import torch

    if not isinstance(other_text, str) or not other_text.strip():
        raise ProbeError("similarity_target needs a non-empty reference sentence (a str)")
    if tokenizer is None:
        raise ProbeError("similarity_target needs the model's tokenizer: pass tokenizer=...")
    from probe.capture import adapter_for

    adapter = adapter_for(model)
    try:  # the checks of any text input: its length, special tokens only, undecodable text
        prepared = adapter.prepare([other_text], tokenizer=tokenizer)
    except ProbeError as err:
        raise ProbeError(f"similarity_target's reference sentence: {err}") from None
    kwargs = prepared.kwargs  # on the adapter's device, also for an accelerate-dispatched model
    with torch.no_grad():
        output = model(**kwargs)
    reference = mean_pooled_embedding(output, kwargs.get("attention_mask"))[0].detach()
    return SimilarityTarget(reference=reference, text=other_text)
