"""The one look shared by every viewer: colormaps, fonts, titles, input checks, saving.

Every viewer builds its figure with :func:`new_figure` (a bare ``matplotlib.figure.Figure``,
never registered with pyplot, so no GUI backend is needed and nothing global changes), reads
its inputs through :func:`as_array` / :func:`check_tokens`, picks colours with
:func:`cmap_for` / :func:`color_limits`, titles itself with :func:`title` and is written to
disk by :func:`save_figure`.

Colormaps
    * ``SEQUENTIAL_CMAP = "viridis"``: attention weights and saliency maps (heatmaps, head
      grids, overlays). Perceptually uniform, readable in grey scale and by colour-blind
      readers.
    * ``DIVERGING_CMAP = "RdBu_r"``: signed values (attributions, gradients, rank
      correlations), always centred at 0 with symmetric limits, so white means zero,
      red positive and blue negative.
    * ``TEXT_SEQUENTIAL_CMAP = "Reds"``: unsigned scores drawn *behind text* (token strips,
      coreference view). It starts at white, so low scores stay quiet and black text stays
      legible; it matches the positive half of the diverging map.
    * :func:`categorical_colors`: one colour per head or method (``tab10``, then ``tab20``).

Colour scales, by quantity (one rule, every static view)
    * unsigned quantities (attention weights, cross-attention, gates, CAMs, unsigned scores
      such as rollout or saliency) run from **0** to the largest value shown: 0 means "none",
      so a colour means the same amount in every view of that quantity and a near-constant map
      looks near-constant (never stretched from its own minimum);
    * signed quantities (attributions, gradients, correlations) are symmetric around 0
      (``-m..m``, ``m`` the largest magnitude) on the diverging map;
    * the colourbar names the quantity: ``"attention weight"``, ``"<method> score"``,
      ``"<method> attribution"``; a scale divided per method or per head adds
      ``"(normalized per method)"`` / ``"(normalized per head)"`` to the same noun
      (``"score (normalized per method)"``). Explicit ``vmin``/``vmax`` win.

Token labels
    Long token lists are thinned: with more than ``max_labels`` tokens only every ``step``-th
    label is shown, ``step = ceil(n / max_labels)``. The documented defaults are
    ``HEATMAP_MAX_LABELS`` (single heatmap), ``GRID_MAX_LABELS`` (head grid cells),
    ``MODEL_VIEW_MAX_LABELS`` (model view cells) and ``LINK_MAX_LABELS`` (link view).
    Labels longer than ``MAX_LABEL_CHARS`` characters are shortened with an ellipsis.

Fonts (any language)
    Every text of a viewer is drawn with the fallback family list of :mod:`probe.viewers._fonts`
    (:func:`font_families`, :func:`styled`), re-exported here.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from probe._atomic import atomic_write, output_path
from probe._errors import ProbeError
from probe._text import visible_text
from probe.viewers._fonts import (
    apply_fonts,
    drawable,
    font_families,
    register_fonts,
    styled,
    text_width_pt,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap, Normalize
    from matplotlib.figure import Figure, SubFigure

__all__ = [
    "SEQUENTIAL_CMAP",
    "DIVERGING_CMAP",
    "TEXT_SEQUENTIAL_CMAP",
    "FONT_SIZES",
    "HEATMAP_MAX_LABELS",
    "GRID_MAX_LABELS",
    "MODEL_VIEW_MAX_LABELS",
    "LINK_MAX_LABELS",
    "MAX_LABEL_CHARS",
    "SAVE_FORMATS",
    "title",
    "cmap_for",
    "is_signed",
    "color_limits",
    "categorical_colors",
    "new_figure",
    "save_figure",
    "as_array",
    "check_tokens",
    "format_token",
    "thin_labels",
    "font_families",
    "register_fonts",
    "styled",
    "apply_fonts",
    "text_width_pt",
    "MIN_FONT_PT",
    "BASELINE_METHODS",
    "is_baseline",
    "baselines_last",
    "BASELINE_STYLE",
]

SEQUENTIAL_CMAP = "viridis"
DIVERGING_CMAP = "RdBu_r"
TEXT_SEQUENTIAL_CMAP = "Reds"

#: Font sizes in points, used explicitly by every viewer (rcParams are never changed).
FONT_SIZES: dict[str, float] = {
    "suptitle": 11.0,
    "title": 10.0,
    "label": 9.0,
    "tick": 7.5,
    "small_tick": 6.5,
    "token": 9.0,
    "annotation": 8.0,
    "legend": 8.0,
}

#: The smallest font size any viewer uses at the saved size (points); the look tests check it.
MIN_FONT_PT = 6.0

#: Methods that are baselines, not explanations: drawn last and in ``BASELINE_STYLE``.
BASELINE_METHODS = frozenset({"random"})
#: How a baseline looks in every comparison and curve figure: dashed and grey.
BASELINE_STYLE: dict[str, Any] = {"color": "0.45", "linestyle": (0, (4, 2))}

HEATMAP_MAX_LABELS = 50
GRID_MAX_LABELS = 16
MODEL_VIEW_MAX_LABELS = 24
LINK_MAX_LABELS = 60
MAX_LABEL_CHARS = 14

SAVE_FORMATS = ("png", "svg", "pdf")
DEFAULT_DPI = 150

Layout = Literal["constrained", "none"]


# --------------------------------------------------------------------------- titles, colours


def _describe(value: Any, singular: str, plural: str) -> str:
    if isinstance(value, str):
        # "mean" is a fusion, not a name: "heads averaged", never "head mean"
        return f"{plural} averaged" if value == "mean" else f"{singular} {value}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = [int(v) if isinstance(v, (int, np.integer))
                 or (isinstance(v, str) and v.isascii() and v.isdigit()) else v for v in value]
        if len(items) == 1:
            return f"{singular} {items[0]}"
        if all(isinstance(v, int) for v in items) and items == list(range(items[0], items[-1] + 1)):
            return f"{plural} {items[0]}\u2013{items[-1]}"
        return f"{plural} " + ", ".join(str(v) for v in items)
    return f"{singular} {value}"


def title(
    model: str | None = None,
    layer: int | str | Sequence[int] | None = None,
    head: int | str | Sequence[int] | None = None,
    method: str | None = None,
) -> str:
    """The consistent figure title: ``"model · layer 3 · head 5 · method"``.

    Parts that are ``None`` are left out. ``layer`` and ``head`` may be an int, a string
    (e.g. ``"mean"``) or a sequence (``[0, 1, 2, 3]`` becomes ``"heads 0–3"``). ``$`` in the
    model or method name is escaped, so a name such as ``$x^2$`` or ``$\\foo$`` is drawn as
    written, never parsed as math.
    """
    parts: list[str] = []
    if model:
        parts.append(literal(str(model)))
    if layer is not None:
        parts.append(_describe(layer, "layer", "layers"))
    if head is not None:
        parts.append(_describe(head, "head", "heads"))
    if method:
        parts.append(literal(str(method)))
    return " \u00b7 ".join(parts)


def literal(text: str) -> str:
    """``text`` escaped so that matplotlib draws it as written (``$`` never starts math)."""
    return text.replace("$", r"\$")


def is_signed(values: np.ndarray) -> bool:
    """True when ``values`` holds a negative number (then a diverging colormap is used).

    Round-off negatives (``>= -1e-6`` times the largest magnitude, e.g. from fused attention
    kernels) do not count.
    """
    arr = np.asarray(values, dtype=float)
    if not arr.size:
        return False
    return bool(np.min(arr) < -1e-6 * float(np.max(np.abs(arr))))


def cmap_for(signed: bool, *, behind_text: bool = False) -> str:
    """Colormap name by signedness: diverging for signed values, sequential otherwise.

    ``behind_text=True`` picks the white-based sequential map used as text background.
    """
    if signed:
        return DIVERGING_CMAP
    return TEXT_SEQUENTIAL_CMAP if behind_text else SEQUENTIAL_CMAP


def color_limits(
    values: np.ndarray,
    signed: bool,
    *,
    zero_based: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
) -> tuple[float, float]:
    """``(vmin, vmax)`` for ``values``.

    Signed values get symmetric limits ``(-m, m)`` with ``m = max |values|`` (centred at 0).
    Unsigned values get ``(min, max)``, or ``(0, max)`` with ``zero_based=True``; every static
    view passes ``zero_based=True`` (the rule in the module docstring: unsigned scales start
    at 0). Explicit ``vmin``/``vmax`` win. Constant data get a
    non-empty range so the colourbar stays drawable.
    """
    finite = np.asarray(values, dtype=float)
    if signed:
        m = float(np.max(np.abs(finite))) if finite.size else 1.0
        m = m if m > 0 else 1.0
        lo, hi = -m, m
    else:
        lo = 0.0 if zero_based or not finite.size else float(np.min(finite))
        hi = float(np.max(finite)) if finite.size else 1.0
    lo = lo if vmin is None else _limit(vmin, "vmin")
    hi = hi if vmax is None else _limit(vmax, "vmax")
    if hi <= lo and (vmin is not None or vmax is not None):
        given = ", ".join(f"{k}={v!r}" for k, v in (("vmin", vmin), ("vmax", vmax))
                          if v is not None)
        raise ProbeError(
            f"the colour scale would run from {lo:g} to {hi:g} ({given}): vmin must be below "
            "vmax; pass both, with vmin < vmax, or leave them to the data"
        )
    if hi <= lo:
        pad = abs(lo) * 0.5 if lo != 0 else 0.5
        lo, hi = (lo, lo + 2 * pad) if zero_based and lo == 0 else (lo - pad, hi + pad)
    return lo, hi


def _limit(value: Any, name: str) -> float:
    """An explicit colour limit: a finite real number."""
    try:
        if isinstance(value, (bool, str, bytes)):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ProbeError(f"{name} must be a number (a colour-scale limit), got {value!r}") from None
    if not np.isfinite(number):
        raise ProbeError(f"{name} must be a finite number, got {value!r}: leave it out to use "
                         "the data's range")
    return number


def make_norm(
    values: np.ndarray,
    signed: bool,
    *,
    zero_based: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Normalize:
    """A ``matplotlib.colors.Normalize`` with :func:`color_limits`."""
    from matplotlib.colors import Normalize

    lo, hi = color_limits(values, signed, zero_based=zero_based, vmin=vmin, vmax=vmax)
    return Normalize(vmin=lo, vmax=hi)


def get_cmap(name: str | Colormap) -> Colormap:
    """Resolve a colormap name (or pass a ``Colormap`` through) without touching pyplot."""
    import matplotlib

    if not isinstance(name, str):
        return name
    try:
        return matplotlib.colormaps[name]
    except KeyError:
        raise ProbeError(
            f"unknown colormap {name!r}: use a matplotlib colormap name such as "
            f"{SEQUENTIAL_CMAP!r} or {DIVERGING_CMAP!r}"
        ) from None


def categorical_colors(n: int) -> list[tuple[float, float, float, float]]:
    """``n`` distinct RGBA colours, one per head or method.

    Up to 20: the ten ``tab10`` colours, then their light ``tab20`` partners (so the first
    ten never change with ``n``); beyond 20, evenly spaced hues.
    """
    import matplotlib

    if n <= 20:
        cmap = matplotlib.colormaps["tab20"]
        order = [2 * k for k in range(10)] + [2 * k + 1 for k in range(10)]
        return [cmap(order[i]) for i in range(n)]
    cmap = matplotlib.colormaps["hsv"]
    return [cmap(i / n) for i in range(n)]


def text_color_on(color: Any) -> str:
    """Black or white, whichever reads better on the background ``color`` (any mpl colour)."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "black" if luminance > 0.45 else "white"


