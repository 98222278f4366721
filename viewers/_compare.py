"""Comparing attribution methods: the same input under several methods with their rank
agreement and faithfulness (:func:`comparison_panel`), and deletion / insertion curves with
their AUC (:func:`curves_view`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from probe._errors import ProbeError
from probe.viewers._direction import Direction, check_direction, is_rtl
from probe.viewers._style import (
    baselines_last,
    is_baseline,
    styled,
    DIVERGING_CMAP,
    FONT_SIZES,
    as_array,
    check_mapping,
    cmap_for,
    format_token,
    get_cmap,
    is_signed,
    make_norm,
    new_figure,
    text_color_on,
    text_width_pt,
    title as make_title,
)
from probe.viewers._width import MIN_PANEL_IN, columns_for_width, sized, wrap_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["comparison_panel"]  # the curves figure: _curves.py


def _is_tokens(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) > 0
        and all(isinstance(t, str) for t in value)
    )


def _normalize_maps(
    maps: Mapping[str, Any], ndim: int, shape_doc: str
) -> tuple[list[str], list[np.ndarray], bool]:
    names = [str(k) for k in maps]
    arrays = [as_array(v, f"maps[{k!r}]", ndim, shape_doc) for k, v in maps.items()]
    signed = any(is_signed(a) for a in arrays)
    out = []
    for a in arrays:
        scale = float(np.max(np.abs(a)))
        out.append(a / scale if scale > 0 else a)
    return names, out, signed


def _check_agreement(
    agreement: Any, methods: Sequence[str] | None, default: list[str]
) -> tuple[np.ndarray, list[str]]:
    # NaN is an undefined agreement (probe.compare of maps with fewer than two units, or a
    # constant map): drawn as "n/a"; it made a one-word text's comparison an error
    matrix = as_array(agreement, "agreement", 2, "[m, m]", allow_nonfinite=True)
    if np.isinf(matrix).any():
        raise ProbeError("agreement contains inf: pass rank correlations in [-1, 1] (NaN for "
                         "an undefined one)")
    m = matrix.shape[0]
    if matrix.shape[1] != m:
        raise ProbeError(
            f"agreement must be a square [m, m] matrix, got shape {list(matrix.shape)}"
        )
    names = list(default) if methods is None else [str(n) for n in methods]
    if len(names) != m:
        raise ProbeError(
            f"agreement is {m} x {m} but there are {len(names)} method names: pass "
            "methods= with one name per row"
        )
    if np.any(np.abs(matrix) > 1 + 1e-6):
        raise ProbeError(
            "agreement values must be rank correlations in [-1, 1] (Spearman); got values "
            f"up to {float(np.max(np.abs(matrix))):.3g}"
        )
    return matrix, names


def _check_faithfulness(faithfulness: Any) -> tuple[list[str], list[str], list[list[str]]]:
    table = check_mapping(faithfulness, "faithfulness", "{method: {metric: value}}")
    methods = [str(k) for k in table]
    metrics: list[str] = []
    for method, scores in table.items():
        if not isinstance(scores, Mapping):
            raise ProbeError(
                f"faithfulness[{method!r}] must be a dict {{metric: value}}, got "
                f"{type(scores).__name__}"
            )
        for metric in scores:
            if str(metric) not in metrics:
                metrics.append(str(metric))
    cells = []
    for method in table:
        row = []
        for metric in metrics:
            scores = table[method]
            value = scores.get(metric, None)
            if value is None:
                row.append("\u2013")
                continue
            try:
                row.append(f"{float(value):.3f}")
            except (TypeError, ValueError):
                raise ProbeError(
                    f"faithfulness[{method!r}][{metric!r}] must be a number, got {value!r}"
                ) from None
        cells.append(row)
    return methods, metrics, cells


def agreement_caption(units: int | Sequence[int], unit: str, width_in: float) -> str:
    """The line under the agreement matrix: N and what bold means at that N, wrapped."""
    from probe.evaluation._significance import significance_note

    return wrap_text(significance_note(units, "spearman", unit), FONT_SIZES["annotation"],
                     width_in * 72)


def _draw_agreement(
    fig: Figure, rect_in: tuple[float, float, float, float], matrix: np.ndarray,
    names: list[str], units: int | Sequence[int], caption: str,
    caption_at: tuple[float, float],
) -> None:
    """Annotated Spearman matrix in ``rect_in`` = (left, top, side, side) inches; a value in
    bold only when distinguishable from chance over ``units`` (p < 0.05), ``caption`` (N and
    what bold means) centred at ``caption_at`` = (x, top) inches."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from probe.evaluation._significance import ALPHA, agreement_p_value

    fig_w, fig_h = fig.get_size_inches()
    left, top, side, _ = rect_in
    ax = fig.add_axes((left / fig_w, 1 - (top + side) / fig_h, side / fig_w, side / fig_h))
    cmap = get_cmap(DIVERGING_CMAP).with_extremes(bad="0.92")  # NaN: undefined, light grey
    norm = Normalize(-1.0, 1.0)
    m = len(names)
    order = baselines_last(names)
    matrix = matrix[np.ix_(order, order)]
    names = [names[i] for i in order]
    ax.imshow(matrix, cmap=cmap, norm=norm, interpolation="nearest")
    labels = [format_token(n, 24) for n in names]
    ax.set_xticks(range(m), labels, rotation=90, fontsize=FONT_SIZES["tick"])
    ax.set_yticks(range(m), labels, fontsize=FONT_SIZES["tick"])
    ax.tick_params(length=2)
    for tick_labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        for label, name in zip(tick_labels, names):
            if is_baseline(name):
                label.set_color("0.4")
                label.set_fontstyle("italic")
    annot = FONT_SIZES["annotation"]  # >= 8 pt at the saved size: readable when printed
    for i in range(m):
        for j in range(m):
            value = matrix[i, j]
            if np.isnan(value):
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=annot, color="0.3")
                continue
            shown = f"{value:.2f}" if round(value, 2) != 0 else "0.00"
            # the diagonal is 1 by definition: evidence of nothing
            significant = i != j and agreement_p_value(float(value), units) < ALPHA
            ax.text(j, i, shown.replace("-", "\u2212"), ha="center", va="center",
                    fontsize=annot, color=text_color_on(cmap(norm(value))),
                    fontweight="bold" if significant else "normal")
    ax.set_title("rank agreement (Spearman \u03c1)", fontsize=FONT_SIZES["title"], pad=6)
    fig.text(caption_at[0] / fig_w, 1 - caption_at[1] / fig_h, caption, ha="center",
             va="top", fontsize=FONT_SIZES["annotation"], color="0.25", gid="agreement-n")
    cax = fig.add_axes(((left + side + 0.1) / fig_w, 1 - (top + side) / fig_h, 0.12 / fig_w,
                        side / fig_h))
    cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    cbar.set_label("Spearman \u03c1", fontsize=FONT_SIZES["label"])
    cbar.ax.tick_params(labelsize=FONT_SIZES["tick"])


