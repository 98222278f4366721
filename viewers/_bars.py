"""Colourbars as tall as their panels: their length and label in figures placed by hand
(:func:`bar_length`), and in figures laid out by matplotlib (:func:`span_panels`).

A colourbar made with ``fig.colorbar(..., ax=...)`` under constrained layout keeps a box
aspect (20:1 by default): beside a tall panel it stops short, and beside an image drawn at
its own proportions it spans the panel's box, not the image. :func:`span_panels` keeps the
room and the x position the layout gives the bar and, at every draw, sets its y span to the
drawn boxes of its panels (after their aspect is applied); beside a strip thinner than its
ticks and label need (:data:`MIN_BAR` at least) it stays where the
layout put it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probe.viewers._fonts import text_width_pt
from probe.viewers._style import FONT_SIZES

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colorbar import Colorbar
    from matplotlib.transforms import Bbox

__all__ = ["MIN_BAR", "bar_length", "span_panels", "wrap_bar_label"]


#: the shortest colourbar of a grid (inches): room for three ticks
MIN_BAR = 0.5


def _line_in(line: str) -> float:
    return text_width_pt(line, FONT_SIZES["label"]) / 72


def wrap_bar_label(label: str, length: float) -> str:
    """``label`` with its lines broken at spaces so that each fits along a colourbar
    ``length`` inches long, in as few lines as possible; ``label`` as it is when that takes
    more than 3 lines (they would not fit the 1 inch beside the bar) or a word longer than
    the bar."""
    out = []
    for line in label.split("\n"):
        words, rows = line.split(" "), [""]
        for word in words:
            trial = f"{rows[-1]} {word}" if rows[-1] else word
            if rows[-1] and _line_in(trial) > length:
                rows.append(word)
            else:
                rows[-1] = trial
        out.extend(rows)
    if len(out) > 3 or any(_line_in(row) > length for row in out):
        return label
    return "\n".join(out)


def bar_length(labels: Sequence[str], area: float) -> tuple[float, list[str]]:
    """Length in inches of the colourbars of a grid whose panels span ``area`` inches from
    the first row's top to the last row's bottom, and their labels as drawn: ``area`` itself
    (the bars line up with the panels), the labels wrapped to fit along it
    (:func:`wrap_bar_label`); only where a label still does not fit, or ``area`` is under
    :data:`MIN_BAR` (a row of wide strips), as long as that label's longest line."""
    shown = [wrap_bar_label(label, area) for label in labels]
    need = max((_line_in(line) for label in shown for line in label.split("\n")),
               default=0.0)
    if area >= max(need, MIN_BAR):
        return area, shown
    need = max((_line_in(line) for label in labels for line in label.split("\n")),
               default=0.0)
    return max(need + 0.05, MIN_BAR), list(labels)  # 0.05: the drawn text's margins


class _PanelSpan:
    """Axes locator of a vertical colourbar: x as placed by the layout, y the span of
    ``panels`` as drawn."""

    def __init__(self, panels: Sequence[Axes]) -> None:
        self.panels = list(panels)

    def __call__(self, cax: Axes, renderer: Any) -> Bbox:
        from matplotlib.transforms import Bbox

        for ax in self.panels:
            ax.apply_aspect()  # the image's own box, as it is drawn
        boxes = [ax.get_position(original=False) for ax in self.panels]
        own = cax.get_position(original=True)
        top, bottom = max(b.y1 for b in boxes), min(b.y0 for b in boxes)
        fig = cax.get_figure(root=False)
        need = MIN_BAR * fig.dpi  # pixels: room for three ticks, and the label along the bar
        label = cax.yaxis.label
        if renderer is not None and label.get_text():
            need = max(need, label.get_window_extent(renderer).height + 0.05 * fig.dpi)
        if (top - bottom) * fig.bbox.height < need:  # a thin strip: the layout's own bar
            return own
        cax.set_box_aspect(None)  # the layout sets 20:1 again at each pass: the bar would shrink
        # as thick as a 20:1 bar of its new length (the layout's room is a fraction of the
        # panels' width: a row of wide images made the bar as fat as an inch)
        thick = min(own.width, (top - bottom) * fig.bbox.height / 20 / fig.bbox.width)
        return Bbox.from_extents(own.x0, bottom, own.x0 + thick, top)


def span_panels(bar: Colorbar, panels: Axes | Sequence[Axes]) -> Colorbar:
    """Make the vertical colourbar ``bar`` exactly as tall as ``panels`` (one axes or
    several in one (sub)figure) as they are drawn; returns ``bar``."""
    from matplotlib.axes import Axes

    bar.ax.set_axes_locator(_PanelSpan([panels] if isinstance(panels, Axes) else panels))
    return bar
