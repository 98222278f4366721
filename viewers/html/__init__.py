"""Interactive HTML views (installed as ``probe.viewers.html``).

Each view takes the same data as its matplotlib twin in :mod:`probe.viewers` and returns an
:class:`HtmlView`: one self-contained page (all code and CSS inline and written by us, data
embedded as quantised uint8, subsets of the Noto fonts its text needs embedded too, no
network access, every string escaped) that displays itself
in Jupyter through ``_repr_html_`` and saves with ``.save(path)``.

Views: :func:`head_view_html`, :func:`model_view_html`, :func:`token_view_html`,
:func:`image_view_html`, :func:`coref_view_html`, :func:`detr_view_html`,
:func:`curves_view_html`, :func:`gates_view_html`, :func:`window_view_html`. From a trace:
:func:`heads_html`, :func:`model_html`, :func:`patches_html`, :func:`cross_html`,
:func:`detr_html`, :func:`windows_html`; from an alignment: :func:`alignment_html` (the one
call with a model is ``probe.show``). Size budget: :data:`DEFAULT_MAX_VALUES` (over it:
:class:`BudgetError`).
"""

from __future__ import annotations

from probe.viewers.html._attention import head_view_html, model_view_html
from probe.viewers.html._attribution import image_view_html, token_view_html
from probe.viewers.html._coref import coref_view_html
from probe.viewers.html._curves import curves_view_html
from probe.viewers.html._detr import detr_html, detr_view_html
from probe.viewers.html._gates import gates_view_html
from probe.viewers.html._image_text import token_patches_html, token_patches_view_html
from probe.viewers.html._trace import (
    alignment_html,
    cross_html,
    heads_html,
    model_html,
    patches_html,
    trace_attention,
    trace_image,
    trace_tokens,
)
from probe.viewers.html._page import (
    DEFAULT_MAX_VALUES,
    BudgetError,
    HtmlView,
    decode_array,
    encode_array,
)
from probe.viewers.html._windows import window_view_html, windows_html

__all__ = [
    "alignment_html",
    "BudgetError",
    "coref_view_html",
    "cross_html",
    "curves_view_html",
    "DEFAULT_MAX_VALUES",
    "detr_html",
    "detr_view_html",
    "HtmlView",
    "decode_array",
    "encode_array",
    "gates_view_html",
    "head_view_html",
    "heads_html",
    "image_view_html",
    "model_html",
    "model_view_html",
    "patches_html",
    "token_patches_html",
    "token_patches_view_html",
    "token_view_html",
    "trace_attention",
    "trace_image",
    "trace_tokens",
    "window_view_html",
    "windows_html",
]

from probe._errors import named_calls  # noqa: E402

# a call the signature refuses (``bogus=1``) is one ProbeError line naming the keywords
named_calls(globals(), __all__, "viewers.html")
