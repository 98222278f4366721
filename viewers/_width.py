"""Figures at a paper's column width: the ``width=`` keyword of every viewer, and the one
rule that wraps rows of panels.

``width=`` is the width of the figure in inches, as it will be printed: a number, or
``"single"`` (one column, :data:`COLUMN_WIDTHS`: 3.5 in) or ``"double"`` (both columns of a
two-column page, 7.0 in). Fonts are given in points at that size, so what the figure says is
what the page shows, and no text is ever printed under :data:`MIN_FONT_PT` (6 pt):

* views laid out in rows of panels (heads of a layer, CLS maps, window and DETR queries,
  gate maps, non-local query points) re-flow: as many panels per row as fit at the width
  (:func:`columns_for_width`, at least :data:`MIN_PANEL_IN` per panel), further rows below
  (:func:`wrap_grid`), fonts unchanged;
* the model view keeps its layers x heads matrix and shrinks its panels: when the heads do not
  fit at the width, it raises a :class:`~probe.ProbeError` naming the fix (capture fewer with
  ``probe.trace(..., layers=, heads=)``, or plot one layer with the heads view);
* views laid out by matplotlib (constrained layout: curves, channel profiles, ...) get the
  width and re-flow with fonts unchanged;
* views placed by hand in inches (link view, saliency overlay, image comparison, ...) are
  drawn at their own size and scaled to the width, fonts with them (:func:`fit_width`), as a
  LaTeX ``\\includegraphics[width=...]`` would print them; when that puts a text under the
  floor, a :class:`~probe.ProbeError` gives the narrowest width that stays legible.

Without ``width=`` every figure keeps its own size; :func:`figure_width` sets a default for
the figures made inside it (what ``probe render --width`` uses).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union

from probe._errors import ProbeError

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

__all__ = [
    "COLUMN_WIDTHS",
    "MIN_PANEL_IN",
    "Width",
    "check_legible",
    "columns_for_width",
    "drawn_text_artists",
    "figure_width",
    "fit_width",
    "resolve_width",
    "sized",
    "smallest_font",
    "text_clashes",
    "wrap_grid",
    "wrap_text",
]

#: Named widths in inches: one column, and both columns of a two-column page (IEEE, ACL and
#: most two-column venues print a column 3.25-3.5 in wide and the text 6.75-7.2 in).
COLUMN_WIDTHS: dict[str, float] = {"single": 3.5, "double": 7.0}
#: the narrowest and widest figure ``width=`` accepts, inches
WIDTH_RANGE = (2.0, 40.0)
#: the narrowest panel (longer side, inches) a re-flowing view draws at a given width
MIN_PANEL_IN = 0.9

Width = Union[float, Literal["single", "double"]]

_DEFAULT: contextvars.ContextVar[float | None] = contextvars.ContextVar("probe_figure_width",
                                                                      default=None)


def resolve_width(width: Any, name: str = "width") -> float | None:
    """``width`` in inches: a number in :data:`WIDTH_RANGE`, ``"single"``/``"double"``, or
    ``None`` (then the :func:`figure_width` in force, if any)."""
    if width is None:
        return _DEFAULT.get()
    if isinstance(width, str):
        if width in COLUMN_WIDTHS:
            return COLUMN_WIDTHS[width]
        raise ProbeError(f"{name} must be a number of inches or one of {list(COLUMN_WIDTHS)}, "
                         f"got {width!r}")
    lo, hi = WIDTH_RANGE
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not (
        math.isfinite(width) and lo <= width <= hi
    ):
        raise ProbeError(f"{name} must be a figure width in inches in [{lo:g}, {hi:g}] (or "
                         f"'single' = {COLUMN_WIDTHS['single']:g}, 'double' = "
                         f"{COLUMN_WIDTHS['double']:g}), got {width!r}")
    return float(width)


@contextlib.contextmanager
def figure_width(width: Width | None) -> Iterator[float | None]:
    """Draw every figure made inside this block at ``width`` (inches, ``"single"`` or
    ``"double"``) unless the call passes its own ``width=``; ``None`` changes nothing."""
    resolved = resolve_width(width) if width is not None else _DEFAULT.get()
    token = _DEFAULT.set(resolved)
    try:
        yield resolved
    finally:
        _DEFAULT.reset(token)


def wrap_grid(n: int, columns: int) -> tuple[int, int]:
    """``(rows, cols)`` of ``n`` panels at most ``columns`` to a row: one row of ``n`` when
    they fit, else full rows of ``columns`` and the rest in the last."""
    if n < 1 or columns < 1:
        raise ProbeError(f"need at least one panel and one column, got {n} and {columns}")
    cols = min(n, columns)
    return -(-n // cols), cols


def columns_for_width(width: float, panel: float, *, fixed: float = 0.0, gap: float = 0.0,
                      most: int | None = None, least: int = 1) -> int:
    """Panels per row that fit ``width`` inches: each at least ``panel`` wide with ``gap``
    between them, after ``fixed`` inches of margins and colourbars; between ``least`` and
    ``most``."""
    fit = int((width - fixed + gap) // (panel + gap))
    cols = max(least, fit)
    return cols if most is None else max(least, min(cols, most))


def smallest_font(fig: Figure) -> float:
    """The smallest font size (points) of any text ``fig`` draws, tick labels included (the
    figure is drawn once on an Agg canvas to create them)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    FigureCanvasAgg(fig).draw()
    sizes = [float(t.get_fontsize()) for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip()]
    return min(sizes, default=math.inf)


