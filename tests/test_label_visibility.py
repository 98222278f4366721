"""Token labels that would draw as nothing or mislead, right-to-left labels, and the CLI's
file-name slug of texts without ASCII letters.

One rule (:func:`probe._text.visible_text`) writes zero-width, bidi-control and other format
or control characters, unusual-whitespace-only tokens and lone combining marks as code points
``<U+200B>``, in matplotlib figures, in the HTML views and (as ``u200b``) in file names.
"""

from __future__ import annotations

import json
import re
import unicodedata

import numpy as np
import pytest

import probe._text
from probe._text import code_point, visible_text

HIDDEN = {
    "zero-width space": "\u200b",
    "zero-width non-joiner": "\u200c",
    "zero-width joiner": "\u200d",
    "word joiner": "\u2060",
    "BOM": "\ufeff",
    "LRM": "\u200e",
    "RLM": "\u200f",
    "LRE": "\u202a",
    "RLE": "\u202b",
    "PDF": "\u202c",
    "LRO": "\u202d",
    "RLO": "\u202e",
    "LRI": "\u2066",
    "RLI": "\u2067",
    "FSI": "\u2068",
    "PDI": "\u2069",
    "soft hyphen": "\u00ad",
    "NUL": "\u0000",
    "escape": "\u001b",
    "line separator": "\u2028",
    "private use": "\ue000",
    "Hangul filler": "\u3164",
}

# ordinary text of many scripts, marks on their letters: unchanged
ORDINARY = [
    "the", "\u2581the", "caf\u00e9", "cafe\u0301", "\u732b\u304c\u597d\u304d",
    "\u0645\u0631\u062d\u0628\u0627", "\u05e9\u05dc\u05d5\u05dd!",
    "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "\U0001F44D\U0001F3FD", "\U0001F468\u200d\U0001F469\u200d\U0001F467",  # a ZWJ sequence
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian: ZWNJ inside a word
    " ", "  ", "a\u00a0b", "\u00e9\u0323", "[CLS]", "<0xAD>",
]


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_hidden_characters_are_code_points(name):
    ch = HIDDEN[name]
    point = f"<U+{ord(ch):04X}>"
    assert visible_text(ch) == point
    assert visible_text(f"a{ch}") == f"a{point}"
    if ch not in "\u200c\u200d":  # joiners between two letters do something visible
        assert visible_text(f"a{ch}b") == f"a{point}b"


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_unchanged(text):
    assert visible_text(text) == text


def test_unusual_whitespace_only_and_lone_marks():
    assert visible_text("\u3000") == "<U+3000>"
    assert visible_text("\u00a0\u00a0") == "<U+00A0><U+00A0>"
    assert visible_text(" \u3000") == " <U+3000>"
    assert visible_text("\u0301") == "<U+0301>"  # a lone combining acute accent
    assert visible_text("\u2581\u0301") == "\u2581<U+0301>"  # on the word-start marker: lone
    assert visible_text("\u093f") == "<U+093F>"  # a Devanagari vowel sign split from its letter
    assert visible_text("\u200b\u0301") == "<U+200B><U+0301>"  # on nothing visible
    assert visible_text("e\u0301\u0323") == "e\u0301\u0323"  # marks stacked on a letter
    assert code_point("\U0001F44D") == "<U+1F44D>"


def test_matplotlib_labels_use_the_rule():
    from probe.viewers import head_heatmap
    from probe.viewers._style import format_token

    assert format_token("\u200b") == "<U+200B>"
    assert format_token("a\u202eb") == "a<U+202E>b"
    assert format_token("\u3000") == "<U+3000>"
    assert format_token(" ") == "\u2423"  # a plain space stays the visible-space sign
    assert format_token("\n") == "\\n"
    tokens = ["[CLS]", "\u200b", "\u2066x", "\u3000", "\u0301", "ok"]
    attn = np.full((len(tokens), len(tokens)), 1 / len(tokens))
    fig = head_heatmap(attn, tokens)
    shown = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert shown == ["[CLS]", "<U+200B>", "<U+2066>x", "<U+3000>", "<U+0301>", "ok"]


def test_html_labels_use_the_rule_and_isolate_right_to_left():
    from probe.viewers.html import head_view_html

    tokens = ["[CLS]", "\u200b", "a\u202eb", "\u3000", "\u05e9\u05dc\u05d5\u05dd", "ok"]
    attn = np.full((1, 1, len(tokens), len(tokens)), 1 / len(tokens), dtype=np.float32)
    page = head_view_html(attn, tokens).html
    block = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>',
                      page, re.S)
    assert block is not None
    data = json.loads(block.group(1))
    assert data["qtokens"] == ["[CLS]", "<U+200B>", "a<U+202E>b", "<U+3000>",
                               "\u2068\u05e9\u05dc\u05d5\u05dd\u2069", "ok"]


# ----------------------------------------------------------------------------- right to left
HEBREW = "\u05e9\u05dc\u05d5\u05dd"  # shalom
ARABIC = "\u0645\u0631\u062d\u0628\u0627"  # marhaba


def test_hebrew_and_arabic_labels_keep_their_letters():
    """DejaVu Sans draws Hebrew and Arabic; the ExtraLight face, which has neither, once made
    every Hebrew letter a ``<U+05E9>`` code point in figures that needed the fallback fonts."""
    from probe.viewers._fonts import drawable

    for text in (HEBREW, ARABIC, f"{HEBREW} \U0001F44D {ARABIC}"):
        assert drawable(text) == text.replace("\U0001F44D", "<U+1F44D>")


