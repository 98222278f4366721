"""Fonts embedded in the interactive views: a page with Chinese, Arabic and Devanagari carries
WOFF subsets of the Noto fonts with exactly the code points it shows (read back with
fontTools), licence notices kept; in a real headless Chromium (this machine has no CJK or
Devanagari font) its tokens and canvas text render with the embedded faces, not as empty
boxes; a page whose text DejaVu Sans covers embeds nothing and keeps its CSS and script."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest

from _browser import open_clean, start_browser
from probe.viewers.html import curves_view_html, head_view_html
from probe.viewers.html._runtime import CSS, RUNTIME_JS, SYSTEM_FONTS
from probe.viewers.html._webfonts import _cjk_member, page_fonts

CHINESE, ARABIC, DEVANAGARI = "注意力", "الانتباه", "ध्यान"
YLABEL = "模型得分"
TOKENS = ["[CLS]", CHINESE, "is", ARABIC, DEVANAGARI, "[SEP]"]


@pytest.fixture(scope="module")
def page():
    n = len(TOKENS)
    f = np.linspace(0, 1, n + 1)
    return curves_view_html({"ig": (f, 1 - f)}, None, {"ig": np.arange(n, dtype=float)},
                            tokens=TOKENS, ylabel=YLABEL)


def _faces(html: str) -> dict:
    from fontTools.ttLib import TTFont

    found = re.findall(r'@font-face\{font-family:"([^"]+)";src:url\(data:font/woff;base64,'
                       r'([A-Za-z0-9+/=]+)\) format\("woff"\)', html)
    return {family: TTFont(io.BytesIO(base64.b64decode(b64))) for family, b64 in found}


def test_subsets_hold_exactly_the_shown_code_points(page):
    faces = _faces(page.html)
    assert list(faces) == ["Noto Sans CJK SC", "Noto Sans Arabic", "Noto Sans Devanagari"]
    assert set(faces["Noto Sans CJK SC"].getBestCmap()) == {ord(c) for c in CHINESE + YLABEL}
    assert set(faces["Noto Sans Arabic"].getBestCmap()) == {ord(c) for c in ARABIC}
    assert set(faces["Noto Sans Devanagari"].getBestCmap()) == {ord(c) for c in DEVANAGARI}
    for font in faces.values():
        assert font.flavor == "woff" and "fvar" not in font  # pinned to the default instance
        names = {n.nameID: n.toUnicode() for n in font["name"].names}
        assert "Open Font License" in names[13] and names[0]  # licence and copyright kept
        assert not any("Source" in n.toUnicode() for n in font["name"].names)  # CJK's RFN
    css = re.search(r"<style>(.*?)</style>", page.html, re.S).group(1)
    assert css.count("Open Font License 1.1") == 3 and "\u00a9 2014-2021 Adobe" in css
    stack = SYSTEM_FONTS + ',"Noto Sans CJK SC","Noto Sans Arabic","Noto Sans Devanagari"'
    assert "font:13px/1.35 " + stack + ";" in css
    assert "font-src data:;" in page.html
    assert ("ctx.font = \"10px sans-serif,'Noto Sans CJK SC','Noto Sans Arabic',"
            "'Noto Sans Devanagari'\"") in page.html


def test_cjk_member_follows_the_text():
    assert _cjk_member(map(ord, "注意力")) == "Noto Sans CJK SC"
    assert _cjk_member(map(ord, "注意 한국어")) == "Noto Sans CJK KR"
    assert _cjk_member(map(ord, "한국어 注意 ひらがな")) == "Noto Sans CJK JP"
    (font,) = page_fonts(["[CLS]", "日本語です", "café"])
    assert font.family == "Noto Sans CJK JP" and font.codes == set(map(ord, "日本語です"))


def test_text_dejavu_covers_embeds_nothing():
    tokens = ["[CLS]", "café", "Ωμέγα", "Привет", "שלום", "→", "…", "[SEP]"]
    n = len(tokens)
    attn = np.full((1, 1, n, n), 1.0 / n)
    html = head_view_html(attn, tokens, title="naïve · Ünïcödé").html
    assert "@font-face" not in html and "font-src" not in html
    assert re.search(r"<style>(.*?)</style>", html, re.S).group(1) == CSS
    script = re.findall(r"<script>(.*?)</script>", html, re.S)[-1]
    assert script.startswith(RUNTIME_JS) and "document.fonts" not in script
    assert page_fonts(tokens) == []


def test_browser_renders_with_the_embedded_fonts(page, tmp_path):
    drv = start_browser()
    try:
        open_clean(drv, page, tmp_path, "fonts")
        faces = drv.execute_script(
            "return Array.from(document.fonts, f => [f.family.replace(/\"/g, ''), f.status])")
        assert faces == [["Noto Sans CJK SC", "loaded"], ["Noto Sans Arabic", "loaded"],
                         ["Noto Sans Devanagari", "loaded"]]
        # widths of each token as the page draws it (its span, the page's font stack), in a
        # span with the embedded face only, and in the system fonts alone (empty boxes here:
        # measured last, after the page's own text)
        widths = drv.execute_script("""
          function w(text, font) {
            const s = document.createElement('span'); s.style.font = font;
            s.style.whiteSpace = 'pre'; s.textContent = text; document.body.appendChild(s);
            const r = s.getBoundingClientRect().width; s.remove(); return r; }
          const out = {};
          for (const [text, family] of arguments[0]) {
            const tok = Array.from(document.querySelectorAll('.p-flow .p-tok'))
              .find(t => t.textContent.includes(text));
            const st = getComputedStyle(tok), r = document.createRange();
            r.selectNodeContents(tok);
            out[text] = [r.getBoundingClientRect().width,
                         w(text, st.fontSize + ' "' + family + '"'), st.fontSize];
          }
          const ctx = document.querySelector('canvas').getContext('2d');
          const used = ctx.font;
          ctx.font = '10px "Noto Sans CJK SC"'; const cjk = ctx.measureText(arguments[1]).width;
          ctx.font = used; const drawn = ctx.measureText(arguments[1]).width;
          ctx.font = '10px sans-serif'; const boxes = ctx.measureText(arguments[1]).width;
          ctx.font = used;
          for (const text in out) out[text].push(w(text, out[text][2] + ' ' + arguments[2]));
          out.canvas = [drawn, cjk, boxes];
          return out;""", [[CHINESE, "Noto Sans CJK SC"], [DEVANAGARI, "Noto Sans Devanagari"]],
            YLABEL, SYSTEM_FONTS)
        for text in (CHINESE, DEVANAGARI):
            drawn, embedded, _size, boxes = widths[text]
            assert drawn == pytest.approx(embedded, abs=0.5), (text, widths)
            assert abs(drawn - boxes) > 2, (text, widths)  # not the empty boxes
        drawn, embedded, boxes = widths["canvas"]
        assert drawn == pytest.approx(embedded, abs=0.5) and abs(drawn - boxes) > 2, widths
    finally:
        drv.quit()


def test_every_canvas_font_of_the_views_gets_the_embedded_families():
    import importlib
    import pkgutil

    import probe.viewers.html as views
    from probe.viewers.html._webfonts import _CANVAS_FONT

    sources = [getattr(importlib.import_module(f"probe.viewers.html.{m.name}"), name)
               for m in pkgutil.iter_modules(views.__path__)
               for name in dir(importlib.import_module(f"probe.viewers.html.{m.name}"))
               if name.endswith("_JS")]
    sets = [line for js in sources if isinstance(js, str) for line in js.splitlines()
            if re.search(r"\.font\s*=", line)]
    assert sets and all(_CANVAS_FONT.search(line) for line in sets), sets


def test_page_fonts_closes_every_font_file():
    """Under ``-W error::ResourceWarning`` in a fresh process (the font caches empty), cutting
    CJK, Devanagari and Thai subsets leaves no font file open: the CJK collection read for
    its member names and each lazily opened font are closed."""
    import subprocess
    import sys

    code = ("import gc\n"
            "from probe.viewers.html._webfonts import page_fonts\n"
            "fonts = page_fonts(['小猫', 'ध्यान', 'ไทย', 'ひらがな'])\n"
            "assert len(fonts) >= 3, fonts\n"
            "gc.collect()\n")
    done = subprocess.run([sys.executable, "-X", "dev", "-W", "error::ResourceWarning",
                           "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ResourceWarning" not in done.stderr, done.stderr