# --------------------------------------------------------------------------- figures


def new_figure(figsize: tuple[float, float], *, layout: Layout = "constrained") -> Figure:
    """A bare ``Figure`` (object API, not registered with pyplot, no GUI backend needed)."""
    from matplotlib.figure import Figure

    width, height = (float(v) for v in figsize)
    if not (width > 0 and height > 0 and math.isfinite(width) and math.isfinite(height)):
        raise ProbeError(f"figsize must be two positive numbers (inches), got {figsize!r}")
    return Figure(figsize=(width, height), layout=None if layout == "none" else layout)


def root_figure(ax: Axes) -> Figure:
    """The top-level ``Figure`` that holds ``ax`` (through any subfigures)."""
    fig: Any = ax.figure
    while getattr(fig, "figure", None) is not None and fig.figure is not fig:
        fig = fig.figure
    return fig


def check_ax(ax: Any) -> Axes:
    """Validate a user-supplied ``ax``."""
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise ProbeError(
            f"ax must be a matplotlib Axes, got {type(ax).__name__}: pass e.g. fig.add_subplot()"
        )
    return ax


def parent_of(ax: Axes) -> Figure | SubFigure:
    """The (sub)figure that directly holds ``ax``: colourbars are added there."""
    return ax.figure  # type: ignore[return-value]


