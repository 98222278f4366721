"""Saliency over images: one map over the image (:func:`saliency_overlay`) and the drawing
blocks of every image view (:func:`draw_image`, :func:`draw_overlay`, :func:`check_placement`);
grids of maps (the per-head CLS maps) are in :mod:`probe.viewers._grid`.

The input image is shown in its own colours in a panel of its own; maps are drawn over a
grey, contrast-reduced copy of it (:func:`grey_image`), so a colour of the map can never be
mistaken for a colour of the image (a green disk under green saliency).

Maps come on any patch grid ``[h, w]`` (read from the trace, never assumed 14 x 14) and are
upsampled to the image with bilinear interpolation (:func:`upsample_bilinear`, the same
numbers as ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``). The
colour scale runs from 0 to the map's largest value (the rule of every unsigned scale, see
:mod:`probe.viewers._style`), or is symmetric around 0 with the diverging map for signed
saliency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from probe._errors import ProbeError
from probe.viewers._panels import panel_size
from probe.viewers._style import (
    styled,
    FONT_SIZES,
    as_array,
    check_ax,
    cmap_for,
    get_cmap,
    is_signed,
    make_norm,
    new_figure,
    parent_of,
    root_figure,
    title as make_title,
)
from probe.viewers._width import sized

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap, Normalize
    from matplotlib.figure import Figure

__all__ = ["saliency_overlay", "upsample_bilinear"]


def as_image(image: Any) -> np.ndarray:
    """An RGB image ``[H, W, 3]`` in ``0..1`` from ``[H, W, 3]``, ``[3, H, W]`` or ``[H, W]``.

    Float images must already be in ``0..1``; integer-valued images in ``0..255`` (uint8) are
    divided by 255.
    """
    img = as_array(image, "image", (2, 3), "[H, W, 3] or [3, H, W] (or [H, W] grey)")
    if img.ndim == 3:
        if img.shape[-1] == 3:
            pass
        elif img.shape[0] == 3:
            img = np.moveaxis(img, 0, -1)
        else:
            raise ProbeError(
                f"image must be RGB [H, W, 3] or [3, H, W], got shape {list(img.shape)}: drop "
                "the batch dimension and any alpha channel"
            )
    else:
        img = np.repeat(img[..., None], 3, axis=-1)
    lo, hi = float(img.min()), float(img.max())
    if lo >= -1e-6 and hi <= 1 + 1e-6:
        return np.clip(img, 0.0, 1.0)
    if lo >= 0 and hi <= 255 and np.all(img == np.round(img)):
        return img / 255.0
    raise ProbeError(
        f"image values span [{lo:.3g}, {hi:.3g}]: pass floats in [0, 1] or uint8 in 0..255; "
        "undo the model's normalization first (x * std + mean)"
    )


def upsample_bilinear(heatmap: Any, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of ``heatmap [h, w]`` to ``size = (H, W)`` -> ``[H, W]``.

    Pixel centres are aligned as in ``torch.nn.functional.interpolate(..., mode="bilinear",
    align_corners=False)``: output pixel ``i`` samples input coordinate
    ``(i + 0.5) * h / H - 0.5`` (clamped at 0), so the result equals torch's.
    """
    grid = as_array(heatmap, "heatmap", 2, "[h, w]")
    out_h, out_w = (int(v) for v in size)
    if out_h < 1 or out_w < 1:
        raise ProbeError(f"size must be two positive integers (H, W), got {size!r}")

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        src = np.maximum(src, 0.0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, fy = axis(grid.shape[0], out_h)
    x0, x1, fx = axis(grid.shape[1], out_w)
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return top * (1 - fy)[:, None] + bottom * fy[:, None]


def grey_image(image: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` grey copy of an RGB image (luminance), squeezed into ``0.3..0.9`` so the
    map drawn over it keeps its own colours and the image still shows its shapes."""
    lum = image[..., 0] * 0.2126 + image[..., 1] * 0.7152 + image[..., 2] * 0.0722
    lo, hi = float(lum.min()), float(lum.max())
    lum = (lum - lo) / (hi - lo) if hi > lo else np.full_like(lum, 0.5)
    return np.repeat((0.3 + 0.6 * lum)[..., None], 3, axis=-1)


Region = tuple[float, float, float, float]
"""``(left, top, right, bottom)`` of the part of the image a model saw, in drawn pixels."""

REGION_NOTE = "dashed: the region the model saw"
"""What the dashed box of a ``region`` means, as figures say it."""


def check_placement(
    image: np.ndarray, image_size: Any, region: Any
) -> tuple[tuple[int, int] | None, Region | None]:
    """Validate where an image is drawn and where its map goes.

    Args:
        image: ``[H, W, 3]`` the image array.
        image_size: ``(height, width)`` in pixels to draw the image at (e.g. the original size
            of a model input resized from another aspect ratio), or ``None`` for its own.
        region: ``(left, top, right, bottom)`` in those pixels: the part of the image the
            model saw (e.g. a center crop), which the map covers; ``None`` for all of it.

    Returns:
        ``(image_size, region)``; a region covering the whole image comes back ``None``.
    """
    if image_size is not None:
        if (isinstance(image_size, (str, bytes)) or not hasattr(image_size, "__len__")
                or len(image_size) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                       for v in image_size)):
            raise ProbeError(f"image_size must be (height, width) in pixels, got {image_size!r}")
        image_size = (int(image_size[0]), int(image_size[1]))
    height, width = image_size or image.shape[:2]
    if region is None:
        return image_size, None
    box = np.asarray(region, dtype=float) if not isinstance(region, (str, bytes)) else None
    if (box is None or box.shape != (4,) or not np.all(np.isfinite(box))
            or not (0 <= box[0] < box[2] <= width and 0 <= box[1] < box[3] <= height)):
        raise ProbeError(
            f"region must be (left, top, right, bottom) inside the {width}x{height} image, "
            f"got {region!r}: e.g. the center crop the model saw"
        )
    if tuple(box) == (0, 0, width, height):
        return image_size, None
    return image_size, (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def _frame(ax: Axes, region: Region) -> None:
    """A dashed box around ``region`` (white over black, visible on any image)."""
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = region
    for color, style in (("black", "-"), ("white", "--")):
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color,
                               linestyle=style, lw=1.2, zorder=5))


def draw_image(ax: Axes, image: np.ndarray, title: str | None = None,
               size: tuple[int, int] | None = None, region: Region | None = None) -> None:
    """The input image in its own colours (no map), no ticks; ``size`` ``(height, width)``
    stretches it (as in :func:`draw_overlay`), ``region`` gets a dashed box."""
    height, width = image.shape[:2] if size is None else size
    ax.imshow(image, extent=(0, width, height, 0), interpolation="antialiased")
    if region is not None:
        _frame(ax, region)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    if title:
        ax.set_title(title, fontsize=FONT_SIZES["label"], pad=3)


def draw_overlay(
    ax: Axes,
    image: np.ndarray,
    heatmap: np.ndarray,
    *,
    norm: Normalize,
    cmap: Colormap,
    alpha: float,
    size: tuple[int, int] | None = None,
    region: Region | None = None,
) -> None:
    """Grey image (:func:`grey_image`), then the upsampled heatmap over it with ``alpha``.

    ``size`` ``(height, width)``: the data extent both are stretched to (default the image's
    own pixel size), e.g. the original size of an image resized to a model's input.
    ``region`` ``(left, top, right, bottom)`` in those units: the map covers only this part
    (what the model saw, e.g. a center crop), upsampled to its pixels, inside a dashed box.
    """
    height, width = image.shape[:2]
    extent = (0, width, height, 0) if size is None else (0, size[1], size[0], 0)
    ax.imshow(grey_image(image), extent=extent, interpolation="antialiased")
    if region is None:
        ax.imshow(upsample_bilinear(heatmap, (height, width)), cmap=cmap, norm=norm,
                  alpha=alpha, extent=extent, interpolation="nearest")
    else:
        x0, y0, x1, y1 = region
        sy, sx = height / extent[2], width / extent[1]  # image pixels per drawn unit
        pixels = (max(1, round((y1 - y0) * sy)), max(1, round((x1 - x0) * sx)))
        ax.imshow(upsample_bilinear(heatmap, pixels), cmap=cmap, norm=norm, alpha=alpha,
                  extent=(x0, x1, y1, y0), interpolation="nearest")
        _frame(ax, region)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlim(0, extent[1])
    ax.set_ylim(extent[2], 0)


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ProbeError(f"alpha must be a number in [0, 1], got {alpha!r}")
    return float(alpha)


def _panel_size(image: np.ndarray, long_side: float,
                size: tuple[int, int] | None = None) -> tuple[float, float]:
    """:func:`panel_size` of ``image`` drawn at ``size`` (default its own pixel size)."""
    return panel_size(image.shape[:2] if size is None else size, long_side)


@styled
@sized()
def saliency_overlay(
    image: Any,
    heatmap: Any,
    *,
    alpha: float = 0.65,
    signed: bool | None = None,
    cmap: str | Colormap | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    model_name: str | None = None,
    layer: int | str | None = None,
    head: int | str | None = None,
    method: str | None = None,
    colorbar: bool = True,
    colorbar_label: str | None = None,
    show_image: bool = True,
    image_title: str | None = "input",
    title: str | None = None,
    size: float = 3.0,
    ax: Axes | None = None,
    image_size: tuple[int, int] | None = None,
    region: Region | None = None,
    width: float | None = None,
) -> Figure:
    """A saliency map over its image, with a colourbar for the map.

    In a new figure the input image is drawn first in its own panel (``show_image``), then
    the map over a grey copy of the image.

    Args:
        image: ``[H, W, 3]`` or ``[3, H, W]`` (or ``[H, W]`` grey) in ``0..1``, or uint8.
        heatmap: ``[h, w]`` map on any grid (e.g. the patch grid), upsampled bilinearly to
            ``[H, W]``.
        alpha: opacity of the map over the grey image (default 0.65).
        signed: ``None`` infers it (negative values -> diverging ``RdBu_r``, symmetric around
            0); otherwise sequential ``viridis`` from 0 to the map's largest value.
        cmap, vmin, vmax: override the colormap and its limits.
        model_name, layer, head, method: go into the title.
        colorbar, colorbar_label: an opaque colourbar for the map (default label
            ``"saliency"``, or ``"attribution"`` for signed maps).
        show_image: draw the input image in a panel of its own (new figure only).
        image_title: that panel's title, e.g. ``"input · true disk · predicted disk"``.
        title: replaces the generated title (``""`` for none).
        size: each panel's longer side in inches (new figure only).
        width: figure width in inches, or ``"single"`` / ``"double"`` (new figure only): the
            panels take the width (``size`` is then ignored; at least 1 in); fonts unchanged.
        ax: draw into this axes (the overlay only) instead of a new figure.
        image_size: ``(height, width)`` to draw at, when ``image`` is the model's input
            resized from an image of another aspect ratio (a 640x360 photo squashed to a
            224x224 ViT input): the image and the map are stretched back to the original's
            proportions, as the model's plain resize mapped the whole image onto its grid.
            Default: the image's own size.
        region: ``(left, top, right, bottom)`` in drawn pixels: the part of the image the
            model saw, when its preprocessing cropped (a resize of the shorter side to ``S``
            then a center crop ``C`` saw the central box of side ``C * min(H, W) / S``); the
            map covers only that box, drawn dashed on both panels (the panel title says so).
            Pass the original image then. Default: the whole image (a plain resize).

    Returns:
        The ``Figure``; the overlay axes' ``images`` are the grey image and the map (its
        ``get_extent()`` is the region the map covers).
    """
    from matplotlib.cm import ScalarMappable

    img = as_image(image)
    grid = as_array(heatmap, "heatmap", 2, "[h, w]")
    alpha = _check_alpha(alpha)
    drawn, box = check_placement(img, image_size, region)
    signed = is_signed(grid) if signed is None else bool(signed)
    norm = make_norm(grid, signed, zero_based=True, vmin=vmin, vmax=vmax)
    cmap_obj = get_cmap(cmap if cmap is not None else cmap_for(signed))
    text = make_title(model_name, layer, head, method) if title is None else title
    if ax is None:
        if isinstance(size, bool) or not isinstance(size, (int, float)) or not 1 <= size <= 20:
            raise ProbeError(f"size must be in [1, 20] inches, got {size!r}")
        gap = 0.15
        left, right = 0.15, (0.95 if colorbar else 0.15)
        if width is not None:  # the panels' longer side that fills the width
            n_panels = 2 if show_image else 1
            ratio = _panel_size(img, 1.0, drawn)[0]  # panel width per inch of longer side
            size = max((width - left - right - (n_panels - 1) * gap) / n_panels / ratio, 1.0)
        pw, ph = _panel_size(img, float(size), drawn)
        lines = (image_title or "").count("\n") + (box is not None)
        panel_title = FONT_SIZES["label"] / 72 * (1.8 + 1.25 * lines)
        top, bottom = (0.4 if text else 0.1) + panel_title, 0.12
        n_panels = 2 if show_image else 1
        width = left + n_panels * pw + (n_panels - 1) * gap + right
        height = top + ph + bottom
        fig = new_figure((width, height), layout="none")
        x = left
        if show_image:
            iax = fig.add_axes((x / width, bottom / height, pw / width, ph / height))
            draw_image(iax, img, image_title, drawn, box)
            x += pw + gap
        ax = fig.add_axes((x / width, bottom / height, pw / width, ph / height))
        cax = (fig.add_axes(((x + pw + 0.12) / width, bottom / height, 0.14 / width,
                             ph / height)) if colorbar else None)
    else:
        ax = check_ax(ax)
        fig = root_figure(ax)
        cax = None
    draw_overlay(ax, img, grid, norm=norm, cmap=cmap_obj, alpha=alpha, size=drawn, region=box)
    note = "" if box is None else f"\n({REGION_NOTE})"
    if text:
        if cax is not None or show_image:
            ax.set_title((method or "map") + note, fontsize=FONT_SIZES["label"], pad=3)
            fig_h = float(fig.get_size_inches()[1])
            fig.suptitle(text, fontsize=FONT_SIZES["title"], y=1 - 0.08 / fig_h, va="top")
        else:
            ax.set_title(text + note, fontsize=FONT_SIZES["title"])
    elif note:
        ax.set_title(note.strip(), fontsize=FONT_SIZES["label"], pad=3)
    if colorbar:
        mappable = ScalarMappable(norm=norm, cmap=cmap_obj)
        if cax is not None:
            cbar = fig.colorbar(mappable, cax=cax)
        else:
            cbar = parent_of(ax).colorbar(mappable, ax=ax, fraction=0.046, pad=0.03)
        label = colorbar_label or ("attribution" if signed else "score")
        cbar.set_label(label, fontsize=FONT_SIZES["label"])
        cbar.ax.tick_params(labelsize=FONT_SIZES["tick"])
    return fig
