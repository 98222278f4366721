"""Pure functions over a DETR trace: each object query's cross-attention on the feature-map
grid, and the queries' predicted classes and boxes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch

__all__ = ["detr_predictions", "query_maps"]


def query_maps(trace: Any, layer: int = -1) -> torch.Tensor:
    """Cross-attention of every object query over the feature map: ``[batch, query, rows, cols]``.

    The heads of decoder layer ``layer`` (kept-layer position, negative from the end) are
    averaged; keys are the encoder tokens, laid out row-major on ``trace.grid``.
    """
    cross = getattr(trace, "cross", None)
    if cross is None or cross.attentions is None or trace.grid is None:
        raise ProbeError(
            "query_maps needs a DETR trace with cross-attention on a feature-map grid "
            "(probe.trace on a DetrForObjectDetection, without stream=True)"
        )
    n = cross.attentions.shape[0]
    if isinstance(layer, bool) or not isinstance(layer, int) or not -n <= layer < n:
        raise ProbeError(f"layer must be in -{n}..{n - 1} (kept decoder layers), got {layer!r}")
    rows, cols = trace.grid
    att = cross.attentions[layer].float().mean(1)  # [batch, query, key]
    if att.shape[-1] != rows * cols:
        raise ProbeError(
            f"cross-attention has {att.shape[-1]} keys but the grid is {rows}x{cols}"
        )
    return att.reshape(att.shape[0], att.shape[1], rows, cols)


def detr_predictions(
    logits: torch.Tensor, boxes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DETR's predictions: ``(classes [batch, query], scores [batch, query], boxes)``.

    ``logits`` ``[batch, query, classes + 1]`` end with the "no object" class; each query's
    class is the arg-max over the real classes of the softmax over all of them (as in DETR's
    post-processing), its score that probability; ``boxes`` ``[batch, query, 4]`` are returned
    as given (``cx, cy, w, h`` relative to the image).
    """
    if logits.dim() != 3 or boxes.shape[:2] != logits.shape[:2] or boxes.shape[-1] != 4:
        raise ProbeError(
            f"logits must be [batch, query, classes + 1] and boxes [batch, query, 4], got "
            f"{tuple(logits.shape)} and {tuple(boxes.shape)}"
        )
    probs = logits.float().softmax(-1)[..., :-1]
    scores, classes = probs.max(-1)
    return classes, scores, boxes.float()