def save_figure(
    fig: Figure,
    path: str | os.PathLike[str],
    format: Literal["png", "svg", "pdf"] | None = None,
    dpi: float = DEFAULT_DPI,
) -> Path:
    """Write ``fig`` to ``path`` atomically and return the path.

    The figure is rendered into a temporary file in the target directory, which then replaces
    ``path`` with ``os.replace``: readers never see a half-written file, and on any error the
    temporary file is removed and ``path`` is left untouched. A PNG is exactly
    ``figsize * dpi`` pixels (no tight bounding box; viewers lay themselves out).

    Args:
        fig: the figure a viewer returned.
        path: target file; its suffix picks the format unless ``format`` is given.
        format: ``"png"``, ``"svg"`` or ``"pdf"``.
        dpi: resolution of raster output (and of raster parts of SVG/PDF).

    Raises:
        ProbeError: unknown format, missing or unwritable directory, or an OS error while
            writing. Other errors while rendering propagate unchanged; in every case the
            temporary file is removed.
    """
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise ProbeError(
            f"save_figure needs a matplotlib Figure, got {type(fig).__name__}: pass what a "
            "probe viewer returned"
        )
    target = output_path(path, "figure")
    fmt = (format or target.suffix.lstrip(".")).lower()
    if not fmt:
        raise ProbeError(
            f"cannot tell the format of {str(target)!r}: add a suffix (.png, .svg, .pdf) or "
            "pass format="
        )
    suffix = target.suffix.lstrip(".").lower()
    if format is not None and suffix in SAVE_FORMATS and suffix != fmt:
        raise ProbeError(
            f"{str(target)!r} ends in .{suffix} but format={format!r}: the file would be "
            f"{fmt.upper()} under a .{suffix} name; drop format= or end the path in .{fmt}"
        )
    if fmt not in SAVE_FORMATS:
        raise ProbeError(
            f"unsupported figure format {fmt!r}: use one of {', '.join(SAVE_FORMATS)}"
        )
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not dpi > 0:
        raise ProbeError(f"dpi must be a positive number, got {dpi!r}")
    if fmt == "png":  # beyond these, Agg fails (or the process runs out of memory: bad_alloc)
        inches = fig.get_size_inches()
        fits = min(_MAX_SIDE / max(inches), (_MAX_PIXELS / (inches[0] * inches[1])) ** 0.5)
        if dpi > fits:
            w, h = (int(v * dpi) for v in inches)
            raise ProbeError(f"the figure would be {w}x{h} pixels at dpi {dpi:g} (a PNG holds "
                             f"at most {_MAX_SIDE} a side and {_MAX_PIXELS // 10**6} million "
                             f"in all): lower dpi to at most {int(fits)} or make the figure "
                             "narrower (probe render: --dpi, --width)")
    return atomic_write(
        target, lambda fh: _savefig_reproducibly(fig, fh, fmt, dpi), what="figure", binary=True
    )


