"""Fonts for any script in every viewer: the fallback family list and text measurement.

Every text of a viewer is drawn with the family list :func:`font_families`: DejaVu Sans
(matplotlib's own; Latin, Greek, Cyrillic, Hebrew, Armenian, Georgian...), then the Noto
fonts that probe depends on (``noto-cjk-sans-otc``: Chinese, Japanese, Korean;
``fontpkg-noto-sans-arabic``, ``-devanagari``, ``-thai``; all SIL OFL 1.1). Matplotlib
(>= 3.6) falls back glyph by glyph along the list, so a sentence mixing scripts renders
with real glyphs and no "Glyph missing" warning. rcParams are never changed: viewers run
inside :func:`styled`, which applies the list to the figure's text.

The fallback fonts cost start-up time (the CJK one is a 19 MB file), so they are only
registered and used when a text needs them: a figure whose strings DejaVu Sans covers
entirely (:func:`families_for`) is drawn with DejaVu Sans alone, which gives the same pixels,
since every glyph comes from DejaVu Sans either way; a figure with any other character gets
the whole list (:func:`register_fonts` registers the fonts with matplotlib on first use).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from probe._text import code_point

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "apply_fonts",
    "drawable",
    "families_for",
    "font_families",
    "register_fonts",
    "styled",
    "text_width_pt",
]


def text_width_pt(text: str, fontsize: float, weight: str = "normal") -> float:
    """Width of ``text`` in points at ``fontsize`` (backend-independent measurement), as
    drawn: characters no font has written as code points (:func:`drawable`)."""
    from matplotlib.font_manager import FontProperties

    text = drawable(text)

    prop = FontProperties(family=families_for(text), size=fontsize, weight=weight)
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
    """The whole font family list (first match per glyph wins), fonts registered."""
    return register_fonts()


_BASE_CODES: list[frozenset[int]] = []


def _base_faces() -> list[Any]:
    """The DejaVu Sans faces viewers draw with: regular and bold weights, upright or oblique
    (not ExtraLight, which lacks Hebrew, Arabic and most of Cyrillic)."""
    from matplotlib import font_manager

    return [entry for entry in font_manager.fontManager.ttflist
            if entry.name == _BASE_FAMILY and entry.weight in (400, 700, "normal", "bold")]


def _base_codes() -> frozenset[int]:
    """The characters every DejaVu Sans face viewers draw with (:func:`_base_faces`) has."""
    if not _BASE_CODES:
        from matplotlib.ft2font import FT2Font

        codes: frozenset[int] | None = None
        for entry in _base_faces():
            face = frozenset(FT2Font(entry.fname).get_charmap())
            codes = face if codes is None else codes & face
        _BASE_CODES.append(codes or frozenset())
    return _BASE_CODES[0]


def _covered(text: str) -> bool:
    """Whether DejaVu Sans alone draws ``text`` (ASCII always: no font file is read)."""
    if text.isascii():
        return True
    codes = _base_codes()
    return all(ord(ch) in codes or ch in "\n\r\t" for ch in text)


_ALL_CODES: list[frozenset[int]] = []


def _all_codes() -> frozenset[int]:
    """The characters some font of :func:`font_families` has (fonts registered)."""
    if not _ALL_CODES:
        from matplotlib import font_manager
        from matplotlib.ft2font import FT2Font

        families = set(register_fonts())
        codes: set[int] = set(_base_codes())
        for entry in _base_faces():  # the regular face draws what an oblique one lacks
            if entry.style == "normal" and entry.weight in (400, "normal"):
                codes.update(FT2Font(entry.fname).get_charmap())
        for entry in font_manager.fontManager.ttflist:
            if entry.name in families and entry.name != _BASE_FAMILY:
                codes.update(FT2Font(entry.fname).get_charmap())
        _ALL_CODES.append(frozenset(codes))
    return _ALL_CODES[0]


def drawable(text: str) -> str:
    """``text`` with every character that no font of :func:`font_families` draws (emoji,
    rare scripts) written as its code point ``<U+1F44D>``: an empty box and a "Glyph missing"
    warning per figure otherwise. Text DejaVu Sans covers comes back unchanged, no font read."""
    if _covered(text):
        return text
    codes = _all_codes()
    return "".join(ch if ord(ch) in codes or ch in "\n\r\t" else code_point(ch) for ch in text)


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    """The strings in ``value``: a string, or lists, tuples, sets, dict keys and values and
    numpy arrays of them, nested a few levels deep."""
    if isinstance(value, str):
        yield value
    elif depth < 4 and isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _strings(item, depth + 1)
    elif depth < 4 and isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, depth + 1)
            yield from _strings(item, depth + 1)
    elif depth < 4 and getattr(getattr(value, "dtype", None), "kind", None) in ("U", "O"):
        yield from _strings(value.tolist(), depth + 1)


def families_for(*texts: Any) -> list[str]:
    """The family list to draw ``texts`` with: DejaVu Sans alone when it has every
    character, else the whole fallback list (fonts registered on this first need).

    Args:
        texts: strings, or containers of strings (see :func:`_strings`).
    """
    if all(_covered(s) for t in texts for s in _strings(t)):
        return [_BASE_FAMILY]
    return register_fonts()


def _figure_strings(fig: Figure) -> Iterator[str]:
    """Every text of ``fig``, with the fixed tick labels not drawn yet."""
    from matplotlib.text import Text
    from matplotlib.ticker import FixedFormatter

    for text in fig.findobj(Text):
        yield text.get_text()
    for ax in fig.findobj(lambda a: hasattr(a, "xaxis") and hasattr(a, "yaxis")):
        for axis in (ax.xaxis, ax.yaxis):
            for formatter in (axis.get_major_formatter(), axis.get_minor_formatter()):
                if isinstance(formatter, FixedFormatter):
                    yield from (str(label) for label in formatter.seq)


_F = TypeVar("_F", bound=Callable[..., Any])


def apply_fonts(fig: Figure, families: list[str] | None = None) -> Figure:
    """Give every text of ``fig`` (titles, labels, tables, legends, tick labels, including
    tick labels created later at draw time) the family list its texts need, and write the
    characters no font of it draws as their code points (:func:`drawable`), in titles as
    in token labels: ``<U+1F44D>``, not an empty box.

    Args:
        fig: the figure.
        families: the list its texts were created with; the whole fallback list replaces it
            when a text of the figure needs a font it does not have.
    """
    from matplotlib.text import Text

    if families is None or families == [_BASE_FAMILY]:
        families = families_for(list(_figure_strings(fig)))
    for text in fig.findobj(Text):
        text.set_fontfamily(families)
        if families != [_BASE_FAMILY]:  # a character no font draws: as the labels write it
            shown = text.get_text()
            if drawable(shown) != shown:
                text.set_text(drawable(shown))
    for ax in fig.findobj(lambda a: hasattr(a, "xaxis") and hasattr(a, "tick_params")):
        ax.tick_params(which="both", labelfontfamily=families)
    return fig


def styled(function: _F) -> _F:
    """Decorator of the public viewers: text is created with the family list the strings
    among the arguments need (:func:`families_for`, through a local ``rc_context``: the
    global rcParams are untouched) and the returned figure is passed through
    :func:`apply_fonts`, which also looks at the texts the viewer made itself."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        families = families_for(args, kwargs)
        with matplotlib.rc_context({"font.family": families}):
            fig = function(*args, **kwargs)
            return apply_fonts(fig, families)

    return wrapper  # type: ignore[return-value]