def test_matplotlib_shapes_arabic_and_orders_right_to_left():
    """Matplotlib (3.11, libraqm) joins Arabic letters and lays right-to-left text out right to
    left, so token labels need no reshaping of their own: the first letter of a Hebrew word is
    drawn rightmost, an Arabic letter inside a word gets another glyph than alone."""
    from matplotlib import font_manager
    from matplotlib._text_helpers import layout
    from matplotlib.font_manager import FontProperties

    font = font_manager.get_font(font_manager.findfont(FontProperties(family="DejaVu Sans")))
    font.set_size(12, 72)
    items = list(layout(HEBREW, font))
    xs = {item.char: item.x for item in items}
    assert xs[HEBREW[0]] > xs[HEBREW[-1]]
    alone = list(layout(ARABIC[1], font))[0].glyph_index
    joined = [item for item in layout(ARABIC, font) if item.char == ARABIC[1]][0].glyph_index
    assert joined != alone


# ----------------------------------------------------------------------------- file names
def test_slug_of_texts_without_ascii_letters():
    from probe.commands.render._session import _slug

    assert _slug("\U0001F44D", 16) == "thumbs-up-sign"
    assert _slug("\U0001F44E", 16) == "thumbs-down-sign"
    assert _slug("?", 16) == "question-mark"
    assert _slug("\u732b\u304c\u597d\u304d", 16) == "\u732b\u304c\u597d\u304d"
    assert _slug(f"{ARABIC} {ARABIC}", 16) == f"{ARABIC}-{ARABIC}"
    hindi = "\u0928\u092e\u0938\u094d\u0924\u0947"
    assert _slug(hindi, 16) == hindi
    assert _slug("\u200b", 16) == "u200b"
    assert _slug("a\u202eb", 16) == "a-u202e-b"
    assert _slug("\u0301", 16) == "u0301"
    assert _slug("\U0001F642\ufe0f it", 16) == "it"  # emoji dropped when letters are there
    assert _slug("   ", 16) == "x"
    for text in ("\U0001F44D", "\u200b", f"{ARABIC}", "\u0301"):
        slug = _slug(text, 16)
        assert not any(unicodedata.category(c)[0] in "CZ" for c in slug)
        assert not unicodedata.category(slug[0]).startswith("M")


def test_cli_names_emoji_text_files(tmp_path):
    """``probe render head --text 👍``: the file is named ``...thumbs-up-sign-<hash>`` (was
    ``x-<hash>``); 👍 and 👎 never share a name."""
    from probe.cli import main
    from tests._tokenizers import TOKENIZERS
    from tests.test_token_labels import _gpt2

    tok = TOKENIZERS["byte_level"]()
    folder = tmp_path / "gpt2"
    _gpt2(len(tok)).save_pretrained(folder)
    tok.save_pretrained(folder)
    names = []
    for text in ("\U0001F44D", "\U0001F44E"):
        out = tmp_path / f"out{len(names)}"
        assert main(["render", "head", "--model", str(folder), "--text", text, "--layer", "0",
                     "--head", "0", "--out", str(out), "--quiet", "--dpi", "30"]) == 0
        names += [p.name for p in out.iterdir()]
    assert len(names) == 2 and "_thumbs-up-sign-" in names[0]
    assert "_thumbs-down-sign-" in names[1]


def test_text_module_docstring_names_its_functions():
    doc = probe._text.__doc__ or ""
    for name in probe._text.__all__:
        if name[0].islower():
            assert f":func:`{name}`" in doc, name


def test_browser_keeps_query_arrow_key_order_with_hebrew_tokens(tmp_path):
    """In a tooltip line ``query → key`` of two Hebrew tokens, the browser would order the
    whole line right to left (the key drawn first, the arrow pointing at the query); the
    isolated labels keep query, arrow, key from left to right, each word itself right to
    left."""
    from _browser import load, start_browser

    from probe.viewers.html import head_view_html

    other = "\u05e2\u05d5\u05dc\u05dd"  # olam
    tokens = ["[CLS]", HEBREW, other, "[SEP]"]
    attn = np.full((1, 1, 4, 4), 0.25, dtype=np.float32)
    path = head_view_html(attn, tokens).save(tmp_path / "rtl.html")
    drv = start_browser()
    try:
        assert load(drv, path) == "1"
        xs = drv.execute_script("""
            const d = JSON.parse(document.getElementById("probe-data").textContent);
            const line = document.createElement("div");
            line.style.whiteSpace = "pre";
            line.textContent = d.qtokens[1] + " \\u2192 " + d.ktokens[2];
            document.body.appendChild(line);
            const text = line.firstChild, s = text.data;
            const at = i => { const r = document.createRange(); r.setStart(text, i);
                              r.setEnd(text, i + 1); return r.getBoundingClientRect().left; };
            const q = s.indexOf(arguments[0]), k = s.indexOf(arguments[1]);
            return [at(q), at(q + 3), at(s.indexOf("\\u2192")), at(k)];
        """, HEBREW[0], other[0])
    finally:
        drv.quit()
    q_first, q_last, arrow, k_first = xs
    assert q_last < q_first < arrow < k_first  # query (right to left), arrow, key


def test_long_labels_are_never_cut_inside_a_code_point():
    from probe.viewers._style import format_token

    assert format_token("abcdefgh\u200bxyz", 10) == "abcdefgh\u2026"  # was "abcdefgh<…"
    assert format_token("\U0001F44D" * 3, 12) == "<U+1F44D>\u2026"
    assert format_token("\u200b" * 3, 5) == "<U+200B>\u2026"
    assert format_token("a" * 30, 10) == "a" * 9 + "\u2026"
