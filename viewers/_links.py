"""Link diagrams: attention as lines between two token columns (:func:`link_view`), and the
coreference view of one word and its antecedents (:func:`coref_view`).

The link view follows the idea of bertviz's head view as a static figure: query tokens on
the left, key tokens on the right, one line per (query, key) pair whose opacity is the
attention weight, one colour per head (heads keep their colour whichever subset is shown).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from probe._errors import ProbeError
from probe.viewers._style import (
    styled,
    FONT_SIZES,
    LINK_MAX_LABELS,
    TEXT_SEQUENTIAL_CMAP,
    as_array,
    categorical_colors,
    check_ax,
    check_tokens,
    format_token,
    get_cmap,
    is_signed,
    make_norm,
    new_figure,
    root_figure,
    text_width_pt,
    thin_labels,
    title as make_title,
)
from probe.viewers._tokens import LINE_PAD, draw_token_boxes, layout_tokens, points_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["link_view", "coref_view"]

_LINE_AREA_IN = 2.4  # width of the band holding the lines, inches
_ROW_IN = 0.2  # vertical pitch of one token, inches (shrinks for long inputs)
_MAX_HEIGHT_IN = 14.0
_HIGHLIGHT = "#1f77b4"  # the chosen word / query (matches tab10 blue)


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
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Attention as lines from query tokens (left) to key tokens (right).

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
        title: replaces the generated title (``""`` for none).
        ax: draw into this axes (axis off) instead of a new figure; token labels keep their
            font size, so give it about the width a new figure would get.

    Returns:
        The ``Figure``. Each drawn head is a ``LineCollection`` in ``ax.collections`` (gid
        ``"head <i>"``) whose segments run from ``(x_left, query)`` to ``(x_right, key)``
        in row-major order and whose RGBA alpha is the line's opacity.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    data = as_array(attn, "attn", (2, 3), "[head, query, key] or [query, key]")
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
    from probe.viewers._heatmaps import _token_pair

    q_tokens, k_tokens = _token_pair(tokens, query_tokens, key_tokens, n_query, n_key)
    if is_signed(data):
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

    fontsize = FONT_SIZES["token"]
    n_rows = max(n_query, n_key)
    shown_q, shown_k = thin_labels(n_query, max_labels), thin_labels(n_key, max_labels)
    q_labels = {int(i): format_token(q_tokens[i]) for i in shown_q}
    k_labels = {int(i): format_token(k_tokens[i]) for i in shown_k}
    if query is not None:
        q_labels[int(query)] = format_token(q_tokens[query])
    label_l = max(text_width_pt(t, fontsize, "bold") for t in q_labels.values()) / 72 + 0.05
    label_r = max(text_width_pt(t, fontsize, "bold") for t in k_labels.values()) / 72 + 0.05
    gap = 0.08
    total_w = label_l + gap + _LINE_AREA_IN + gap + label_r
    x_left, x_right = label_l + gap, label_l + gap + _LINE_AREA_IN

    text = title
    if text is None:
        head_part: Any = head if single else (selected[0] if len(selected) == 1 else selected)
        text = make_title(model_name, layer, head_part, method)
    show_legend = not single and len(selected) > 1
    colors = categorical_colors(n_heads) if not single else categorical_colors(1)
    legend_cols = min(len(selected), 6)
    legend_h = (-(-len(selected) // legend_cols) * 0.2 + 0.15) if show_legend else 0.0
    entry_w = text_width_pt(f"head {max(selected)}", FONT_SIZES["legend"]) / 72 + 0.5
    legend_w = legend_cols * entry_w if show_legend else 0.0

    if ax is None:
        pitch = min(_ROW_IN, (_MAX_HEIGHT_IN - 1.0) / max(n_rows, 1))
        body_h = max(n_rows * pitch, 1.0)
        top = 0.35 + (0.35 if text else 0.0)
        bottom = 0.12 + legend_h
        title_w = text_width_pt(text, FONT_SIZES["title"]) / 72 if text else 0.0
        width = max(total_w, title_w, legend_w) + 0.4
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

    for h in selected:
        w = data[h]
        scale = float(w.max()) if normalize and w.max() > 0 else 1.0
        mask = w >= max(float(threshold), 1e-12)
        if query is not None:
            mask[np.arange(n_query) != query] = False
        ii, jj = np.nonzero(mask)  # row-major: query by query
        if not len(ii):
            continue
        segs = np.stack(
            [np.stack([np.full(len(ii), x_left), ii + q_off], axis=1),
             np.stack([np.full(len(jj), x_right), jj + k_off], axis=1)], axis=1
        )
        rgba = np.tile(np.asarray(colors[h], dtype=float), (len(ii), 1))
        rgba[:, 3] = np.minimum(1.0, w[ii, jj] / scale)
        coll = LineCollection(segs, colors=rgba, linewidths=linewidth, capstyle="round")
        coll.set_gid(f"head {h}")
        ax.add_collection(coll)

    for i, label in q_labels.items():
        chosen = query is not None and i == query
        ax.text(
            x_left - gap / 2, i + q_off, label, ha="right", va="center_baseline",
            fontsize=fontsize, fontweight="bold" if chosen else "normal",
            color=_HIGHLIGHT if chosen else "black",
        )
    for j, label in k_labels.items():
        ax.text(x_right + gap / 2, j + k_off, label, ha="left", va="center_baseline",
                fontsize=fontsize)
    for x, name, ha in ((x_left - gap / 2, "query", "right"), (x_right + gap / 2, "key", "left")):
        ax.annotate(name, (x, 1), xycoords=("data", "axes fraction"), xytext=(0, 6),
                    textcoords="offset points", ha=ha, va="bottom",
                    fontsize=FONT_SIZES["label"], fontweight="bold", color="0.3")
    if show_legend:
        handles = [Line2D([], [], color=colors[h], lw=2.5) for h in selected]
        ax.legend(
            handles, [f"head {h}" for h in selected], loc="upper center",
            bbox_to_anchor=(0.5, 0), ncols=legend_cols, fontsize=FONT_SIZES["legend"],
            frameon=False, handlelength=1.4, columnspacing=1.0, borderaxespad=0.3,
        )
    if text:
        ax.set_title(text, fontsize=FONT_SIZES["title"], pad=22)
    return fig


def _check_top_rows(rows: Any, words: Sequence[str]) -> list[tuple[int, int, str, float]]:
    """Validate ``(layer, head, antecedent, weight)`` rows; return them with the antecedent
    as its table label (a word index becomes ``"word (index)"``, a word string stays)."""
    if isinstance(rows, str) or not isinstance(rows, Sequence):
        raise ProbeError(
            "top must be a list of (layer, head, antecedent, weight) tuples, got "
            f"{type(rows).__name__}"
        )
    out = []
    for row in rows:
        if isinstance(row, str) or not isinstance(row, Sequence) or len(row) != 4:
            raise ProbeError(
                f"each top row must be (layer, head, antecedent, weight), got {row!r}"
            )
        layer, head, ante, weight = row
        try:
            layer_i, head_i, w = int(layer), int(head), float(weight)
        except (TypeError, ValueError):
            raise ProbeError(
                f"top row {row!r} must hold (int layer, int head, antecedent, float weight)"
            ) from None
        if isinstance(ante, str):
            label = format_token(ante)
        elif isinstance(ante, (int, np.integer)) and not isinstance(ante, bool):
            if not 0 <= int(ante) < len(words):
                raise ProbeError(
                    f"top row {row!r}: antecedent {ante} is not a word index in "
                    f"0..{len(words) - 1}"
                )
            label = f"{format_token(words[int(ante)])} ({int(ante)})"
        else:
            raise ProbeError(
                f"top row {row!r}: the antecedent must be a word index or the word itself"
            )
        out.append((layer_i, head_i, label, w))
    return out


def _stagger_labels(layout: Any, ranked: list[int], labels: list[str]) -> dict[int, int]:
    """Row (0 or 1) of each rank label, so that labels centred under words never overlap;
    higher-ranked labels keep the first row."""
    size = FONT_SIZES["annotation"]
    spans = {}
    for i, label in zip(ranked, labels):
        half = text_width_pt(label, size, "bold") / 2 + 2.0
        centre = layout.x[i] + layout.width[i] / 2
        spans[i] = (int(layout.line[i]), centre - half, centre + half)
    rows: dict[int, int] = {}
    for i in ranked:
        line, lo, hi = spans[i]
        clash = any(
            rows[j] == 0 and spans[j][0] == line and spans[j][1] < hi and lo < spans[j][2]
            for j in rows
        )
        rows[i] = 1 if clash else 0
    return rows


@styled
def coref_view(
    words: Sequence[str],
    word_index: int,
    weights: Any,
    *,
    top: Sequence[tuple[int, int, int | str, float]] | None = None,
    top_k: int = 3,
    table_rows: int = 8,
    model_name: str | None = None,
    layer: int | str | None = None,
    head: int | str | None = None,
    method: str | None = "coreference attention",
    width: float = 8.0,
    fontsize: float = FONT_SIZES["token"],
    title: str | None = None,
) -> Figure:
    """One word, the words it attends to, and its top antecedents with their weights.

    The sentence is drawn word by word (wrapped at ``width``), each word on a background
    coloured by its weight (white-based ``Reds``, 0 to the largest weight of another word).
    The chosen word is outlined in blue; the ``top_k`` heaviest other words are outlined,
    get their rank and weight printed under them and, when on the same line, an arrow from
    the chosen word whose width grows with the weight. With ``top``, a table lists the
    strongest heads.

    Args:
        words: ``[num_words]`` words (word-level data: pool sub-tokens first).
        word_index: position of the chosen word (e.g. the pronoun).
        weights: ``[num_words]`` attention of the chosen word to every word.
        top: optional top heads as ``(layer, head, antecedent, weight)`` rows (e.g. from
            ``probe.coref``), the antecedent as a word index or the word itself; the
            ``table_rows`` heaviest are tabulated.
        top_k: how many antecedents to highlight (default 3).
        model_name, layer, head, method: go into the title.
        width: figure width in inches; fontsize: word font size in points.
        title: replaces the generated title (``""`` for none).

    Returns:
        The ``Figure``; ``fig.axes[0].patches`` are the word boxes in word order.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path

    w = as_array(weights, "weights", 1, "[num_words]")
    toks = check_tokens(words, len(w), "words", "weights")
    if isinstance(word_index, bool) or not isinstance(word_index, (int, np.integer)) or not (
        -len(w) <= word_index < len(w)
    ):
        raise ProbeError(f"word_index must be a position in 0..{len(w) - 1}, got {word_index!r}")
    word_index = int(word_index) % len(w)
    for name, value in (("top_k", top_k), ("table_rows", table_rows)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ProbeError(f"{name} must be a positive integer, got {value!r}")
    if is_signed(w):
        raise ProbeError("weights has negative values: pass attention weights (>= 0)")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 3 <= width <= 40:
        raise ProbeError(f"width must be a figure width in inches in [3, 40], got {width!r}")
    rows = _check_top_rows(top, toks) if top is not None else None

    others = np.array([i for i in range(len(w)) if i != word_index], dtype=int)
    order = others[np.argsort(-w[others], kind="stable")] if len(others) else others
    ranked = [int(i) for i in order[:top_k] if w[i] > 0]
    norm = make_norm(w[others] if len(others) else w, False, zero_based=True)
    cmap = get_cmap(TEXT_SEQUENTIAL_CMAP)

    fontsize = float(fontsize)
    box_h = LINE_PAD * fontsize
    arc_room, label_room = 4.0 + 4.0 * min(top_k, 4) + 3.0, 1.3 * fontsize
    margin = 0.25
    width_pt = (width - 2 * margin) * 72
    faces = ["bold" if i == word_index or i in ranked else "normal" for i in range(len(w))]
    layout = layout_tokens(toks, fontsize, width_pt,
                           line_height=arc_room + box_h + label_room, weights=faces)
    # rank labels under neighbouring words may collide: stagger those onto a second row
    label_row = _stagger_labels(layout, ranked, [f"#{r} {w[i]:.2f}" for r, i in
                                                 enumerate(ranked, start=1)])
    if any(label_row.values()):
        label_room *= 2
        layout = layout_tokens(toks, fontsize, width_pt,
                               line_height=arc_room + box_h + label_room, weights=faces)
    body_pt = layout.height

    text = make_title(model_name, layer, head, method) if title is None else title
    top_in = 0.15 + (0.35 if text else 0.0) + 0.25
    bar_in = 0.85
    shown_rows = sorted(rows, key=lambda r: -r[3])[:table_rows] if rows else []
    table_in = (len(shown_rows) + 1) * 0.22 + 0.6 if shown_rows else 0.0
    height = top_in + body_pt / 72 + bar_in + table_in
    fig = new_figure((width, height), layout="none")
    ax = fig.add_axes((margin / width, (bar_in + table_in) / height, width_pt / 72 / width,
                       body_pt / 72 / height))
    points_axes(ax, width_pt, body_pt)

    colors, edges, lws = [], [], []
    for i in range(len(w)):
        if i == word_index:
            colors.append("#dbe9f6")
            edges.append(_HIGHLIGHT)
            lws.append(1.8)
        else:
            colors.append(cmap(norm(w[i])))
            edges.append("black" if i in ranked else "none")
            lws.append(1.2 if i in ranked else 0.0)
    draw_token_boxes(ax, layout, colors, 0.0, box_top=arc_room, edgecolors=edges,
                     linewidths=lws, weights=faces)

    def anchor(i: int) -> tuple[float, float]:
        return (float(layout.x[i] + layout.width[i] / 2),
                float(layout.line[i] * layout.line_height + arc_room + 0.1 * box_h))

    w_top = max((w[i] for i in ranked), default=1.0) or 1.0
    for rank, i in enumerate(ranked, start=1):
        x = layout.x[i] + layout.width[i] / 2
        y = (layout.line[i] * layout.line_height + arc_room + box_h + 0.15 * fontsize
             + label_row[i] * 1.3 * fontsize)
        ax.text(x, y, f"#{rank} {w[i]:.2f}", ha="center", va="top",
                fontsize=FONT_SIZES["annotation"], fontweight="bold", color="0.15")
        if layout.line[i] != layout.line[word_index]:
            continue  # an arrow across lines would cut through the text: rank label only
        # a bracket of fixed height (in points) above the boxes, higher for lower ranks
        (xs, ys), (xe, ye) = anchor(word_index), anchor(i)
        xs += (rank - (len(ranked) + 1) / 2) * 3.0
        level = min(ys, ye) - (4.0 + 4.0 * min(rank, 4))
        arrow = FancyArrowPatch(
            path=Path([(xs, ys), (xs, level), (xe, level), (xe, ye)]),
            arrowstyle="-|>", mutation_scale=7 + 3 * w[i] / w_top, joinstyle="round",
            linewidth=0.8 + 1.6 * w[i] / w_top, color=_HIGHLIGHT, alpha=0.85, clip_on=False,
        )
        ax.add_patch(arrow)

    if text:
        fig.suptitle(text, fontsize=FONT_SIZES["title"], y=1 - 0.1 / height, va="top")
    plural = "s" if len(ranked) != 1 else ""
    fig.text(0.5, 1 - (top_in - 0.3) / height,
             f"chosen word: \u201c{format_token(toks[word_index])}\u201d (position "
             f"{word_index}) \u2192 top {len(ranked)} antecedent{plural}",
             ha="center", va="top", fontsize=FONT_SIZES["label"], color="0.25")

    bar_w = min(4.0, width - 2 * margin)
    cax = fig.add_axes(((width - bar_w) / 2 / width, (table_in + 0.47) / height, bar_w / width,
                        0.12 / height))
    cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, orientation="horizontal")
    cbar.set_label("attention weight", fontsize=FONT_SIZES["label"])
    cbar.ax.tick_params(labelsize=FONT_SIZES["tick"])

    if shown_rows:
        tax = fig.add_axes((margin / width, 0.1 / height, (width - 2 * margin) / width,
                            (table_in - 0.45) / height))
        tax.set_axis_off()
        cells = [[str(r[0]), str(r[1]), r[2], f"{r[3]:.3f}"] for r in shown_rows]
        col_w = [0.12, 0.12, 0.3, 0.15]
        table = tax.table(cellText=cells, colLabels=["layer", "head", "antecedent", "weight"],
                          cellLoc="center", colWidths=col_w,
                          bbox=((1 - sum(col_w)) / 2, 0.0, sum(col_w), 1.0))
        table.auto_set_font_size(False)
        table.set_fontsize(FONT_SIZES["annotation"])
        for (r, _), cell in table.get_celld().items():
            cell.set_edgecolor("0.75")
            if r == 0:
                cell.set_text_props(fontweight="bold")
                cell.set_facecolor("0.92")
        tax.set_title(f"top heads (strongest {len(shown_rows)})", fontsize=FONT_SIZES["label"],
                      pad=4)
    return fig
