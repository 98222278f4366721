"""Grids of saliency maps over one image: :func:`overlay_grid` places the input and one
overlay per map in rows with the colourbars beside them (used by :func:`cls_head_grid`, the
per-head CLS attention maps, and by :func:`~probe.viewers.comparison_panel`).

Panels are boxes of :func:`~probe.viewers._panels.panel_size` (at most 4:1, the image at its
own ratio inside); a box taller than wide is widened to its title, and the colourbars span
the panels, top to bottom, unless their label would not fit along them (a row of wide strips:
:func:`bar_length`), so strips of any ratio keep readable titles and scales.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from probe.viewers._bars import bar_length, wrap_bar_label
from probe.viewers._saliency import (
    REGION_NOTE,
    Region,
    _check_alpha,
    _panel_size,
    as_image,
    check_placement,
    draw_image,
    draw_overlay,
)
from probe.viewers._style import (
    BASELINE_STYLE,
    FONT_SIZES,
    as_array,
    cmap_for,
    get_cmap,
    is_baseline,
    is_signed,
    make_norm,
    new_figure,
    styled,
    title as make_title,
)
from probe.viewers._width import MIN_PANEL_IN, columns_for_width, sized

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap, Normalize
    from matplotlib.figure import Figure

__all__ = ["bar_length", "cls_head_grid", "fill_columns", "overlay_grid", "overlay_grid_size",
           "wrap_bar_label"]


def overlay_grid(
    fig: Figure,
    image: np.ndarray,
    maps: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    origin: tuple[float, float],
    ncols: int,
    cell: float,
    scales: Sequence[int],
    colorbars: Sequence[tuple[Normalize, Colormap, str]],
    alpha: float,
    image_title: str | None = None,
    size: tuple[int, int] | None = None,
    region: Region | None = None,
) -> tuple[float, float]:
    """Draw overlays on a grid whose top-left corner is ``origin`` (inches from the figure's
    top-left), with the colourbars side by side on the right; return the block's
    (width, height).

    With ``image_title``, the first panel is the input image in its own colours. Baseline
    methods (``random``) get a dashed grey frame and a grey title. ``colorbars`` holds one
    ``(norm, cmap, label)`` colour scale per kind of map; map ``i`` uses ``scales[i]``.
    ``size`` and ``region`` place the image and the maps as in :func:`draw_overlay`.
    """
    from matplotlib.cm import ScalarMappable

    fig_w, fig_h = fig.get_size_inches()
    pw, ph = _grid_panel(image, cell, size, [*titles, image_title or ""])
    lines = 1 + max(t.count("\n") for t in [*titles, image_title or ""])
    gap_w, title_h = 0.12, FONT_SIZES["label"] / 72 * (1.8 + 1.25 * (lines - 1))
    offset = 1 if image_title is not None else 0
    n_panels = len(maps) + offset
    nrows = -(-n_panels // ncols)
    x_org, y_org = origin

    def panel(idx: int) -> Axes:
        r, c = divmod(idx, ncols)
        x = x_org + c * (pw + gap_w)
        y = y_org + title_h + r * (ph + title_h)
        return fig.add_axes((x / fig_w, 1 - (y + ph) / fig_h, pw / fig_w, ph / fig_h))

    if image_title is not None:
        draw_image(panel(0), image, image_title, size, region)
    for idx, (grid, name) in enumerate(zip(maps, titles)):
        ax = panel(idx + offset)
        norm, cmap, _ = colorbars[scales[idx]]
        draw_overlay(ax, image, grid, norm=norm, cmap=cmap, alpha=alpha, size=size,
                     region=region)
        baseline = is_baseline(name)
        ax.set_title(_shown_title(name),
                     fontsize=FONT_SIZES["label"], pad=3, color="0.4" if baseline else "black",
                     fontstyle="italic" if baseline else "normal")
        if baseline:
            for spine in ax.spines.values():
                spine.set_edgecolor(BASELINE_STYLE["color"])
                spine.set_linestyle("--")
                spine.set_linewidth(1.2)
    grid_w = ncols * pw + (ncols - 1) * gap_w
    grid_h = nrows * (ph + title_h)
    area = grid_h - title_h  # from the first row's panel top to the last row's bottom
    bar_h, shown = bar_length([label for _, _, label in colorbars], area)
    bar_top = y_org + title_h
    for k, ((norm, cmap, _), label) in enumerate(zip(colorbars, shown)):  # 1 inch apart
        cax = fig.add_axes(((x_org + grid_w + 0.15 + k * 1.0) / fig_w,
                            1 - (bar_top + bar_h) / fig_h, 0.13 / fig_w, bar_h / fig_h))
        cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
        cbar.set_label(label, fontsize=FONT_SIZES["label"])
        cbar.ax.tick_params(labelsize=FONT_SIZES["tick"])
    return grid_w + 1.0 * len(colorbars), max(grid_h, title_h + bar_h)


def _shown_title(name: str) -> str:
    """A panel title of :func:`overlay_grid`: baselines say so."""
    return name + (" (baseline)" if is_baseline(name) and "baseline" not in name else "")


def _grid_panel(image: np.ndarray, cell: float, size: tuple[int, int] | None,
                titles: Sequence[str]) -> tuple[float, float]:
    """The panel box of :func:`overlay_grid`: :func:`_panel_size`, a box taller than wide
    widened to its longest title line (the image stays centred at its own ratio), so the
    titles of narrow panels side by side never run into each other."""
    from probe.viewers._fonts import text_width_pt

    pw, ph = _panel_size(image, cell, size)
    if pw < ph:
        widest = max(text_width_pt(line, FONT_SIZES["label"]) / 72
                     for t in titles for line in _shown_title(t).split("\n"))
        pw = min(max(pw, widest + 0.05), ph)
    return pw, ph


def overlay_grid_size(
    image: np.ndarray, n: int, ncols: int, cell: float, bar_labels: Sequence[str],
    title_lines: int = 1, size: tuple[int, int] | None = None,
    titles: Sequence[str] = (),
) -> tuple[float, float]:
    """(width, height) in inches that :func:`overlay_grid` needs for ``n`` panels whose
    longest title has ``title_lines`` lines (drawn at ``size``, as :func:`overlay_grid`;
    ``titles``: the panel titles, which may widen narrow panels), with one colourbar per
    label of ``bar_labels``."""
    pw, ph = _grid_panel(image, cell, size, [*titles, ""])
    nrows = -(-n // ncols)
    title_h = FONT_SIZES["label"] / 72 * (1.8 + 1.25 * (title_lines - 1))
    grid_h = nrows * (ph + title_h)
    return (ncols * pw + (ncols - 1) * 0.12 + 1.0 * len(bar_labels),
            max(grid_h, title_h + bar_length(bar_labels, grid_h - title_h)[0]))


def fill_columns(n: int, lo: int = 3, hi: int = 6) -> int:
    """Panels per row for ``n`` panels: the fewest empty cells in the last row, then the
    most columns (a wide, full grid rather than a tall one with holes)."""
    if n <= hi:
        return max(1, n)
    return min(range(lo, hi + 1), key=lambda c: (-(-n // c) * c - n, -c))


@styled
@sized()
def cls_head_grid(
    image: Any,
    maps: Any,
    *,
    alpha: float = 0.65,
    heads: Sequence[int] | None = None,
    layer: int | str | None = None,
    model_name: str | None = None,
    method: str | None = "CLS attention",
    ncols: int | None = None,
    cell_size: float = 2.0,
    normalize: bool = False,
    signed: bool | None = None,
    cmap: str | Colormap | None = None,
    colorbar_label: str | None = None,
    image_title: str | None = "input",
    title: str | None = None,
    image_size: tuple[int, int] | None = None,
    region: Region | None = None,
    width: float | None = None,
) -> Figure:
    """Per-head CLS attention maps, each over the image, on one grid with one colourbar.

    The first panel is the input image in its own colours (``image_title``; ``None`` leaves
    it out); the maps are drawn over a grey copy of it.

    Args:
        image: ``[H, W, 3]`` or ``[3, H, W]`` in ``0..1`` (or uint8).
        maps: ``[head, h, w]``: each head's attention from the CLS token to the patches,
            reshaped to the patch grid (prefix tokens dropped).
        alpha: opacity of the maps over the grey image (default 0.65).
        heads: the model's index of each head (default ``0..head-1``), for panel titles.
        layer, model_name, method: go into the title.
        ncols: panels per row (default: the input and every head on one row up to 6
            panels, else rows with the fewest empty cells); cell_size: longer panel side.
        image_title: title of the input panel (e.g. ``"input · true disk · predicted disk"``).
        normalize: divide each head's map by its largest magnitude first, so weak heads are
            visible (the colourbar then reads "normalized per head"). Default: one shared
            scale over all heads, from 0 to the largest weight.
        signed, cmap, colorbar_label, title: as in :func:`saliency_overlay`; the default
            colourbar label is ``"attention weight"``.
        image_size, region: as in :func:`saliency_overlay`: draw the image at its original
            proportions, and the maps over the region the model saw only (the input panel's
            title, or the figure title without one, then says what the dashed box is).
        width: figure width in inches, or ``"single"`` / ``"double"``: as many panels per
            row as fit at 1 in each (``ncols`` overrides), panels sized to the width
            (``cell_size`` is then ignored); fonts unchanged.

    Returns:
        The ``Figure``; its first axes are the panels, in head order.
    """
    from probe.viewers._heatmaps import _check_cell, _check_ncols, _head_names

    img = as_image(image)
    data = as_array(maps, "maps", 3, "[head, h, w]")
    alpha = _check_alpha(alpha)
    drawn, box = check_placement(img, image_size, region)
    if box is not None and image_title is not None:
        image_title = f"{image_title}\n({REGION_NOTE})"
    names = _head_names(heads, data.shape[0], "heads")
    n_panels = data.shape[0] + (image_title is not None)
    cell = _check_cell(cell_size)
    if ncols is None and width is not None:
        ncols = columns_for_width(width, MIN_PANEL_IN, fixed=1.3, gap=0.12, most=n_panels)
    ncols = fill_columns(n_panels) if ncols is None else _check_ncols(ncols, n_panels)
    signed = is_signed(data) if signed is None else bool(signed)
    label = colorbar_label or "attention weight"
    if normalize:
        scale = np.abs(data).reshape(len(data), -1).max(axis=1)
        data = data / np.where(scale > 0, scale, 1.0)[:, None, None]
        label += "\n(normalized per head)"
    norm = make_norm(data, signed, zero_based=True)
    cmap_obj = get_cmap(cmap if cmap is not None else cmap_for(signed))
    text = make_title(model_name, layer, None, method) if title is None else title
    if box is not None and image_title is None:
        text = f"{text} ({REGION_NOTE})" if text else REGION_NOTE
    lines = 1 + (image_title or "").count("\n")
    heads = [f"head {h}" for h in names]
    def block(side: float) -> tuple[float, float]:
        return overlay_grid_size(img, n_panels, ncols, side, [label], lines, drawn,
                                 [*heads, image_title or ""])

    if width is not None:  # the longer panel side that fills the width (a box widened to
        cell = (width - 1.3 - 0.12 * (ncols - 1)) / ncols  # its title is never narrower)
        for _ in range(3):
            cell *= (width - 1.3 - 0.12 * (ncols - 1)) / (block(cell)[0] - 1.0 - 0.12 * (ncols - 1))
        cell = min(cell, 10.0)
    block_w, block_h = block(cell)
    top = 0.15 + (0.35 if text else 0.0)
    width, height = max(block_w + 0.3, width or 0.0), top + block_h + 0.15
    fig = new_figure((width, height), layout="none")
    overlay_grid(fig, img, list(data), heads, origin=(0.15, top),
                 ncols=ncols, cell=cell, scales=[0] * len(data),
                 colorbars=[(norm, cmap_obj, label)], alpha=alpha, image_title=image_title,
                 size=drawn, region=box)
    if text:  # centred over the panels, moved right as far as it needs to stay on the canvas
        from probe.viewers._panels import title_width

        half = title_width([text], FONT_SIZES["suptitle"]) / 2 + 0.05
        centre = min(max(0.15 + block_w / 2 - 0.5, half), width - half)
        fig.suptitle(text, fontsize=FONT_SIZES["suptitle"], x=centre / width,
                     y=1 - 0.12 / height, va="top")
    return fig
