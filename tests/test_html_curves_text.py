"""The text curves view shows what the model read at each step: a removed (or not yet
revealed) token is shown as the token that replaced it ([MASK], or the padding token), so the
page's tokens at step ``k`` are the tokens of the input the faithfulness code evaluates at
step ``k`` (:func:`probe.perturbed_input`), in Python from the embedded data and in a real
headless Chromium from the page's own spans after a hover."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import probe
from _browser import open_clean, start_browser
from probe import ProbeError
from probe.viewers.html import curves_view_html

STEPS = 20
TEXT = "A man is playing a guitar."
METHODS = ["attention", "saliency", "random"]


def _data_block(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def _page_tokens(data: dict, method: int, kind: int, step: int) -> list[str]:
    """The page's rule, in Python: each replaced unit shows its replacement."""
    count = data["kinds"][kind]["counts"][step]
    deletion = data["kinds"][kind]["name"] == "deletion"
    return [data["replacements"][u] if ((r < count) if deletion else (r >= count)) else t
            for u, (t, r) in enumerate(zip(data["tokens"], data["ranks"][method]))]


def _evaluated(model, tok, attr, kind: str, step: int) -> list[str]:
    """The tokens (at the real, non-special positions) of the input the faithfulness code
    scores at ``step`` for the attribution ``attr``."""
    x = probe.perturbed_input(model, TEXT, attr, step, kind=kind, steps=STEPS, tokenizer=tok)
    encoded = tok([TEXT], return_special_tokens_mask=True)
    keep = [not s for s in encoded["special_tokens_mask"][0]]
    ids = [i for i, k in zip(x["input_ids"][0].tolist(), keep) if k]
    return tok.convert_ids_to_tokens(ids)


@pytest.fixture(scope="module")
def page(minilm):
    model, tok = minilm
    target = probe.similarity_target(model, tok, "Someone plays music.")
    view = probe.show((model, tok), "curves", TEXT, methods=METHODS, target=target)
    attrs = [probe.attribute(model, TEXT, m, tokenizer=tok, target=target) for m in METHODS]
    return model, tok, attrs, view, _data_block(view.html)


def test_page_tokens_at_every_step_are_the_evaluated_input(page):
    model, tok, attrs, _, data = page
    assert data["methods"] == METHODS and data["unseen"] is False
    assert set(data["replacements"]) == {tok.mask_token}  # minilm's default baseline: [MASK]
    for m, attr in enumerate(attrs):
        for k, kind in enumerate(("deletion", "insertion")):
            for step in (0, 3, 10, STEPS):
                want = _evaluated(model, tok, attr, kind, step)
                assert _page_tokens(data, m, k, step) == want, (METHODS[m], kind, step)


def test_browser_shows_the_replacement_tokens(page, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    model, tok, attrs, view, data = page
    drv = start_browser()
    try:
        open_clean(drv, view, tmp_path, "text-curves")

        def shown() -> list[str]:
            return [s.get_attribute("textContent")
                    for s in drv.find_elements(By.CSS_SELECTOR, ".p-flow .p-tok")]

        def state() -> tuple[int, int, int]:
            ds = drv.execute_script("return Object.assign({}, document.getElementById("
                                    "'probe-root').dataset)")
            return ["deletion", "insertion"].index(ds["kind"]), int(ds["method"]), int(ds["step"])

        seen = set()
        charts = drv.find_elements(By.CSS_SELECTOR, "canvas.p-chart")
        for chart, dx in ((None, 0), (charts[0], 30), (charts[1], -40), (charts[1], 60)):
            if chart is not None:
                ActionChains(drv).move_to_element_with_offset(chart, dx, 0).perform()
            kind, m, step = state()
            seen.add((kind, step))
            assert shown() == _page_tokens(data, m, kind, step)
            assert shown() == _evaluated(model, tok, attrs[m], ("deletion", "insertion")[kind],
                                         step)
            swapped = drv.find_elements(By.CSS_SELECTOR, ".p-flow .p-tok.swap")
            assert all(s.get_attribute("textContent") == tok.mask_token for s in swapped)
            assert not drv.find_elements(By.CSS_SELECTOR, ".p-flow .p-tok.gone")
        assert len(seen) >= 3 and any(tok.mask_token in _page_tokens(data, 0, k, s)
                                      for k, s in seen)
    finally:
        drv.quit()


def test_plain_data_replacements_and_unseen(tmp_path):
    from selenium.webdriver.common.by import By

    f = np.arange(6) / 5
    tokens, scores = ["the", "cat", "sat", "down", "now"], {"ig": np.array([.1, .9, .3, .8, .2])}
    view = curves_view_html({"ig": (f, 1 - f)}, None, scores, tokens=tokens,
                            replacements=["[PAD]"] * 5, unseen=True)
    data = _data_block(view.html)
    assert data["replacements"] == ["[PAD]"] * 5 and data["unseen"] is True
    drv = start_browser()
    try:
        open_clean(drv, view, tmp_path, "unseen")
        spans = drv.find_elements(By.CSS_SELECTOR, ".p-flow .p-tok")
        step = int(drv.execute_script("return document.getElementById('probe-root')"
                                      ".dataset.step"))
        assert [s.get_attribute("textContent") for s in spans] == _page_tokens(data, 0, 0, step)
        hidden = drv.find_elements(By.CSS_SELECTOR, ".p-flow .p-tok.swap.unseen")
        assert len(hidden) == data["kinds"][0]["counts"][step] > 0
        assert hidden[0].get_attribute("title").startswith("replaced: ")
        assert "masked out of attention" in drv.find_element(By.CSS_SELECTOR,
                                                              ".p-readout").text
    finally:
        drv.quit()
    with pytest.raises(ProbeError, match="replacements has 2 entries but tokens has 5"):
        curves_view_html({"ig": (f, 1 - f)}, None, scores, tokens=tokens,
                         replacements=["a", "b"])
    with pytest.raises(ProbeError, match="pass tokens= too"):
        curves_view_html({"ig": (f, 1 - f)}, None, {"ig": np.arange(12.0)},
                         image=np.zeros((6, 8, 3)), grid=(3, 4), replacements=["x"] * 12)


def test_cli_text_curves_page_shows_the_replacement(tmp_path, capsys):
    from pathlib import Path

    from probe.cli import main

    rc = main(["render", "curves", "--text", "A man.", "--pair", "Someone.", "--method",
               "attention", "--format", "html", "--out", str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = _data_block(Path(out.split()[0]).read_text())
    assert data["tokens"] == ["a", "man", "."]  # minilm lower-cases
    assert data["replacements"] == ["[MASK]"] * 3 and data["unseen"] is False
