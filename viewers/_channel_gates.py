"""The figure of plain channel gates (squeeze-and-excitation, ECA, CBAM's channel attention):
one factor per channel per image, drawn by :func:`channel_gates_view`; it takes arrays, never
models.

Top, every block in one compact summary: the distribution of its factors (over channels and
images: 10-90th percentile line, 25-75th percentile bar, median tick, mean dot) and, on the
right, the mean and the fractions of factors near 0 and near 1. Below, per shown block, the
channels sorted by their factor; with several images the band spans each channel's minimum to
maximum over the images, and a second panel plots each channel's standard deviation over the
images against its mean: channels the gate switches with the input lie high, channels it
keeps on (or off) whatever the input lie at the bottom right (left). The dotted arc is the
largest standard deviation a factor in 0..1 can have at that mean (a channel switched fully
on for some images and fully off for the others).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from probe._errors import ProbeError
from probe.viewers._style import FONT_SIZES, as_array, literal, new_figure, styled
from probe.viewers._width import sized

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from probe.analysis._channel_gates import ChannelGateStats

__all__ = ["channel_gates_view"]

_BAND = "#d9d9d9"  # grey of the near-0 / near-1 zones and the min..max band
_LINE = "#1f4e79"  # the factors


def _stats(values: np.ndarray) -> ChannelGateStats:
    import torch

    from probe.analysis._channel_gates import channel_gate_stats

    return channel_gate_stats(torch.from_numpy(np.ascontiguousarray(values)))


def _limits(stats: Sequence[ChannelGateStats]) -> tuple[float, float]:
    """0..1, widened to hold every factor (gates that are not sigmoids can leave 0..1)."""
    lo = min(float(s.low.min()) for s in stats)
    hi = max(float(s.high.max()) for s in stats)
    return min(0.0, lo) - 0.02, max(1.0, hi) + 0.02


def _zones(ax: Axes, near: float, lo: float, hi: float, axis: str = "y") -> None:
    """Shade the near-0 and near-1 zones."""
    span = ax.axhspan if axis == "y" else ax.axvspan
    span(lo, near, color=_BAND, alpha=0.45, lw=0, zorder=0)
    span(1 - near, hi, color=_BAND, alpha=0.45, lw=0, zorder=0)


def _summary(ax: Axes, names: list[str], stats: list[ChannelGateStats], near: float,
             limits: tuple[float, float]) -> None:
    ys = np.arange(len(names))
    q = np.stack([s.quartiles.numpy() for s in stats])  # [block, 5]
    _zones(ax, near, *limits, axis="x")
    ax.hlines(ys, q[:, 0], q[:, 4], color=_LINE, lw=1.0, zorder=2)
    ax.hlines(ys, q[:, 1], q[:, 3], color=_LINE, lw=5.0, zorder=2)
    ax.plot(q[:, 2], ys, "|", color="white", ms=6, mew=1.5, zorder=3)
    ax.plot([s.overall for s in stats], ys, "o", mfc="white", mec="black", ms=4.5, zorder=4,
            gid="mean")
    ax.set_xlim(*limits)
    ax.set_ylim(len(names) - 0.5, -0.5)  # the first block on top
    ax.set_yticks(ys, [literal(n) for n in names], fontsize=FONT_SIZES["small_tick"])
    ax.set_xlabel("gate factor of every channel and image\n(line: 10-90th percentile, bar: "
                  f"25-75th, tick: median, dot: mean; grey: within {near:g} of 0 or 1)",
                  fontsize=FONT_SIZES["label"] - 1)
    ax.tick_params(axis="x", labelsize=FONT_SIZES["tick"])
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(ys, [f"mean {s.overall:.2f} \u00b7 <{near:g}: {s.near_zero:.0%} \u00b7 "
                          f">{1 - near:g}: {s.near_one:.0%}" for s in stats],
                     fontsize=FONT_SIZES["small_tick"])
    right.tick_params(length=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
        right.spines[side].set_visible(False)


def _profile(ax: Axes, s: ChannelGateStats, near: float, limits: tuple[float, float]) -> None:
    """Channels sorted by mean factor: the mean (one image: the factor), the min..max band."""
    order = s.order.numpy()
    x = np.arange(len(order))
    _zones(ax, near, *limits)
    if s.images > 1:
        ax.fill_between(x, s.low.numpy()[order], s.high.numpy()[order], step="mid",
                        color="#9ecae1", lw=0, label="min..max over images", zorder=1)
    ax.plot(x, s.mean.numpy()[order], drawstyle="steps-mid", color=_LINE, lw=1.2, zorder=2,
            gid="factors", label="mean over images" if s.images > 1 else "factor")
    ax.axhline(s.overall, color="black", lw=0.8, ls="--", zorder=2, label="block mean")
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set_ylim(*limits)
    ax.set_xlabel(f"{len(order)} channels, highest factor first", fontsize=FONT_SIZES["label"] - 1)
    ax.set_ylabel("gate factor", fontsize=FONT_SIZES["label"] - 1)
    ax.tick_params(labelsize=FONT_SIZES["tick"])


def _spread(ax: Axes, s: ChannelGateStats, limits: tuple[float, float]) -> None:
    """Each channel's standard deviation over the images against its mean."""
    m = np.linspace(0, 1, 101)
    ax.plot(m, np.sqrt(m * (1 - m)), ":", color="0.5", lw=0.9, zorder=1)
    ax.plot(s.mean.numpy(), s.sd.numpy(), "o", color=_LINE, ms=2.6, alpha=0.75, mew=0, zorder=2,
            gid="spread")
    ax.set_xlim(*limits)
    ax.set_ylim(-0.01, 0.52)
    ax.set_xlabel("mean factor over images", fontsize=FONT_SIZES["label"] - 1)
    ax.set_title("per channel (arc: on/off switch)", fontsize=FONT_SIZES["label"] - 1, pad=3)
    ax.set_ylabel("sd over images", fontsize=FONT_SIZES["label"] - 1)
    ax.tick_params(labelsize=FONT_SIZES["tick"])


