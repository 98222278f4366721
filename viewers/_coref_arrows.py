"""Where the coreference view's arrows run: from the chosen word to each ranked antecedent,
on the same line or across lines (:func:`arrow_routes`).

Every arrow is an orthogonal path that never crosses a word: it leaves the top of the chosen
word's box, rises into the free band above the boxes of its line (the "arc room"), and

* to an antecedent **on the same line**, runs along that band and drops onto the antecedent's
  box (a bracket, as the view always drew it);
* to an antecedent **on another line**, runs along the band to a lane in the margin beside
  the text (left of the lines, right of them for right-to-left text), follows the lane up
  (or down) to the antecedent's line, runs along that line's band and drops onto the box.

Each arrow has a level in the bands and a lane of its own, nested so that arrows do not cross
one another: the arrow that goes farthest (the earliest line, and there the word farthest
from the margin) takes the outermost lane and the highest level, and leaves the chosen word
farthest from the margin. When every antecedent is on the chosen word's line the brackets are
placed exactly as before (level and start by rank).
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.viewers._tokens import TokenLayout

__all__ = ["arrow_routes", "LEVEL_STEP"]

LEVEL_STEP = 4.0  # points between two levels of the band above the boxes
_LANE_STEP = 3.5  # points between two lanes in the margin
_LANE_ROOM = 15.0  # points of margin the lanes may use (the figure keeps 18)

Point = tuple[float, float]


def _level(k: int) -> float:
    """Height (points) of level ``k`` (1 the lowest) above the box tops' anchor line."""
    return LEVEL_STEP + LEVEL_STEP * min(k, 4)


def arrow_routes(
    layout: TokenLayout,
    word: int,
    ranked: Sequence[int],
    *,
    arc_room: float,
    box_h: float,
    width_pt: float,
    rtl: bool = False,
) -> dict[int, list[Point]]:
    """The path of each arrow, ``{antecedent: [(x, y), ...]}`` in the points of the view's
    axes (y down), from a point inside the top of ``word``'s box to one inside the top of the
    antecedent's box.

    Args:
        layout: the laid-out words (:func:`probe.viewers._tokens.layout_tokens`).
        word: index (into the layout) of the chosen word.
        ranked: layout indices of the ranked antecedents, strongest first.
        arc_room: points between a line's top and its boxes' tops (the band for the arrows).
        box_h: a box's height in points.
        width_pt: the text's width in points (the lanes of right-to-left text lie past it).
        rtl: right-to-left text: the lanes lie right of the lines.
    """
    line = layout.line

    def anchor_y(i: int) -> float:
        return float(line[i] * layout.line_height + arc_room + 0.1 * box_h)

    def band_y(row: int, k: int) -> float:
        return float(row * layout.line_height + arc_room + 0.1 * box_h - _level(k))

    n = len(ranked)
    x0, y0 = layout.centre(word), anchor_y(word)
    same = [i for i in ranked if line[i] == line[word]]
    if len(same) == n:  # one line: brackets by rank, as the view always drew them
        out = {}
        for rank, i in enumerate(ranked, start=1):
            xs = x0 + (rank - (n + 1) / 2) * 3.0
            level = y0 - _level(rank)
            out[i] = [(xs, y0), (xs, level), (layout.centre(i), level), (layout.centre(i),
                                                                       anchor_y(i))]
        return out

    away = -1.0 if rtl else 1.0  # +1: away from the margin the lanes are in (to the right)

    def from_margin(i: int) -> float:
        return away * layout.centre(i)

    # nearest first within the line (lowest levels); then lines below, then lines above,
    # the farthest last (highest level, outermost lane)
    same.sort(key=lambda i: abs(layout.centre(i) - x0))
    down = sorted((i for i in ranked if line[i] > line[word]),
                  key=lambda i: (line[i], from_margin(i)))
    up = sorted((i for i in ranked if line[i] < line[word]),
                key=lambda i: (-line[i], from_margin(i)))
    order = same + down + up  # level k = position + 1
    crossing = down + up
    step = min(_LANE_STEP, _LANE_ROOM / max(len(crossing), 1))
    spread = min(3.0, max(float(layout.width[word]) - 4.0, 0.0) / max(n - 1, 1))
    out = {}
    for k, i in enumerate(order, start=1):
        xs = x0 + away * (k - (n + 1) / 2) * spread
        xe, ye = layout.centre(i), anchor_y(i)
        if line[i] == line[word]:
            level = band_y(int(line[word]), k)
            out[i] = [(xs, y0), (xs, level), (xe, level), (xe, ye)]
            continue
        j = crossing.index(i) + 1  # 1 the innermost lane
        lane = -step * j if not rtl else width_pt + step * j
        start, end = band_y(int(line[word]), k), band_y(int(line[i]), k)
        out[i] = [(xs, y0), (xs, start), (lane, start), (lane, end), (xe, end), (xe, ye)]
    return out
