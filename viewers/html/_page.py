"""Page assembly for the interactive views: data encoding, escaping, the Content-Security-
Policy, and :class:`HtmlView` (the object every view returns).

A page is one self-contained HTML file: the view's data sits in a
``<script type="application/json">`` block (JSON with ``<``, ``>``, ``&``, U+2028 and
U+2029 written as ``\\uXXXX``, so no text can close the block or open a tag); the code is
one inline ``<script>`` and one inline ``<style>``, both written by us and allowed by their
sha256 hashes in the page's CSP (``default-src 'none'``: no network, no other script, no
``eval``). Text enters the DOM only through ``textContent``.

Arrays are embedded compactly: quantised to uint8 over their ``[min, max]`` range (error at
most ``(max - min) / 510`` per value), deflated with zlib when that saves space, and base64
encoded; the page inflates them with the browser's own ``DecompressionStream``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import unicodedata
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from probe._errors import ProbeError
from probe._text import visible_text

__all__ = ["BudgetError", "HtmlView", "DEFAULT_MAX_VALUES", "encode_array", "decode_array",
           "assemble_page", "build_page"]

#: The size budget: a view refuses attention with more values than this (uint8 each before
#: compression), with a message saying how to select layers, heads or a token window.
#: 20 M values is e.g. 6 layers x 12 heads x 512 x 512 tokens (about 19 M).
DEFAULT_MAX_VALUES = 20_000_000

_IFRAME_COUNTER = [0]


# ----------------------------------------------------------------------------- encoding
def encode_array(values: Any, name: str = "array") -> dict[str, Any]:
    """Quantise ``values`` (any shape, finite) to uint8 and encode them for the page.

    Returns ``{"shape", "lo", "step", "z", "b64"}``: value ``i`` decodes to
    ``lo + q[i] * step`` where ``q`` is the uint8 array (deflated first when ``z``).
    """
    arr = np.asarray(_to_numpy(values), dtype=np.float64)
    check_finite(arr, name)
    lo = float(arr.min()) if arr.size else 0.0
    hi = float(arr.max()) if arr.size else 0.0
    step = (hi - lo) / 255.0
    if step > 0:
        q = np.rint((arr - lo) / step).clip(0, 255).astype(np.uint8)
    else:
        q = np.zeros(arr.shape, dtype=np.uint8)
    raw = q.tobytes()
    packed = zlib.compress(raw, 6)
    use_z = len(packed) < 0.9 * len(raw)
    payload = packed if use_z else raw
    return {
        "shape": [int(s) for s in arr.shape],
        "lo": lo,
        "step": step,
        "z": use_z,
        "b64": base64.b64encode(payload).decode("ascii"),
    }


def decode_array(encoded: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_array` (up to the quantisation error), for tests and tools."""
    raw = base64.b64decode(encoded["b64"])
    if encoded["z"]:
        raw = zlib.decompress(raw)
    q = np.frombuffer(raw, dtype=np.uint8).astype(np.float64)
    return (encoded["lo"] + q * encoded["step"]).reshape(encoded["shape"])


def check_finite(arr: np.ndarray, name: str) -> None:
    """Refuse NaN or infinite values, naming the first (by position) and the fix."""
    bad = np.argwhere(~np.isfinite(arr))
    if len(bad):
        first = tuple(int(i) for i in bad[0])
        raise ProbeError(
            f"{name} has {len(bad)} NaN or infinite value(s), the first {arr[first]} at "
            f"index {list(first)}: the view can only show finite numbers; replace them "
            f"(e.g. torch.nan_to_num({name})) or leave those entries out")


def _to_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensor, without importing torch
        if getattr(values, "is_meta", False):  # no values (was torch's "Cannot copy out of meta")
            raise ProbeError(f"a {tuple(values.shape)} tensor on the meta device holds no values: "
                             "pass real numbers")
        values = values.detach().float().cpu().numpy()
    return np.asarray(values)