@styled
@sized()
def channel_gates_view(
    gates: Mapping[str, Any],
    *,
    detail: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """What plain channel gates do (SE, ECA, CBAM's channel attention; Hu et al. 2018).

    Args:
        gates: block label -> ``[image, channel]`` factors of one block (``Gate.values``, one
            or more images; ``[channel]`` for one image). All blocks must hold the same images.
        detail: the blocks drawn in detail below the summary, in the order given (default:
            all); the summary shows every block of ``gates``.
        title: figure title.

    Returns:
        The ``Figure``. Its first axes is the summary; then per detail block the sorted
        factors (and, for several images, the spread panel). The plotted values are those of
        :func:`probe.analysis._channel_gates.channel_gate_stats` (the sorted line's ``gid`` is
        ``"factors"``, the spread points' ``"spread"``, the summary's means ``"mean"``).
    """
    from probe.analysis._channel_gates import NEAR

    if not gates:
        raise ProbeError("gates is empty: pass {block: [image, channel] channel gates}")
    arrays = {k: as_array(v, f"gates[{k!r}]", (1, 2), "[image, channel] or [channel]")
              for k, v in gates.items()}
    arrays = {k: (v[None] if v.ndim == 1 else v) for k, v in arrays.items()}
    n_images = {v.shape[0] for v in arrays.values()}
    if len(n_images) != 1:
        raise ProbeError(
            f"the blocks hold different numbers of images ({sorted(n_images)}): pass the gates "
            "of the same images for every block"
        )
    shown = list(arrays) if detail is None else list(detail)
    missing = [d for d in shown if d not in arrays]
    if missing:
        raise ProbeError(f"detail names {missing[0]!r}, which is not a block of gates")
    stats = {k: _stats(v) for k, v in arrays.items()}
    limits = _limits(list(stats.values()))
    several = n_images.pop() > 1
    per_row = 1 if several else 2
    rows = -(-len(shown) // per_row)
    summary_h = 0.55 + 0.24 * len(arrays)
    fig = new_figure((7.0, 0.5 + summary_h + 1.75 * rows + (0.3 if title else 0.0)))
    grid = fig.add_gridspec(1 + rows, 2, height_ratios=[summary_h] + [1.75] * rows,
                            width_ratios=[1.6, 1.0] if several else [1.0, 1.0])
    _summary(fig.add_subplot(grid[0, :]), list(arrays), list(stats.values()), NEAR, limits)
    ax = None
    for i, name in enumerate(shown):
        r, c = divmod(i, per_row)
        ax = fig.add_subplot(grid[1 + r, c])
        _profile(ax, stats[name], NEAR, limits)
        ax.set_title(literal(name), fontsize=FONT_SIZES["label"], pad=3)
        if several:
            _spread(fig.add_subplot(grid[1 + r, 1]), stats[name], limits)

    if ax is not None:  # under the panels, clear of the data
        handles, texts = ax.get_legend_handles_labels()
        fig.legend(handles, texts, fontsize=FONT_SIZES["small_tick"], frameon=False,
                   loc="outside lower center", ncol=len(texts))
    if title:
        fig.suptitle(title, fontsize=FONT_SIZES["suptitle"])
    return fig
