"""Pure functions over a DETR trace: each object query's cross-attention on the feature-map
grid, and the queries' predicted classes and boxes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._index import model_position
from probe.analysis._finite import check_trace_finite

if TYPE_CHECKING:
    import torch

__all__ = ["box_iou", "decoder_layer_position", "detr_predictions", "match_detections",
           "query_maps"]


def decoder_layer_position(cross: Any, layer: int | None) -> int:
    """Position in ``cross.attentions`` (a DETR trace's ``trace.cross``) of the model's decoder
    layer ``layer``; ``None``: the last one kept.

    ``layer`` counts the model's decoder layers, as ``layer=`` does everywhere, even when the
    trace kept only some (``probe.trace(detr, pixels, layers=[1, 3])``: layer 3 is position 1);
    negative counts back from the model's last decoder layer (``cross.num_model_layers``;
    from the last kept when the stack does not know it).

    Raises:
        ProbeError: not an integer, beyond the model's decoder layers, or not kept (the
            message names the kept layers and how to capture the missing one).
    """
    if layer is None:
        return len(cross.layer_indices) - 1
    return model_position(layer, cross.layer_indices, int(getattr(cross, "num_model_layers", 0)),
                          name="layer", unit="decoder layers")


def query_maps(trace: Any, layer: int | None = None) -> torch.Tensor:
    """Cross-attention of every object query over the feature map: ``[batch, query, rows, cols]``.

    The heads of decoder layer ``layer`` are averaged: the model's decoder layer, negative
    counting back from its last (see :func:`decoder_layer_position`); ``None``, the default:
    the last layer the trace kept. Keys are the encoder tokens, laid out row-major on
    ``trace.grid``.
    """
    cross = getattr(trace, "cross", None)
    if cross is None or cross.attentions is None or trace.grid is None:
        raise ProbeError(
            "query_maps needs a DETR trace with cross-attention on a feature-map grid "
            "(probe.trace on a DetrForObjectDetection, without stream=True)"
        )
    pos = decoder_layer_position(cross, layer)
    rows, cols = trace.grid
    att = cross.attentions[pos]  # [batch, head, query, key]
    check_trace_finite(att[None], "query_maps", cross, positions=[pos], stack="cross-attention")
    att = att.float().mean(1)  # [batch, query, key]
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
