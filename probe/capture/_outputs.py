"""What a model's output says: its class logits and predicted classes.

Reading the output is model knowledge, so it lives in the capture room; the attribution
targets (:mod:`probe.attribution._targets`) build on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["EMBEDDING_HINT", "model_logits", "predicted_class", "require_logits"]

EMBEDDING_HINT = (
    "pass a target such as target=probe.similarity_target(model, tokenizer, 'other sentence') "
    "or a callable output -> [batch]"
)


# --------------------------------------------------------------------------- logits
def model_logits(output: Any, model: nn.Module | None = None) -> torch.Tensor | None:
    """The classification logits ``[batch, classes]`` in ``output``, or ``None`` if it has none.

    A timm classifier returns the logits tensor itself; a HF model returns a ``ModelOutput``
    whose ``logits`` field holds them. Embedding models (HF base models such as MiniLM, timm
    models built with ``num_classes=0``) have no logits.
    """
    import torch

    if isinstance(output, torch.Tensor):
        if model is not None and getattr(model, "num_classes", None) == 0:
            return None  # timm feature extractor: the tensor is an embedding
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    return None


def require_logits(output: Any, model: nn.Module | None, what: str) -> torch.Tensor:
    logits = model_logits(output, model)
    if logits is None:
        name = type(model).__name__ if model is not None else "this model"
        raise ProbeError(
            f"{what} needs class logits but {name} outputs embeddings: {EMBEDDING_HINT}"
        )
    if logits.dim() != 2 and hasattr(output, "pred_boxes"):  # DETR: one row per object query
        raise ProbeError(
            f"{what} needs logits [batch, classes], got {tuple(logits.shape)} (per-query logits "
            "of an object detector); pass a callable target such as "
            "lambda out: out.logits[:, query, class_id]"
        )
    if logits.dim() != 2:
        raise ProbeError(
            f"{what} needs logits [batch, classes], got {tuple(logits.shape)} (per-token logits); "
            "pass a callable target such as lambda out: out.logits[:, -1, token_id]"
        )
    return logits


def predicted_class(output: Any, model: nn.Module | None = None) -> torch.Tensor:
    """``[batch]`` int64: the arg-max class of each batch item.

    Raises:
        ProbeError: the output has no class logits (embedding models).
    """
    return require_logits(output, model, "target=None (the predicted class)").detach().argmax(-1)