_MAX_SIDE, _MAX_PIXELS = 2**16 - 1, 2**28  # PNG: pixels a side (Agg's limit), in all (1 GiB)

#: matplotlib's SVG ids (clip paths, hatches) are hashes salted with ``svg.hashsalt``, a
#: random UUID per file when unset; saving holds this lock while it fixes the salt.
_SALT_LOCK = threading.Lock()
_SVG_SALT = "probe"


def _savefig_reproducibly(fig: Figure, fh: Any, fmt: str, dpi: float) -> None:
    """``fig.savefig``, byte-identical for the same figure: no creation date in SVG or PDF and,
    unless the user set ``svg.hashsalt``, a fixed salt for SVG ids (set for this call only,
    under :data:`_SALT_LOCK`, and restored; rcParams are otherwise untouched)."""
    import matplotlib

    if fmt == "png":
        fig.savefig(fh, format=fmt, dpi=dpi)
        return
    metadata = {"Date": None} if fmt == "svg" else {"CreationDate": None}
    if fmt != "svg":
        fig.savefig(fh, format=fmt, dpi=dpi, metadata=metadata)
        return
    with _SALT_LOCK:
        params = matplotlib.rcParams
        salted = params["svg.hashsalt"] is None
        if salted:
            params["svg.hashsalt"] = _SVG_SALT
        try:
            fig.savefig(fh, format=fmt, dpi=dpi, metadata=metadata)
        finally:
            if salted:
                params["svg.hashsalt"] = None


