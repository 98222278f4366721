"""The coreference view (:func:`coref_view`): one word of a sentence, the words it attends
to, and its top candidate antecedents with arrows from the word to each of them.

A right-to-left sentence (``direction="auto"`` and Arabic or Hebrew words, or
``direction="rtl"``) runs from the right.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from probe._errors import ProbeError
from probe.analysis._unknown import check_partly, partly_listed, unknown_phrase
from probe.viewers._coref_arrows import arrow_routes
from probe.viewers._coref_excerpt import Context, excerpt
from probe.viewers._direction import Direction, is_rtl
from probe.viewers._style import (
    styled,
    FONT_SIZES,
    TEXT_SEQUENTIAL_CMAP,
    as_array,
    check_tokens,
    format_token,
    get_cmap,
    is_signed,
    make_norm,
    new_figure,
    text_width_pt,
    title as make_title,
)
from probe.viewers._tokens import (
    GAP_X,
    LINE_PAD,
    attached_words,
    draw_token_boxes,
    layout_tokens,
    points_axes,
)
from probe.viewers._width import sized, wrap_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["coref_view", "COREF_NOTE"]

#: The line :func:`coref_view` prints under its figure by default.
COREF_NOTE = (
    "One sentence is no evidence of a coreference head: 'probe eval coref' scores every head "
    "on minimal pairs."
)

_HIGHLIGHT = "#1f77b4"  # the chosen word (matches tab10 blue)
_CUT = "\u2026"  # drawn where the excerpt leaves text out

def _line_in(fontsize: float) -> float:
    """Inches between two lines of text at ``fontsize`` (matplotlib's 1.2 line spacing)."""
    return 1.2 * fontsize / 72


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


@styled
@sized()
def coref_view(
    words: Sequence[str],
    word_index: int,
    weights: Any,
    *,
    top: Sequence[tuple[int, int, int | str, float]] | None = None,
    top_k: int = 3,
    candidates: Sequence[int] | None = None,
    joined: Sequence[bool] | None = None,
    table_rows: int = 8,
    model_name: str | None = None,
    layer: int | str | None = None,
    head: int | str | None = None,
    method: str | None = "coreference attention",
    width: float = 8.0,
    fontsize: float = FONT_SIZES["token"],
    title: str | None = None,
    note: str | None = None,
    direction: Direction = "auto",
    context: Context = "excerpt",
    unknown: Sequence[int] | None = None,
    unknown_token: str = "[UNK]",
    partly_unknown: Mapping[int, Sequence[str]] | None = None,
) -> Figure:
    """One word, the words it attends to, and its top antecedents with their weights.

    The sentence is drawn word by word (wrapped at ``width``), each word on a background
    coloured by its weight (white-based ``Reds``, 0 to the largest weight of another word).
    The chosen word is outlined in blue; the ``top_k`` heaviest *candidate* words are
    outlined, get their rank and weight printed under them (each box is at least as wide
    as its label, so labels never collide) and an arrow from the chosen word whose width
    and head grow with the weight. An antecedent on another line (the text wraps) is reached
    through the margin beside the lines, never across a word
    (:mod:`probe.viewers._coref_arrows`). A long text is drawn as an excerpt (``context=``).
    With ``top``, a table lists the strongest heads. Layers and heads count from 0, as in the
    model's modules.

    Args:
        words: ``[num_words]`` words (word-level data: pool sub-tokens first).
        word_index: position of the chosen word (e.g. the pronoun).
        weights: ``[num_words]`` attention of the chosen word to every word.
        top: optional top heads as ``(layer, head, antecedent, weight)`` rows (e.g. from
            ``probe.coref``), the antecedent as a word index or the word itself; the
            ``table_rows`` heaviest are tabulated.
        top_k: how many antecedents to highlight (default 3).
        candidates: the word indices that may be ranked (e.g. ``Antecedents.candidates``
            from :func:`probe.best_antecedents`, the rule :func:`probe.coref` ranks
            with); default: every other word. Other words keep their colour but are never
            marked.
        joined: per word, ``True`` when it is written against the previous word with no
            space (default: :func:`attached_words`' guess, so "didn ' t" reads "didn't").
        model_name, layer, head, method: go into the title.
        width: figure width in inches; fontsize: word font size in points.
        title: replaces the generated title (``""`` for none).
        note: a line at the bottom; default :data:`COREF_NOTE` (one sentence is no evidence
            of a coreference head: ``probe eval coref`` tests heads on minimal pairs);
            ``""`` for none.
        direction: ``"auto"`` (default: right to left when the words' first strong letter
            is), ``"ltr"`` or ``"rtl"``: right to left, the sentence starts at the top right.
        context: ``"excerpt"`` (default): a text of more than 40 words is drawn from the
            earliest ranked antecedent (or the start of its sentence) to the end of the
            chosen word's sentence, or, when that is longer still, as that sentence and a few
            words around each ranked antecedent; a grey ``…`` marks each cut
            (:func:`probe.viewers._coref_excerpt.excerpt`). ``"all"``: the whole text. Only
            the drawing changes: weights, colour scale, ranking and word numbers are the
            same.
        unknown: indices of the words that reach the model as its unknown token
            (``probe.analysis._unknown.unknown_words(trace)``); those among the chosen word
            and the candidates are named in a dark red line under the title (``它, 马路 reach
            the model as [UNK]: their weights say nothing about these words``, gid
            ``"unknown"``). ``unknown_token``: the tokenizer's spelling of it.
        partly_unknown: word index -> the parts of it that reach the model as the unknown
            token, for words only partly unknown
            (``probe.analysis._unknown.partly_unknown_words(trace)``); those among the chosen
            word and the candidates join the same line (``part of 小猫 (猫) reaches the model
            as [UNK]: its weights are partly a placeholder's``).

    Returns:
        The ``Figure``; ``fig.axes[0].patches`` are the drawn words' boxes in word order
        (gid ``"word <i>"``, ``i`` the word's index), then one ``FancyArrowPatch`` per ranked
        antecedent in rank order (gid ``"arrow <i>"``) from the top of the chosen word's box
        to the top of the antecedent's; the texts of the ``…`` marks have gid ``"cut"``.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path

    w = as_array(weights, "weights", 1, "[num_words]")
    toks = check_tokens(words, len(w), "words", "weights")
    rtl = is_rtl(direction, toks)
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

    if candidates is None:
        pool = [i for i in range(len(w)) if i != word_index]
    else:
        if isinstance(candidates, (str, bytes)) or not isinstance(candidates, Sequence):
            raise ProbeError(
                f"candidates must be a list of word indices, got {type(candidates).__name__}"
            )
        pool = []
        for c in candidates:
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not (
                0 <= c < len(w)
            ):
                raise ProbeError(
                    f"candidates must be word indices in 0..{len(w) - 1}, got {c!r}"
                )
            if int(c) != word_index:
                pool.append(int(c))
    if unknown is None:
        unknown = []
    if isinstance(unknown, (str, bytes)) or not isinstance(unknown, Sequence) or not all(
            isinstance(u, (int, np.integer)) and not isinstance(u, bool) and 0 <= u < len(w)
            for u in unknown):
        raise ProbeError(f"unknown must be a list of word indices in 0..{len(w) - 1}, got "
                         f"{unknown!r}")
    named = [int(u) for u in dict.fromkeys(unknown) if u == word_index or u in pool]
    named.sort(key=lambda u: (u != word_index, u))  # the chosen word first
    partly = check_partly(partly_unknown, len(w))
    part = sorted((u for u in partly if u == word_index or u in pool),
                  key=lambda u: (u != word_index, u))
    if joined is None:
        glue = attached_words(toks)
    else:
        if isinstance(joined, str) or not isinstance(joined, Sequence) or len(joined) != len(w):
            raise ProbeError(f"joined must hold one bool per word ({len(w)}), got {joined!r}")
        glue = [bool(j) for j in joined]
    others = np.array([i for i in range(len(w)) if i != word_index], dtype=int)
    order = sorted(pool, key=lambda i: (-w[i], i))
    ranked = [int(i) for i in order[:top_k] if w[i] > 0]
    norm = make_norm(w[others] if len(others) else w, False, zero_based=True)
    cmap = get_cmap(TEXT_SEQUENTIAL_CMAP)

    fontsize = float(fontsize)
    box_h = LINE_PAD * fontsize
    arc_room, label_room = 4.0 + 4.0 * min(top_k, 4) + 3.0, 1.3 * fontsize
    margin = 0.25
    width_pt = (width - 2 * margin) * 72
    faces = ["bold" if i == word_index or i in ranked else "normal" for i in range(len(w))]
    labels = {i: f"#{r} {w[i]:.2f}" for r, i in enumerate(ranked, start=1)}
    min_w = [text_width_pt(labels[i], FONT_SIZES["annotation"], "bold") + 2 * GAP_X
             if i in labels else 0.0 for i in range(len(w))]
    drawn = excerpt(toks, word_index, ranked, context)  # word indices, None: a cut
    at = {i: k for k, i in enumerate(drawn) if i is not None}  # word -> its box
    cut = len(drawn) != len(w)
    if cut:  # the drawn words only; a cut is a plain "…", glued to no word
        glue = [i is not None and k > 0 and drawn[k - 1] is not None and glue[i]
                for k, i in enumerate(drawn)]
        faces = ["normal" if i is None else faces[i] for i in drawn]
        min_w = [0.0 if i is None else min_w[i] for i in drawn]
    shown_toks = [_CUT if i is None else toks[i] for i in drawn]
    layout = layout_tokens(shown_toks, fontsize, width_pt,
                           line_height=arc_room + box_h + label_room, weights=faces,
                           joined=glue, min_widths=min_w, rtl=rtl)
    body_pt = layout.height

    text = make_title(model_name, layer, head, method) if title is None else title
    plural = "s" if len(ranked) != 1 else ""
    chosen = wrap_text(  # the two notes wrap at a narrow width (one line each at 8 in)
        f"chosen word: \u201c{format_token(toks[word_index])}\u201d (word {word_index}) "
        f"\u2192 top {len(ranked)} candidate antecedent{plural}"
        " \u00b7 layers, heads and words count from 0"
        + (f" \u00b7 excerpt of the {len(w)} words (\u2026 marks a cut)" if cut else ""),
        FONT_SIZES["label"], width_pt)
    chosen_at = 0.15 + (0.35 if text else 0.0) - 0.05  # from the top, to the line's top
    top_in = chosen_at + 0.3 + chosen.count("\n") * _line_in(FONT_SIZES["label"])
    warning = wrap_text(unknown_phrase(
        [format_token(toks[u]) for u in named], str(unknown_token),
        partly_listed([format_token(toks[u]) for u in part], [partly[u] for u in part])),
        FONT_SIZES["label"], width_pt) if named or part else ""
    warning_at = top_in - 0.08  # from the top, to the line's top
    if warning:
        top_in += (warning.count("\n") + 1) * _line_in(FONT_SIZES["label"]) + 0.05
    bar_in = 0.85
    shown_rows = sorted(rows, key=lambda r: -r[3])[:table_rows] if rows else []
    table_in = (len(shown_rows) + 1) * 0.22 + 0.6 if shown_rows else 0.0
    note = wrap_text(COREF_NOTE if note is None else str(note), FONT_SIZES["annotation"],
                     width_pt)
    note_in = 0.3 + note.count("\n") * _line_in(FONT_SIZES["annotation"]) if note else 0.0
    height = top_in + body_pt / 72 + bar_in + table_in + note_in
    fig = new_figure((width, height), layout="none")
    if note:
        fig.text(0.5, 0.12 / height, note, ha="center", va="bottom",
                 fontsize=FONT_SIZES["annotation"], color="0.35", style="italic")
    table_in += note_in  # everything below the words sits above the note
    ax = fig.add_axes((margin / width, (bar_in + table_in) / height, width_pt / 72 / width,
                       body_pt / 72 / height))
    points_axes(ax, width_pt, body_pt)

    colors, edges, lws = [], [], []
    for i in drawn:
        if i == word_index:
            colors.append("#dbe9f6")
            edges.append(_HIGHLIGHT)
            lws.append(1.8)
        else:
            colors.append("white" if i is None else cmap(norm(w[i])))
            edges.append("black" if i in ranked else "none")
            lws.append(1.2 if i in ranked else 0.0)
    boxes = draw_token_boxes(ax, layout, colors, 0.0, box_top=arc_room, edgecolors=edges,
                             linewidths=lws, weights=faces)
    for k, (i, box, label) in enumerate(zip(drawn, boxes, list(ax.texts))):
        if i is None:  # a cut: grey "…", no box
            box.remove()
            label.set_color("0.45")
            label.set_gid("cut")
        else:
            box.set_gid(f"word {i}")
            label.set_gid(f"word {i}")

    w_top = max((w[i] for i in ranked), default=1.0) or 1.0
    routes = arrow_routes(layout, at[word_index], [at[i] for i in ranked], arc_room=arc_room,
                          box_h=box_h, width_pt=width_pt, rtl=rtl)
    for rank, i in enumerate(ranked, start=1):
        x = layout.centre(at[i])
        y = layout.line[at[i]] * layout.line_height + arc_room + box_h + 0.15 * fontsize
        ax.text(x, y, labels[i], ha="center", va="top",
                fontsize=FONT_SIZES["annotation"], fontweight="bold", color="0.15")
        # width and head size grow with the weight (relative to the strongest shown)
        arrow = FancyArrowPatch(
            path=Path(routes[at[i]]), arrowstyle="-|>", mutation_scale=7 + 3 * w[i] / w_top,
            joinstyle="round", linewidth=0.8 + 1.6 * w[i] / w_top, color=_HIGHLIGHT,
            alpha=0.85, clip_on=False,
        )
        arrow.set_gid(f"arrow {i}")
        ax.add_patch(arrow)

    if text:
        fig.suptitle(text, fontsize=FONT_SIZES["title"], y=1 - 0.1 / height, va="top")
    fig.text(0.5, 1 - chosen_at / height, chosen, ha="center", va="top",
             fontsize=FONT_SIZES["label"], color="0.25")
    if warning:
        fig.text(0.5, 1 - warning_at / height, warning, ha="center", va="top",
                 fontsize=FONT_SIZES["label"], color="#a50f15", gid="unknown")

    bar_w = min(4.0, width - 2 * margin)
    cax = fig.add_axes(((width - bar_w) / 2 / width, (table_in + 0.47) / height, bar_w / width,
                        0.12 / height))
    cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, orientation="horizontal")
    cbar.set_label("attention weight", fontsize=FONT_SIZES["label"])
    cbar.ax.tick_params(labelsize=FONT_SIZES["tick"])

    if shown_rows:
        tax = fig.add_axes(((margin / width, (0.1 + note_in) / height,
                             (width - 2 * margin) / width, (table_in - note_in - 0.45) / height)))
        tax.set_axis_off()
        cells = [[str(r[0]), str(r[1]), r[2], f"{r[3]:.3f}"] for r in shown_rows]
        col_w = [v * min(1.0, 5.0 / (width - 2 * margin)) for v in (0.14, 0.14, 0.3, 0.18)]
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
