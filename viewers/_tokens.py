"""Token attribution strip: the text, each token on a background coloured by its score.

Signed scores (any negative value) use the diverging ``RdBu_r`` map centred at 0; unsigned
scores use the white-based sequential ``Reds`` map so that black text stays legible. Several
methods become several rows (one block of wrapped lines each) sharing one colourbar. Long
texts wrap over several lines at the figure width. A right-to-left sentence
(``direction="auto"`` and Arabic or Hebrew tokens, or ``direction="rtl"``) runs from the
right: the first token at the top right, lines wrapping leftwards, the method names at the
right.

The layout engine here (:func:`layout_tokens`, :func:`draw_token_boxes`) is shared with the
coreference view and the comparison panel. It works in an axes whose data units are points
(1/72 inch), so boxes fit their measured text exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from probe._errors import ProbeError
from probe.viewers._direction import Direction, is_rtl
from probe.viewers._style import (
    is_baseline,
    styled,
    FONT_SIZES,
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
    text_color_on,
    text_width_pt,
    title as make_title,
)
from probe.viewers._width import sized, wrap_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap, Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

__all__ = ["token_strip", "attached_words"]

TOKEN_MAX_CHARS = 24
PAD_X = 2.5  # points of padding left and right of a token's text
GAP_X = 2.0  # points between two token boxes
LINE_PAD = 1.55  # line height = LINE_PAD * fontsize
BLOCK_GAP = 6.0  # points between the blocks of two methods


@dataclass(frozen=True)
class TokenLayout:
    """Where each token box goes: ``x``/``width`` in points, ``line`` index from the top."""

    labels: list[str]
    x: np.ndarray
    width: np.ndarray
    line: np.ndarray
    n_lines: int
    line_height: float
    fontsize: float
    text_x: np.ndarray | None = None  # centre of each token's text (default: box centre)

    def centre(self, i: int) -> float:
        """x of the centre of token ``i``'s text, in points."""
        if self.text_x is None:
            return float(self.x[i] + self.width[i] / 2)
        return float(self.text_x[i])

    @property
    def height(self) -> float:
        return self.n_lines * self.line_height


_CLOSING = set(".,!?;:)]}%\u201d\u2019\u3001\u3002\uff0c\uff01\uff1f\uff1b\uff1a\uff09"
               "\u0964\u0965\u2026")  # Devanagari danda and double danda, ellipsis
_OPENING = set("([{\u201c\u2018\uff08")
_CONTRACTION_TAILS = {"t", "s", "ll", "re", "ve", "d", "m", "nt"}


def _unspaced(word: str) -> bool:
    """True for words of scripts written without spaces whose tokenizers still split them
    into words (CJK ideographs and punctuation, kana, full-width forms). Not Thai: a
    tokenizer splits a Thai run only at a space (or punctuation), so two Thai words were
    written with a space between them."""
    return bool(word) and all(
        0x2E80 <= ord(c) <= 0x9FFF or 0xF900 <= ord(c) <= 0xFAFF or 0x3000 <= ord(c) <= 0x303F
        or 0xFF00 <= ord(c) <= 0xFFEF or 0x20000 <= ord(c) <= 0x3FFFF
        for c in word
    )


def attached_words(words: Sequence[str]) -> list[bool]:
    """For each word, whether it was written without a space before it (a best guess from
    the words alone, for display): closing punctuation (``.``, ``,``, ``)`` ...), the pieces
    of an English contraction (``didn`` ``'`` ``t`` reads "didn't"), the word after an
    opening bracket, and neighbouring words of scripts written without spaces (Chinese,
    Japanese, Thai)."""
    out = [False] * len(words)
    for i in range(1, len(words)):
        prev, word = str(words[i - 1]), str(words[i])
        if word in ("'", "\u2019") and i + 1 < len(words) and (
            words[i + 1].lower() in _CONTRACTION_TAILS
        ):
            out[i] = out[i + 1] = True
        elif word and all(c in _CLOSING for c in word):
            out[i] = True
        elif prev and all(c in _OPENING for c in prev):
            out[i] = True
        elif _unspaced(prev) and _unspaced(word):
            out[i] = True
        elif _unspaced(prev) and word and all(c in _OPENING for c in word):
            out[i] = True  # Chinese quotes and brackets: 说：“你好
        elif (_unspaced(word) and i >= 2 and _unspaced(words[i - 2]) and prev
              and all(c in _CLOSING for c in prev)):
            out[i] = True  # 你好”他说
    return out


def _breakable(tokens: Sequence[str], i: int) -> bool:
    """Whether a line may break between the glued tokens ``i - 1`` and ``i``: two words of
    a script written without spaces, ``i`` no closing and ``i - 1`` no opening punctuation."""
    prev, word = str(tokens[i - 1]), str(tokens[i])
    return (i > 0 and _unspaced(prev) and _unspaced(word)
            and not all(c in _CLOSING or c in _CJK_CLOSING for c in word)
            and not all(c in _OPENING or c in _CJK_OPENING for c in prev))