# --------------------------------------------------------------------------- input checks
def as_array(
    x: Any,
    name: str,
    ndim: int | tuple[int, ...],
    shape_doc: str,
    *,
    allow_nonfinite: bool = False,
) -> np.ndarray:
    """Convert a torch tensor, numpy array or nested list to a float64 numpy array.

    Checks the number of dimensions (``ndim``) and that the values are finite; ``shape_doc``
    (e.g. ``"[head, query, key]"``) goes into the error message.
    """
    if x is None:
        raise ProbeError(f"{name} is missing: pass a {shape_doc} tensor or array")
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        if getattr(x, "is_meta", False):  # no values (was torch's "Cannot copy out of meta")
            raise ProbeError(f"{name} is on the meta device and holds no values: pass a real "
                             f"{shape_doc} tensor")
        x = x.detach().cpu()
        if getattr(x, "is_complex", lambda: False)():
            raise ProbeError(f"{name} is complex: pass real values")
        x = x.double().numpy()
    try:
        arr = np.array(x, dtype=float)
    except (TypeError, ValueError):
        raise ProbeError(
            f"{name} must be a numeric {shape_doc} tensor or array, got {type(x).__name__}"
        ) from None
    dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if arr.ndim not in dims:
        raise ProbeError(
            f"{name} must have shape {shape_doc} ({' or '.join(map(str, dims))} dims), got "
            f"shape {list(arr.shape)}"
        )
    if arr.size == 0:
        raise ProbeError(f"{name} is empty (shape {list(arr.shape)}): pass a non-empty {shape_doc}")
    if not allow_nonfinite and not np.all(np.isfinite(arr)):
        raise ProbeError(
            f"{name} contains NaN or inf: replace them first, e.g. with torch.nan_to_num"
        )
    return arr