def json_for_script(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: ASCII only, and ``<``, ``>``,
    ``&`` escaped, so no token can end the block (U+2028/2029 are escaped by ensure_ascii)."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def build_page(*, title: str, css: str, js: str, data: dict[str, Any]) -> str:
    """The complete HTML document of one view (see the module docs), with subsets of the
    fonts its strings need embedded (:mod:`probe.viewers.html._webfonts`; none, and the page
    unchanged, when DejaVu Sans has every character)."""
    from probe.viewers.html._webfonts import with_fonts

    css, js, fonts = with_fonts(css, js, (title, data))
    return assemble_page(title=title, css=css, js=js, data=data, fonts=fonts)


def assemble_page(*, title: str, css: str, js: str, data: dict[str, Any],
                  fonts: bool = False) -> str:
    """The HTML document of ``css``, ``js`` and ``data`` as given (``fonts``: the CSS embeds
    fonts as ``data:`` URLs, which the CSP then allows)."""
    csp = (
        f"default-src 'none'; script-src '{_sha256(js)}'; style-src '{_sha256(css)}'; "
        "img-src data:; " + ("font-src data:; " if fonts else "")
        + "base-uri 'none'; form-action 'none'"
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title, quote=True)}</title>\n"
        f"<style>{css}</style>\n</head><body>\n"
        "<div id=\"probe-root\" class=\"probe-view\">loading\u2026</div>\n"
        f"<script type=\"application/json\" id=\"probe-data\">{json_for_script(data)}</script>\n"
        f"<script>{js}</script>\n</body></html>\n"
    )