#: punctuation a Chinese or Japanese line does not start with (closing) or end with (opening)
_CJK_CLOSING = set("\u3001\u3002\u3009\u300b\u300d\u300f\u3011\u3015\u3017\u3019\u301b"
                   "\uff0c\uff0e\uff01\uff1f\uff1b\uff1a\uff09\uff3d\uff5d\u30fc\u309b\u309c")
_CJK_OPENING = set("\u3008\u300a\u300c\u300e\u3010\u3014\u3016\u3018\u301a\uff08\uff3b\uff5b")


def layout_tokens(
    tokens: Sequence[str],
    fontsize: float,
    width_pt: float,
    *,
    x0: float = 0.0,
    line_height: float | None = None,
    weights: Sequence[str] | None = None,
    joined: Sequence[bool] | None = None,
    min_widths: Sequence[float] | None = None,
    rtl: bool = False,
) -> TokenLayout:
    """Place tokens left to right, wrapping to a new line when ``width_pt`` is exceeded.

    ``line_height`` defaults to ``LINE_PAD * fontsize`` points; ``weights`` are the font
    weights the tokens will be drawn with (``"bold"`` text is measured wider). ``joined[i]``
    puts token ``i`` right against token ``i - 1`` (no gap, never wrapped apart), as for
    the pieces of "didn't" or a full stop (see :func:`attached_words`). ``min_widths`` are
    the smallest box widths in points (e.g. to fit a label under the box). ``rtl`` mirrors
    the layout in ``[0, width_pt]``: tokens run right to left from ``width_pt - x0``, lines
    are right-aligned (the same lines, the same boxes).
    """
    labels = [format_token(t, TOKEN_MAX_CHARS) for t in tokens]
    faces = ["normal"] * len(labels) if weights is None else list(weights)
    glue = [False] * len(labels) if joined is None else [bool(j) for j in joined]
    glue[:1] = [False] * min(1, len(glue))
    # glued neighbours touch with a hairline of padding, so "didn't" reads as one word
    pad_l = np.array([0.6 if g else PAD_X for g in glue])
    pad_r = np.array([0.6 if i + 1 < len(glue) and glue[i + 1] else PAD_X
                      for i in range(len(glue))])
    text_w = np.array([text_width_pt(lab, fontsize, face) for lab, face in zip(labels, faces)])
    widths = text_w + pad_l + pad_r
    if min_widths is not None:
        grow = np.maximum(np.asarray(min_widths, dtype=float) - widths, 0.0)
        pad_l, pad_r, widths = pad_l + grow / 2, pad_r + grow / 2, widths + grow
    # groups of glued tokens wrap as one unit, except that a line may break between two
    # glued words of a script written without spaces (Chinese, Japanese), as text in those
    # scripts breaks, but not before closing or after opening punctuation
    starts = [i for i in range(len(labels)) if not glue[i] or _breakable(tokens, i)]
    xs = np.zeros(len(labels))
    lines = np.zeros(len(labels), dtype=int)
    x, line = x0, 0
    for g, start in enumerate(starts):
        end = starts[g + 1] if g + 1 < len(starts) else len(labels)
        group_w = float(widths[start:end].sum())
        if x > x0 and x + group_w > width_pt:
            x, line = x0, line + 1
        for i in range(start, end):
            xs[i], lines[i] = x, line
            x += widths[i]
        if end < len(labels) and not glue[end]:
            x += GAP_X
    n_lines = int(lines[-1]) + 1 if len(labels) else 0
    height = LINE_PAD * fontsize if line_height is None else float(line_height)
    text_x = xs + pad_l + text_w / 2
    if rtl:
        xs, text_x = width_pt - xs - widths, width_pt - text_x
    return TokenLayout(labels, xs, widths, lines, n_lines, height, fontsize, text_x=text_x)


def draw_token_boxes(
    ax: Axes,
    layout: TokenLayout,
    facecolors: Sequence[Any],
    y0: float,
    *,
    box_top: float = 0.0,
    edgecolors: Sequence[Any] | None = None,
    linewidths: Sequence[float] | None = None,
    weights: Sequence[str] | None = None,
) -> list[FancyBboxPatch]:
    """Draw one rounded box with centred text per token; ``y0`` is the top in points.

    Each box is ``LINE_PAD * fontsize`` points tall and starts ``box_top`` points below the
    top of its line (lines may be taller than boxes to leave room for annotations).
    """
    from matplotlib.patches import FancyBboxPatch

    patches = []
    h = LINE_PAD * layout.fontsize
    for i, label in enumerate(layout.labels):
        top = y0 + layout.line[i] * layout.line_height + box_top
        face = facecolors[i]
        patch = FancyBboxPatch(
            (layout.x[i], top + 0.08 * h),
            layout.width[i],
            0.84 * h,
            boxstyle="round,pad=0,rounding_size=2",
            facecolor=face,
            edgecolor="none" if edgecolors is None else edgecolors[i],
            linewidth=0.0 if linewidths is None else linewidths[i],
        )
        ax.add_patch(patch)
        patches.append(patch)
        ax.text(
            layout.centre(i),
            top + 0.5 * h,
            label,
            ha="center",
            va="center_baseline",
            fontsize=layout.fontsize,
            color=text_color_on(face),
            fontweight="normal" if weights is None else weights[i],
        )
    return patches


