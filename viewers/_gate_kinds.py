"""Figures of the CNN gates that have no single map per image, and the gates figures of a
whole :class:`~probe.GateTrace`; they take data, never models.

* :func:`branch_gates_view`: how branch gates (selective kernel, split attention) split each
  block's weight between its branches: mean and spread over channels per block, and a
  channels x branches heatmap per shown block.
* :func:`channel_spatial_view`: channel-spatial gates (gather-excite with an extent,
  coordinate attention), one row per block: the channel mean over the image, the channels that
  vary most over the image, and the channel profile.
* :func:`gate_figures`: every figure ``probe render gates`` draws, from a ``GateTrace``
  (channel gates by :func:`~probe.viewers.channel_gates_view`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from probe._errors import ProbeError
from probe.viewers._channel_gates import channel_gates_view
from probe.viewers._gates import _colorbar, gate_maps
from probe.viewers._panels import cell_size, title_width
from probe.viewers._saliency import as_image, check_placement, draw_overlay
from probe.viewers._style import (
    FONT_SIZES,
    SEQUENTIAL_CMAP,
    as_array,
    categorical_colors,
    get_cmap,
    literal,
    make_norm,
    new_figure,
    styled,
)
from probe.viewers._width import sized

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

    from probe.capture._gates import Gate, GateTrace

__all__ = ["branch_gates_view", "channel_spatial_view", "gate_figures"]

DEFAULT_TOP_CHANNELS = 2
"""Channels drawn beside the channel mean of a channel-spatial gate (the most varying)."""


def _labels(weights: Mapping[str, np.ndarray], branches: Mapping[str, Sequence[str]] | None,
            ) -> dict[str, list[str]]:
    out = {}
    for name, w in weights.items():
        given = list((branches or {}).get(name, ()))
        if given and len(given) != w.shape[0]:
            raise ProbeError(
                f"branches[{name!r}] has {len(given)} labels for {w.shape[0]} branches: pass one "
                "label per branch"
            )
        out[name] = given or [f"branch {b}" for b in range(w.shape[0])]
    return out


@styled
@sized()
def branch_gates_view(
    weights: Mapping[str, Any],
    branches: Mapping[str, Sequence[str]] | None = None,
    *,
    detail: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """How branch gates split each block's output between its branches (SKNet, ResNeSt).

    Top: for every block of ``weights`` (one row each, first on top), the mean weight of each
    branch over the channels with its standard deviation as error bar (the means sum to 1).
    Below, one heatmap per block of ``detail``: the weight of every branch (rows) for every
    channel (columns), channels sorted by the first branch's weight, descending (so the heatmap
    reads as how many channels prefer which branch); one colour scale 0..1.

    Args:
        weights: block label -> ``[branch, channel]`` softmax weights of one image.
        branches: block label -> one label per branch (``"3x3"``, ``"3x3 dil 2 (5x5)"``,
            ``"radix 0"``); default ``"branch i"``.
        detail: the blocks that get a heatmap, in the order given (default: all).
        title: figure title.
    """
    from probe.analysis._gate_views import branch_channel_order

    if not weights:
        raise ProbeError("weights is empty: pass {block: [branch, channel] branch weights}")
    arrays = {k: as_array(v, f"weights[{k!r}]", 2, "[branch, channel]") for k, v in weights.items()}
    labels = _labels(arrays, branches)
    shown = list(arrays) if detail is None else list(detail)
    missing = [d for d in shown if d not in arrays]
    if missing:
        raise ProbeError(f"detail names {missing[0]!r}, which is not a block of weights")
    n_branch = max(w.shape[0] for w in arrays.values())
    same = len({tuple(v) for v in labels.values()}) == 1
    legend = next(iter(labels.values())) if same else [f"branch {b}" for b in range(n_branch)]
    colors = categorical_colors(n_branch)
    summary = 0.5 + 0.13 * n_branch * len(arrays)
    fig = new_figure((6.4, 1.2 + summary + 0.95 * len(shown)))
    axes = fig.subplots(1 + len(shown), 1, squeeze=False,
                        gridspec_kw={"height_ratios": [summary] + [0.95] * len(shown)})[:, 0]
    top = axes[0]
    ys = np.arange(len(arrays))
    step = 0.6 / n_branch
    for b in range(n_branch):
        rows = [(i, w[b]) for i, w in enumerate(arrays.values()) if b < w.shape[0]]
        y = np.array([i for i, _ in rows]) + (b - (n_branch - 1) / 2) * step
        mean = np.array([r.mean() for _, r in rows])
        sd = np.array([r.std() for _, r in rows])
        top.errorbar(mean, y, xerr=sd, fmt="o", color=colors[b], ms=4, lw=1.0, capsize=2,
                     label=literal(legend[b]))
    top.set_yticks(ys)
    top.set_yticklabels([literal(k) for k in arrays], fontsize=FONT_SIZES["small_tick"])
    top.set_ylim(len(arrays) - 0.5, -0.5)  # the first block on top
    top.set_xlim(-0.02, 1.02)
    top.set_xlabel("mean weight over channels (bar: \u00b1 sd)", fontsize=FONT_SIZES["label"])
    top.tick_params(axis="x", labelsize=FONT_SIZES["tick"])
    top.grid(axis="x", color="0.9", lw=0.6)
    top.set_axisbelow(True)
    top.legend(fontsize=FONT_SIZES["legend"], frameon=False, ncol=min(n_branch, 4),
               loc="lower left", bbox_to_anchor=(0, 1.0))
    norm = make_norm(np.zeros(1), False, vmin=0.0, vmax=1.0)
    for ax, name in zip(axes[1:], shown):
        w = arrays[name]
        order = branch_channel_order(_tensor(w)).numpy()
        ax.imshow(w[:, order], aspect="auto", cmap=get_cmap(SEQUENTIAL_CMAP), norm=norm,
                  interpolation="nearest")
        ax.set_yticks(range(w.shape[0]))
        ax.set_yticklabels([literal(t) for t in labels[name]], fontsize=FONT_SIZES["small_tick"])
        ax.set_xticks([])
        ax.set_xlabel(f"{w.shape[1]} channels, by weight of {literal(labels[name][0])}",
                      fontsize=FONT_SIZES["small_tick"], labelpad=2)
        ax.set_title(literal(name), fontsize=FONT_SIZES["label"], pad=2)
    if shown:
        _colorbar(fig, list(axes[1:]), norm, "branch weight")
    if title:
        fig.suptitle(title, fontsize=FONT_SIZES["suptitle"])
    return fig


def _tensor(array: np.ndarray) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))


@styled
@sized("draw fewer channels (top_channels=)")
def channel_spatial_view(
    image: Any,
    gates: Mapping[str, Any],
    *,
    top_channels: int = DEFAULT_TOP_CHANNELS,
    title: str | None = None,
    alpha: float = 0.6,
    image_size: tuple[int, int] | None = None,
) -> Figure:
    """Channel-spatial gates (gather-excite with an extent, coordinate attention), one row per
    block: the mean over channels over the image, the ``top_channels`` channels whose gate
    varies most over positions (one shared colour scale), and the channel profile (each
    channel's mean over positions, the band spanning its minimum to maximum).

    Maps are at the gated feature map's resolution and cover the whole image (each cell is the
    block's stride in pixels), upsampled bilinearly to the image as in :func:`gate_maps`.

    Args:
        image: RGB ``[H, W, 3]`` or ``[3, H, W]`` in ``0..1``.
        gates: block label -> ``[channel, h, w]`` gate of one image.
        top_channels: most varying channels drawn per block (0: the mean map and profile only).
        title: figure title.
        alpha: opacity of the maps.
        image_size: ``(height, width)`` to draw the image and maps at, as in
            :func:`gate_maps`.
    """
    from probe.analysis._gate_views import channel_mean_map, channel_profile, varying_channels

    img = as_image(image)
    size, _ = check_placement(img, image_size, None)
    if not gates:
        raise ProbeError("gates is empty: pass {block: [channel, h, w] gate}")
    if isinstance(top_channels, bool) or not isinstance(top_channels, int) or top_channels < 0:
        raise ProbeError(f"top_channels must be a non-negative integer, got {top_channels!r}")
    arrays = {k: as_array(v, f"gates[{k!r}]", 3, "[channel, h, w]") for k, v in gates.items()}
    k = min(top_channels, min(a.shape[0] for a in arrays.values()))
    cell_w, cell_h = cell_size(size or img.shape[:2], 2.1)  # wider for wide images, <= 4:1
    if cell_w < cell_h:  # a tall image: room for the titles and the colourbars
        names = ["channel mean", *(f"channel {a.shape[0] - 1}" for a in arrays.values())]
        cell_w = min(max(cell_w, title_width(names, FONT_SIZES["label"]) + 0.9), cell_h)
    # rows at least as tall as a square image's: the channel profile keeps its height
    fig = new_figure((cell_w * (k + 1) + 3.0, max(cell_h + 0.15, 2.25) * len(arrays)))
    rows = fig.subfigures(len(arrays), 1, squeeze=False)[:, 0]
    cmap = get_cmap(SEQUENTIAL_CMAP)
    for sub, (name, gate) in zip(rows, arrays.items()):
        t = _tensor(gate)[None]
        mean = channel_mean_map(t)[0].numpy()
        top = varying_channels(t[0], k)
        axes = sub.subplots(1, k + 2, squeeze=False,
                            gridspec_kw={"width_ratios": [1.0] * (k + 1) + [1.5 * 2.1 / cell_w]})[0]
        norm = make_norm(mean, False, zero_based=True)
        draw_overlay(axes[0], img, mean, norm=norm, cmap=cmap, alpha=alpha, size=size)
        axes[0].set_title("channel mean", fontsize=FONT_SIZES["label"], pad=3)
        _colorbar(sub, axes[0], norm, "gate", centred=cell_w < cell_h)
        if k:
            shared = make_norm(gate[top], False, zero_based=True)
            for ax, c in zip(axes[1 : k + 1], top):
                draw_overlay(ax, img, gate[c], norm=shared, cmap=cmap, alpha=alpha, size=size)
                ax.set_title(f"channel {c}", fontsize=FONT_SIZES["label"], pad=3)
            _colorbar(sub, list(axes[1 : k + 1]), shared, "gate", centred=cell_w < cell_h)
        _profile(axes[-1], gate, channel_profile(t)[0].numpy(), top, legend=sub is rows[0])
        sub.suptitle(literal(name), fontsize=FONT_SIZES["title"])
    if title:
        fig.suptitle(title, fontsize=FONT_SIZES["suptitle"])
    return fig


def _profile(ax: Any, gate: np.ndarray, mean: np.ndarray, marked: Sequence[int],
             legend: bool) -> None:
    """Each channel's mean gate over positions, with the band of its minimum and maximum."""
    c = np.arange(gate.shape[0])
    flat = gate.reshape(gate.shape[0], -1)
    ax.fill_between(c, flat.min(1), flat.max(1), color="0.8", lw=0, label="min..max over map")
    ax.plot(c, mean, color="black", lw=1.0, label="mean over map")
    if len(marked):
        ax.plot(list(marked), mean[list(marked)], "o", color="red", ms=4, label="drawn")
    ax.set_ylim(min(-0.02, float(flat.min())), max(1.02, float(flat.max())))
    ax.set_xlim(-0.5, gate.shape[0] - 0.5)
    ax.set_xlabel("channel", fontsize=FONT_SIZES["label"])
    ax.set_ylabel("gate", fontsize=FONT_SIZES["label"])
    ax.set_title("channel profile", fontsize=FONT_SIZES["label"], pad=3)
    ax.tick_params(labelsize=FONT_SIZES["tick"])
    if legend:
        ax.legend(fontsize=FONT_SIZES["small_tick"], frameon=False, loc="best")


#: gate kinds drawn as one map per block over the image (by :func:`gate_maps`)
MAP_KINDS = ("spatial", "context", "nonlocal", "bilinear")
_MAP_TEXT = {"spatial": ("spatial gate", "gate"), "context": ("context pooling", "weight"),
             "nonlocal": ("non-local", "attention"), "bilinear": ("bilinear (BAT)", "attention")}


def _query_point(cam: Any, size: tuple[int, int]) -> tuple[int, int]:
    """The cell of an ``h x w`` map under the peak of ``cam`` (resized bilinearly), or the
    centre cell without ``cam``."""
    h, w = size
    if cam is None:
        return h // 2, w // 2
    import torch
    import torch.nn.functional as F

    grid = torch.as_tensor(np.asarray(as_array(cam, "cam", 2, "[h, w]")), dtype=torch.float32)
    peak = F.interpolate(grid[None, None], size=(h, w), mode="bilinear")
    return divmod(int(peak.flatten().argmax()), w)


def _block_note(stage: int | None, shown: int, total: int) -> str:
    if stage is None:
        return "last block of each stage" if shown < total else "every block"
    return f"stage {stage}" + (f", {shown} of its {total} blocks" if shown < total else "")


def gate_figures(
    gate_trace: GateTrace,
    image: Any,
    *,
    cam: Any = None,
    cam_label: str = "GradCAM (last stage)",
    stage: int | None = None,
    item: int = 0,
    top_channels: int = DEFAULT_TOP_CHANNELS,
    max_blocks: int | None = None,
    channel_items: Sequence[int] | None = None,
    image_size: tuple[int, int] | None = None,
    width: float | str | None = None,
) -> dict[str, Figure]:
    """Every gate figure of one image of a :class:`~probe.GateTrace` (what ``probe render
    gates`` writes).

    * ``"maps"``: :func:`gate_maps` of the spatial gates (CBAM), global-context pooling maps,
      and where one query attends in non-local and bilinear (BAT, groups averaged:
      :func:`~probe.analysis._gate_views.bilinear_query_map`) blocks, then ``cam``; ``"cam"``
      instead when the shown blocks have no such map (``cam`` alone). The query is the
      feature-map cell under the peak of ``cam`` (resized bilinearly to the block's map), or
      the centre cell without ``cam``; a red cross marks it.
    * ``"branch"``: :func:`branch_gates_view` of the branch gates (summary of every block of
      the stage, or of the model without ``stage``; heatmaps of the shown blocks).
    * ``"channel_spatial"``: :func:`channel_spatial_view` of the shown channel-spatial gates.
    * ``"channel"``: :func:`channel_gates_view` of the channel gates (SE, ECA, CBAM's channel
      part) of ``channel_items`` (default ``item`` alone): the summary of every block of the
      stage (or of the model without ``stage``), the sorted factors of the shown blocks.
      (:func:`channel_profiles_view` draws them per class from many labelled images.)

    ``width``: every figure at that width (inches, ``"single"``, ``"double"``; each viewer's
    ``width=``).

    Which blocks are shown: without ``stage``, the last block of every stage, per kind; with
    ``stage`` (negative counts from the last stage with gates), every block of that stage,
    thinned evenly to ``max_blocks`` (default 6) per kind
    (:func:`~probe.analysis._gate_views.pick_blocks`).

    Args:
        gate_trace: from :func:`probe.trace_gates`.
        image: RGB ``[H, W, 3]`` or ``[3, H, W]`` in ``0..1``, the image of ``item``.
        cam: ``[h, w]`` map drawn last (GradCAM, ``probe.attribute(...).as_grid()[item]``).
        cam_label: panel title of ``cam``.
        stage: show this stage's blocks only.
        item: batch item drawn.
        top_channels: most varying channels per channel-spatial block.
        max_blocks: most blocks of one kind shown for one stage.
        channel_items: the batch items whose channel gates are drawn together (their spread
            over the images is what shows which channels switch with the input).
        image_size: ``(height, width)`` of the original image when ``image`` is the model's
            input resized from another aspect ratio: the maps are drawn at its proportions.

    Raises:
        ProbeError: no such stage or item, or nothing to draw.
    """
    from probe.analysis._gate_views import (
        MAX_BLOCKS,
        bilinear_query_map,
        pick_blocks,
        resolve_stage,
    )
    from probe.analysis._gates import query_point_map

    img = as_image(image)
    size, _ = check_placement(img, image_size, None)
    drawn_h, drawn_w = size or img.shape[:2]
    chosen = resolve_stage(gate_trace.stages, stage)
    batch = gate_trace.batch_size

    def index(i: Any) -> bool:  # Python or numpy integers, not bools
        return not isinstance(i, (bool, np.bool_)) and isinstance(i, (int, np.integer))

    if not index(item) or not 0 <= item < batch:
        raise ProbeError(f"item must be an image index in 0..{batch - 1}, got {item!r}")
    item = int(item)
    if channel_items is None:
        items = [item]
    elif hasattr(channel_items, "__array__"):  # numpy arrays, tensors
        items = list(np.asarray(channel_items).ravel())
    else:
        items = list(channel_items)
    bad = [i for i in items if not index(i) or not 0 <= i < batch]
    if bad or not items or len(set(map(int, items))) != len(items):
        raise ProbeError(f"channel_items must be distinct image indices in 0..{batch - 1}, "
                         f"got {channel_items!r}")
    items = [int(i) for i in items]
    if max_blocks is not None and (not index(max_blocks) or max_blocks < 1):
        raise ProbeError(f"max_blocks must be a positive integer, got {max_blocks!r}")
    limit = MAX_BLOCKS if max_blocks is None else int(max_blocks)

    def pick(kind: str) -> tuple[list[Gate], list[Gate]]:
        mine = [g for g in gate_trace.gates if g.kind == kind]
        pool = mine if chosen is None else [g for g in mine if g.stage == chosen]
        keep = pick_blocks([g.stage for g in mine], chosen, limit)
        return [mine[i] for i in keep], pool

    model = literal(gate_trace.model_name)
    figures: dict[str, Figure] = {}
    shown = {id(g) for kind in MAP_KINDS for g in pick(kind)[0]}
    drawn = [g for g in gate_trace.gates if id(g) in shown]
    twice = {(g.kind, g.stage) for g in drawn
             if sum((o.kind, o.stage) == (g.kind, g.stage) for o in drawn) > 1}
    maps: dict[str, Any] = {}
    units: dict[str, str] = {}
    marks: dict[str, tuple[float, float]] = {}
    for g in drawn:
        text, unit = _MAP_TEXT[g.kind]
        # several blocks of one stage: named by module, on a line of its own
        label = (f"{literal(g.name)}\n{text}" if (g.kind, g.stage) in twice
                 else f"stage {g.stage} {text}")
        if g.kind in ("nonlocal", "bilinear"):
            row, col = _query_point(cam, g.feature_size)
            fn = query_point_map if g.kind == "nonlocal" else bilinear_query_map
            value = fn(g.values, g.feature_size, (row, col))[item]
            label += f"\nquery ({row}, {col})"
            h, w = g.feature_size
            marks[label] = ((col + 0.5) * drawn_w / w, (row + 0.5) * drawn_h / h)
        else:
            value = g.values[item]
        maps[label], units[label] = value, unit
    counts = ", ".join(f"{len(gate_trace.select(k))} {k}" for k in gate_trace.kinds)
    where = "" if chosen is None else f", stage {chosen}"
    if maps or cam is not None:
        what = "attention maps" if maps else ""
        if cam is not None:
            maps[literal(cam_label)] = cam
            what = f"{what} and {cam_label.split(' (')[0]}" if what else cam_label
        note = "" if drawn else "; none is a map over the image"
        figures["maps" if drawn else "cam"] = gate_maps(
            img, maps, units=units, marks=marks, image_size=size,
            title=f"{model}: {literal(what)}{where}\n({counts} gates captured{note})",
            width=width,
        )
    branch, pool = pick("branch")
    if branch:
        key = {id(g): f"stage {g.stage} \u00b7 {g.name}" for g in pool}
        figures["branch"] = branch_gates_view(
            {key[id(g)]: g.values[item] for g in pool},
            {key[id(g)]: g.branches for g in pool},
            detail=[key[id(g)] for g in branch],
            title=f"{model}: how branch gates split each block between its branches\n"
            f"(heatmaps: {_block_note(chosen, len(branch), len(pool))})", width=width,
        )
    mixed, pool = pick("channel_spatial")
    if mixed:
        figures["channel_spatial"] = channel_spatial_view(
            img,
            {f"stage {g.stage} \u00b7 {g.name} ({g.module_type}, {g.feature_size[0]}x"
             f"{g.feature_size[1]} map, stride {g.stride[0]:g})": g.values[item] for g in mixed},
            top_channels=top_channels, image_size=size,
            title=f"{model}: channel-spatial gates ({_block_note(chosen, len(mixed), len(pool))})",
            width=width,
        )
    channel, pool = pick("channel")
    if channel:
        key = {id(g): f"stage {g.stage} \u00b7 {g.name}" for g in pool}
        n, types = len(items), ", ".join(sorted({g.module_type for g in pool}))
        figures["channel"] = channel_gates_view(
            {key[id(g)]: g.values[items] for g in pool}, detail=[key[id(g)] for g in channel],
            title=f"{model}: channel gates ({literal(types)}), the factor multiplying each "
            f"channel; {'one image' if n == 1 else f'{n} images'}\n"
            f"(detail: {_block_note(chosen, len(channel), len(pool))})", width=width,
        )
    if not figures:
        raise ProbeError(
            f"nothing to draw for {gate_trace.model_name}{where}: its gates are {counts}"
        )
    return figures