def check_legible(fig: Figure, what: str, fix: str) -> Figure:
    """Raise a :class:`~probe.ProbeError` when ``fig`` prints a text under ``MIN_FONT_PT``."""
    from probe.viewers._style import MIN_FONT_PT

    small = smallest_font(fig)
    if small < MIN_FONT_PT - 1e-6:
        width = float(fig.get_size_inches()[0])
        raise ProbeError(f"{what} at width={width:.3g} in would print text at {small:.1f} pt "
                         f"(under {MIN_FONT_PT:g} pt): {fix}")
    return fig


def fit_width(fig: Figure, width: float, what: str = "this figure", fix: str = "") -> Figure:
    """``fig`` at ``width`` inches wide, the height in proportion.

    A figure laid out by matplotlib (constrained layout) re-flows at the new size with its
    fonts unchanged (narrower: its own height kept) when no text then overlaps another or
    leaves the canvas (:func:`text_clashes`); otherwise, and for a figure placed by hand in
    inches, the figure is scaled whole, fonts included (as a printed figure would be), and
    raises a :class:`~probe.ProbeError` when a text falls under ``MIN_FONT_PT``: the message
    gives the narrowest legible width and ``fix``.
    """
    from probe.viewers._style import MIN_FONT_PT

    w, h = (float(v) for v in fig.get_size_inches())
    scale = width / w
    if abs(w - width) < 1e-3:  # laid out at the width: exact
        fig.set_size_inches(width, h)
        return fig
    if fig.get_layout_engine() is not None:  # re-flow, fonts unchanged, if the text fits
        import warnings

        fig.set_size_inches(width, h * max(scale, 1.0))
        with warnings.catch_warnings(record=True) as caught:  # "axes sizes collapsed"
            warnings.simplefilter("always")
            clashes = text_clashes(fig)
        if not clashes and not any("constrained_layout" in str(c.message) for c in caught):
            return fig
        fig.set_size_inches(w, h)  # else scaled whole, as below
    small = smallest_font(fig)  # drawn: colourbar tick labels exist
    if small * scale < MIN_FONT_PT - 1e-6:
        need = w * MIN_FONT_PT / small
        raise ProbeError(f"{what} is {w:.1f} in wide with {small:g} pt text: at width="
                         f"{width:.3g} in its text would print at {small * scale:.1f} pt (under "
                         f"{MIN_FONT_PT:g} pt); use width >= {math.ceil(need * 10) / 10:g}"
                         + (f", or {fix}" if fix else ""))
    _scale_fonts(fig, scale)
    fig.set_size_inches(width, h * scale)
    return fig