#: Which direction is better for the usual faithfulness metrics (shown as arrows).
BETTER: dict[str, str] = {
    "deletion auc": "\u2193", "insertion auc": "\u2191", "comprehensiveness": "\u2191",
    "sufficiency": "\u2193", "pointing game": "\u2191", "mass on object": "\u2191",
}


def metric_header(name: str) -> str:
    """A table header with an arrow for the better direction (``"deletion AUC \u2193"``)."""
    label = format_token(name, 24)
    arrow = BETTER.get(str(name).lower().strip())
    return f"{label} {arrow}" if arrow and arrow not in label else label


def _row_label(name: str) -> str:
    label = format_token(name, 24)
    return f"{label} (baseline)" if is_baseline(name) and "baseline" not in label else label


def _draw_table(
    fig: Figure, rect_in: tuple[float, float, float, float], methods: list[str],
    metrics: list[str], cells: list[list[str]],
) -> None:
    """Faithfulness table in ``rect_in`` = (left, top, width, height) inches."""
    fig_w, fig_h = fig.get_size_inches()
    left, top, width, height = rect_in
    ax = fig.add_axes((left / fig_w, 1 - (top + height) / fig_h, width / fig_w, height / fig_h))
    ax.set_axis_off()
    order = baselines_last(methods)
    methods, cells = [methods[i] for i in order], [cells[i] for i in order]
    headers = [metric_header(n) for n in metrics]
    widths = [max(text_width_pt(h, FONT_SIZES["annotation"], "bold") / 72 + 0.25, 0.75)
              for h in headers]
    table = ax.table(cellText=cells, rowLabels=[_row_label(n) for n in methods],
                     colLabels=headers, cellLoc="center", rowLoc="right",
                     colWidths=[w / sum(widths) for w in widths], bbox=(0.0, 0.0, 1.0, 1.0))
    table.auto_set_font_size(False)
    table.set_fontsize(FONT_SIZES["annotation"])
    for (r, c), cell in table.get_celld().items():
        cell.set_edgecolor("0.75")
        if r == 0 or c == -1:
            cell.set_text_props(fontweight="bold")
            cell.set_facecolor("0.93")
        if r > 0 and is_baseline(methods[r - 1]):
            cell.set_text_props(color="0.4", fontstyle="italic")
    ax.set_title("faithfulness", fontsize=FONT_SIZES["title"], pad=6)


