"""Link diagram: attention as lines between two token columns (:func:`link_view`); the
coreference view is in :mod:`probe.viewers._coref`.

The link view follows the idea of bertviz's head view as a static figure: query tokens on
the left, key tokens on the right, one line per (query, key) pair whose opacity is the
attention weight, one colour per head (heads keep their colour whichever subset is shown).
A right-to-left sentence (``direction="auto"`` and Arabic or Hebrew tokens, or
``direction="rtl"``) is mirrored: query tokens on the right, key tokens on the left.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from probe._errors import ProbeError
from probe.viewers._direction import Direction, is_rtl
from probe.viewers._style import (
    styled,
    FONT_SIZES,
    LINK_MAX_LABELS,
    as_array,
    categorical_colors,
    check_ax,
    format_token,
    is_signed,
    new_figure,
    root_figure,
    text_width_pt,
    thin_labels,
    title as make_title,
)
from probe.viewers._width import sized

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["link_view"]

_LINE_AREA_IN = 2.4  # width of the band holding the lines, inches
_ROW_IN = 0.2  # vertical pitch of one token, inches (shrinks for long inputs)
_MAX_HEIGHT_IN = 14.0
_HIGHLIGHT = "#1f77b4"  # the chosen word / query (matches tab10 blue)
_FADED = (0.55, 0.55, 0.55)  # the other queries' lines beside a highlighted word: grey ...
_FADE = 0.25  # ... at a quarter of their weight's opacity, shared by the heads drawn (their
# overlaid lines of one pair add up to about a quarter of the heads' mean weight)
_KEY_COLOR = (0.2, 0.2, 0.2, 1.0)  # the opacity key beside several heads' colours


def _select_heads(heads: Sequence[int] | None, n_heads: int) -> list[int]:
    if heads is None:
        return list(range(n_heads))
    if isinstance(heads, (int, np.integer)) and not isinstance(heads, bool):
        heads = [int(heads)]
    if isinstance(heads, str) or not isinstance(heads, Sequence) or not heads:
        raise ProbeError(f"heads must be None or a non-empty list of head indices, got {heads!r}")
    out = []
    for h in heads:
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or not 0 <= h < n_heads:
            raise ProbeError(
                f"head index {h!r} is out of range: attn has {n_heads} heads (0..{n_heads - 1})"
            )
        out.append(int(h))
    return out


@styled
@sized()
def link_view(
    attn: Any,
    tokens: Sequence[str] | None = None,
    *,
    query_tokens: Sequence[str] | None = None,
    key_tokens: Sequence[str] | None = None,
    heads: Sequence[int] | int | None = None,
    head: int | str | None = None,
    threshold: float = 0.01,
    query: int | None = None,
    normalize: bool = False,
    layer: int | str | None = None,
    model_name: str | None = None,
    method: str | None = "attention",
    max_labels: int = LINK_MAX_LABELS,
    linewidth: float = 1.5,
    highlight: int | Sequence[int] | None = None,
    head_names: Sequence[int | str] | None = None,
    sentence: str | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    direction: Direction = "auto",
) -> Figure:
    """Attention as lines from query tokens (left) to key tokens (right).

    A key below the columns says what the opacity means (three sample lines: weight 0.1,
    0.5 and 1, or the fraction of the head's largest weight with ``normalize=True``), in the
    head's colour for one head and in dark grey over several (whose legend gives the
    colours, in as many columns as fit under the diagram).

    Args:
        attn: ``[head, query, key]`` (one layer, all heads) or ``[query, key]`` (one head).
        tokens: one label per position for self-attention.
        query_tokens, key_tokens: left and right labels for cross-attention.
        heads: which heads of a ``[head, query, key]`` input to overlay (indices into the
            first axis); ``None`` draws all. Head ``i`` always gets colour ``i`` of
            ``categorical_colors`` (``tab10``, then light ``tab20``), alone or overlaid.
        head: the head's name for the title when ``attn`` is ``[query, key]``.
        threshold: lines for weights below it are not drawn (they would be nearly invisible;
            default 0.01). Use 0 to draw every pair.
        query: draw only the lines of this query position, and highlight its label.
        normalize: ``False`` (default): a line's opacity is its weight. ``True``: weight
            divided by the head's largest weight, for heads with flat attention.
        layer, model_name, method: go into the title.
        max_labels: beyond this many tokens per column (default 60) only every
            ``ceil(n / max_labels)``-th label is written; all lines are still drawn.
        linewidth: line width in points.
        highlight: a query position, or several (every token of a word of several tokens),
            to highlight (blue bold label on a light box): its lines are drawn on top in
            their heads' colours, twice as wide, and every other query's lines in faint grey
            behind them (thinner, at a quarter of their opacity divided among the heads
            drawn, so 12 overlaid heads stay as faint as one), so the word's links by head
            stand out; the key names the grey lines "other queries".
        head_names: the model's index of each head of the first axis (default
            ``0..head-1``), for the title and the legend.
        sentence: the input text, shown under the title.
        title: replaces the generated title (``""`` for none).
        ax: draw into this axes (axis off) instead of a new figure; token labels keep their
            font size, so give it about the width a new figure would get.
        direction: ``"auto"`` (default: right to left when the tokens' first strong letter
            is, :func:`probe._text.text_direction`), ``"ltr"`` or ``"rtl"``. Right to left
            mirrors the view: query tokens on the right, key tokens on the left.

    Returns:
        The ``Figure``. Each drawn head is a ``LineCollection`` in ``ax.collections`` (gid
        ``"head <i>"``) whose segments run from ``(x_query, query)`` to ``(x_key, key)``
        in row-major order (``x_query < x_key`` left to right, ``>`` right to left) and
        whose RGBA alpha is the line's opacity. With ``highlight`` the chosen positions'
        lines are ``"head <i> highlight"`` and ``"head <i>"`` holds the other queries' faint
        grey lines.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    data = as_array(attn, "attn", (2, 3), "[head, query, key] or [query, key]",
                    allow_nonfinite=True)  # checked below on the heads drawn only
    single = data.ndim == 2
    if single:
        if heads is not None:
            raise ProbeError(
                "heads= selects heads of a [head, query, key] input; for one [query, key] "
                "matrix pass head= (its name for the title) instead"
            )
        data = data[None]
    n_heads, n_query, n_key = data.shape
    selected = [0] if single else _select_heads(heads, n_heads)
    for h in selected:
        if not np.all(np.isfinite(data[h])):
            where = "" if single else f" head {h}"
            raise ProbeError(f"attn{where} contains NaN or inf: replace them first, e.g. with "
                             "torch.nan_to_num" + ("" if single else ", or draw other heads "
                                                   "(heads=)"))
    data = np.where(np.isfinite(data), data, 0.0)  # heads not drawn: never read, now safe
    from probe.viewers._heatmaps import _token_pair

    q_tokens, k_tokens = _token_pair(tokens, query_tokens, key_tokens, n_query, n_key)
    rtl = is_rtl(direction, q_tokens, k_tokens)
    if is_signed(data[selected]):
        raise ProbeError(
            "attn has negative values: the link view draws attention weights (opacity = weight); "
            "use head_heatmap for signed values"
        )
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
        raise ProbeError(f"threshold must be a number >= 0, got {threshold!r}")
    if query is not None and (
        isinstance(query, bool) or not isinstance(query, (int, np.integer))
        or not 0 <= query < n_query
    ):
        raise ProbeError(f"query must be a position in 0..{n_query - 1}, got {query!r}")

    lit = _positions(highlight, n_query)
    names = [str(h) for h in range(n_heads)] if head_names is None else [
        str(h) for h in head_names]
    if len(names) != n_heads:
        raise ProbeError(f"head_names must name each of the {n_heads} heads, got {head_names!r}")
    marked = [int(query)] if query is not None else lit

    fontsize = FONT_SIZES["token"]
    n_rows = max(n_query, n_key)
    shown_q, shown_k = thin_labels(n_query, max_labels), thin_labels(n_key, max_labels)
    q_labels = {int(i): format_token(q_tokens[i]) for i in shown_q}
    k_labels = {int(i): format_token(k_tokens[i]) for i in shown_k}
    for i in marked:
        q_labels[i] = format_token(q_tokens[i])
    label_l = max(text_width_pt(t, fontsize, "bold") for t in q_labels.values()) / 72 + 0.05
    label_r = max(text_width_pt(t, fontsize, "bold") for t in k_labels.values()) / 72 + 0.05
    gap = 0.08
    total_w = label_l + gap + _LINE_AREA_IN + gap + label_r
    x_left, x_right = label_l + gap, label_l + gap + _LINE_AREA_IN
    if rtl:  # mirrored: the query column (and its label band) on the right
        total_w = label_r + gap + _LINE_AREA_IN + gap + label_l
        x_left, x_right = total_w - x_left, total_w - x_right
    side = -1.0 if rtl else 1.0  # +1: labels left of the query line, right of the key line

    text = title
    if text is None:
        head_part: Any = head if single else (
            names[selected[0]] if len(selected) == 1 else [names[h] for h in selected])
        text = make_title(model_name, layer, head_part, method)
    if text and sentence:
        text = f"{text}\n{sentence}"
    show_legend = not single and len(selected) > 1
    colors = categorical_colors(n_heads) if not single else categorical_colors(1)
    fade = bool(lit) and query is None  # other queries' lines faint grey
    entries = [f"head {names[h]}" for h in selected] if show_legend else []
    entry_w = max((text_width_pt(e, FONT_SIZES["legend"]) for e in entries),
                  default=0.0) / 72 + 0.5
    key_title = ("line opacity = weight / the head's largest weight" if normalize
                 else "line opacity = attention weight")
    key_h = 0.5
    samples = ("0.1", "0.5", "1", *(["other queries"] if fade else []))
    key_w = max(text_width_pt(key_title, FONT_SIZES["legend"]) / 72,
                sum(text_width_pt(t, FONT_SIZES["legend"]) / 72 + 0.45 for t in samples)) + 0.3
    # the legend no wider than the diagram and its key: more rows, not a wider figure
    legend_cols = max(1, min(len(entries), 6, int(max(total_w, key_w) // entry_w))) \
        if entries else 1
    legend_h = (-(-len(entries) // legend_cols) * 0.2 + 0.15) if entries else 0.0
    legend_w = legend_cols * entry_w if entries else 0.0

    if ax is None:
        pitch = min(_ROW_IN, (_MAX_HEIGHT_IN - 1.0) / max(n_rows, 1))
        body_h = max(n_rows * pitch, 1.0)
        n_title_lines = text.count("\n") + 1 if text else 0
        top = 0.35 + 0.2 * n_title_lines + (0.12 if text else 0.0)
        bottom = 0.12 + legend_h + key_h
        title_w = max((text_width_pt(t, FONT_SIZES["title"]) for t in text.split("\n")),
                      default=0.0) / 72 if text else 0.0
        width = max(total_w, title_w, legend_w, key_w) + 0.4
        height = top + body_h + bottom
        fig = new_figure((width, height), layout="none")
        ax = fig.add_axes(((width - total_w) / 2 / width, bottom / height, total_w / width,
                           body_h / height))
    else:
        ax = check_ax(ax)
        fig = root_figure(ax)
    ax.set_xlim(0, total_w)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.set_axis_off()
    q_off, k_off = (n_rows - n_query) / 2, (n_rows - n_key) / 2

    def segments(h: int, mask: np.ndarray, width: float, gid: str, z: float,
                 faded: bool = False) -> None:
        w = data[h]
        scale = float(w.max()) if normalize and w.max() > 0 else 1.0
        ii, jj = np.nonzero(mask)  # row-major: query by query
        if not len(ii):
            return
        segs = np.stack(
            [np.stack([np.full(len(ii), x_left), ii + q_off], axis=1),
             np.stack([np.full(len(jj), x_right), jj + k_off], axis=1)], axis=1
        )
        rgba = np.tile(np.asarray((*_FADED, 1.0) if faded else colors[h], dtype=float),
                       (len(ii), 1))
        rgba[:, 3] = np.minimum(1.0, w[ii, jj] / scale) * (
            _FADE / len(selected) if faded else 1.0)
        coll = LineCollection(segs, colors=rgba, linewidths=width, capstyle="round", zorder=z)
        coll.set_gid(gid)
        ax.add_collection(coll)

    for h in selected:
        mask = data[h] >= max(float(threshold), 1e-12)
        if query is not None:
            mask[np.arange(n_query) != query] = False
        if fade:
            rest = mask.copy()
            rest[lit] = False
            segments(h, rest, 0.6 * linewidth, f"head {h}", 2.0, faded=True)
            own = mask & np.isin(np.arange(n_query), lit)[:, None]
            segments(h, own, 2 * linewidth, f"head {h} highlight", 2.5)
        else:
            segments(h, mask, linewidth, f"head {h}", 2.0)

    for i, label in q_labels.items():
        chosen = i in marked
        ax.text(
            x_left - side * gap / 2, i + q_off, label, ha="left" if rtl else "right",
            va="center_baseline",
            fontsize=fontsize, fontweight="bold" if chosen else "normal",
            color=_HIGHLIGHT if chosen else "black",
            bbox=({"boxstyle": "round,pad=0.15", "facecolor": "#dbe9f6", "edgecolor": _HIGHLIGHT,
                   "linewidth": 0.8} if chosen else None),
        )
    for j, label in k_labels.items():
        ax.text(x_right + side * gap / 2, j + k_off, label, ha="right" if rtl else "left",
                va="center_baseline", fontsize=fontsize)
    q_ha, k_ha = ("left", "right") if rtl else ("right", "left")
    for x, name, ha in ((x_left - side * gap / 2, "query", q_ha),
                        (x_right + side * gap / 2, "key", k_ha)):
        ax.annotate(name, (x, 1), xycoords=("data", "axes fraction"), xytext=(0, 6),
                    textcoords="offset points", ha=ha, va="bottom",
                    fontsize=FONT_SIZES["label"], fontweight="bold", color="0.3")
    if entries:
        handles = [Line2D([], [], color=colors[h], lw=2.5) for h in selected]
        heads_legend = ax.legend(
            handles, entries, loc="upper center",
            bbox_to_anchor=(0.5, 0), ncols=legend_cols, fontsize=FONT_SIZES["legend"],
            frameon=False, handlelength=1.4, columnspacing=1.0, borderaxespad=0.3,
        )
        ax.add_artist(heads_legend)
    # the opacity key: the same line drawn at three weights, in the colour of the one head
    # drawn, or dark grey beside several heads' colours (the legend above gives them)
    key_color = colors[selected[0]] if len(selected) == 1 else _KEY_COLOR
    key_handles = [Line2D([], [], color=key_color, alpha=float(a), lw=2.5) for a in samples[:3]]
    if fade:  # the other queries' lines, as drawn at weight 1
        key_handles.append(Line2D([], [], color=_FADED, alpha=_FADE, lw=0.6 * 2.5))
    fig_h_in = float(root_figure(ax).get_size_inches()[1])
    ax_h_in = ax.get_position().height * fig_h_in
    key_y = -(legend_h / ax_h_in if ax_h_in > 0 else 0.0)
    ax.legend(
        key_handles, list(samples), title=key_title, loc="upper center",
        bbox_to_anchor=(0.5, key_y), ncols=len(samples), fontsize=FONT_SIZES["legend"],
        title_fontsize=FONT_SIZES["legend"], frameon=False, handlelength=2.0,
        columnspacing=1.2, borderaxespad=0.3,
    )
    if text:
        ax.set_title(text, fontsize=FONT_SIZES["title"], pad=22)
    return fig


def _positions(highlight: int | Sequence[int] | None, n_query: int) -> list[int]:
    """``highlight`` as a sorted list of distinct query positions (empty for ``None``)."""
    if highlight is None:
        return []
    many = isinstance(highlight, (list, tuple, range, np.ndarray))
    items = list(highlight) if many else [highlight]
    if not items or any(
        isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n_query
        for i in items
    ):
        raise ProbeError(
            f"highlight must be a position in 0..{n_query - 1} or a list of positions, "
            f"got {highlight!r}"
        )
    return sorted({int(i) for i in items})