def drawn_text_artists(fig: Figure) -> list[tuple[Text, Bbox]]:
    """``(Text, window extent in pixels)`` of every non-empty text ``fig`` draws, drawn on an
    Agg canvas at the figure's dpi: tick labels only where drawn (visible axis, tick inside
    the view limits), texts of hidden axes and boxes with no width or a non-finite extent
    left out. The one collector of drawn text (:func:`text_clashes`, the layout tests)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ticks, drawn = set(), set()  # tick labels count only where drawn (inside the view)
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                ticks |= {id(tick.label1), id(tick.label2)}
            if ax.axison and axis.get_visible():
                for tick in axis._update_ticks():
                    drawn |= {id(t) for t in (tick.label1, tick.label2) if t.get_visible()}
    out = []
    for text in fig.findobj(Text):
        if not text.get_visible() or not text.get_text().strip():
            continue
        if id(text) in ticks and id(text) not in drawn:
            continue
        if text.axes is not None and not text.axes.get_visible():
            continue
        box = text.get_window_extent(renderer)
        if box.width > 0 and all(math.isfinite(v) for v in box.extents):
            out.append((text, box))
    return out


def text_clashes(fig: Figure) -> list[str]:
    """Texts of ``fig`` that overlap each other or leave the canvas (drawn on Agg)."""
    boxes = [(text.get_text(), box) for text, box in drawn_text_artists(fig)]
    width, height = fig.bbox.width, fig.bbox.height
    out = [f"outside: {t!r}" for t, b in boxes
           if b.x0 < -1 or b.y0 < -1 or b.x1 > width + 1 or b.y1 > height + 1]
    for i, (ta, a) in enumerate(boxes):
        for tb, b in boxes[i + 1:]:
            if min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1:
                out.append(f"overlap: {ta!r} / {tb!r}")
    return out


def _check_fits(fig: Figure, what: str, fix: str) -> None:
    """Raise a :class:`~probe.ProbeError` when a text of ``fig`` leaves the canvas or runs
    into another (a view laid out at a width too narrow for its fixed texts)."""
    clashes = text_clashes(fig)
    if clashes:
        width = float(fig.get_size_inches()[0])
        raise ProbeError(f"{what} does not fit at width={width:.3g} in ({clashes[0]}): use a "
                         f"wider figure" + (f", or {fix}" if fix else ""))


def _scale_fonts(fig: Figure, scale: float) -> None:
    """Multiply every font size of a drawn ``fig`` by ``scale`` (tick labels made later too)."""
    from matplotlib.text import Text

    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for which, ticks in (("major", axis.get_major_ticks()),
                                 ("minor", axis.get_minor_ticks())):
                if ticks:
                    axis.set_tick_params(which=which,
                                         labelsize=ticks[0].label1.get_fontsize() * scale)
    done = {id(t) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks()
            for t in (tick.label1, tick.label2)}
    for text in fig.findobj(Text):
        if id(text) not in done:
            text.set_fontsize(text.get_fontsize() * scale)
            done.add(id(text))


_F = TypeVar("_F", bound=Callable[..., Any])


def sized(fix: str = "") -> Callable[[_F], _F]:
    """Decorator of a public viewer: its ``width=`` keyword (inches, ``"single"`` or
    ``"double"``; default the :func:`figure_width` in force, else the figure's own size).

    A viewer that lays itself out at a width declares ``width`` itself and gets it resolved
    to inches (or ``None``); any other is drawn at its own size. Either way a figure that is
    not ``width`` wide then goes through :func:`fit_width` (``fix``: what to do when it
    cannot be legible at the width). A figure drawn into the caller's ``ax=`` keeps the
    caller's size.
    """

    def decorator(function: _F) -> _F:
        signature = inspect.signature(function)
        native = "width" in signature.parameters
        what = f"the {function.__name__} figure"
        own_default = signature.parameters["width"].default if native else None

        @functools.wraps(function)
        def wrapper(*args: Any, width: Any = None, **kwargs: Any) -> Any:
            inches = resolve_width(width)
            if native and (inches is not None or own_default is None):
                fig = function(*args, width=inches, **kwargs)
            else:  # a viewer whose own width default (token strip: 8 in) stands
                fig = function(*args, **kwargs)
            if inches is None or kwargs.get("ax") is not None:
                return fig
            fig = fit_width(fig, inches, what, fix)  # a viewer that laid itself out: as is
            if native:
                _check_fits(fig, what, fix)
            return fig

        if not native:
            params = list(signature.parameters.values())
            extra = inspect.Parameter("width", inspect.Parameter.KEYWORD_ONLY, default=None,
                                      annotation="float | str | None")
            at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
            wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
                parameters=[*params[:at], extra, *params[at:]])
        return wrapper  # type: ignore[return-value]

    return decorator


def wrap_text(text: str, fontsize: float, width_pt: float, weight: str = "normal",
              breaks: tuple[str, ...] = (" \u00b7 ", " ")) -> str:
    """``text`` broken into lines no wider than ``width_pt`` points at ``fontsize``, unchanged
    when it fits on one line. Lines break at the first of ``breaks`` that makes the pieces
    fit (``" · "`` between the parts of a caption, which the line break replaces, then
    spaces); a piece still wider than the line (Chinese or Japanese, which has no spaces, a
    very long word) breaks between its characters (:func:`_cut`)."""
    from probe.viewers._fonts import text_width_pt

    def fits(line: str) -> bool:
        return text_width_pt(line, fontsize, weight) <= width_pt

    if fits(text):
        return text
    if not breaks:
        return _cut(text, fits)
    sep, rest = breaks[0], breaks[1:]
    lines: list[str] = []
    for piece in text.split(sep):
        if lines and fits(lines[-1] + sep + piece):
            lines[-1] += sep + piece
        else:
            lines.append(piece)
    return "\n".join(wrap_text(line, fontsize, width_pt, weight, rest) for line in lines)


def _cut(word: str, fits: Callable[[str], bool]) -> str:
    """``word`` broken between characters into the longest lines that ``fits``: anywhere in
    CJK text, with a hyphen where a line ends inside a run of letters or digits (after a
    hyphen or an ellipsis none is added); at least one character a line, and ``word``
    whole where not even two characters fit."""
    import unicodedata

    def wide(ch: str) -> bool:
        return unicodedata.east_asian_width(ch) in ("W", "F")

    def hyphen(left: str, right: str) -> str:
        a, b = left[-1], right[:1]
        return "-" if b and a.isalnum() and b.isalnum() and not (wide(a) or wide(b)) else ""

    if not fits(word[:2]):
        return word
    lines: list[str] = []
    while word:
        if fits(word):
            lines.append(word)
            break
        at = 1
        while at < len(word) and fits(word[:at + 1] + hyphen(word[:at + 1], word[at + 1:])):
            at += 1
        lines.append(word[:at] + hyphen(word[:at], word[at:]))
        word = word[at:]
    return "\n".join(lines)
