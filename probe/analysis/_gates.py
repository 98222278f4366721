"""Pure functions over CNN attention gates (see :class:`probe.GateTrace`): unit grids,
channel-gate profiles per class, and the attention map of one query point of a non-local block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch

__all__ = ["channel_profiles", "gate_specificity", "query_point_map", "to_unit_grid"]


def to_unit_grid(maps: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Resample spatial maps ``[batch, height, width]`` to ``[batch, rows, cols]``.

    Finer maps are averaged over the input area of each cell (adaptive average pooling, exact
    block means when the sizes divide), coarser ones interpolated bilinearly; equal sizes come
    back unchanged.
    """
    import torch.nn.functional as F

    if maps.dim() != 3:
        raise ProbeError(f"maps must be [batch, height, width], got {tuple(maps.shape)}")
    rows, cols = grid
    h, w = int(maps.shape[-2]), int(maps.shape[-1])
    if (h, w) == (rows, cols):
        return maps
    x = maps[:, None].float()
    if h >= rows and w >= cols:
        return F.adaptive_avg_pool2d(x, (rows, cols))[:, 0]
    return F.interpolate(x, size=(rows, cols), mode="bilinear", align_corners=False)[:, 0]


def channel_profiles(values: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean channel gate per class: ``[class, channel]`` from ``values`` ``[n, channel]``.

    The SENet paper (Hu et al. 2018, Fig. 6) plots these excitation profiles per stage: early
    stages share one profile across classes, late stages become class-specific. Classes with
    no image get NaN rows.
    """
    import torch

    if values.dim() != 2 or labels.shape != values.shape[:1]:
        raise ProbeError(
            f"values must be [n, channel] and labels [n], got {tuple(values.shape)} and "
            f"{tuple(labels.shape)}"
        )
    out = torch.full((num_classes, values.shape[1]), float("nan"))
    for c in range(num_classes):
        rows = values[labels == c]
        if rows.shape[0]:
            out[c] = rows.float().mean(0)
    return out


def gate_specificity(values: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """How class-specific channel gates are: between-class over within-class spread.

    ``between``: mean over channels of the standard deviation of the class means; ``within``:
    mean over channels of the pooled within-class standard deviation; ``ratio`` their quotient
    (0: the gates ignore the class; large: they are set by it).
    """
    import torch

    classes = [c for c in labels.unique().tolist() if int((labels == c).sum()) > 0]
    if len(classes) < 2:
        raise ProbeError("gate_specificity needs images of at least two classes")
    v = values.float()
    means = torch.stack([v[labels == c].mean(0) for c in classes])
    within = torch.stack([((v[labels == c] - means[i]) ** 2).sum(0) for i, c in enumerate(classes)])
    within_sd = (within.sum(0) / max(1, v.shape[0] - len(classes))).sqrt()
    between_sd = means.std(0, unbiased=True)
    between, inner = float(between_sd.mean()), float(within_sd.mean())
    ratio = between / inner if inner > 0 else (0.0 if between == 0 else float("inf"))
    return {"between": between, "within": inner, "ratio": ratio}


def query_point_map(
    attention: torch.Tensor, feature_size: tuple[int, int], point: tuple[int, int]
) -> torch.Tensor:
    """Where one position attends in a non-local block: ``[batch, height, width]``.

    Args:
        attention: ``[batch, query, key]`` over the ``height * width`` positions (row-major).
        feature_size: ``(height, width)`` of the block's feature map.
        point: ``(row, col)`` of the query position on that feature map.
    """
    h, w = feature_size
    if attention.dim() != 3 or attention.shape[-1] != h * w or attention.shape[-2] != h * w:
        raise ProbeError(
            f"attention must be [batch, {h * w}, {h * w}] for a {h}x{w} map, got "
            f"{tuple(attention.shape)}"
        )
    row, col = point
    if not (0 <= row < h and 0 <= col < w):
        raise ProbeError(f"point {point} is outside the {h}x{w} feature map")
    return attention[:, row * w + col].reshape(-1, h, w)
