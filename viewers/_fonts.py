"""Fonts for any script in every viewer: the fallback family list and text measurement.

Every text of a viewer is drawn with the family list :func:`font_families`: DejaVu Sans
(matplotlib's own; Latin, Greek, Cyrillic, Hebrew, Armenian, Georgian...), then the Noto
fonts that probe depends on (``noto-cjk-sans-otc``: Chinese, Japanese, Korean;
``fontpkg-noto-sans-arabic``, ``-devanagari``, ``-thai``; all SIL OFL 1.1). Matplotlib
(>= 3.6) falls back glyph by glyph along the list, so a sentence mixing scripts renders
with real glyphs and no "Glyph missing" warning. The fonts are registered with
matplotlib's font manager on first use (:func:`register_fonts`); rcParams are never
changed: viewers run inside :func:`styled`, which applies the list to the figure's text.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["apply_fonts", "font_families", "register_fonts", "styled", "text_width_pt"]


def text_width_pt(text: str, fontsize: float, weight: str = "normal") -> float:
    """Width of ``text`` in points at ``fontsize`` (backend-independent measurement)."""
    from matplotlib.font_manager import FontProperties

    register_fonts()
    prop = FontProperties(family=font_families(), size=fontsize, weight=weight)
    width, _, _ = _TEXT_TO_PATH().get_text_width_height_descent(
        text.replace(r"\$", "$"), prop, ismath=False
    )
    return float(width)


_T2P: list[Any] = []


def _TEXT_TO_PATH() -> Any:  # noqa: N802 - cached singleton accessor
    if not _T2P:
        from matplotlib.textpath import TextToPath

        _T2P.append(TextToPath())
    return _T2P[0]


# --------------------------------------------------------------------------- fonts

#: (family name, importable package, how to find its files) of the fallback fonts, in order.
_FALLBACK_FONTS: tuple[tuple[str, str], ...] = (
    ("Noto Sans CJK SC", "noto_cjk_sans_otc"),
    ("Noto Sans Arabic", "fontpkg_noto_sans_arabic"),
    ("Noto Sans Devanagari", "fontpkg_noto_sans_devanagari"),
    ("Noto Sans Thai", "fontpkg_noto_sans_thai"),
)
_BASE_FAMILY = "DejaVu Sans"
_REGISTERED: list[str] = []


def _font_files(package: str) -> list[str]:
    """Font files shipped by an installed font package (none if it is not installed)."""
    import importlib

    try:
        module = importlib.import_module(package)
    except ImportError:
        return []
    path = getattr(module, "FONT_PATH", None)  # noto-cjk-sans-otc
    if path is not None:
        return [str(path)]
    root = getattr(module, "ROOT", None)  # fontpkg-* packages
    if root is None:
        return []
    return sorted(str(p) for p in Path(root).glob("files/*.[ot]t[fc]") if "Italic" not in p.name)


class _NoBoldFallbackNoise(logging.Filter):
    """Drop matplotlib's "Failed to find font weight bold for Noto ..." messages: the
    fallback fonts ship one weight, and bold text falls back to it on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("findfont: Failed to find font weight") and "Noto" in msg)


def register_fonts() -> list[str]:
    """Register the fallback fonts with matplotlib (once per process); return the families.

    Only installed font packages are used; a missing one just drops its scripts from the
    fallback list (they would then render as empty boxes, with matplotlib's warning).
    """
    if _REGISTERED:
        return list(_REGISTERED)
    from matplotlib import font_manager

    families = [_BASE_FAMILY]
    known = {f.name for f in font_manager.fontManager.ttflist}
    for family, package in _FALLBACK_FONTS:
        if family not in known:
            for path in _font_files(package):
                font_manager.fontManager.addfont(path)
            known = {f.name for f in font_manager.fontManager.ttflist}
        if family in known:
            families.append(family)
    logging.getLogger("matplotlib.font_manager").addFilter(_NoBoldFallbackNoise())
    _REGISTERED[:] = families
    return list(families)


def font_families() -> list[str]:
    """The font family list every viewer draws text with (first match per glyph wins)."""
    return register_fonts()


_F = TypeVar("_F", bound=Callable[..., Any])


def apply_fonts(fig: Figure) -> Figure:
    """Give every text of ``fig`` (titles, labels, tables, legends, tick labels, including
    tick labels created later at draw time) the fallback family list."""
    from matplotlib.text import Text

    families = font_families()
    for text in fig.findobj(Text):
        text.set_fontfamily(families)
    for ax in fig.findobj(lambda a: hasattr(a, "xaxis") and hasattr(a, "tick_params")):
        ax.tick_params(which="both", labelfontfamily=families)
    return fig


def styled(function: _F) -> _F:
    """Decorator of the public viewers: text is created with the fallback family list
    (through a local ``rc_context``: the global rcParams are untouched) and the returned
    figure is passed through :func:`apply_fonts`."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context({"font.family": font_families()}):
            fig = function(*args, **kwargs)
            return apply_fonts(fig)

    return wrapper  # type: ignore[return-value]
