"""Token labels and panel titles fitted to the small panels of a head grid or model view at a
``width=``: titles at a smaller font or shortened (:func:`fit_titles`), and every token label
kept by a smaller font (down to ``MIN_FONT_PT``) or fewer, larger panels per row, within a
page's height (:func:`fit_labels`); where even that does not fit, the labels are thinned
(every second, third ... token, :func:`thinned_layout`) and the figure says so in a line
under the grid (:func:`thin_note`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from probe._errors import ProbeError
from probe.viewers._style import FONT_SIZES, MIN_FONT_PT, text_width_pt

__all__ = ["MAX_GRID_HEIGHT_IN", "Titles", "fit_labels", "fit_titles", "label_font",
           "min_grid_width", "thin_note", "thinned_fit", "thinned_layout", "title_size"]

#: the tallest head grid drawn at a ``width=`` (inches), about a page's text height: a grid
#: whose labels fit only in fewer, taller rows has its labels thinned instead
MAX_GRID_HEIGHT_IN = 9.0


class Titles(list):  # type: ignore[type-arg]
    """Panel titles drawn at ``size`` points (titles fitted to small panels)."""

    size: float = FONT_SIZES["label"]


def title_size(titles: Sequence[str]) -> float:
    return float(getattr(titles, "size", FONT_SIZES["label"]))


def fit_titles(titles: list[str] | None, room: float, word: str,
                short: str) -> list[str] | None:
    """``titles`` that fit ``room`` inches each: at the label size, else smaller (down to
    ``MIN_FONT_PT``), else shortened (``"head 3"`` -> ``"H3"``) at the label size."""
    if titles is None:
        return None
    widest = max(text_width_pt(t, 1.0) for t in titles) / 72  # inches per point of size
    out = Titles(titles)
    if widest * FONT_SIZES["label"] <= room * 0.9:
        return out
    if widest * MIN_FONT_PT <= room * 0.9:
        out.size = max(MIN_FONT_PT, round(room * 0.9 / widest * 2) / 2 - 0.5)
        return out
    out = Titles(t.replace(word, short, 1) for t in titles)
    widest = max(text_width_pt(t, 1.0) for t in out) / 72
    out.size = max(MIN_FONT_PT, min(FONT_SIZES["label"], round(room * 0.9 / widest * 2) / 2 - 0.5))
    return out


def label_font(cell: float, n_labels: int, fontsize: float) -> float | None:
    """The largest font size, at most ``fontsize`` and at least ``MIN_FONT_PT`` (in half
    points), at which ``n_labels`` token labels fit along a ``cell`` inch panel side (one
    per ``size + 1`` points); ``None`` when even ``MIN_FONT_PT`` does not fit."""
    fit = math.floor((cell * 72 / max(n_labels, 1) - 1) * 2) / 2
    return None if fit < MIN_FONT_PT else min(fontsize, fit)


def _grid_sides(width: float, n_cells: int, margins: tuple[float, float],
                gaps: tuple[float, float]):  # type: ignore[no-untyped-def]
    """``side(cols)``: the largest square panel at ``cols`` per row that keeps the grid within
    ``width`` and :data:`MAX_GRID_HEIGHT_IN` (a shorter grid leaves spare width, centred)."""
    (fixed_w, fixed_h), (gap_w, gap_h) = margins, gaps

    def side(cols: int) -> float:
        rows = -(-n_cells // cols)
        across = (width - fixed_w - (cols - 1) * gap_w) / cols
        down = (MAX_GRID_HEIGHT_IN - fixed_h - (rows - 1) * gap_h) / rows
        return min(across, down)

    return side


def fit_labels(width: float, ncols: int, fixed_cols: bool, n_cells: int, n_labels: int,
                fontsize: float, *, margins: tuple[float, float],
                gaps: tuple[float, float]) -> tuple[int, float, float]:
    """``(ncols, cell, fontsize)`` of a head grid at ``width`` whose panels label all
    ``n_labels`` tokens: at ``fontsize``, else smaller (down to ``MIN_FONT_PT``), else in fewer
    panels per row (unless ``fixed_cols``), the figure at most :data:`MAX_GRID_HEIGHT_IN`
    tall: panels that would make it taller shrink to that height (the grid then is narrower
    than ``width``, so a wider figure never labels fewer tokens). ``margins``: (left + right,
    top + bottom) inches; ``gaps``: between panels (w, h). Raises a ProbeError naming the
    width that fits when none does."""
    (fixed_w, fixed_h), (gap_w, gap_h) = margins, gaps
    side_at = _grid_sides(width, n_cells, margins, gaps)
    for cols in [ncols] if fixed_cols else range(ncols, 0, -1):  # fewer, larger panels
        font = label_font(side_at(cols), n_labels, fontsize)
        if font is not None:
            return cols, side_at(cols), font
    side = n_labels * (MIN_FONT_PT + 1) / 72
    rows_fit = [c for c in ([ncols] if fixed_cols else range(1, n_cells + 1))
                if fixed_h + -(-n_cells // c) * (side + gap_h) - gap_h <= MAX_GRID_HEIGHT_IN]
    if not rows_fit:
        raise ProbeError(
            f"{n_labels} token labels at {MIN_FONT_PT:g} pt need panels of {side:.2f} in: "
            f"{n_cells} panels{' at ncols=' + str(ncols) if fixed_cols else ''} would be over "
            f"{MAX_GRID_HEIGHT_IN:g} in tall at any width; use fewer heads or a shorter text")
    cols = rows_fit[0]
    need = math.ceil((fixed_w + cols * side + (cols - 1) * gap_w) * 10) / 10
    raise ProbeError(
        f"{n_labels} token labels at {MIN_FONT_PT:g} pt need panels of {side:.2f} in: at "
        f"width={width:g} in they would be {side_at(ncols):.2f} in; use width >= {need:.1f}, "
        f"or a shorter text"
    )


def thinned_layout(width: float, ncols: int, fixed_cols: bool, n_cells: int, *,
                   margins: tuple[float, float],
                   gaps: tuple[float, float]) -> tuple[int, float]:
    """``(ncols, cell)`` of a head grid at ``width`` whose token labels cannot all fit
    (:func:`fit_labels` refused it) and are thinned: the number of panels per row (``ncols``
    itself when it is fixed) whose panels are the largest (the most labels) within ``width``
    and :data:`MAX_GRID_HEIGHT_IN`. ``margins``, ``gaps`` as in :func:`fit_labels` (the
    margins hold the note's lines)."""
    side_at = _grid_sides(width, n_cells, margins, gaps)
    best = ncols if fixed_cols else max(range(1, n_cells + 1), key=side_at)
    return best, side_at(best)


def thinned_fit(width: float, ncols: int, fixed_cols: bool, n_cells: int, n_query: int,
                n_key: int, max_labels: int, margins: tuple[float, float],
                gaps: tuple[float, float], line: float) -> tuple[int, float, int]:
    """``(ncols, cell, note_lines)``: :func:`thinned_layout` with room under the grid for the
    :func:`thin_note` it leads to, wrapped within ``width`` (``line`` inches a line)."""
    from probe.viewers._width import wrap_text

    lines = 1
    while True:
        cols, cell = thinned_layout(width, ncols, fixed_cols, n_cells,
                                    margins=(margins[0], margins[1] + lines * line), gaps=gaps)
        shown = max(1, min(max_labels, int(max(cell, 0) * 72 // (MIN_FONT_PT + 1))))
        note = wrap_text(thin_note(n_query, n_key, shown), FONT_SIZES["label"],
                         (width - 0.2) * 72)
        if note.count("\n") + 1 <= lines:
            return cols, cell, lines
        lines = note.count("\n") + 1


def min_grid_width(n_cells: int, fixed_ncols: int | None, margins: tuple[float, float],
                   gaps: tuple[float, float], min_cell: float) -> float | None:
    """The narrowest width (inches, up to a tenth) at which ``n_cells`` panels of
    ``min_cell`` fit within :data:`MAX_GRID_HEIGHT_IN`; ``None`` when no width does."""
    (fixed_w, fixed_h), (gap_w, gap_h) = margins, gaps
    fits = [fixed_w + c * min_cell + (c - 1) * gap_w
            for c in ([fixed_ncols] if fixed_ncols else range(1, n_cells + 1))
            if fixed_h + -(-n_cells // c) * (min_cell + gap_h) - gap_h <= MAX_GRID_HEIGHT_IN]
    return math.ceil(min(fits) * 10 + 1e-9) / 10 if fits else None


def _nth(step: int) -> str:
    suffix = "th" if 10 <= step % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(step % 10, "th")
    return f"{step}{suffix}"


def thin_note(n_query: int, n_key: int, max_labels: int) -> str:
    """The line under a grid whose token labels are thinned to ``max_labels`` per axis
    (``every 2nd token labelled (16 tokens)``); ``""`` when every token is labelled."""
    step_q = max(1, math.ceil(n_query / max_labels))
    step_k = max(1, math.ceil(n_key / max_labels))
    if step_q == step_k == 1:
        return ""
    if n_query == n_key and step_q == step_k:
        return f"every {_nth(step_q)} token labelled ({n_query} tokens)"

    def side(step: int, n: int, name: str) -> str:
        return (f"every {name} token" if step == 1 else f"every {_nth(step)} {name} token") + (
            f" (of {n})" if step > 1 else "")

    return f"{side(step_q, n_query, 'query')} and {side(step_k, n_key, 'key')} labelled"
