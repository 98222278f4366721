"""Fonts embedded in an interactive view for the scripts a machine's own fonts may lack.

A page whose strings DejaVu Sans covers entirely (:func:`probe.viewers._fonts.families_for`'s
rule: Latin, Greek, Cyrillic, Hebrew, arrows...) embeds nothing and is byte for byte what it
was before this module existed: those characters are left to the system fonts, which have
them everywhere a browser runs (Windows' Segoe UI and Arial, macOS, and on Linux DejaVu Sans
itself, which fontconfig installs by default). A page with other characters (Chinese,
Japanese, Korean, Arabic, Devanagari, Thai...) gets, for each Noto font probe depends on that
has some of them (the matplotlib viewers' fallback list: Noto Sans CJK, Noto Sans Arabic,
Devanagari, Thai), a subset of that font with exactly those code points (:func:`subset_font`,
fontTools), as WOFF (zlib; WOFF2 would need brotli, which probe does not depend on) in an
``@font-face`` rule with a ``data:`` URL. The families go after the system ones in every font
stack (the CSS ``font`` of the page and its form controls, a canvas's ``ctx.font``, which
a view writes as ``ctx.font = "<N>px sans-serif"``: :data:`_CANVAS_FONT`), so
Latin text looks as before and the user's own font wins where it has the character; the
page's CSP gains ``font-src data:``, and the runtime waits for the faces to load before the
view draws (a canvas draws once, with the fonts loaded then).

The CJK font is an OpenType collection of regional variants that all cover the same
characters and differ in the shapes of some Han characters: Japanese (``Noto Sans CJK JP``)
when the page has kana, Korean (``KR``) when it has Hangul and no kana, else Simplified
Chinese (``SC``, as the matplotlib figures use); Traditional Chinese text is then drawn with
the SC shapes. The variable fonts (Arabic, Devanagari, Thai) are pinned to their default
instance (regular, normal width); bold text is emboldened by the browser.

Licence: the fonts are under the SIL Open Font License 1.1, which allows embedding subsets
(Modified Versions) in documents provided each copy carries the copyright notice and licence:
every record of the font's ``name`` table (copyright, licence description and URL) is kept in
the subset, and a CSS comment before each rule names the font, its copyright and licence.
Noto Sans CJK's Reserved Font Name is "Source" (Adobe's Source Han Sans); the subsets keep
their Noto names, which do not use it; the other Noto fonts reserve no name.
"""

from __future__ import annotations

import base64
import functools
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["PageFont", "page_fonts", "with_fonts", "subset_font"]

_CANVAS_FONT = re.compile(r'(\.font = "\d+(?:\.\d+)?px sans-serif)(")')

#: Run after the runtime (global ``P``): views start once every embedded face has loaded.
_WAIT_FOR_FONTS_JS = """
P.start = (start => view => start(async (root, d) => {
  if (document.fonts) await Promise.all(Array.from(document.fonts, f => f.load().catch(() => f)));
  return view(root, d);
}))(P.start);
"""

_KANA = ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F))
_HANGUL = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7AF),
           (0xD7B0, 0xD7FF))


@dataclass(frozen=True)
class PageFont:
    """One embedded font: CSS ``family``, the ``codes`` it was cut to, the ``woff`` bytes,
    and the ``notice`` (font file, copyright, licence) written next to its rule."""

    family: str
    codes: frozenset[int]
    woff: bytes
    notice: str


def strings(value: Any) -> Iterator[str]:
    """Every string in ``value`` (str, dict keys and values, lists and tuples, any depth)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)


def _js_escapes(js: str) -> Iterator[str]:
    """The characters a script writes as ``\\uXXXX`` escapes (it may show them)."""
    for m in re.finditer(r"\\u([0-9a-fA-F]{4})", js):
        yield chr(int(m.group(1), 16))


def _in(code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= code <= hi for lo, hi in ranges)


def _cjk_member(codes: Iterable[int]) -> str:
    """The Noto Sans CJK family for these characters: JP with kana, KR with Hangul, else SC."""
    codes = list(codes)
    if any(_in(c, _KANA) for c in codes):
        return "Noto Sans CJK JP"
    if any(_in(c, _HANGUL) for c in codes):
        return "Noto Sans CJK KR"
    return "Noto Sans CJK SC"


@functools.lru_cache(maxsize=None)
def _sources() -> tuple[tuple[str, str, int], ...]:
    """(family, file, index in the file) of every installed fallback font, in the matplotlib
    viewers' order; the CJK collection once per member (JP, KR, SC, TC, HK)."""
    from fontTools.ttLib import TTCollection

    from probe.viewers._fonts import _FALLBACK_FONTS, _font_files

    out = []
    for _family, package in _FALLBACK_FONTS:
        for path in _font_files(package):
            if path.lower().endswith((".ttc", ".otc")):
                with TTCollection(path, lazy=True) as collection:  # closes the file
                    for index, font in enumerate(collection.fonts):
                        out.append((font["name"].getDebugName(1), path, index))
            else:
                out.append((_family, path, -1))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def _cmap(path: str) -> frozenset[int]:
    """The characters of the font at ``path`` (FreeType, ten times faster than fontTools;
    of a collection's first member: Noto Sans CJK's members all have the same characters)."""
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(path).get_charmap())


