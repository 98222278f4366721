"""Layout measurements of drawn figures, for the tests of image views at any aspect ratio:
texts that overlap or leave the canvas (measured with the renderer's text bounding boxes),
and the ratio each image is drawn at."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from probe.viewers._width import drawn_text_artists

__all__ = ["data_ratios", "drawn_ratios", "drawn_text_artists", "drawn_texts", "image_axes",
           "layout_problems"]


def drawn_texts(fig: Any) -> list[tuple[str, Any, Any]]:
    """(text, window extent, its axes) of every text ``fig`` draws (tick labels only when
    drawn)."""
    return [(t.get_text(), box, t.axes) for t, box in drawn_text_artists(fig)]


def layout_problems(fig: Any) -> list[str]:
    """Overlapping texts, texts outside the canvas, and texts over another axes' image or
    over a colourbar not their own."""
    texts = drawn_texts(fig)
    width, height = fig.bbox.width, fig.bbox.height
    problems = [f"outside: {t!r}" for t, b, _ in texts
                if b.x0 < -1 or b.y0 < -1 or b.x1 > width + 1 or b.y1 > height + 1]
    for (ta, a, _), (tb, b, _) in itertools.combinations(texts, 2):
        if min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1:
            problems.append(f"overlap: {ta!r} / {tb!r}")
    panels = [*image_axes(fig), *(ax for ax in fig.axes if hasattr(ax, "_colorbar"))]
    boxes = [(ax, ax.get_window_extent()) for ax in panels]
    for t, b, own in texts:
        for ax, box in boxes:
            if ax is not own and min(b.x1, box.x1) - max(b.x0, box.x0) > 1 and \
                    min(b.y1, box.y1) - max(b.y0, box.y0) > 1:
                problems.append(f"over an image or a colourbar: {t!r}")
    return problems


def image_axes(fig: Any) -> list[Any]:
    """The axes that draw a picture (an RGB image: the input or its grey copy under a map),
    not a matrix or a colourbar."""
    return [ax for ax in fig.axes if not hasattr(ax, "_colorbar")
            and any(np.asarray(im.get_array()).ndim == 3 for im in ax.images)]


def drawn_ratios(fig: Any) -> list[float]:
    """Width / height on the canvas of each image axes (drawn with its data limits filling
    the box, as ``aspect="equal"`` makes them)."""
    return [b.width / b.height for b in (ax.get_window_extent() for ax in image_axes(fig))]


def data_ratios(fig: Any) -> list[float]:
    """Width / height of each image axes' data limits (the image's own proportions)."""
    out = []
    for ax in image_axes(fig):
        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        out.append(abs(x1 - x0) / abs(y1 - y0))
    return out
