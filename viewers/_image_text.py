"""Figure of an image-to-text model's cross-attention: one small heat map over the image per
written token, the token as the panel title. Takes arrays and strings, never a model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from probe._errors import ProbeError
from probe.viewers._gates import _colorbar, score_text
from probe.viewers._panels import cell_size, title_width
from probe.viewers._saliency import as_image, draw_overlay
from probe.viewers._style import (
    FONT_SIZES,
    SEQUENTIAL_CMAP,
    as_array,
    get_cmap,
    make_norm,
    new_figure,
    styled,
)
from probe.viewers._width import MIN_PANEL_IN, columns_for_width, sized, wrap_grid, wrap_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["token_patches_view"]


@styled
@sized()
def token_patches_view(
    image: Any,
    maps: Any,
    labels: Sequence[str],
    *,
    prefix_share: Sequence[float] | None = None,
    prefix_name: str = "CLS",
    title: str | None = None,
    alpha: float = 0.6,
    image_size: tuple[int, int] | None = None,
    scale: Literal["shared", "each"] = "shared",
    colorbar_label: str = "cross-attention weight",
    columns: int = 6,
    width: float | None = None,
) -> Figure:
    """Where an image-to-text model looked when it wrote each token: one panel per token,
    its cross-attention map (:func:`probe.token_patch_maps`) upsampled over the image.

    Args:
        image: RGB ``[H, W, 3]`` or ``[3, H, W]`` in ``0..1``.
        maps: ``[token, rows, cols]`` cross-attention of each step over the patch grid.
        labels: the token each step wrote (panel titles).
        prefix_share: optional, per token the weight on the encoder's tokens outside the
            image (:func:`probe.token_prefix_share`), shown under its title as
            ``"{prefix_name} 0.31"`` (two decimals rounded down).
        prefix_name: what those tokens are called (``"CLS"``, ``"CLS+dist"``).
        title: figure title, broken into lines at ``" · "`` (then spaces) to fit the width.
        alpha: opacity of the heat map over the image.
        image_size: ``(height, width)`` to draw at, when ``image`` is the model's input resized
            from an image of another aspect ratio (see :func:`detr_queries_view`).
        scale: ``"shared"``: one colour scale from 0 to the largest weight shown (tokens
            compare), one colourbar; ``"each"``: each panel on its own scale and colourbar.
        colorbar_label: what the colour shows (which layers, the head fusion, CLS left out).
        columns: most panels per row; more wrap to further rows.
        width: figure width in inches, or ``"single"`` / ``"double"``: as many tokens per row
            as fit at 1 in each (at most ``columns``), panels sized to the width. Default:
            1.6 in per panel.
    """
    if scale not in ("shared", "each"):
        raise ProbeError(f"scale must be 'shared' or 'each', got {scale!r}")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ProbeError(f"columns must be a positive integer, got {columns!r}")
    img = as_image(image)
    heat = as_array(maps, "maps", 3, "[token, rows, cols]")
    n = heat.shape[0]
    if n == 0:
        raise ProbeError("maps hold no token: pass at least one [rows, cols] map")
    if len(labels) != n or (prefix_share is not None and len(prefix_share) != n):
        shares = "" if prefix_share is None else f", {len(prefix_share)} prefix shares"
        raise ProbeError(f"maps {list(heat.shape)}, {len(labels)} labels{shares}: pass one of "
                         "each per token")
    if image_size is not None and (
        len(image_size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                    for v in image_size)
    ):
        raise ProbeError(f"image_size must be (height, width) in pixels, got {image_size!r}")
    H, W = image_size or img.shape[:2]
    titles = [str(t) if prefix_share is None else
              f"{t}\n{prefix_name} {score_text(prefix_share[i])}" for i, t in enumerate(labels)]
    cell_w, cell_h = cell_size((H, W), 1.6, max_tall=1.5)
    tall = cell_w < cell_h
    if tall:  # a tall image (a text line turned upright): room for titles side by side
        cell_w = min(max(cell_w, title_width(titles, FONT_SIZES["label"]) + 0.15), cell_h)
    each = 0.8 if scale == "each" else 0.0
    if width is not None:
        panel = max(MIN_PANEL_IN, title_width(titles, FONT_SIZES["label"]) + 0.12)
        columns = columns_for_width(width, panel + each, fixed=0.8 - each, most=columns)
    rows, cols = wrap_grid(n, columns)
    if width is not None:
        shrink = (width - 0.8 + each) / cols / (cell_w + each)
        cell_w, cell_h = cell_w * shrink, cell_h * min(shrink, 1.0)
    bars = cols if scale == "each" else 1
    lines = 2 if prefix_share is not None else 1
    fig_w = max(cell_w * cols + 0.8 * bars, 3.0 if title else 0.0) if width is None else width
    if title:  # broken at " · " (then spaces) to the figure's width
        title = wrap_text(title, FONT_SIZES["suptitle"], (fig_w - 0.3) * 72)
    heading = 0.1 + 0.22 * len(title.split("\n")) if title else 0.0
    fig = new_figure((fig_w, (cell_h + 0.2 + 0.15 * lines) * rows + heading))
    grid = fig.subplots(rows, cols, squeeze=False)
    for ax in grid.flat[n:]:
        ax.remove()
    axes = grid.flat[:n]
    shared = make_norm(heat, False, zero_based=True)
    cmap = get_cmap(SEQUENTIAL_CMAP)
    for i, ax in enumerate(axes):
        norm = shared if scale == "shared" else make_norm(heat[i], False, zero_based=True)
        draw_overlay(ax, img, heat[i], norm=norm, cmap=cmap, alpha=alpha, size=(H, W))
        ax.set_title(titles[i], fontsize=FONT_SIZES["label"], pad=3)
        if scale == "each":
            _colorbar(fig, ax, norm, colorbar_label, centred=tall)
    if scale == "shared":
        _colorbar(fig, list(axes) if n > 1 else axes[0], shared, colorbar_label, centred=tall)
    if title:
        fig.suptitle(title, fontsize=FONT_SIZES["suptitle"])
    return fig
