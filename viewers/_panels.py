"""Panel boxes of image views: how much room an image of any aspect ratio gets.

Every image view draws its image at the image's own proportions (equal aspect), inside a
panel box that is never more elongated than :data:`MAX_PANEL_RATIO` (4:1): a 1000 x 10 pixel
strip is drawn at 100:1 in a 4:1 box, so the colourbar beside it, sized to the box, keeps
room for its ticks and label, and titles keep room above it. A square image gets a square
box, the same as before these rules.

* :func:`panel_size`: a box with a given longer side (figures placed by hand:
  :func:`~probe.viewers.saliency_overlay`, :func:`~probe.viewers.cls_head_grid`,
  :func:`~probe.viewers.comparison_panel`);
* :func:`cell_size`: a box grown from a square side, wider for wide images (figures laid
  out by matplotlib: the gate figures, :func:`~probe.viewers.query_point_view`,
  :func:`~probe.viewers.detr_queries_view`).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MAX_PANEL_RATIO", "cell_size", "panel_size", "title_width"]

#: the most elongated panel box drawn (long side / short side); a thinner image keeps its
#: aspect ratio inside the box, so colourbars and titles stay readable (a 1000x10 strip)
MAX_PANEL_RATIO = 4.0


def panel_size(shape: tuple[int, int], long_side: float) -> tuple[float, float]:
    """``(width, height)`` in inches of the box of an image of ``shape = (height, width)``
    pixels: the image's proportions with the longer side ``long_side``, the shorter at least
    ``long_side / MAX_PANEL_RATIO``."""
    height, width = shape
    short = max(min(height, width) / max(height, width), 1 / MAX_PANEL_RATIO) * long_side
    return (long_side, short) if width >= height else (short, long_side)


def cell_size(shape: tuple[int, int], side: float, *, max_wide: float = 2.5,
              max_tall: float = 1.0) -> tuple[float, float]:
    """``(width, height)`` in inches of the box of an image of ``shape = (height, width)``:
    ``side`` x ``side`` for a square image; a wide image gets the width ``side`` times its
    ratio (at most ``max_wide`` times), a tall one the height ``side`` times its ratio (at most
    ``max_tall`` times), the other side following the image but never under
    ``1 / MAX_PANEL_RATIO`` of the longer one."""
    height, width = shape
    ratio = width / height
    if ratio >= 1:
        w = side * min(ratio, max_wide)
        return w, max(w / ratio, w / MAX_PANEL_RATIO)
    h = side * min(1 / ratio, max_tall)
    return max(h * ratio, h / MAX_PANEL_RATIO), h


def title_width(titles: Sequence[str], fontsize: float) -> float:
    """Width in inches of the widest line of ``titles`` at ``fontsize``: a box narrower than
    its title (a tall image's) is widened to it, so titles side by side never meet."""
    from probe.viewers._fonts import text_width_pt

    return max((text_width_pt(line, fontsize) / 72 for t in titles for line in str(t).split("\n")),
               default=0.0)
