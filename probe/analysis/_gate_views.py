"""What the gate figures draw, computed from captured gate values (pure functions).

The figures of :mod:`probe.viewers` show CNN gates that have no single map per image: branch
gates (selective kernel, split attention: a softmax over branches per channel), channel-spatial
gates (gather-excite with an extent, coordinate attention: one factor per channel and
position) and bilinear non-local attention (BAT: one matrix per channel group). These functions
reduce the captured values to what is drawn, so the data of a figure can be checked exactly
against the capture; and :func:`resolve_stage` / :func:`pick_blocks` choose which blocks a
figure shows when a model has many.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch

__all__ = [
    "MAX_BLOCKS",
    "bilinear_query_map",
    "branch_channel_order",
    "branch_stats",
    "channel_mean_map",
    "channel_profile",
    "pick_blocks",
    "resolve_stage",
    "varying_channels",
]

MAX_BLOCKS = 6
"""At most this many blocks of one kind get a panel when one stage is picked."""


def _check(values: torch.Tensor, dims: int, doc: str) -> None:
    if not hasattr(values, "dim") or values.dim() != dims:
        shape = tuple(values.shape) if hasattr(values, "shape") else type(values).__name__
        raise ProbeError(f"gate values must be {doc}, got {shape}")


def channel_mean_map(values: torch.Tensor) -> torch.Tensor:
    """The mean over channels of channel-spatial gates: ``[batch, channel, H, W]`` ->
    ``[batch, H, W]`` (float32, at the gated feature map's resolution)."""
    _check(values, 4, "[batch, channel, height, width]")
    return values.float().mean(1)


def channel_profile(values: torch.Tensor) -> torch.Tensor:
    """The mean over positions of channel-spatial gates: ``[batch, channel, H, W]`` ->
    ``[batch, channel]`` (each channel's average factor; float32)."""
    _check(values, 4, "[batch, channel, height, width]")
    return values.float().mean((2, 3))


def varying_channels(values: torch.Tensor, k: int) -> list[int]:
    """The ``k`` channels whose gate varies most over positions, most varying first.

    Args:
        values: ``[channel, H, W]`` channel-spatial gates of one image.
        k: how many (fewer when there are fewer channels; 0 gives none).

    Returns:
        Channel indices ordered by the standard deviation over positions (population, float32),
        descending; equal deviations keep the lower index first.
    """
    import torch

    _check(values, 3, "[channel, height, width]")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ProbeError(f"k must be a non-negative integer, got {k!r}")
    spread = values.float().flatten(1).std(1, unbiased=False)
    order = torch.sort(-spread, stable=True).indices
    return [int(i) for i in order[:k]]


def branch_stats(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and spread over channels of branch gates: ``[batch, branch, channel]`` -> two
    ``[batch, branch]`` tensors, the mean weight of each branch and its standard deviation over
    the channels (population; float32). The means sum to 1 over ``branch``."""
    _check(values, 3, "[batch, branch, channel]")
    v = values.float()
    return v.mean(2), v.std(2, unbiased=False)


def branch_channel_order(values: torch.Tensor) -> torch.Tensor:
    """Channel order of a branch heatmap: ``[branch, channel]`` -> ``[channel]`` indices sorted
    by the weight of the first branch, descending (stable: ties keep channel order)."""
    import torch

    _check(values, 2, "[branch, channel]")
    return torch.sort(-values[0].float(), stable=True).indices


def bilinear_query_map(
    values: torch.Tensor, feature_size: tuple[int, int], point: tuple[int, int]
) -> torch.Tensor:
    """Where one position attends in a bilinear non-local block, groups averaged.

    Args:
        values: ``[batch, group, HW, HW]`` BAT attention (rows sum to 1).
        feature_size: ``(H, W)`` of the block's feature map.
        point: ``(row, col)`` of the query position.

    Returns:
        ``[batch, H, W]``: the query's row, averaged over the channel groups (float32; sums to
        1, as every group's row does).
    """
    h, w = feature_size
    _check(values, 4, f"[batch, group, {h * w}, {h * w}]")
    if values.shape[-1] != h * w or values.shape[-2] != h * w:
        raise ProbeError(
            f"bilinear attention must be [batch, group, {h * w}, {h * w}] for a {h}x{w} map, "
            f"got {tuple(values.shape)}"
        )
    row, col = point
    if not (0 <= row < h and 0 <= col < w):
        raise ProbeError(f"point {point} is outside the {h}x{w} feature map")
    return values[:, :, row * w + col].float().mean(1).reshape(-1, h, w)


def resolve_stage(stages: Sequence[int], stage: int | None) -> int | None:
    """The stage that ``stage`` names among ``stages`` (the stages holding gates, ascending);
    negative values count from the last. ``None`` stays ``None``.

    Raises:
        ProbeError: no such stage (the message lists those with gates).
    """
    if stage is None:
        return None
    known = sorted(set(stages))
    if isinstance(stage, bool) or not isinstance(stage, int) or not (
        stage in known or -len(known) <= stage < 0
    ):
        raise ProbeError(f"stage {stage!r} has no gates: stages with gates are {known} (or "
                         f"{-len(known)}..-1, counting from the last)")
    return stage if stage >= 0 else known[stage]


def pick_blocks(stages: Sequence[int], stage: int | None = None,
                limit: int = MAX_BLOCKS) -> list[int]:
    """Which of the blocks (gates of one kind, in model order) a figure shows.

    Args:
        stages: the stage of each block, in model order.
        stage: ``None``: the last block of every stage (one per stage, model order); a stage
            (as :func:`resolve_stage` returns it): every block of that stage, evenly thinned to
            ``limit`` (first and last kept) when there are more.
        limit: most blocks shown for one stage.

    Returns:
        Indices into ``stages``, ascending (empty when ``stage`` has no block of this kind).
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ProbeError(f"limit must be a positive integer, got {limit!r}")
    if stage is None:
        last = {s: i for i, s in enumerate(stages)}
        return sorted(last.values())
    mine = [i for i, s in enumerate(stages) if s == stage]
    if len(mine) <= limit:
        return mine
    if limit == 1:
        return [mine[-1]]
    step = (len(mine) - 1) / (limit - 1)
    return [mine[round(j * step)] for j in range(limit)]