def _base_codes() -> frozenset[int]:
    from probe.viewers._fonts import _base_codes as base

    return base()


def page_fonts(chars: Iterable[str]) -> list[PageFont]:
    """The fonts to embed for a page showing ``chars``: none when DejaVu Sans has them all,
    else one subset per Noto font with the characters DejaVu Sans lacks that it has (the
    first font in order that has a character gets it; characters no font has are left to
    the system).

    Args:
        chars: the characters (or strings) the page can show.
    """
    wanted = {ord(c) for s in chars for c in s if ord(c) > 0x7E}
    if not wanted:
        return []
    wanted -= _base_codes()
    wanted -= {0x2028, 0x2029}
    if not wanted:
        return []
    cjk = _cjk_member(wanted)
    fonts = []
    for family, path, index in _sources():
        if family.startswith("Noto Sans Mono") or (family.startswith("Noto Sans CJK")
                                                   and family != cjk):
            continue
        has = wanted & _cmap(path)
        if has:
            fonts.append(subset_font(family, path, index, frozenset(has)))
            wanted -= has
    return fonts


@functools.lru_cache(maxsize=32)
def subset_font(family: str, path: str, index: int, codes: frozenset[int]) -> PageFont:
    """A WOFF subset of the font at ``path`` (member ``index`` of a collection, -1 for a
    single font) with exactly the characters ``codes`` in its cmap (and the glyphs their
    shaping needs: ligatures, contextual forms, marks), every ``name`` record kept, hinting
    dropped, a variable font pinned to its default instance."""
    from fontTools.ttLib import TTFont

    font = TTFont(path, fontNumber=max(index, 0), lazy=True)
    if "fvar" in font:  # the instancer needs the tables loaded
        font.close()
        font = TTFont(path, fontNumber=max(index, 0))
    try:
        return _subset(family, path, font, codes)
    finally:
        font.close()  # a lazy font holds its file open until closed


def _subset(family: str, path: str, font: Any, codes: frozenset[int]) -> PageFont:
    """The :func:`subset_font` of the open ``font`` (cut in place; the caller closes it)."""
    from fontTools import subset

    options = subset.Options()
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.name_legacy = True
    options.notdef_outline = True
    options.hinting = False
    options.desubroutinize = True
    options.drop_tables += ["BASE", "VORG", "vhea", "vmtx"]  # horizontal text only
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(codes))
    subsetter.subset(font)
    if "fvar" in font:
        from fontTools.varLib import instancer

        pins = {axis.axisTag: axis.defaultValue for axis in font["fvar"].axes}
        font = instancer.instantiateVariableFont(font, pins)
    font.flavor = "woff"
    buf = io.BytesIO()
    font.save(buf)
    name = font["name"]
    copyright_ = re.sub(r"\s*\(?https?://[^\s)]*\)?", "", name.getDebugName(0) or "")
    file_name = path.replace("\\", "/").rsplit("/", 1)[-1]
    notice = (f"{family}: a subset of {file_name}, {copyright_.rstrip('.')}; SIL Open Font "
              "License 1.1 (copyright and licence also in the font's name table)"
              ).replace("*/", "* /")
    return PageFont(family, codes, buf.getvalue(), " ".join(notice.split()))


def font_face_css(fonts: list[PageFont]) -> str:
    """The ``@font-face`` rules of ``fonts`` (WOFF in ``data:`` URLs), each after its notice."""
    return "".join(
        f"/* {f.notice} */\n@font-face{{font-family:\"{f.family}\";src:url(data:font/woff;"
        f"base64,{base64.b64encode(f.woff).decode('ascii')}) format(\"woff\");"
        "font-display:block}\n"
        for f in fonts)


def with_fonts(css: str, js: str, texts: Iterable[Any]) -> tuple[str, str, bool]:
    """``css`` and ``js`` of a page showing the strings in ``texts`` (and ``js``'s own text),
    with the fonts it needs embedded (:func:`page_fonts`); unchanged, with ``False``, when it
    needs none. ``js`` starts with the runtime (the view code follows it)."""
    from probe.viewers.html._runtime import RUNTIME_JS, SYSTEM_FONTS

    chars: set[str] = set()
    for text in texts:
        for s in strings(text):
            if not s.isascii():
                chars.update(s)
    chars.update(ch for ch in js if ord(ch) > 0x7E)
    chars.update(_js_escapes(js))
    fonts = page_fonts(chars)
    if not fonts:
        return css, js, False
    if SYSTEM_FONTS not in css or not js.startswith(RUNTIME_JS):
        raise RuntimeError("the page's CSS or script does not start from the shared runtime")
    stack = SYSTEM_FONTS + "".join(f',"{f.family}"' for f in fonts)
    css = (font_face_css(fonts) + css.replace(SYSTEM_FONTS, stack)
           + "select,input,textarea{font-family:inherit}\n")
    canvas = "".join(f",'{f.family}'" for f in fonts)
    view_js = _CANVAS_FONT.sub(lambda m: m.group(1) + canvas + m.group(2), js[len(RUNTIME_JS):])
    return css, RUNTIME_JS + _WAIT_FOR_FONTS_JS + view_js, True
