"""Figures of CNN attention gates and DETR object queries: they take arrays, never models.

* :func:`gate_maps`: the image, then one overlay per map (CBAM spatial gates per stage,
  GradCAM, ...), side by side.
* :func:`channel_profiles_view`: mean channel gate per class, one panel per stage (the
  SENet paper's excitation profiles).
* :func:`query_point_view`: where one or more positions of a non-local block attend.
* :func:`detr_queries_view`: each object query's cross-attention over the image, with its
  predicted box and class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from probe._errors import ProbeError
from probe.viewers._bars import span_panels
from probe.viewers._panels import cell_size, title_width
from probe.viewers._width import MIN_PANEL_IN, columns_for_width, sized, wrap_grid, wrap_text
from probe.viewers._saliency import as_image, check_placement, draw_image, draw_overlay
from probe.viewers._style import (
    FONT_SIZES,
    SEQUENTIAL_CMAP,
    as_array,
    categorical_colors,
    get_cmap,
    make_norm,
    new_figure,
    styled,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["channel_profiles_view", "detr_queries_view", "gate_maps", "query_point_view"]


def _colorbar(fig: Any, ax: Any, norm: Any, label: str, centred: bool = False) -> None:
    """A colourbar beside ``ax`` (one axes or several), exactly as tall as the images drawn
    in ``ax`` (:func:`span_panels`), not the layout's 20:1 bar; ``centred``: the image stays
    in the middle of its box (a tall image, whose centred title would otherwise run over the
    colourbar), not against the bar."""
    from matplotlib.cm import ScalarMappable

    # pad is a fraction of the parent's width: beside a row of panels (about the figure's
    # width) at most 0.1 in, not 0.02 of a 15 in row
    row_in = fig.get_figure(root=True).get_figwidth()
    pad = 0.02 if not isinstance(ax, (list, tuple)) else min(0.02, 0.1 / row_in)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=get_cmap(SEQUENTIAL_CMAP)), ax=ax,
                       fraction=0.046, pad=pad, **({"panchor": False} if centred else {}))
    span_panels(bar, ax)
    bar.set_label(label, fontsize=FONT_SIZES["label"])
    bar.ax.tick_params(labelsize=FONT_SIZES["label"] - 1)


@styled
@sized()
def gate_maps(
    image: Any,
    maps: Mapping[str, Any],
    *,
    units: Mapping[str, str] | None = None,
    title: str | None = None,
    alpha: float = 0.6,
    columns: int = 6,
    marks: Mapping[str, tuple[float, float]] | None = None,
    image_size: tuple[int, int] | None = None,
    width: float | None = None,
) -> Figure:
    """The image, then each map of ``maps`` over it (upsampled bilinearly), side by side
    (in rows of ``columns`` panels when there are more).

    Args:
        image: RGB ``[H, W, 3]`` or ``[3, H, W]`` in ``0..1``.
        maps: panel title -> ``[h, w]`` map (any resolution; e.g. ``"stage 3 spatial gate"``,
            ``"GradCAM"``). Each panel has its own colour scale and colorbar.
        units: panel title -> colorbar label (default ``"gate"`` for titles containing
            "gate", else ``"score"``).
        title: figure title.
        alpha: opacity of the maps.
        columns: most panels (the image included) per row.
        marks: panel title -> ``(x, y)`` in image pixels (of ``image_size`` when given), marked
            with a red cross (e.g. the query of a non-local map).
        image_size: ``(height, width)`` to draw at, when ``image`` is the model's input resized
            from an image of another aspect ratio: image and maps are stretched back to it
            (as :func:`saliency_overlay`'s). Default: the image's own size.
        width: figure width in inches, or ``"single"`` / ``"double"``: as many panels per
            row as fit at 1.8 in each with its colourbar (at most ``columns``), sized to the
            width; fonts unchanged. Default: 2.3 in per panel.
    """
    img = as_image(image)
    size, _ = check_placement(img, image_size, None)
    H, W = size or img.shape[:2]
    if not maps:
        raise ProbeError("maps is empty: pass at least one {title: [h, w] map}")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 2:
        raise ProbeError(f"columns must be an integer >= 2, got {columns!r}")
    arrays = {k: as_array(v, f"maps[{k!r}]", 2, "[h, w]") for k, v in maps.items()}
    n = len(arrays) + 1
    cell_w, cell_h = cell_size((H, W), 2.3)  # wider for wide images, at most 4:1
    if cell_w < cell_h:  # a tall image: room for the title and the colourbar beside it
        cell_w = min(max(cell_w, title_width(["input", *arrays], FONT_SIZES["label"]) + 0.8),
                     cell_h)
    if width is not None:  # each panel: its title's width at least, and a colourbar (0.8 in)
        least = max(MIN_PANEL_IN, title_width(["input", *arrays], FONT_SIZES["label"]) + 0.1)
        columns = columns_for_width(width, least + 0.8, most=columns)
    rows, cols = wrap_grid(n, columns)
    if width is not None:  # rows as tall as their images (0.8 in of a panel is its colourbar)
        cell_w = width / cols
        cell_h = min((cell_w - 0.8) * min(max(H / W, 0.25), 4.0) + 0.5, cell_h)
    if title:  # wrapped to the figure (a long caption over two panels ran off both edges)
        title = "\n".join(wrap_text(line, FONT_SIZES["suptitle"], (cell_w * cols - 0.2) * 72)
                          for line in str(title).split("\n"))
    extra = 0.2 * max(title.count("\n") - 1, 0) if title else 0.0  # lines past the second
    fig = new_figure((cell_w * cols,
                      (cell_h + 0.3) * rows + (0.3 if title and rows > 1 else 0) + extra))
    grid = fig.subplots(rows, cols, squeeze=False)
    for ax in grid.flat[n:]:
        ax.remove()
    axes = grid.flat[:n]
    draw_image(axes[0], img, "input", size)
    for ax, (name, heat) in zip(axes[1:], arrays.items()):
        norm = make_norm(heat, False, zero_based=True)
        draw_overlay(ax, img, heat, norm=norm, cmap=get_cmap(SEQUENTIAL_CMAP), alpha=alpha,
                     size=size)
        ax.set_title(name, fontsize=FONT_SIZES["label"], pad=3)
        if marks and name in marks:
            x, y = marks[name]
            ax.plot([x], [y], marker="x", color="red", ms=8, mew=2)
        label = (units or {}).get(name, "gate" if "gate" in name.lower() else "score")
        _colorbar(fig, ax, norm, label, centred=cell_w < cell_h)
    if title:
        fig.suptitle(title, fontsize=FONT_SIZES["suptitle"])
    return fig


@styled
@sized()
def channel_profiles_view(
    profiles: Mapping[str, Any],
    class_names: Sequence[str],
    *,
    specificity: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Figure:
    """Mean channel gate per class, one panel per stage (Hu et al. 2018, Fig. 6).

    Args:
        profiles: panel title (e.g. ``"stage 0"``) -> ``[class, channel]`` mean gates.
        class_names: one name per class row.
        specificity: panel title -> between/within-class ratio, shown in the panel title.
        title: figure title.
    """
    if not profiles:
        raise ProbeError("profiles is empty: pass {stage: [class, channel] mean gates}")
    arrays = {
        k: as_array(v, f"profiles[{k!r}]", 2, "[class, channel]") for k, v in profiles.items()}
    for k, v in arrays.items():
        if v.shape[0] != len(class_names):
            raise ProbeError(
                f"profiles[{k!r}] has {v.shape[0]} class rows but {len(class_names)} class names"
            )
    n = len(arrays)
    fig = new_figure((3.2 * n, 2.6))
    axes = fig.subplots(1, n, squeeze=False)[0]
    colors = categorical_colors(len(class_names))
    for ax, (name, prof) in zip(axes, arrays.items()):
        for row, cls, color in zip(prof, class_names, colors):
            ax.plot(np.arange(prof.shape[1]), row, color=color, lw=1.0, label=cls)
        label = name
        if specificity and name in specificity:
            label += f"  (between/within {specificity[name]:.2f})"
        ax.set_title(label, fontsize=FONT_SIZES["label"])
        ax.set_xlabel("channel", fontsize=FONT_SIZES["label"])
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=FONT_SIZES["label"] - 1)
    axes[0].set_ylabel("mean gate", fontsize=FONT_SIZES["label"])
    axes[-1].legend(fontsize=FONT_SIZES["label"] - 1, frameon=False, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=FONT_SIZES["suptitle"])
    return fig


@styled
@sized()
def query_point_view(
    image: Any,
    attention_map: Any,
    point: tuple[int, int] | Sequence[tuple[int, int]],
    *,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    alpha: float = 0.6,
    image_size: tuple[int, int] | None = None,
    columns: int = 4,
    width: float | None = None,
) -> Figure:
    """Where query positions of a non-local block attend, over the image (Wang et al. 2018).

    Args:
        image: RGB ``[H, W, 3]`` or ``[3, H, W]`` in ``0..1``.
        attention_map: ``[h, w]`` attention of one query over the feature map (sums to 1), or
            ``[query, h, w]`` for several queries, drawn side by side on one shared colour
            scale (so their weights compare).
        point: ``(row, col)`` of the query on the ``h x w`` feature map (marked with a cross),
            or one ``(row, col)`` per query.
        labels: panel title of each query (default ``"query (row, col)"``).
        title: figure title.
        alpha: opacity of the maps.
        image_size: ``(height, width)`` to draw at, when ``image`` is the model's input resized
            from an image of another aspect ratio: the image, the maps and the crosses are
            stretched back to it (as :func:`gate_maps`'s). Default: the image's own size.
        columns: most panels (the image included) per row; more queries wrap to further
            rows.
        width: figure width in inches, or ``"single"`` / ``"double"``: as many panels per
            row as fit at 1 in each (at most ``columns``), sized to the width; fonts unchanged.
            Default: 2.5 in per panel.
    """
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 2:
        raise ProbeError(f"columns must be an integer >= 2, got {columns!r}")
    img = as_image(image)
    size, _ = check_placement(img, image_size, None)
    H, W = size or img.shape[:2]
    heat = as_array(attention_map, "attention_map", (2, 3), "[h, w] or [query, h, w]")
    single = heat.ndim == 2
    heat = heat[None] if single else heat
    points = [tuple(point)] if single else [tuple(p) for p in point]  # type: ignore[union-attr]
    q, h, w = heat.shape
    if len(points) != q or (labels is not None and len(labels) != q):
        raise ProbeError(
            f"{q} attention maps, {len(points)} points"
            f"{'' if labels is None else f', {len(labels)} labels'}: pass one of each per query"
        )
    for row, col in points:
        if not (0 <= row < h and 0 <= col < w):
            raise ProbeError(f"point {(row, col)} is outside the {h}x{w} feature map")
    cell_w, cell_h = cell_size((H, W), 2.5)  # wider for wide images, at most 4:1
    if cell_w < cell_h:  # a tall image: room for the titles, and the colourbar at the end
        names = labels if labels is not None else [f"query {p}" for p in points]
        cell_w = min(max(cell_w, title_width(["input", *names], FONT_SIZES["label"]) + 0.15
                         + 0.8 / (q + 1)), cell_h)
    if width is not None:
        columns = columns_for_width(width, MIN_PANEL_IN, fixed=0.8, most=columns)
    rows, cols = wrap_grid(q + 1, columns)
    if width is not None:  # the panels take the width; their height in proportion
        shrink = (width - 0.8) / cols / cell_w
        cell_w, cell_h = (width - 0.8) / cols, cell_h * min(shrink, 1.0)
    fig = new_figure((cell_w * cols + (0.8 if width is not None else 0.0),
                      (cell_h + 0.1) * rows))
    grid = fig.subplots(rows, cols, squeeze=False)
    for ax in grid.flat[q + 1:]:
        ax.remove()
    axes = grid.flat[: q + 1]
    draw_image(axes[0], img, "input", size)
    norm = make_norm(heat, False, zero_based=True)
    sy, sx = H / h, W / w
    for i, (ax, (row, col)) in enumerate(zip(axes[1:], points)):
        draw_overlay(ax, img, heat[i], norm=norm, cmap=get_cmap(SEQUENTIAL_CMAP), alpha=alpha,
                     size=size)
        for a in (axes[0], ax):
            a.plot([(col + 0.5) * sx], [(row + 0.5) * sy], marker="x", color="red", ms=9, mew=2)
        name = labels[i] if labels is not None else f"query ({row}, {col})"
        ax.set_title(name, fontsize=FONT_SIZES["label"], pad=3)
    _colorbar(fig, list(axes[1:]) if q > 1 else axes[1], norm, "attention weight",
              centred=cell_w < cell_h)
    if title:
        fig.suptitle(title, fontsize=FONT_SIZES["suptitle"])
    return fig


def score_text(score: float, decimals: int = 2) -> str:
    """A score with ``decimals`` decimals, rounded DOWN (``0.4996`` -> ``"0.49"``), so a score
    shown as reaching a threshold at those decimals (``"score >= 0.50"``) did reach it."""
    from decimal import ROUND_FLOOR, Decimal

    value = float(score)
    if value != value or value in (float("inf"), float("-inf")):
        return f"{value}"
    step = Decimal(1).scaleb(-decimals)
    return f"{Decimal(repr(value)).quantize(step, rounding=ROUND_FLOOR)}"


@styled
@sized()
def detr_queries_view(
    image: Any,
    maps: Any,
    boxes: Any,
    labels: Sequence[str],
    *,
    scores: Sequence[float] | None = None,
    title: str | None = None,
    alpha: float = 0.6,
    image_size: tuple[int, int] | None = None,
    scale: Literal["shared", "each"] = "shared",
    colorbar_label: str = "cross-attention weight",
    columns: int = 4,
    width: float | None = None,
) -> Figure:
    """Each object query's cross-attention over the image, with its predicted box and class.

    Args:
        image: RGB ``[H, W, 3]`` or ``[3, H, W]`` in ``0..1``.
        maps: ``[query, h, w]`` cross-attention of each shown query over the feature map.
        boxes: ``[query, 4]`` predicted boxes ``(cx, cy, w, h)`` relative to the image (DETR's).
        labels: predicted class name of each query.
        scores: probability of each predicted class (shown in the panel titles with two
            decimals, rounded down: 0.499 is 0.49, never a 0.50 it did not reach).
        image_size: ``(height, width)`` to draw at, when ``image`` is the model's input resized
            from an image of another aspect ratio (a fixed-size model squashes a wide image to
            a square): the image and the maps are stretched back to it, and the relative boxes
            scaled to it, so all three line up on the original's proportions. Default: the
            image's own size.
        scale: ``"shared"``: every panel on one colour scale from 0 to the largest weight
            shown, with one colourbar (the queries' weights compare); ``"each"``: each panel
            on its own scale from 0 to its own largest weight, with its own colourbar (faint
            queries stay visible; the DETR paper's figures).
        colorbar_label: what the colour shows (say which layer and whether heads are averaged,
            e.g. ``"cross-attention weight\n(decoder layer 5, heads averaged)"``).
        columns: most queries per row; more wrap to further rows (one row of 10 queries was
            24 in wide).
        width: figure width in inches, or ``"single"`` / ``"double"``: as many queries per
            row as fit at 1 in each (at most ``columns``), panels sized to the width; fonts
            unchanged. Default: 2.3 in per panel.
    """
    if scale not in ("shared", "each"):
        raise ProbeError(f"scale must be 'shared' or 'each', got {scale!r}")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ProbeError(f"columns must be a positive integer, got {columns!r}")
    img = as_image(image)
    heat = as_array(maps, "maps", 3, "[query, h, w]")
    box = as_array(boxes, "boxes", 2, "[query, 4]")
    q = heat.shape[0]
    if box.shape != (q, 4) or len(labels) != q or (scores is not None and len(scores) != q):
        raise ProbeError(
            f"maps {list(heat.shape)}, boxes {list(box.shape)}, {len(labels)} labels"
            f"{'' if scores is None else f', {len(scores)} scores'}: pass one of each per query"
        )
    from matplotlib.patches import Rectangle

    if image_size is not None and (
        len(image_size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                    for v in image_size)
    ):
        raise ProbeError(f"image_size must be (height, width) in pixels, got {image_size!r}")
    H, W = image_size or img.shape[:2]
    # panels 2.3 in wide for square and tall images (at most 3.45 in tall), up to 2.5 times
    # wider for wide ones, never over 4:1, plus room for the titles (a two-line title needs
    # about 4.6 in)
    # (and 0.8 in per colourbar)
    cell_w, cell_h = cell_size((H, W), 2.3, max_tall=1.5)
    tall = cell_w < cell_h
    if tall:  # a tall image: room for the titles beside each other
        cell_w = min(max(cell_w, title_width(labels, FONT_SIZES["label"]) + 0.15), cell_h)
    each = 0.8 if scale == "each" else 0.0  # a colourbar per panel
    if width is not None:
        columns = columns_for_width(width, MIN_PANEL_IN + each, fixed=0.8 - each, most=columns)
    rows, cols = wrap_grid(q, columns)
    if width is not None:  # the panels take the width; their height in proportion
        shrink = (width - 0.8 + each) / cols / (cell_w + each)
        cell_w, cell_h = cell_w * shrink, cell_h * min(shrink, 1.0)
    bars = cols if scale == "each" else 1
    fig_w = max(cell_w * cols + 0.8 * bars, 4.6 if title else 0.0) if width is None else width
    fig = new_figure((fig_w, (cell_h + 0.3) * rows + (0.45 if title else 0.0)))
    grid = fig.subplots(rows, cols, squeeze=False)
    for ax in grid.flat[q:]:
        ax.remove()
    axes = grid.flat[:q]
    colors = categorical_colors(q)
    shared = make_norm(heat, False, zero_based=True)
    for i, ax in enumerate(axes):
        norm = shared if scale == "shared" else make_norm(heat[i], False, zero_based=True)
        draw_overlay(ax, img, heat[i], norm=norm, cmap=get_cmap(SEQUENTIAL_CMAP), alpha=alpha,
                     size=(H, W))
        cx, cy, bw, bh = box[i]
        ax.add_patch(Rectangle(((cx - bw / 2) * W, (cy - bh / 2) * H), bw * W, bh * H,
                               fill=False, edgecolor=colors[i], lw=1.8))
        name = labels[i] if scores is None else f"{labels[i]} {score_text(scores[i])}"
        ax.set_title(name, fontsize=FONT_SIZES["label"], pad=3)
        if scale == "each":
            _colorbar(fig, ax, norm, colorbar_label, centred=tall)
    if scale == "shared":
        _colorbar(fig, list(axes) if q > 1 else axes[0], shared, colorbar_label, centred=tall)
    if title:
        fig.suptitle(title, fontsize=FONT_SIZES["suptitle"])
    return fig