def check_tokens(
    tokens: Sequence[str] | None, n: int, name: str, what: str
) -> list[str]:
    """Validate one token per position (``n`` of them); ``None`` gives position numbers."""
    if tokens is None:
        return [str(i) for i in range(n)]
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise ProbeError(
            f"{name} must be a list of strings, got {type(tokens).__name__}: pass e.g. "
            "trace.tokens"
        )
    if len(tokens) != n:
        raise ProbeError(
            f"got {len(tokens)} {name} for {n} {what}: pass one token per position, special "
            "tokens such as [CLS] and padding included"
        )
    return [str(t) for t in tokens]


def check_mapping(value: Any, name: str, hint: str) -> Mapping[str, Any]:
    """Validate a non-empty ``{name: ...}`` mapping."""
    if not isinstance(value, Mapping) or not value:
        raise ProbeError(f"{name} must be a non-empty dict {hint}, got {type(value).__name__}")
    return value


#: a code point or byte escape of a label (``<U+200B>``, ``<0xAD>``), never cut in half
_ESCAPE = re.compile(r"<(?:U\+[0-9A-F]{4,6}|0x[0-9A-F]{2})>")


def format_token(token: str, max_chars: int = MAX_LABEL_CHARS) -> str:
    """A token as a safe, short label.

    Newlines and tabs become visible escapes, characters that draw as nothing or mislead
    (zero-width, bidi controls, a lone combining mark...: :func:`probe._text.visible_text`)
    and characters no font draws (:func:`drawable`) become their code point (``<U+200B>``,
    ``<U+1F44D>``), an empty or blank token becomes ``␣``, ``$`` is escaped so matplotlib
    never reads it as math, and labels longer than ``max_chars`` are cut with an ellipsis.
    """
    text = str(token).replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    text = drawable(visible_text(text))
    if not text.strip():
        text = "\u2423" * max(1, len(text))
    if len(text) > max_chars:
        cut = max(1, max_chars - 1)
        for escape in _ESCAPE.finditer(text, 0, cut + 10):  # never half a code point: <U+1F…
            if escape.start() < cut < escape.end():
                cut = escape.start() or escape.end()  # a first escape stays whole
        text = text[:cut] + "\u2026"
    return text.replace("$", r"\$")


def thin_labels(n: int, max_labels: int) -> np.ndarray:
    """Positions whose labels are shown: all when ``n <= max_labels``, else every ``step``-th.

    ``step = ceil(n / max_labels)``, so at most ``max_labels`` labels are drawn.
    """
    if isinstance(max_labels, bool) or not isinstance(max_labels, (int, np.integer)):
        raise ProbeError(f"max_labels must be a positive integer, got {max_labels!r}")
    if max_labels < 1:
        raise ProbeError(f"max_labels must be a positive integer, got {max_labels}")
    step = max(1, math.ceil(n / int(max_labels)))
    return np.arange(0, n, step)


def set_token_ticks(
    ax: Axes,
    axis: Literal["x", "y"],
    tokens: Sequence[str],
    max_labels: int,
    fontsize: float,
    max_chars: int = MAX_LABEL_CHARS,
) -> None:
    """Put (thinned) token labels on one axis of a heatmap-like ``ax``."""
    positions = thin_labels(len(tokens), max_labels)
    labels = [format_token(tokens[i], max_chars) for i in positions]
    if axis == "x":
        ax.set_xticks(positions, labels, rotation=90, fontsize=fontsize)
    else:
        ax.set_yticks(positions, labels, fontsize=fontsize)
    ax.tick_params(axis=axis, length=2, pad=1.5)


# --------------------------------------------------------------------------- baselines


def is_baseline(name: str) -> bool:
    """True for a baseline method such as ``"random"`` (also ``"random (baseline)"``)."""
    return str(name).split(" ")[0].lower() in BASELINE_METHODS


def baselines_last(names: Sequence[str]) -> list[int]:
    """Indices of ``names`` in display order: explanations in their order, baselines last."""
    return [i for i, n in enumerate(names) if not is_baseline(n)] + [
        i for i, n in enumerate(names) if is_baseline(n)
    ]
