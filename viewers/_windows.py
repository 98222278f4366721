"""Windowed attention (Swin) over the image: :func:`window_query_view`.

One block, one query token: each head's weights over the block's token grid, drawn token by
token (no interpolation: a token's weight covers its own pixels) over a grey copy of the
image, with the query token outlined. In a shifted block a query near the image border
attends only to the part of its window on its own side (the shift mask), which the figure
shows as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.viewers._fonts import styled
from probe.viewers._panels import panel_size
from probe.viewers._saliency import as_image, draw_image, grey_image
from probe.viewers._style import (
    FONT_SIZES,
    SEQUENTIAL_CMAP,
    as_array,
    get_cmap,
    make_norm,
    new_figure,
)
from probe.viewers._width import MIN_PANEL_IN, columns_for_width, sized, wrap_grid

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["window_query_view"]

#: inches around the panels: left margin, the colourbar column (gap, bar, ticks and label)
_LEFT_IN, _BAR_IN = 0.1, 1.0
_FIXED_IN = _LEFT_IN + _BAR_IN + 0.05
_GAP_IN, _TOP_IN, _BOTTOM_IN = 0.12, 0.45, 0.1


@styled
@sized()
def window_query_view(
    image: Any,
    maps: Any,
    query: tuple[int, int],
    token_size: tuple[float, float],
    *,
    heads: Sequence[int] | None = None,
    title: str | None = None,
    alpha: float = 0.65,
    columns: int = 4,
    width: float | None = None,
) -> Figure:
    """Where one query token of a windowed-attention block attends, per head, over the image.

    Args:
        image: RGB ``[H, W, 3]`` or ``[3, H, W]`` in ``0..1``: the model input.
        maps: ``[head, rows, cols]`` the query's weights on the block's token grid
            (``trace.windows[i].query_map(row, col)[batch]``).
        query: ``(row, col)`` of the query token on that grid (outlined in red).
        token_size: ``(height, width)`` of one of the block's tokens in image pixels
            (``trace.windows[i].token_size``); tokens past the image edge (padding of odd
            grids) are cut at the edge.
        heads: the model's index of each map (panel titles), default ``0..head-1``.
        title: the figure title.
        alpha: opacity of the maps over the grey image.
        columns: most panels (the image included) per row; more heads wrap to further rows,
            so the figure keeps a width a page can hold (6 heads in one row were 17 inches
            wide: its text shrank to 3 points on a two-column page).
        width: figure width in inches, or ``"single"`` / ``"double"``: at most as many
            panels per row as fit at 1 in each (and at most ``columns``), panels sized to the
            width; fonts unchanged. Default: panels 2 in on their longer side. The panels sit on
            one grid, the colourbar as tall as they are (:func:`~probe.viewers._bars.bar_length`).
    """
    from matplotlib.patches import Rectangle

    img = as_image(image)
    heat = as_array(maps, "maps", 3, "[head, rows, cols]")
    n, rows, cols = heat.shape
    row, col = (int(v) for v in query)
    if not (0 <= row < rows and 0 <= col < cols):
        raise ProbeError(f"query {(row, col)} is outside the {rows}x{cols} token grid")
    th, tw = (float(v) for v in token_size)
    if th <= 0 or tw <= 0:
        raise ProbeError(f"token_size must be two positive numbers, got {token_size!r}")
    names = list(heads) if heads is not None else list(range(n))
    if len(names) != n:
        raise ProbeError(f"{n} maps and {len(names)} head indices: pass one index per map")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 2:
        raise ProbeError(f"columns must be an integer >= 2, got {columns!r}")
    height, img_w = img.shape[:2]
    if width is not None:
        columns = columns_for_width(width, MIN_PANEL_IN, fixed=_FIXED_IN, most=columns)
    p_rows, p_cols = wrap_grid(n + 1, columns)  # panels (the token grid is rows x cols)
    unit_w, _ = panel_size((height, img_w), 1.0)  # a panel box per inch of its long side
    if width is None:
        long_side = 2.0
    else:  # the panels fill what the margins and the colourbar leave
        long_side = (width - _FIXED_IN - _GAP_IN * (p_cols - 1)) / p_cols / unit_w
    pw, ph = panel_size((height, img_w), long_side)
    title_h = FONT_SIZES["label"] / 72 * 1.8
    grid_w = p_cols * pw + (p_cols - 1) * _GAP_IN
    grid_h = p_rows * (title_h + ph) + (p_rows - 1) * _GAP_IN
    fig_w = width if width is not None else _FIXED_IN + grid_w
    fig_h = _TOP_IN + grid_h + _BOTTOM_IN
    fig = new_figure((fig_w, fig_h), layout="none")
    axes = []
    for i in range(n + 1):  # every panel on one grid: rows and columns line up exactly
        r, c = divmod(i, p_cols)
        x = _LEFT_IN + c * (pw + _GAP_IN)
        y = _TOP_IN + r * (title_h + ph + _GAP_IN) + title_h
        axes.append(fig.add_axes((x / fig_w, 1 - (y + ph) / fig_h, pw / fig_w, ph / fig_h)))
    draw_image(axes[0], img, "input")
    norm = make_norm(heat, False, zero_based=True)
    cmap = get_cmap(SEQUENTIAL_CMAP)
    extent = (0, cols * tw, rows * th, 0)
    for i, ax in enumerate(axes[1:]):
        ax.imshow(grey_image(img), extent=(0, img_w, height, 0), interpolation="antialiased")
        ax.imshow(heat[i], cmap=cmap, norm=norm, alpha=alpha, extent=extent,
                  interpolation="nearest")
        ax.set_title(f"head {names[i]}", fontsize=FONT_SIZES["label"], pad=3)
    for ax in axes:
        ax.add_patch(Rectangle((col * tw, row * th), tw, th, fill=False, edgecolor="red", lw=1.5))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlim(0, img_w)
        ax.set_ylim(height, 0)
    from matplotlib.cm import ScalarMappable

    from probe.viewers._bars import bar_length

    # the colourbar spans the panels, first row's top to last row's bottom
    bar_h, (label,) = bar_length(["attention weight"], grid_h - title_h)
    cax = fig.add_axes(((_LEFT_IN + grid_w + 0.15) / fig_w, 1 - (_TOP_IN + title_h + bar_h) / fig_h,
                        0.13 / fig_w, bar_h / fig_h))
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    bar.set_label(label, fontsize=FONT_SIZES["label"])
    bar.ax.tick_params(labelsize=FONT_SIZES["label"] - 1)
    fig.suptitle(title or f"query token ({row}, {col})", fontsize=FONT_SIZES["suptitle"],
                 y=1 - 0.1 / fig_h, va="top")
    return fig
