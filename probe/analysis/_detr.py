"""Pure functions over a DETR trace: each object query's cross-attention on the feature-map
grid, and the queries' predicted classes and boxes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.analysis._finite import check_trace_finite

if TYPE_CHECKING:
    import torch

__all__ = ["box_iou", "detr_predictions", "match_detections", "query_maps"]


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
    check_trace_finite(
        cross.attentions[layer][None], "query_maps", cross, positions=[layer % n],
        stack="cross-attention",
    )
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


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of boxes ``a [n, 4]`` and ``b [m, 4]`` given as ``(cx, cy, w, h)``:
    ``[n, m]``."""
    import torch

    def corners(t: torch.Tensor) -> torch.Tensor:
        t = t.float()
        return torch.cat([t[:, :2] - t[:, 2:] / 2, t[:, :2] + t[:, 2:] / 2], 1)

    ca, cb = corners(a), corners(b)
    lo = torch.maximum(ca[:, None, :2], cb[None, :, :2])
    hi = torch.minimum(ca[:, None, 2:], cb[None, :, 2:])
    inter = (hi - lo).clamp(min=0).prod(-1)
    area_a = (ca[:, 2:] - ca[:, :2]).prod(-1)
    area_b = (cb[:, 2:] - cb[:, :2]).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-12)


def match_detections(
    classes: torch.Tensor,
    scores: torch.Tensor,
    boxes: torch.Tensor,
    gold_classes: torch.Tensor,
    gold_boxes: torch.Tensor,
    *,
    threshold: float = 0.5,
    iou: float = 0.5,
) -> list[int]:
    """Match one image's detections to its gold objects, PASCAL-VOC style.

    Detections with ``score >= threshold`` are taken in decreasing score order; each is a
    true positive when it has the class and an IoU above ``iou`` with a gold object not
    matched yet (the one of highest IoU), else a false positive.

    Args:
        classes, scores: ``[query]`` predicted class and its probability.
        boxes: ``[query, 4]`` predicted ``(cx, cy, w, h)``; ``gold_boxes`` ``[m, 4]`` likewise.
        gold_classes: ``[m]`` gold class of each object.

    Returns:
        ``[q]`` for each gold object, the index of the query matched to it, ``-1`` if none;
        ``len([i for i in result if i >= 0])`` is the number of true positives.
    """
    import torch

    kept = [int(i) for i in torch.argsort(scores, descending=True) if scores[i] >= threshold]
    result = [-1] * int(gold_classes.shape[0])
    if not kept or not result:
        return result
    overlap = box_iou(boxes, gold_boxes)
    for q in kept:
        best, best_iou = -1, iou
        for g in range(len(result)):
            same_class = int(gold_classes[g]) == int(classes[q])
            if result[g] < 0 and same_class and overlap[q, g] > best_iou:
                best, best_iou = g, float(overlap[q, g])
        if best >= 0:
            result[best] = q
    return result
