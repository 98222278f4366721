"""What the channel-gate figure draws, computed from captured channel gates (pure functions).

A channel gate (squeeze-and-excitation, ECA, CBAM's channel attention) multiplies every
channel of a block's feature map by one factor per image, ``values [image, channel]``. For one
image the question is how the gate spreads over the channels: how many it nearly shuts off,
how many it passes almost unchanged. For several images it is which channels the gate switches
with the input and which it keeps the same whatever the input (always on, always off): the
spread of each channel's factor across the images. :func:`channel_gate_stats` reduces the
captured values to exactly what the figure draws, so the figure can be checked against the
capture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch

__all__ = ["NEAR", "ChannelGateStats", "channel_gate_stats"]

NEAR = 0.1
"""A factor below ``NEAR`` counts as near 0 (channel nearly shut off), above ``1 - NEAR`` as
near 1 (channel passed almost unchanged)."""


@dataclass(frozen=True)
class ChannelGateStats:
    """Channel gates of one block over ``N`` images, reduced for drawing (float32 tensors).

    Attributes:
        order: ``[channel]`` channel indices by mean factor over the images, highest first
            (stable: ties keep the lower index first).
        mean: ``[channel]`` each channel's mean factor over the images.
        sd: ``[channel]`` each channel's standard deviation over the images (population: 0 for
            one image).
        low, high: ``[channel]`` each channel's minimum and maximum over the images.
        overall: the mean factor over all channels and images.
        near_zero, near_one: the fraction of (image, channel) factors below :data:`NEAR` and
            above ``1 - NEAR``.
        quartiles: ``[5]`` the 10th, 25th, 50th, 75th and 90th percentiles of all factors
            (linear interpolation, as ``torch.quantile``).
        images: ``N``.
    """

    order: torch.Tensor
    mean: torch.Tensor
    sd: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor
    overall: float
    near_zero: float
    near_one: float
    quartiles: torch.Tensor
    images: int


def channel_gate_stats(values: torch.Tensor) -> ChannelGateStats:
    """Per-channel and whole-block summaries of one block's channel gates.

    Args:
        values: ``[image, channel]`` factors of one block (``Gate.values`` of a ``channel``
            gate), or ``[channel]`` for one image.

    Returns:
        A :class:`ChannelGateStats`.
    """
    import torch

    if not hasattr(values, "dim") or values.dim() not in (1, 2) or values.numel() == 0:
        shape = tuple(values.shape) if hasattr(values, "shape") else type(values).__name__
        raise ProbeError(f"channel gates must be [image, channel] or [channel], got {shape}")
    v = values.detach().float().cpu()
    v = v[None] if v.dim() == 1 else v
    if not bool(torch.isfinite(v).all()):
        raise ProbeError("channel gates hold NaN or infinite values: check the model's dtype")
    mean = v.mean(0)
    flat = v.flatten()
    qs = torch.quantile(flat, torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9]))
    return ChannelGateStats(
        order=torch.sort(-mean, stable=True).indices,
        mean=mean,
        sd=v.std(0, unbiased=False),
        low=v.min(0).values,
        high=v.max(0).values,
        overall=float(flat.mean()),
        near_zero=float((flat < NEAR).float().mean()),
        near_one=float((flat > 1 - NEAR).float().mean()),
        quartiles=qs,
        images=int(v.shape[0]),
    )
