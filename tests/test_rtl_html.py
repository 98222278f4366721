"""Right-to-left sentences in the HTML views, checked in a real headless Chromium: where the
browser puts each token's element (first token right of the second for Arabic and Hebrew,
left of it for English) and which weight is drawn / shown under each label."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from _browser import dataset, hover, open_clean, start_browser
import probe
from probe.viewers.html import (
    coref_view_html,
    curves_view_html,
    head_view_html,
    model_view_html,
    token_view_html,
)

ARABIC = ["[CLS]", "القط", "جلس", "على", "الحصير", ".", "[SEP]"]  # the cat sat on the mat
HEBREW = ["[CLS]", "החתול", "ישב", "על", "השטיח", ".", "[SEP]"]
ENGLISH = ["[CLS]", "the", "cat", "sat", "on", ".", "[SEP]"]
N = len(ARABIC)


def _attn(seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).random((2, 2, N, N)).astype(np.float32) + 0.05
    return a / a.sum(-1, keepdims=True)


ATTN = _attn()
SCORES = {"ig": np.linspace(-1, 1, N), "attention": np.linspace(0, 1, N)}


def _data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def _curves(tokens, **options):
    f = np.linspace(0, 1, 5)
    return curves_view_html({"ig": (f, 1 - f)}, {"ig": (f, f)}, {"ig": np.arange(N, 0, -1.0)},
                            tokens=tokens, **options)


VIEWS = {
    "curves": _curves,
    "tokens": lambda t, **o: token_view_html(t, SCORES, **o),
    "coref": lambda t, **o: coref_view_html(t, {3: ATTN[:, :, 3]}, **o),
    "heads": lambda t, **o: head_view_html(ATTN, t, **o),
    "model": lambda t, **o: model_view_html(ATTN, t, **o),
}


# ----------------------------------------------------------------------------- pure Python
@pytest.mark.parametrize("view", VIEWS)
def test_the_page_says_which_way(view):
    make = VIEWS[view]
    assert _data(make(ARABIC).html)["rtl"] is True
    assert _data(make(HEBREW).html)["rtl"] is True
    assert _data(make(ENGLISH).html)["rtl"] is False
    assert _data(make(ARABIC, direction="ltr").html)["rtl"] is False
    assert _data(make(ENGLISH, direction="rtl").html)["rtl"] is True
    with pytest.raises(probe.ProbeError, match="direction must be 'auto', 'ltr' or 'rtl'"):
        make(ARABIC, direction="RTL")


def test_show_passes_direction_to_the_token_views_and_refuses_it_elsewhere(minilm):
    model, tokenizer = minilm
    trace = probe.trace(model, "القط جلس على الحصير.", tokenizer=tokenizer)
    assert _data(probe.show(trace, "heads").html)["rtl"] is True
    assert _data(probe.show(trace, "model", direction="ltr").html)["rtl"] is False
    assert _data(probe.show(trace, "coref", word="على").html)["rtl"] is True
    with pytest.raises(probe.ProbeError, match="direction must be"):
        probe.show(trace, "heads", direction="sideways")
    for view in ("image", "detr", "gates", "window"):
        with pytest.raises(probe.ProbeError, match=f"does not apply to the {view} view"):
            probe.show(trace, view, direction="rtl")


def test_the_curves_page_of_an_image_refuses_a_direction():
    f = np.linspace(0, 1, 5)
    with pytest.raises(probe.ProbeError, match="drop it for an image"):
        curves_view_html({"ig": (f, f)}, None, {"ig": np.ones(4)}, image=np.zeros((8, 8, 3)),
                         grid=(2, 2), direction="rtl")


# ----------------------------------------------------------------------------- in the browser
@pytest.fixture(scope="module")
def browser():
    drv = start_browser()
    yield drv
    drv.quit()


def _centres(browser, css: str) -> list[float]:
    return browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => {"
        "const r = e.getBoundingClientRect(); return r.left + r.width / 2; });", css)


@pytest.mark.parametrize("tokens, rtl", [(ARABIC, True), (HEBREW, True), (ENGLISH, False)])
def test_token_rows_and_coref_sentence(browser, tmp_path, tokens, rtl):
    open_clean(browser, VIEWS["tokens"](tokens), tmp_path, "tokens")
    for row in range(2):  # each method's row
        xs = browser.execute_script(
            "return [...document.querySelectorAll('.p-row')[arguments[0]]"
            ".querySelectorAll('.p-tok')].map(e => e.getBoundingClientRect().left);", row)
        assert len(xs) == N
        assert (xs[0] > xs[1]) is rtl and (xs[1] > xs[2]) is rtl
        label = browser.execute_script(
            "return document.querySelectorAll('.p-rowlab')[arguments[0]]"
            ".getBoundingClientRect().left;", row)
        assert (label > xs[0]) is rtl  # the method name at the start of the row
    # hovering the first element names token 0: the element order is the data order
    from selenium.webdriver.common.by import By

    hover(browser, browser.find_elements(By.CSS_SELECTOR, ".p-row .p-tok")[0])
    assert dataset(browser)["hover"] == "0"
    open_clean(browser, VIEWS["coref"](tokens), tmp_path, "coref")
    xs = _centres(browser, ".p-flow .p-tok")
    assert (xs[0] > xs[1]) is rtl and (xs[-2] > xs[-1]) is rtl
    open_clean(browser, VIEWS["curves"](tokens), tmp_path, "curves")
    xs = _centres(browser, ".p-flow .p-tok")
    assert len(xs) == N and (xs[0] > xs[1]) is rtl
    open_clean(browser, VIEWS["coref"](tokens), tmp_path, "coref")
    chosen = browser.execute_script(
        "return [...document.querySelectorAll('.p-flow .p-tok')].findIndex("
        "e => e.classList.contains('chosen'));")
    assert chosen == 3


@pytest.mark.parametrize("tokens, rtl", [(ARABIC, True), (ENGLISH, False)])
def test_head_view_puts_queries_first(browser, tmp_path, tokens, rtl):
    open_clean(browser, VIEWS["heads"](tokens), tmp_path, "heads")
    q = _centres(browser, ".p-left .p-tok")
    k = _centres(browser, ".p-right .p-tok")
    cv = _centres(browser, "canvas.p-lines")[0]
    assert (q[0] > cv > k[0]) is rtl and (q[0] < cv < k[0]) is not rtl
    # the lines start at the query column: a hovered query lights up the canvas on its side
    from selenium.webdriver.common.by import By

    hover(browser, browser.find_elements(By.CSS_SELECTOR, ".p-left .p-tok")[2])
    assert dataset(browser)["focus"] == "q2"
    ys = browser.execute_script(
        "const c = document.querySelector('canvas.p-lines'), d = c.getContext('2d');"
        "const col = x => { let s = 0; const px = d.getImageData(x, 0, 1, c.height).data;"
        "  for (let y = 0; y < c.height; y++) if (px[4 * y + 3] > 0) s++; return s; };"
        "return [col(1), col(c.width - 2)];")
    query_side, key_side = (ys[1], ys[0]) if rtl else (ys[0], ys[1])
    assert query_side < key_side  # one query's lines meet at its row, fan out over the keys


@pytest.mark.parametrize("tokens, rtl", [(HEBREW, True), (ENGLISH, False)])
def test_model_view_key_axis_and_cells(browser, tmp_path, tokens, rtl):
    """The enlarged map of a right-to-left sentence runs right to left, and the cell under
    key label k in query row q is the one the left-to-right page draws for (q, k), and its
    tooltip names that pair."""
    def cells(page: str) -> tuple[list, list[str]]:
        open_clean(browser, model_view_html(ATTN, tokens, direction=page), tmp_path, page)
        return browser.execute_script("""
          const big = document.querySelector('.p-stack canvas'), r = big.getBoundingClientRect();
          const ctx = big.getContext('2d'), Q = arguments[0], out = [];
          const xs = [...document.querySelectorAll('.p-xlab')].map(e => {
            const b = e.getBoundingClientRect(); return b.left + b.width / 2 - r.left; });
          for (let q = 0; q < Q; q++) for (let k = 0; k < Q; k++) {
            const y = (q + 0.5) * r.height / Q;
            out.push([...ctx.getImageData(Math.floor(xs[k]), Math.floor(y), 1, 1).data]);
          }
          return [out, xs];""", N)

    drawn, xs = cells("rtl" if rtl else "ltr")
    assert (xs[0] > xs[1] > xs[-1]) is rtl
    reference, _ = cells("ltr")
    assert drawn == reference
    # hover the cell under key label 1 in query row 2: the tooltip names (2, 1)
    open_clean(browser, model_view_html(ATTN, tokens), tmp_path, "auto")
    from selenium.webdriver.common.by import By

    over = browser.find_elements(By.CSS_SELECTOR, ".p-stack canvas")[1]
    size = over.size
    hover(browser, over, int(xs[1] - size["width"] / 2), int((2.5 / N - 0.5) * size["height"]))
    assert dataset(browser)["row"] == "2"
    tip = browser.execute_script("return document.querySelector('.p-tip').textContent")
    assert tip.startswith(f"{_label(tokens[2])} \u2192 {_label(tokens[1])}")


def _label(token: str) -> str:
    """A label as the pages write it (right-to-left letters isolated)."""
    from probe.viewers.html._page import clean_tokens

    return clean_tokens([token], 1, "t", "t")[0]
