"""Deletion and insertion curves of several methods in one figure, and their AUC."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from probe._errors import ProbeError
from probe.evaluation._curves_math import trapezoid_auc
from probe.viewers._style import (
    BASELINE_STYLE,
    FONT_SIZES,
    as_array,
    baselines_last,
    categorical_colors,
    check_ax,
    check_mapping,
    is_baseline,
    new_figure,
    root_figure,
    styled,
    title as make_title,
)
from probe.viewers._width import sized

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["CurveKind", "curve_auc", "curves_view"]

CurveKind = Literal["deletion", "insertion"]


#: the narrowest curves figure (inches) whose legend stays beside the axes
CURVES_LEGEND_BESIDE_IN = 6.0


def curve_auc(fractions: Any, values: Any) -> float:
    """Area under a deletion / insertion curve: the trapezoid rule over ``fractions``.

    Args:
        fractions: ``[s]`` increasing x coordinates (at least 2), any array-like.
        values: ``[s]`` y values.

    Returns:
        The area, computed by :func:`probe.evaluation._curves_math.trapezoid_auc` (the rule
        of :func:`probe.curve_auc`).
    """
    x = as_array(fractions, "fractions", 1, "[s]")
    y = as_array(values, "values", 1, "[s]")
    if len(x) != len(y):
        raise ProbeError(f"fractions has {len(x)} points but values has {len(y)}: pass pairs")
    return float(trapezoid_auc(x, y))


@styled
@sized()
def curves_view(
    curves: Mapping[str, tuple[Any, Any]],
    kind: CurveKind = "deletion",
    *,
    auc: Mapping[str, float] | None = None,
    model_name: str | None = None,
    title: str | None = None,
    ylabel: str = "model score (target class)",
    ax: Axes | None = None,
    n: int | None = None,
    unit: str = "inputs",
    width: float | None = None,
) -> Figure:
    """Deletion or insertion curves of several methods on one axis, AUC in the legend.

    Args:
        curves: ``{method: (fractions [s], values [s])}``; fractions increase within
            ``[0, 1]`` (the share of the input removed or inserted).
        kind: ``"deletion"`` (lower AUC is better) or ``"insertion"`` (higher is better).
        auc: ``{method: auc}`` to print instead of computing it; methods left out are
            computed with :func:`curve_auc` (trapezoid rule over the fraction axis).
        model_name, title: the title (default ``"<model> · deletion curves"``).
        ylabel: the y axis label.
        ax: draw into this axes instead of a new figure.
        n, unit: how many inputs (``unit``: ``"inputs"``, ``"images"``, ``"sentences"``)
            each curve averages, when known: the legend title then says ``"N = 16 images"``
            (``N = 1 image`` for one).
        width: figure width in inches, or ``"single"`` / ``"double"``; under 6 in the legend
            goes under the axes instead of beside them. Fonts unchanged. Default 7.2 in.

    Baselines (``random``) are drawn last, dashed grey, and named "(baseline)".

    Returns:
        The ``Figure``; the legend title reads ``"AUC (lower is better)"`` (deletion) and
        its entries ``"<method>: 0.123"``, ``"random (baseline): 0.500"``.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ProbeError(f"n must be the number of inputs the curves average (>= 1), got {n!r}")
    curves = check_mapping(curves, "curves", "{method: (fractions, values)}")
    if kind not in ("deletion", "insertion"):
        raise ProbeError(f"kind must be 'deletion' or 'insertion', got {kind!r}")
    if auc is not None:
        auc = check_mapping(auc, "auc", "{method: float}")
        unknown = [k for k in auc if k not in curves]
        if unknown:
            raise ProbeError(f"auc names methods with no curve: {unknown}; use the curves' keys")
    parsed = []
    for name, pair in curves.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ProbeError(
                f"curves[{name!r}] must be a pair (fractions [s], values [s]), got "
                f"{type(pair).__name__}"
            )
        x = as_array(pair[0], f"curves[{name!r}] fractions", 1, "[s]")
        y = as_array(pair[1], f"curves[{name!r}] values", 1, "[s]")
        if len(x) != len(y) or len(x) < 2:
            raise ProbeError(
                f"curves[{name!r}]: fractions ({len(x)}) and values ({len(y)}) must be pairs "
                "of at least 2 points"
            )
        if np.any(np.diff(x) < 0) or x.min() < -1e-9 or x.max() > 1 + 1e-9:
            raise ProbeError(
                f"curves[{name!r}]: fractions must increase within [0, 1], e.g. "
                "np.linspace(0, 1, steps)"
            )
        area = float(auc[name]) if auc is not None and name in auc else curve_auc(x, y)
        parsed.append((str(name), x, y, area))

    below = width is not None and width < CURVES_LEGEND_BESIDE_IN  # legend under the axes
    if ax is None:
        fig = new_figure((7.2, 3.6) if width is None else
                         (width, 3.6 + (0.17 * (len(parsed) + 1 + (n is not None))
                                        if below else 0.0)))
        ax = fig.add_subplot()
    else:
        ax = check_ax(ax)
        fig = root_figure(ax)
    parsed = [parsed[i] for i in baselines_last([p[0] for p in parsed])]
    n_methods = sum(not is_baseline(p[0]) for p in parsed)
    # no grey for methods: grey is the baseline's colour
    colors = [c for c in categorical_colors(min(n_methods + 2, 20))
              if not (abs(c[0] - c[1]) < 1e-3 and abs(c[1] - c[2]) < 1e-3)]
    colors += categorical_colors(max(n_methods, 1))[len(colors):]
    k = 0
    for name, x, y, area in parsed:
        marker = "o" if len(x) <= 25 else None
        if is_baseline(name):
            label = name if "baseline" in name else f"{name} (baseline)"
            ax.plot(x, y, lw=1.6, marker=marker, ms=2.5, label=f"{label}: {area:.3f}",
                    zorder=1.5, **BASELINE_STYLE)
            continue
        ax.plot(x, y, color=colors[k], lw=1.8, marker=marker, ms=3,
                label=f"{name}: {area:.3f}", zorder=2)
        k += 1
    removed = "removed" if kind == "deletion" else "inserted"
    ax.set_xlabel(f"fraction of input {removed}", fontsize=FONT_SIZES["label"])
    ax.set_ylabel(ylabel, fontsize=FONT_SIZES["label"])
    ax.tick_params(labelsize=FONT_SIZES["tick"])
    ax.grid(True, color="0.9", lw=0.6)
    ax.set_axisbelow(True)
    better = "lower" if kind == "deletion" else "higher"
    head = f"AUC ({better} is better)"
    if n is not None:
        head += f"\nN = {int(n)} {unit[:-1] if n == 1 and unit.endswith('s') else unit}"
    place = ({"loc": "upper left", "bbox_to_anchor": (0.0, -0.2)} if below else
             {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)})
    ax.legend(fontsize=FONT_SIZES["legend"], title=head, title_fontsize=FONT_SIZES["legend"],
              frameon=False, alignment="left", borderaxespad=0.0, **place)
    text = make_title(model_name, None, None, f"{kind} curves") if title is None else title
    if text:
        ax.set_title(text, fontsize=FONT_SIZES["title"])
    return fig