# ----------------------------------------------------------------------------- the view object
class HtmlView:
    """One interactive view: a self-contained HTML page.

    Displays itself in Jupyter (JupyterLab, classic Notebook, VS Code, Colab) through
    :meth:`_repr_html_` as a sandboxed ``<iframe srcdoc>``, so several views in one notebook
    and the notebook's own CSS never collide; :meth:`save` writes the page to a file.

    Attributes:
        html: the page's source.
        view: the view's name (``"heads"``, ``"model"``, ...).
        height: the iframe height in pixels used in notebooks.
    """

    def __init__(self, html_text: str, *, view: str, height: int = 600) -> None:
        self.html = html_text
        self.view = view
        self.height = int(height)

    def __repr__(self) -> str:
        return f"HtmlView(view={self.view!r}, size={self.size_bytes:,} bytes)"

    @property
    def size_bytes(self) -> int:
        """Size of the page in bytes (UTF-8)."""
        return len(self.html.encode("utf-8"))

    def _repr_html_(self) -> str:
        _IFRAME_COUNTER[0] += 1
        srcdoc = html.escape(self.html, quote=True)
        return (
            f"<iframe id=\"probe-view-{_IFRAME_COUNTER[0]}\" title=\"probe "
            f"{html.escape(self.view)} "
            f"view\" sandbox=\"allow-scripts\" srcdoc=\"{srcdoc}\" style=\"width:100%;"
            f"height:{self.height}px;border:1px solid #ddd;resize:vertical\"></iframe>"
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the page to ``path`` atomically (temporary file in the same directory, then
        ``os.replace``) and return the path. A missing suffix is an error; use ``.html``."""
        from probe._atomic import atomic_write, output_path

        target = output_path(path, "view")
        if target.suffix.lower() not in (".html", ".htm"):
            raise ProbeError(f"cannot save an HTML view to {str(target)!r}: use a .html file name")

        return atomic_write(target, lambda fh: fh.write(self.html), what="view", binary=False)


# ----------------------------------------------------------------------------- shared helpers
def view_title(model_name: str | None, what: str, title: str | None) -> str:
    """A view's title: ``title`` when given, else ``"<model> · <what>"``."""
    if title is not None:
        return str(title)
    return f"{model_name} \u00b7 {what}" if model_name else what


def cmap_hex(name: str) -> str:
    """A matplotlib colormap as 256 RGB triples in hex (the page's lookup table)."""
    from probe.viewers._style import get_cmap

    cmap = get_cmap(name)
    rgb = (np.asarray(cmap(np.linspace(0.0, 1.0, 256)))[:, :3] * 255).round().astype(np.uint8)
    return rgb.tobytes().hex()


def head_colors(n: int) -> list[str]:
    """The static link view's head colours (tab10, then light tab20) as ``#rrggbb``."""
    from probe.viewers._style import categorical_colors

    return [
        "#" + "".join(f"{int(round(c * 255)):02x}" for c in rgba[:3])
        for rgba in categorical_colors(n)
    ]


class BudgetError(ProbeError):
    """Data over an interactive view's size budget (:func:`check_budget`).

    The message names how to select less and how to raise the budget in the caller's own
    words: the view functions word it for Python (``layers=``, ``max_values=``); ``probe.show``
    and ``probe render --format html`` reword it with :meth:`reworded` for the options that
    work where the user is (``stage=``; ``--layer``, ``--max-values``).
    """

    def __init__(self, what: str, shape: Sequence[int], max_values: int, hint: str,
                 raise_with: str = "max_values=", plural: bool = False) -> None:
        self.what = what
        self.plural = plural
        self.shape = tuple(int(s) for s in shape)
        self.max_values = max_values
        self.values = int(np.prod(self.shape))
        dims = " x ".join(str(s) for s in self.shape)
        super().__init__(
            f"{what} {'have' if plural else 'has'} {self.values:,} values ({dims}), over the "
            "interactive view's budget of "
            f"{max_values:,}: " + (f"{hint}, or raise {raise_with}" if hint else
                                   f"raise {raise_with}")
        )

    def reworded(self, hint: str, raise_with: str, what: str | None = None,
                 plural: bool | None = None) -> BudgetError:
        """The same refusal with ``hint`` (how to select less; empty: no way but a larger
        budget), ``raise_with`` (the option that raises it, e.g. ``--max-values N``) and, if
        given, ``what`` names the data (``attn``, an argument's name, is no word of the
        command line; ``plural``: whether it is a plural noun, default: as before when ``what``
        is kept, else singular)."""
        if plural is None:
            plural = self.plural if what is None else False
        return BudgetError(self.what if what is None else what, self.shape, self.max_values,
                           hint, raise_with, plural)


def check_budget(shape: Sequence[int], max_values: int, what: str,
                 hint: str | None = None, *, plural: bool = False) -> None:
    """Refuse data over the size budget with a :class:`BudgetError` saying what to select
    (``hint``: the view's own way to select less, instead of layers / heads / a token
    window; ``plural``: ``what`` is a plural noun, "... have N values")."""
    if isinstance(max_values, bool) or not isinstance(max_values, int) or max_values < 1:
        raise ProbeError(f"max_values must be a positive integer, got {max_values!r}")
    if int(np.prod(shape)) > max_values:
        raise BudgetError(what, shape, max_values, hint or (
            "select fewer layers or heads (layers=, heads=), a token window "
            "(window=(start, stop))"), plural=plural)


def labels(values: Sequence[Any] | None, n: int, what: str) -> list[str]:
    """``n`` display labels: ``values`` as strings, or ``0..n-1``."""
    if values is None:
        return [str(i) for i in range(n)]
    out = [str(v) for v in values]
    if len(out) != n:
        raise ProbeError(f"{what} has {len(out)} entries but the data has {n}: pass one per entry")
    return out


def clean_tokens(tokens: Sequence[str], n: int, what: str, against: str) -> list[str]:
    """Token strings as display text, checked for length: newlines and tabs made visible,
    characters that draw as nothing or mislead (zero-width, bidi controls, a lone combining
    mark...) written as code points ``<U+200B>`` (:func:`probe._text.visible_text`, as in the
    matplotlib figures), a blank token as ``␣``. A label with right-to-left letters (Arabic,
    Hebrew) is wrapped in FIRST STRONG ISOLATE ... POP DIRECTIONAL ISOLATE (U+2068, U+2069):
    the browser lays it out in its own direction, and text around it ("query → key" in a
    tooltip, the token list) keeps its order."""
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise ProbeError(f"{what} must be a list of strings, got {type(tokens).__name__}")
    if len(tokens) != n:
        raise ProbeError(
            f"{what} has {len(tokens)} entries but {against} has {n}: pass one per position"
        )
    out = []
    for t in tokens:
        s = str(t).replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
        s = visible_text(s)
        s = s if s.strip() else "\u2423" * max(1, len(s))
        if any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in s):
            s = "\u2068" + s + "\u2069"  # isolated: its own direction inside any line
        out.append(s)
    return out