def points_axes(ax: Axes, width_pt: float, height_pt: float) -> None:
    """Make ``ax`` a blank canvas whose data units are points, y growing downwards."""
    ax.set_xlim(0, width_pt)
    ax.set_ylim(height_pt, 0)
    ax.set_axis_off()


def axes_width_pt(ax: Axes) -> float:
    """Current width of ``ax`` in points (its size at call time)."""
    fig = root_figure(ax)
    return float(ax.get_window_extent().width) * 72.0 / float(fig.dpi)


def _score_rows(
    tokens: Sequence[str], scores: Any
) -> tuple[list[str], list[tuple[str | None, np.ndarray]]]:
    if isinstance(scores, Mapping):
        if not scores:
            raise ProbeError("scores is an empty dict: pass {method: [n] scores} with a method")
        rows = [(str(k), as_array(v, f"scores[{k!r}]", 1, "[n]")) for k, v in scores.items()]
    else:
        rows = [(None, as_array(scores, "scores", 1, "[n]"))]
    n = len(rows[0][1])
    toks = check_tokens(tokens, n, "tokens", "scores")
    for name, row in rows:
        if len(row) != n:
            raise ProbeError(
                f"scores[{name!r}] has {len(row)} values but there are {n} tokens: pass one "
                "score per token for every method"
            )
    return toks, rows


def _normalized(row: np.ndarray, signed: bool) -> np.ndarray:
    scale = float(np.max(np.abs(row))) if signed else float(np.max(row))
    return row / scale if scale > 0 else row.copy()


def draw_strip(
    ax: Axes,
    tokens: Sequence[str],
    rows: list[tuple[str | None, np.ndarray]],
    *,
    width_pt: float,
    norm: Normalize,
    cmap: Colormap,
    fontsize: float,
    rtl: bool = False,
) -> float:
    """Draw the method blocks into a points-unit ``ax``; return the content height (points).
    ``rtl``: tokens right to left, method names at the right."""
    names = [name for name, _ in rows if name is not None]
    name_w = max((text_width_pt(n, FONT_SIZES["label"], "bold") for n in names), default=0.0)
    x0 = name_w + 8.0 if names else 0.0
    layout = layout_tokens(tokens, fontsize, width_pt, x0=x0, rtl=rtl)
    y = 0.0
    for r, (name, values) in enumerate(rows):
        if r:
            y += BLOCK_GAP
        colors = [cmap(norm(v)) for v in values]
        draw_token_boxes(ax, layout, colors, y)
        if name is not None:
            baseline = is_baseline(name)
            ax.text(width_pt if rtl else 0, y + 0.5 * layout.line_height, format_token(name, 40),
                    ha="right" if rtl else "left",
                    va="center_baseline", fontsize=FONT_SIZES["label"], fontweight="bold",
                    color="0.4" if baseline else "black",
                    fontstyle="italic" if baseline else "normal")
        y += layout.height
    return y