def _bar_labels(kinds: Sequence[bool]) -> list[str]:
    """The colourbar labels of an image comparison whose maps are signed (``True``) or not:
    one per kind present, unsigned first."""
    both = len(set(kinds)) > 1
    if both:  # say which panels each bar belongs to
        return [("signed maps (\u00b1): attribution" if kind else "unsigned maps: score")
                + "\n(normalized per method)" for kind in sorted(set(kinds))]
    return [("attribution" if kind else "score") + "\n(normalized per method)"
            for kind in sorted(set(kinds))]


@styled
@sized("compare fewer methods (methods=)")
def comparison_panel(
    image_or_tokens: Any,
    maps: Mapping[str, Any],
    *,
    agreement: Any = None,
    methods: Sequence[str] | None = None,
    faithfulness: Mapping[str, Mapping[str, float]] | None = None,
    model_name: str | None = None,
    title: str | None = None,
    alpha: float = 0.65,
    ncols: int | None = None,
    cell_size: float = 2.0,
    width: float | None = None,
    image_title: str | None = "input",
    image_size: tuple[int, int] | None = None,
    region: tuple[float, float, float, float] | None = None,
    direction: Direction = "auto",
    units: int | Sequence[int] | None = None,
) -> Figure:
    """One input under several attribution methods, with their agreement and faithfulness.

    Top: the input once per method, titled with the method: for an image, the input in its
    own colours first (``image_title``), then each map over a grey copy of it; for text,
    token strips (one labelled block per method). Baseline methods (``random``) come last,
    styled as baselines (grey, dashed frame, italic), in the maps, the agreement matrix and
    the table; table headers of known metrics carry an arrow for the better direction. Each map is
    divided by its largest
    magnitude so methods on different scales share a colourbar: for images, unsigned maps
    use ``viridis`` on ``[0, 1]`` and signed maps ``RdBu_r`` on ``[-1, 1]`` (one colourbar
    each); for text, one colourbar (``RdBu_r`` when any map is signed, else ``Reds``). Below, when
    given: the agreement matrix as an annotated heatmap (``RdBu_r`` from -1 to 1) and the
    faithfulness scores as a table beside it.

    Args:
        image_or_tokens: an image ``[H, W, 3]`` / ``[3, H, W]`` in ``0..1``, or a token list.
        maps: ``{method: map}``, each ``[h, w]`` for an image or ``[n]`` for tokens.
        agreement: ``[m, m]`` rank correlations (Spearman) between methods; ``nan`` (undefined:
            fewer than two units, or a constant map) is drawn as "n/a". A value is bold only
            when distinguishable from chance at its N (two-sided ``p < 0.05``, permutation
            test, :mod:`probe.evaluation._significance`), and a line under the matrix says N
            and what bold means: over 3 tokens no value is bold.
        units: how many units (tokens, patches) the agreement is over: one count, or one per
            item when it is a mean over items (``AgreementTable.units``); default: the units
            drawn (the tokens, or the cells of a map).
        methods: names of the ``m`` agreement rows / columns (default: the ``maps`` keys).
        faithfulness: ``{method: {metric: value}}`` (e.g. deletion / insertion AUC); missing
            entries show as a dash; ``None`` or ``{}`` leaves the table out.
        model_name, title: the figure title (default ``"<model> · method comparison"``).
        alpha: opacity of image overlays (over the grey image).
        ncols: image panels per row (default: the fewest empty cells, up to 6 per row);
            cell_size: their longer side.
        width: figure width in inches, or ``"single"`` / ``"double"``. Text input: tokens
            wrap at it (default 9 in; the figure shrinks to the text when it is shorter, and
            is then centred at the width when one is given). Image input: as many panels per
            row as fit at 1 in each (``ncols`` overrides), sized to the width (``cell_size``
            is then ignored); default ``cell_size`` panels. Fonts unchanged; when the
            agreement matrix and the table do not fit beside each other at the width, the
            figure is scaled to it (an error if its text would print under 6 pt).
        image_title: title of the input panel (e.g. ``"input · true disk · predicted
            disk"``); ``None`` leaves the input panel out.
        image_size, region: images only, as in :func:`~probe.viewers.saliency_overlay`: draw
            the image at its original proportions and the maps over the region the model saw.
        direction: text only, as in :func:`~probe.viewers.token_strip` (``"auto"``: right
            to left for an Arabic or Hebrew sentence).

    Returns:
        The ``Figure``.
    """
    from probe.viewers._heatmaps import _check_cell, _check_ncols
    from probe.viewers._grid import fill_columns, overlay_grid, overlay_grid_size
    from probe.viewers._saliency import REGION_NOTE, _check_alpha, as_image, check_placement
    from probe.viewers._tokens import axes_width_pt, draw_strip, points_axes

    maps = check_mapping(maps, "maps", "{method: map}")
    maps = {k: maps[k] for k in [list(maps)[i] for i in baselines_last([str(k) for k in maps])]}
    text_mode = _is_tokens(image_or_tokens)
    text = make_title(model_name, None, None, "method comparison") if title is None else title
    if text_mode:
        if image_size is not None or region is not None:
            raise ProbeError("image_size and region place an image: drop them for tokens")
        tokens = [str(t) for t in image_or_tokens]
        rtl = is_rtl(direction, tokens)
        names, arrays, signed = _normalize_maps(maps, 1, "[n]")
        for name, a in zip(names, arrays):
            if len(a) != len(tokens):
                raise ProbeError(
                    f"maps[{name!r}] has {len(a)} scores but there are {len(tokens)} tokens: "
                    "pass one score per token"
                )
    else:
        if direction != "auto":
            check_direction(direction)
            raise ProbeError("direction lays out tokens: drop it for an image")
        image = as_image(image_or_tokens)
        names, arrays, signed = _normalize_maps(maps, 2, "[h, w]")
        alpha = _check_alpha(alpha)
        drawn, box = check_placement(image, image_size, region)
        if box is not None and image_title is not None:
            image_title = f"{image_title}\n({REGION_NOTE})"
    matrix = agreement_names = None
    if agreement is not None:
        matrix, agreement_names = _check_agreement(agreement, methods, names)
        if units is None:
            units = len(tokens) if text_mode else int(arrays[0].size)
        elif isinstance(units, bool) or not (
                isinstance(units, (int, np.integer)) and units >= 0 or
                isinstance(units, Sequence) and not isinstance(units, str) and units and all(
                    isinstance(u, (int, np.integer)) and not isinstance(u, bool) and u >= 0
                    for u in units)):
            raise ProbeError(f"units must be a count of units or one count per item, got "
                             f"{units!r}")
        unit = "tokens" if text_mode else ("patches" if arrays[0].ndim == 2 else "units")
    table = _check_faithfulness(faithfulness) if faithfulness else None

    norm = make_norm(np.concatenate([a.ravel() for a in arrays]), signed, zero_based=True)
    cmap = get_cmap(cmap_for(signed, behind_text=True))
    bar_label = ("attribution" if signed else "score") + " (normalized per method)"

    # ---- sizes of the blocks, in inches
    margin, gap = 0.2, (0.1 if text_mode else 0.35)
    top_h = 0.15 + (0.4 if text else 0.0)
    if text_mode:
        if width is not None and (isinstance(width, bool) or not isinstance(width, (int, float))
                                  or not 3 <= width <= 40):
            raise ProbeError(f"width must be in [3, 40] inches, got {width!r}")
        block_w = 9.0 if width is None else float(width) - 2 * margin
        scratch = new_figure((block_w, 2.0), layout="none")  # measure the strip's height
        scratch_ax = scratch.add_axes((0, 0, 1, 1))
        strip_h = draw_strip(scratch_ax, tokens, list(zip(names, arrays)),
                             width_pt=(block_w - 2 * margin) * 72, norm=norm, cmap=cmap,
                             fontsize=FONT_SIZES["token"]) / 72
        used_w = max(p.get_x() + p.get_width() for p in scratch_ax.patches) / 72
        block_w = max(min(block_w, used_w + 2 * margin + 0.05), 4.4)
        maps_h = strip_h + 0.85
    else:
        n_panels = len(arrays) + (image_title is not None)
        cell = _check_cell(cell_size)
        n_bars = len({is_signed(a) for a in arrays})  # one colourbar per kind of map
        if width is not None:  # panels and colourbars fill the width
            room = width - 2 * margin - 1.0 * n_bars
            if ncols is None:
                ncols = columns_for_width(room, MIN_PANEL_IN, gap=0.12, most=n_panels)
            cell = max((room - 0.12 * (min(ncols, n_panels) - 1)) / min(ncols, n_panels), 0.3)
        cols = fill_columns(n_panels) if ncols is None else _check_ncols(ncols, n_panels)
        lines = 1 + max(t.count("\n") for t in [*names, image_title or ""])
        kinds = [is_signed(a) for a in arrays]
        both = len(set(kinds)) > 1
        titles = [f"{n} \u00b1" if both and k else n for n, k in zip(names, kinds)]
        block_w, maps_h = overlay_grid_size(image, n_panels, cols, cell, _bar_labels(kinds),
                                            lines, drawn,
                                            [*titles, image_title or ""])
    bottom_h = bottom_w = 0.0
    if matrix is not None:
        m = len(agreement_names)
        side = min(max(1.9, 0.42 * m + 0.3), 6.0)  # >= 0.42 in per cell for 8 pt numbers
        name_w = max(text_width_pt(format_token(n, 24), FONT_SIZES["tick"])
                     for n in agreement_names) / 72
        agree_w = name_w + 0.1 + side + 1.0
        caption = agreement_caption(units, unit, agree_w)
        caption_h = (caption.count("\n") + 1) * 1.2 * FONT_SIZES["annotation"] / 72 + 0.1
        agree_h = 0.35 + side + name_w + 0.2 + caption_h
        bottom_w += agree_w
        bottom_h = max(bottom_h, agree_h)
    if table is not None:
        t_methods, metrics, cells = table
        row_w = max(text_width_pt(_row_label(n), FONT_SIZES["annotation"], "bold")
                    for n in t_methods) / 72 + 0.2
        col_w = [max(text_width_pt(metric_header(n), FONT_SIZES["annotation"], "bold") / 72
                     + 0.25, 0.75) for n in metrics]
        table_w = row_w + sum(col_w)
        table_h = 0.22 * (len(t_methods) + 1)
        bottom_w += table_w + (0.5 if matrix is not None else 0.0)
        bottom_h = max(bottom_h, table_h + 0.35)
    fig_w = max(block_w, bottom_w) + 2 * margin
    if width is not None and fig_w < width:  # centred at the width asked for
        fig_w = float(width)
    fig_h = top_h + maps_h + (gap + bottom_h if bottom_h else 0.0) + 0.15
    fig = new_figure((fig_w, fig_h), layout="none")

    # ---- the maps
    if text_mode:
        strip_w = block_w - 2 * margin  # the width the strip was measured at
        ax = fig.add_axes(((fig_w - strip_w) / 2 / fig_w, 1 - (top_h + strip_h) / fig_h,
                           strip_w / fig_w, strip_h / fig_h))
        height_pt = draw_strip(ax, tokens, list(zip(names, arrays)),
                               width_pt=axes_width_pt(ax), norm=norm, cmap=cmap,
                               fontsize=FONT_SIZES["token"], rtl=rtl)
        points_axes(ax, axes_width_pt(ax), height_pt)
        from matplotlib.cm import ScalarMappable

        bar_w = min(4.0, strip_w)
        cax = fig.add_axes(((fig_w - bar_w) / 2 / fig_w, 1 - (top_h + strip_h + 0.35) / fig_h,
                            bar_w / fig_w, 0.12 / fig_h))
        cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax,
                            orientation="horizontal")
        cbar.set_label(bar_label, fontsize=FONT_SIZES["label"])
        cbar.ax.tick_params(labelsize=FONT_SIZES["tick"])
    else:
        # unsigned maps on the sequential scale, signed ones on the diverging scale
        colorbars, scale_of = [], {}
        for kind, label in zip(sorted(set(kinds)), _bar_labels(kinds)):
            scale_of[kind] = len(colorbars)
            colorbars.append(
                (make_norm(np.array([-1.0, 1.0] if kind else [0.0, 1.0]), kind),
                 get_cmap(cmap_for(kind)), label)
            )
        overlay_grid(fig, image, arrays, titles, origin=((fig_w - block_w) / 2, top_h),
                     ncols=cols, cell=cell, scales=[scale_of[k] for k in kinds],
                     colorbars=colorbars, alpha=alpha, image_title=image_title, size=drawn,
                     region=box)

    # ---- agreement and faithfulness, centred below
    y = top_h + maps_h + gap
    x = (fig_w - bottom_w) / 2
    if matrix is not None:
        _draw_agreement(fig, (x + name_w + 0.1, y + 0.35, side, side), matrix,
                        agreement_names, units, caption,
                        (x + agree_w / 2, y + 0.35 + side + name_w + 0.2))
        x += agree_w + 0.5
    if table is not None:
        _draw_table(fig, (x + row_w, y + 0.35, sum(col_w), table_h), t_methods, metrics, cells)
    if text:
        fig.suptitle(text, fontsize=FONT_SIZES["suptitle"], y=1 - 0.12 / fig_h, va="top")
    return fig
