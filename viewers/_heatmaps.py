"""Attention heatmaps: one head (:func:`head_heatmap`), every head of a layer
(:func:`head_grid`) and every layer x head (:func:`model_view`).

Query tokens are on the rows (y axis, top to bottom), key tokens on the columns (x axis):
row ``i`` shows where query ``i`` looks. A right-to-left sentence (``direction="auto"`` and
Arabic or Hebrew keys, or ``direction="rtl"``) is mirrored: the key axis runs from right to
left (key 0 at the right), query labels and the row labels sit at the right, the colourbar
at the left; rows still run top-down. Attention weights use the sequential colormap from
0 to the largest weight shown; signed inputs (e.g. attention gradients) switch to the
diverging map centred at 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from probe._errors import ProbeError
from probe.viewers._bars import bar_length, span_panels
from probe.viewers._direction import Direction, is_rtl
from probe.viewers._grid_labels import (
    MAX_GRID_HEIGHT_IN,
    fit_labels,
    fit_titles,
    min_grid_width,
    thin_note,
    thinned_fit,
    title_size,
)
from probe.viewers._style import (
    MIN_FONT_PT,
    styled,
    FONT_SIZES,
    GRID_MAX_LABELS,
    HEATMAP_MAX_LABELS,
    MAX_LABEL_CHARS,
    MODEL_VIEW_MAX_LABELS,
    as_array,
    check_ax,
    check_tokens,
    cmap_for,
    format_token,
    get_cmap,
    is_signed,
    make_norm,
    new_figure,
    parent_of,
    root_figure,
    set_token_ticks,
    text_width_pt,
    thin_labels,
    title as make_title,
)
from probe.viewers._width import columns_for_width, sized, wrap_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

__all__ = ["head_heatmap", "head_grid", "model_view"]


def _token_pair(
    tokens: Sequence[str] | None,
    query_tokens: Sequence[str] | None,
    key_tokens: Sequence[str] | None,
    n_query: int,
    n_key: int,
) -> tuple[list[str], list[str]]:
    """Query and key labels: ``tokens`` for self-attention, or the two lists for cross."""
    if tokens is not None and (query_tokens is not None or key_tokens is not None):
        raise ProbeError(
            "pass either tokens (self-attention) or query_tokens/key_tokens (cross-attention), "
            "not both"
        )
    if tokens is not None:
        if n_query != n_key:
            raise ProbeError(
                f"the attention is not square ({n_query} queries x {n_key} keys): for "
                "cross-attention pass query_tokens= and key_tokens= instead of tokens="
            )
        toks = check_tokens(tokens, n_query, "tokens", "positions of the attention matrix")
        return toks, toks
    q = check_tokens(query_tokens, n_query, "query_tokens", "query positions (rows)")
    k = check_tokens(key_tokens, n_key, "key_tokens", "key positions (columns)")
    return q, k


def _head_names(heads: Sequence[int] | None, n: int, what: str) -> list[str]:
    if heads is None:
        return [str(i) for i in range(n)]
    if isinstance(heads, str) or not isinstance(heads, Sequence) or len(heads) != n:
        raise ProbeError(
            f"{what} must list one index per slice of the attention ({n}), got {heads!r}"
        )
    return [str(h) for h in heads]


def _max_label_width_in(
    tokens: Sequence[str], shown: np.ndarray, fontsize: float, max_chars: int = MAX_LABEL_CHARS
) -> float:
    if len(shown) == 0:
        return 0.0
    width = max(text_width_pt(format_token(tokens[i], max_chars), fontsize) for i in shown)
    return width / 72.0


#: the smallest heatmap side (inches) a ``width=`` may leave a single heatmap
MIN_HEATMAP_IN = 1.2
#: the smallest panel side (inches) of a model view or head grid drawn at a ``width=``
MIN_GRID_CELL_IN = 0.3
#: the panel side (inches) a head grid at a ``width=`` aims at: as many heads per row as fit
GRID_CELL_AT_WIDTH_IN = 0.8


def _side_in(n: int, per_token: float, lo: float, hi: float) -> float:
    return float(min(max(per_token * n, lo), hi))


@styled
@sized()
def head_heatmap(
    attn: Any,
    tokens: Sequence[str] | None = None,
    *,
    query_tokens: Sequence[str] | None = None,
    key_tokens: Sequence[str] | None = None,
    model_name: str | None = None,
    layer: int | str | None = None,
    head: int | str | None = None,
    method: str | None = "attention",
    signed: bool | None = None,
    cmap: str | Colormap | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    max_labels: int = HEATMAP_MAX_LABELS,
    colorbar: bool = True,
    colorbar_label: str | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    direction: Direction = "auto",
    width: float | None = None,
) -> Figure:
    """Heatmap of one head's attention with token labels and a colourbar.

    Args:
        attn: ``[query, key]`` weights (torch tensor or numpy array).
        tokens: one label per position for self-attention (``query == key``).
        query_tokens, key_tokens: row and column labels for cross-attention (instead of
            ``tokens``). Without any labels, positions are numbered.
        model_name, layer, head, method: go into the title (see ``_style.title``).
        signed: ``None`` infers it (any negative value -> diverging ``RdBu_r`` centred at 0);
            otherwise sequential ``viridis`` from 0 to the largest weight.
        cmap, vmin, vmax: override the colormap and its limits.
        max_labels: at most this many labels per axis (default 50); beyond it only every
            ``ceil(n / max_labels)``-th token is labelled.
        colorbar, colorbar_label: draw a labelled colourbar (default label
            ``"attention weight"``, or ``"signed value"`` for signed data).
        title: replaces the generated title (``""`` for none).
        ax: draw into this axes instead of a new figure.
        direction: ``"auto"`` (default: right to left when the key tokens' first strong
            letter is, :func:`probe._text.text_direction`), ``"ltr"`` or ``"rtl"``. Right to
            left inverts the key axis (key 0 at the right; cell ``[q, k]`` still shows
            ``attn[q, k]`` under key label ``k``), puts the query labels at the right and the
            colourbar at the left.
        width: figure width in inches, or ``"single"`` / ``"double"`` (a paper's column,
            :mod:`probe.viewers._width`): the matrix shrinks to fit and fewer tokens are
            labelled (one label per ``tick + 1`` points), fonts unchanged. Default: a size
            from the number of tokens.

    Returns:
        The ``Figure`` holding the heatmap (``fig.axes[0].images[0]`` is the image).
    """
    data = as_array(attn, "attn", 2, "[query, key]")
    n_query, n_key = data.shape
    q_tokens, k_tokens = _token_pair(tokens, query_tokens, key_tokens, n_query, n_key)
    rtl = is_rtl(direction, k_tokens)
    signed = is_signed(data) if signed is None else bool(signed)
    norm = make_norm(data, signed, zero_based=True, vmin=vmin, vmax=vmax)
    cmap_obj = get_cmap(cmap if cmap is not None else cmap_for(signed))
    tick = FONT_SIZES["tick"]

    if ax is None:
        shown_q = thin_labels(n_query, max_labels)
        shown_k = thin_labels(n_key, max_labels)
        fixed = _max_label_width_in(q_tokens, shown_q, tick) + 0.45 + (1.0 if colorbar else 0.15)
        side = _side_in(n_key, 0.16, 2.6, 7.0)
        if width is not None:  # the matrix takes what the labels and colourbar leave
            side = width - fixed
            if side < MIN_HEATMAP_IN:
                raise ProbeError(
                    f"a heatmap at width={width:g} in leaves {side:.2f} in for the matrix "
                    f"(labels and colourbar take {fixed:.2f} in): use width >= "
                    f"{fixed + MIN_HEATMAP_IN:.1f}, or shorter token labels"
                )
            max_labels = max(1, min(max_labels, int(side * 72 // (tick + 1))))
            shown_k = thin_labels(n_key, max_labels)
        height = (
            (side if width is not None else _side_in(n_query, 0.16, 2.6, 7.0))
            + _max_label_width_in(k_tokens, shown_k, tick)
            + 0.95
        )
        fig = new_figure((width if width is not None else side + fixed, height))
        ax = fig.add_subplot()
    else:
        ax = check_ax(ax)
        fig = root_figure(ax)

    image = ax.imshow(
        data, cmap=cmap_obj, norm=norm, aspect="auto", interpolation="antialiased", origin="upper"
    )
    set_token_ticks(ax, "x", k_tokens, max_labels, tick)
    set_token_ticks(ax, "y", q_tokens, max_labels, tick)
    ax.set_xlabel("key token", fontsize=FONT_SIZES["label"])
    ax.set_ylabel("query token", fontsize=FONT_SIZES["label"])
    if rtl:
        mirror_axes(ax)
    text = make_title(model_name, layer, head, method) if title is None else title
    if text:
        ax.set_title(text, fontsize=FONT_SIZES["title"])
    if colorbar:
        where = {"location": "left"} if rtl else {}
        cbar = span_panels(parent_of(ax).colorbar(image, ax=ax, fraction=0.05, pad=0.02,
                                                  **where), ax)  # as tall as the matrix
        label = colorbar_label or ("signed value" if signed else "attention weight")
        cbar.set_label(label, fontsize=FONT_SIZES["label"])
        cbar.ax.tick_params(labelsize=tick)
    return fig


def mirror_axes(ax: Axes) -> None:
    """Lay a heatmap's key axis out right to left: x inverted (column 0 at the right), the
    y tick labels and the y axis label at the right."""
    left, right = ax.get_xlim()
    ax.set_xlim(max(left, right), min(left, right))
    ax.yaxis.tick_right()
    ax.yaxis.set_label_position("right")


def _grid_figure(
    data: np.ndarray,
    q_tokens: list[str],
    k_tokens: list[str],
    *,
    ncols: int | None,
    cell: float,
    cell_titles: list[str] | None,
    row_labels: list[str] | None,
    col_titles: list[str] | None,
    suptitle: str,
    max_labels: int,
    fontsize: float,
    signed: bool,
    cmap: str | Colormap | None,
    vmin: float | None,
    vmax: float | None,
    colorbar_label: str | None,
    rtl: bool = False,
    width: float | None = None,
    too_narrow: str = "",
    every_label: bool = False,
) -> Figure:
    """Lay ``data [cell, query, key]`` out on a grid with one colour scale and colourbar.

    The layout is computed here, in inches, from the measured label widths (no constrained
    layout: it is slow for the ~150 axes of a model view and the geometry is known anyway).
    Token labels go on the left column and on panels with no panel below them. ``rtl``
    mirrors the whole layout (:func:`mirror_axes` in each panel, the first column at the
    right with the query labels, the colourbar at the left).

    With ``width`` (inches) the figure is that wide: ``ncols=None`` puts as many panels per
    row as fit at about :data:`GRID_CELL_AT_WIDTH_IN` (rows wrap), and the panels take the
    width left; fewer tokens are labelled when a panel is too small for all of them. A panel
    under :data:`MIN_GRID_CELL_IN` raises a ProbeError ending in ``too_narrow`` (the fix).
    ``every_label`` (the head grid): at a ``width`` every token up to ``max_labels`` keeps its
    label, at a smaller font (down to ``MIN_FONT_PT``), then in fewer panels per row (unless
    ``ncols`` is given); where none fits, the labels are thinned at ``MIN_FONT_PT``
    (:func:`~probe.viewers._grid_labels.thinned_layout`). Whenever labels are thinned, a grey
    line under the grid says which (:func:`~probe.viewers._grid_labels.thin_note`, gid
    ``"thinned"``), and at a ``width`` a long title wraps within it.
    """
    from matplotlib.cm import ScalarMappable

    n_cells, n_query, n_key = data.shape
    norm = make_norm(data, signed, zero_based=True, vmin=vmin, vmax=vmax)
    cmap_obj = get_cmap(cmap if cmap is not None else cmap_for(signed))
    line = FONT_SIZES["label"] / 72 * 1.5  # height of one line of label text, inches
    # over every token: which ones are labelled is known only once the panels are sized
    tick_w = _max_label_width_in(q_tokens, np.arange(n_query), fontsize, 10)
    tick_h = _max_label_width_in(k_tokens, np.arange(n_key), fontsize, 10)
    left = 0.1 + line + (line if row_labels else 0.0) + tick_w + 0.08
    bottom = 0.1 + line + tick_h + 0.08
    gap_w = 0.08
    right = 0.15 + 0.12 + 0.45 + line + 0.1
    if width is not None and suptitle:  # a long sentence wraps within the width, around the
        room = min(width + left - right, width - left + right) - 0.2  # grid's centre
        suptitle = "\n".join(wrap_text(part, FONT_SIZES["suptitle"], room * 72)
                              for part in suptitle.split("\n"))
    n_lines = suptitle.count("\n") + 1 if suptitle else 0
    top = 0.1 + FONT_SIZES["suptitle"] / 72 * (1.9 + 1.3 * (n_lines - 1)) * bool(n_lines) + (
        line if (col_titles or cell_titles) else 0.0
    )
    gap_h = 0.08 + (line if cell_titles else 0.0)
    if width is not None:
        fixed_cols = ncols is not None
        if ncols is None:
            ncols = columns_for_width(width, GRID_CELL_AT_WIDTH_IN, fixed=left + right,
                                      gap=gap_w, most=n_cells)
        cell = (width - left - right - (ncols - 1) * gap_w) / ncols
        n_labels = min(max(n_query, n_key), max_labels)
        note_lines = _lines(thin_note(n_query, n_key, n_labels), (width - 0.2) * 72)
        if every_label and cell >= MIN_GRID_CELL_IN:
            try:
                ncols, cell, fontsize = fit_labels(
                    width, ncols, fixed_cols, n_cells, n_labels, fontsize,
                    margins=(left + right, top + bottom + note_lines * line),
                    gaps=(gap_w, gap_h))
            except ProbeError:  # not every label fits: thinned, and the figure says so
                ncols, cell, note_lines = thinned_fit(
                    width, ncols, fixed_cols, n_cells, n_query, n_key, max_labels,
                    (left + right, top + bottom), (gap_w, gap_h), line)
                fontsize = MIN_FONT_PT
        if cell < MIN_GRID_CELL_IN:
            need = min_grid_width(n_cells, ncols if fixed_cols else None,
                                  (left + right, top + bottom + note_lines * line),
                                  (gap_w, gap_h), MIN_GRID_CELL_IN)
            raise ProbeError(
                f"{ncols} panel{'s' if ncols != 1 else ''} per row at width={width:g} in would "
                f"be {max(cell, 0):.2f} in "
                f"each (under {MIN_GRID_CELL_IN:g} in): "
                + (f"use width >= {need:.1f}" if need is not None else
                   f"no width fits {n_cells} panels within {MAX_GRID_HEIGHT_IN:g} in")
                + (f", or {too_narrow}" if too_narrow else "")
            )
        max_labels = max(1, min(max_labels, int(cell * 72 // (fontsize + 1))))
        cell_titles = fit_titles(cell_titles, cell + gap_w, "head ", "H")
        col_titles = fit_titles(col_titles, cell + gap_w, "head ", "H")
        row_labels = fit_titles(row_labels, cell + gap_h, "layer ", "L")
    if ncols is None:
        ncols = min(n_cells, 4)
    thinned = thin_note(n_query, n_key, max_labels)
    nrows = -(-n_cells // ncols)
    grid_w = ncols * cell + (ncols - 1) * gap_w
    grid_h = nrows * cell + (nrows - 1) * gap_h
    if width is not None:  # a grid shrunk to the page height: the spare width around it
        spare = max(0.0, (width - left - grid_w - right) / 2)
        left, right = left + spare, right + spare
    width = left + grid_w + right  # == width when given
    if thinned:  # the line saying so, under "key token", wrapped within the width
        thinned = wrap_text(thinned, FONT_SIZES["label"], (width - 0.2) * 72)
        bottom += line * (thinned.count("\n") + 1)
    height = top + grid_h + bottom
    fig = new_figure((width, height), layout="none")

    for idx in range(n_cells):
        r, c = divmod(idx, ncols)
        x0 = left + c * (cell + gap_w)
        y0 = height - top - (r + 1) * cell - r * gap_h
        if rtl:
            x0 = width - x0 - cell
        ax = fig.add_axes((x0 / width, y0 / height, cell / width, cell / height))
        ax.imshow(data[idx], cmap=cmap_obj, norm=norm, aspect="auto", interpolation="antialiased")
        if idx + ncols < n_cells:
            ax.set_xticks([])
        else:
            set_token_ticks(ax, "x", k_tokens, max_labels, fontsize, max_chars=10)
        if c == 0:
            set_token_ticks(ax, "y", q_tokens, max_labels, fontsize, max_chars=10)
        else:
            ax.set_yticks([])
        if cell_titles is not None:
            ax.set_title(cell_titles[idx], fontsize=title_size(cell_titles), pad=2)
        if col_titles is not None and r == 0:
            ax.set_title(col_titles[c], fontsize=title_size(col_titles), pad=2)
        if row_labels is not None and c == 0:
            ax.set_ylabel(row_labels[r], fontsize=title_size(row_labels))
        if rtl:
            mirror_axes(ax)

    label = colorbar_label or ("signed value" if signed else "attention weight")
    # the colourbar spans the panels, first row's top to last row's bottom
    bar_h, (label,) = bar_length([label], grid_h)
    bar_y = height - top - bar_h
    bar_x = width - (left + grid_w + 0.15) - 0.12 if rtl else left + grid_w + 0.15
    cax = fig.add_axes((bar_x / width, bar_y / height, 0.12 / width, bar_h / height))
    cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap_obj), cax=cax)
    if rtl:
        cbar.ax.yaxis.set_ticks_position("left")
        cbar.ax.yaxis.set_label_position("left")
    cbar.set_label(label, fontsize=FONT_SIZES["label"])
    cbar.ax.tick_params(labelsize=FONT_SIZES["tick"])
    grid_mid_x = (left + grid_w / 2) / width
    grid_mid_y = (height - top - grid_h / 2) / height
    if rtl:
        grid_mid_x = 1 - grid_mid_x
    under = line * (thinned.count("\n") + 1) if thinned else 0.0
    fig.text(grid_mid_x, (0.1 + under) / height, "key token",
             ha="center", va="bottom", fontsize=FONT_SIZES["label"])
    if thinned:
        fig.text(0.5, 0.1 / height, thinned, ha="center", va="bottom",
                 fontsize=FONT_SIZES["label"], color="0.35", gid="thinned")
    fig.text(1 - 0.1 / width if rtl else 0.1 / width, grid_mid_y, "query token",
             ha="right" if rtl else "left", va="center", rotation=90,
             fontsize=FONT_SIZES["label"])
    if suptitle:
        fig.suptitle(suptitle, fontsize=FONT_SIZES["suptitle"], x=grid_mid_x,
                     y=1 - 0.1 / height, va="top")
    return fig


@styled
@sized()
def head_grid(
    attn: Any,
    tokens: Sequence[str] | None = None,
    *,
    query_tokens: Sequence[str] | None = None,
    key_tokens: Sequence[str] | None = None,
    layer: int | str | None = None,
    model_name: str | None = None,
    heads: Sequence[int] | None = None,
    method: str | None = "attention",
    ncols: int | None = None,
    cell_size: float = 2.2,
    max_labels: int = GRID_MAX_LABELS,
    signed: bool | None = None,
    cmap: str | Colormap | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar_label: str | None = None,
    sentence: str | None = None,
    title: str | None = None,
    direction: Direction = "auto",
    width: float | None = None,
) -> Figure:
    """Every head of one layer as small heatmaps sharing one colour scale and colourbar.

    Args:
        attn: ``[head, query, key]`` weights of one layer.
        tokens / query_tokens, key_tokens: as in :func:`head_heatmap`.
        layer, model_name, method: go into the figure title.
        heads: the model's index of each head (default ``0..head-1``), used as panel titles.
        ncols: panels per row (default ``min(head, 4)``).
        cell_size: side of one panel in inches (default 2.2).
        sentence: the input text, shown under the title.
        max_labels: at most this many token labels per axis and panel (default 16; beyond
            it every ``ceil(n / max_labels)``-th token is labelled). Labels are drawn on the
            left column and the bottom panels only.
        signed, cmap, vmin, vmax, colorbar_label, title, direction: as in
            :func:`head_heatmap` (right to left mirrors the whole grid: head 0 at the top
            right, the query labels at the right, the colourbar at the left).
        width: figure width in inches, or ``"single"`` / ``"double"``: the heads wrap into
            rows of as many panels of about 1 in as fit (``ncols`` overrides), the panels take
            the width. Every token (up to ``max_labels``) keeps its label: at a smaller font,
            down to ``MIN_FONT_PT``, then in fewer panels per row (within 9 in of height);
            where even that cannot hold them, every 2nd, 3rd ... token is labelled at
            ``MIN_FONT_PT`` and a line under the grid says so (``every 2nd token labelled (16
            tokens)``). ``cell_size`` is then ignored.

    Returns:
        The ``Figure``; its first axes are the panels, in head order.
    """
    data = as_array(attn, "attn", 3, "[head, query, key]")
    n_heads, n_query, n_key = data.shape
    q_tokens, k_tokens = _token_pair(tokens, query_tokens, key_tokens, n_query, n_key)
    names = _head_names(heads, n_heads, "heads")
    ncols = _check_ncols(ncols, n_heads) if ncols is not None or width is None else None
    signed = is_signed(data) if signed is None else bool(signed)
    text = make_title(model_name, layer, None, method) if title is None else title
    if text and sentence:
        text = f"{text}\n{sentence}"
    return _grid_figure(
        data, q_tokens, k_tokens, ncols=ncols, cell=_check_cell(cell_size),
        cell_titles=[f"head {h}" for h in names], row_labels=None, col_titles=None,
        suptitle=text, max_labels=max_labels, fontsize=FONT_SIZES["small_tick"],
        signed=signed, cmap=cmap, vmin=vmin, vmax=vmax, colorbar_label=colorbar_label,
        rtl=is_rtl(direction, k_tokens),
        width=width, every_label=True,
    )


@styled
@sized()
def model_view(
    attn: Any,
    tokens: Sequence[str] | None = None,
    *,
    query_tokens: Sequence[str] | None = None,
    key_tokens: Sequence[str] | None = None,
    model_name: str | None = None,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    method: str | None = "attention",
    cell_size: float = 1.3,
    max_labels: int = MODEL_VIEW_MAX_LABELS,
    signed: bool | None = None,
    cmap: str | Colormap | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar_label: str | None = None,
    sentence: str | None = None,
    title: str | None = None,
    direction: Direction = "auto",
    width: float | None = None,
) -> Figure:
    """Every layer x head as a grid of small heatmaps (rows: layers, columns: heads).

    Up to ``max_labels`` tokens every token is labelled (left column and bottom row, at
    ``MIN_FONT_PT``): panels grow with the number of tokens so that each label gets its own
    row of the panel.

    Args:
        attn: ``[layer, head, query, key]`` weights of one example (e.g.
            ``trace.attentions[:, 0]``).
        tokens / query_tokens, key_tokens: as in :func:`head_heatmap`.
        model_name, method: go into the figure title.
        layers, heads: the model's index of each layer / head (default ``0..n-1``), used as
            row labels and column titles.
        cell_size: smallest side of one panel in inches (default 1.3).
        sentence: the input text, shown under the title.
        max_labels: at most this many token labels per axis and panel (default 24; beyond it
            every ``ceil(n / max_labels)``-th token is labelled), on the left column and the
            bottom row only.
        signed, cmap, vmin, vmax, colorbar_label, title: as in :func:`head_heatmap`; the
            colour scale is shared by all panels.
        direction: as in :func:`head_grid` (right to left: head 0 in the right column).
        width: figure width in inches, or ``"single"`` / ``"double"``: the panels shrink to
            fit one row of every head (fewer tokens labelled; fonts unchanged). The layers x
            heads matrix never wraps: when a panel would be under 0.3 in, a ProbeError says
            to capture fewer heads or layers (``probe.trace(..., heads=, layers=)``) or to
            plot one layer (:func:`head_grid`, whose heads wrap into rows).

    Returns:
        The ``Figure``; its first axes are the panels, layer-major.
    """
    data = as_array(attn, "attn", 4, "[layer, head, query, key]")
    n_layers, n_heads, n_query, n_key = data.shape
    q_tokens, k_tokens = _token_pair(tokens, query_tokens, key_tokens, n_query, n_key)
    layer_names = _head_names(layers, n_layers, "layers")
    head_names = _head_names(heads, n_heads, "heads")
    signed = is_signed(data) if signed is None else bool(signed)
    text = make_title(model_name, None, None, method) if title is None else title
    if text and sentence:
        text = f"{text}\n{sentence}"
    cell = max(_check_cell(cell_size),
               min(max(n_query, n_key), max_labels) * (MIN_FONT_PT + 1.0) / 72)
    return _grid_figure(
        data.reshape(n_layers * n_heads, n_query, n_key), q_tokens, k_tokens, ncols=n_heads,
        cell=cell, cell_titles=None,
        row_labels=[f"layer {n}" for n in layer_names],
        col_titles=[f"head {h}" for h in head_names], suptitle=text, max_labels=max_labels,
        fontsize=MIN_FONT_PT, signed=signed, cmap=cmap, vmin=vmin,
        vmax=vmax, colorbar_label=colorbar_label, rtl=is_rtl(direction, k_tokens), width=width,
        too_narrow=(f"show fewer of the {n_layers} layers x {n_heads} heads: capture them with "
                    "probe.trace(..., layers=[...], heads=[...]), or plot one layer "
                    "(probe.plot(trace, 'heads', layer=L) or probe render heads --layer L: its "
                    "heads wrap into rows)"),
    )


def _lines(note: str, room_pt: float) -> int:
    """How many lines ``note`` takes wrapped within ``room_pt`` points (0 for none)."""
    return wrap_text(note, FONT_SIZES["label"], room_pt).count("\n") + 1 if note else 0


def _check_ncols(ncols: int | None, n: int) -> int:
    if ncols is None:
        return min(n, 4)
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ProbeError(f"ncols must be a positive integer, got {ncols!r}")
    return int(min(ncols, n))


def _check_cell(cell_size: float) -> float:
    if isinstance(cell_size, bool) or not isinstance(cell_size, (int, float)) or not (
        0.3 <= cell_size <= 10
    ):
        raise ProbeError(f"cell_size must be a number of inches in [0.3, 10], got {cell_size!r}")
    return float(cell_size)