@styled
@sized()
def token_strip(
    tokens: Sequence[str],
    scores: Any,
    *,
    signed: bool | None = None,
    normalize: bool | None = None,
    cmap: str | Colormap | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    model_name: str | None = None,
    layer: int | str | None = None,
    head: int | str | None = None,
    method: str | None = None,
    colorbar_label: str | None = None,
    title: str | None = None,
    note: str | None = None,
    width: float = 8.0,
    fontsize: float = FONT_SIZES["token"],
    ax: Axes | None = None,
    direction: Direction = "auto",
) -> Figure:
    """Tokens on backgrounds coloured by score, one block of wrapped lines per method.

    Args:
        tokens: ``[n]`` token strings.
        scores: ``[n]`` scores (tensor or array), or ``{method: [n] scores}`` for several
            methods (one labelled block each, in dict order).
        signed: ``None`` infers it: any negative score -> diverging ``RdBu_r`` centred at 0
            (symmetric limits); otherwise the white-based sequential ``Reds`` from 0.
        normalize: divide each method's scores by its largest magnitude so methods on
            different scales are comparable; ``None`` means yes for several methods, no for
            one.
        cmap, vmin, vmax: override the colormap and the colourbar limits.
        model_name, layer, head, method: go into the title.
        colorbar_label: default ``"attribution"`` (signed) or ``"score"``, with
            ``"(normalized per method)"`` when normalised.
        title: replaces the generated title (``""`` for none).
        note: a line under the title saying how the scores were read (e.g. a rollout's
            ``"mean over the query rows · [CLS], [SEP] not shown"``), wrapped to the width.
        width: figure width in inches (lines wrap at it); the height follows the text.
        fontsize: token font size in points.
        ax: draw into this axes; its width at call time sets the wrapping, the boxes keep
            their true size (the axes box shrinks to the text, anchored at the top; give it
            enough height) and a horizontal colourbar is added below it.
        direction: ``"auto"`` (default: right to left when the tokens' first strong letter
            is, :func:`probe._text.text_direction`), ``"ltr"`` or ``"rtl"``: right to left
            puts the first token at the top right and the method names at the right.

    Returns:
        The ``Figure``. Token boxes are ``ax.patches`` in method-major, token order.
    """
    toks, rows = _score_rows(tokens, scores)
    rtl = is_rtl(direction, toks)
    stacked = np.stack([r for _, r in rows])
    signed = is_signed(stacked) if signed is None else bool(signed)
    normalize = len(rows) > 1 if normalize is None else bool(normalize)
    if normalize:
        rows = [(name, _normalized(r, signed)) for name, r in rows]
        stacked = np.stack([r for _, r in rows])
    norm = make_norm(stacked, signed, zero_based=True, vmin=vmin, vmax=vmax)
    cmap_obj = get_cmap(cmap if cmap is not None else cmap_for(signed, behind_text=True))
    label = colorbar_label or ("attribution" if signed else "score")
    if normalize and colorbar_label is None:
        label += " (normalized per method)"
    text = make_title(model_name, layer, head, method) if title is None else title
    if note is not None and not isinstance(note, str):
        raise ProbeError(f"note must be a string (a line under the title), got {note!r}")
    if note:
        sane = isinstance(width, (int, float)) and not isinstance(width, bool)  # checked below
        room = axes_width_pt(check_ax(ax)) if ax is not None else (
            (float(width) - 0.4) * 72 if sane else float("inf"))
        note = "\n".join(wrap_text(line, FONT_SIZES["title"], room) for line in note.split("\n"))
        text = f"{text}\n{note}" if text else note
    fontsize = float(fontsize)
    if not 3 <= fontsize <= 40:
        raise ProbeError(f"fontsize must be in [3, 40] points, got {fontsize}")

    from matplotlib.cm import ScalarMappable

    mappable = ScalarMappable(norm=norm, cmap=cmap_obj)
    if ax is not None:
        ax = check_ax(ax)
        fig = root_figure(ax)
        width_pt = axes_width_pt(ax)
        height_pt = draw_strip(ax, toks, rows, width_pt=width_pt, norm=norm, cmap=cmap_obj,
                               fontsize=fontsize, rtl=rtl)
        points_axes(ax, width_pt, height_pt)
        ax.set_aspect("equal", adjustable="box", anchor="N")
        if text:
            ax.set_title(text, fontsize=FONT_SIZES["title"])
        cbar = parent_of(ax).colorbar(mappable, ax=ax, orientation="horizontal", fraction=0.08,
                                      pad=0.04, aspect=40)
    else:
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not 2 <= width <= 40:
            raise ProbeError(f"width must be a figure width in inches in [2, 40], got {width!r}")
        margin, top = 0.2, (0.45 + 0.2 * text.count("\n") if text else 0.15)
        bar_block = 0.85
        width_pt = (width - 2 * margin) * 72
        # draw into a provisional axes to measure the height, then size the figure to it
        fig = new_figure((width, 2.0), layout="none")
        ax = fig.add_axes((0, 0, 1, 1))
        height_pt = draw_strip(ax, toks, rows, width_pt=width_pt, norm=norm, cmap=cmap_obj,
                               fontsize=fontsize, rtl=rtl)
        height = top + height_pt / 72 + bar_block
        fig.set_size_inches(width, height)
        ax.set_position((margin / width, bar_block / height, width_pt / 72 / width,
                         height_pt / 72 / height))
        points_axes(ax, width_pt, height_pt)
        if text:
            fig.suptitle(text, fontsize=FONT_SIZES["title"], y=1 - 0.1 / height, va="top")
        bar_w = min(4.0, width - 2 * margin)
        cax = fig.add_axes(((width - bar_w) / 2 / width, 0.47 / height, bar_w / width,
                            0.12 / height))
        cbar = fig.colorbar(mappable, cax=cax, orientation="horizontal")
    cbar.set_label(label, fontsize=FONT_SIZES["label"])
    cbar.ax.tick_params(labelsize=FONT_SIZES["tick"])
    return fig
