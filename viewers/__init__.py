"""Matplotlib viewers for probe traces and analyses (installed as ``probe.viewers``).

Viewers take data (tensors or arrays, token lists), never models, and return a
``matplotlib.figure.Figure`` built with the object API: nothing is registered with pyplot,
no GUI backend is needed, ``plt.show()`` is never called. Write figures with
:func:`save_figure` (atomic; png, svg, pdf). Matplotlib is imported only when a viewer runs.

One call from a trace: :func:`plot` (``probe.plot(trace, "coref", word="it")``).
Attention: :func:`head_heatmap`, :func:`head_grid`, :func:`model_view`, :func:`link_view`,
:func:`coref_view`, :func:`alignment_view`. Attributions: :func:`token_strip`,
:func:`saliency_overlay`, :func:`cls_head_grid`, :func:`comparison_panel`, :func:`curves_view`.
CNN gates and DETR queries: :func:`gate_maps`, :func:`channel_profiles_view`,
:func:`query_point_view`, :func:`branch_gates_view`, :func:`channel_spatial_view`,
:func:`channel_gates_view`,
:func:`gate_figures` (every gate figure of a ``GateTrace``), :func:`detr_queries_view`.
Image-to-text cross-attention (where each written token looked): :func:`token_patches_view`.
Windowed attention (Swin): :func:`window_query_view`. Every figure viewer takes ``width=``
(inches, ``"single"`` or ``"double"``: a paper's column; :mod:`probe.viewers._width`), and
:func:`figure_width` sets it for a block of code. Shared look:
:func:`title`, :func:`cmap_for`, :func:`new_figure` and the colormap constants.
"""

from __future__ import annotations

from probe.viewers._alignment import alignment_view
from probe.viewers._compare import comparison_panel
from probe.viewers._curves import curve_auc, curves_view
from probe.viewers._channel_gates import channel_gates_view
from probe.viewers._gate_kinds import branch_gates_view, channel_spatial_view, gate_figures
from probe.viewers._gates import (
    channel_profiles_view,
    detr_queries_view,
    gate_maps,
    query_point_view,
)
from probe.viewers._heatmaps import head_grid, head_heatmap, model_view
from probe.viewers._image_text import token_patches_view
from probe.viewers._coref import coref_view
from probe.viewers._links import link_view
from probe.viewers._plot import plot
from probe.viewers._grid import cls_head_grid
from probe.viewers._saliency import saliency_overlay, upsample_bilinear
from probe.viewers._style import (
    DIVERGING_CMAP,
    SEQUENTIAL_CMAP,
    TEXT_SEQUENTIAL_CMAP,
    cmap_for,
    new_figure,
    save_figure,
    title,
)
from probe.viewers._tokens import token_strip
from probe.viewers._width import COLUMN_WIDTHS, figure_width, resolve_width
from probe.viewers._windows import window_query_view

__all__ = [
    "COLUMN_WIDTHS",
    "DIVERGING_CMAP",
    "SEQUENTIAL_CMAP",
    "TEXT_SEQUENTIAL_CMAP",
    "channel_profiles_view",
    "alignment_view",
    "branch_gates_view",
    "channel_gates_view",
    "channel_spatial_view",
    "cls_head_grid",
    "cmap_for",
    "comparison_panel",
    "coref_view",
    "curve_auc",
    "curves_view",
    "detr_queries_view",
    "figure_width",
    "gate_figures",
    "gate_maps",
    "head_grid",
    "head_heatmap",
    "link_view",
    "model_view",
    "new_figure",
    "plot",
    "query_point_view",
    "resolve_width",
    "saliency_overlay",
    "save_figure",
    "title",
    "token_patches_view",
    "token_strip",
    "window_query_view",
    "upsample_bilinear",
]

from probe._errors import named_calls  # noqa: E402

# a call the signature refuses (``bogus=1``) is one ProbeError line naming the keywords
named_calls(globals(), __all__, "viewers")
