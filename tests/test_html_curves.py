"""The interactive faithfulness-curves view (``curves_view_html``, ``probe render curves
--format html``): the units greyed at each step are the ones the curves' own rule removes
(checked against ``probe.evaluation``'s ranks and rounding, ties included), and in a real
headless Chromium hovering a curve point shows that step's input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from _browser import (
    open_clean as _open,
    XSS_TOKENS,
    canvas_sum,
    console_errors,
    dataset,
    load,
    no_alert,
    resources,
    start_browser,
)
from probe import ProbeError
from probe.evaluation._curves import _curve_keep, _ranks
from probe.viewers.html import curves_view_html

RNG = np.random.default_rng(0)
XSS_MODEL = "<img src=x onerror=\"window.__xss=9;alert(1)\">model</script>"
STEPS = 8
FRACTIONS = np.arange(STEPS + 1) / STEPS
GRID = (3, 4)
# ties on purpose: the order among equal scores is by position, as in probe.evaluation
SCORES = {"rollout": np.array([0.1, 0.9, 0.9, 0.3, 0.0, 0.5, 0.5, 0.5, 0.2, 0.8, 0.1, 0.7]),
          XSS_TOKENS[0]: RNG.normal(size=12)}
DELETION = {"rollout": (FRACTIONS, np.linspace(1, 0, STEPS + 1) ** 2),
            XSS_TOKENS[0]: (FRACTIONS, np.linspace(1, 0.2, STEPS + 1)),
            "random": (FRACTIONS, np.linspace(1, 0.5, STEPS + 1))}
INSERTION = {m: (f, 1 - v) for m, (f, v) in DELETION.items()}
IMAGE = np.stack([*np.meshgrid(np.linspace(0, 1, 80), np.linspace(0, 1, 60)),
                  np.full((60, 80), 0.5)], -1)


def _data_block(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def _expected_grey(scores: np.ndarray, step: int, kind: str, steps: int = STEPS) -> list[int]:
    """The units the evaluation replaces by the baseline at ``step`` (probe.evaluation)."""
    s = torch.tensor(scores, dtype=torch.float64)[None]
    valid = torch.ones_like(s, dtype=torch.bool)
    keep = _curve_keep(_ranks(s, valid), valid, steps, kind)[0, step]
    return [int(i) for i in torch.nonzero(~keep).flatten()]


def _grey_from_data(data: dict, method: int, step: int, kind: int) -> list[int]:
    ranks = data["ranks"][method]
    count = data["kinds"][kind]["counts"][step]
    if data["kinds"][kind]["name"] == "deletion":
        return [u for u, r in enumerate(ranks) if r < count]
    return [u for u, r in enumerate(ranks) if r >= count]


# ----------------------------------------------------------------------------- pure Python
def test_greyed_units_follow_the_evaluation_rule_with_ties():
    view = curves_view_html(DELETION, INSERTION, SCORES, image=IMAGE, grid=GRID)
    data = _data_block(view.html)
    assert data["methods"] == ["rollout", XSS_TOKENS[0], "random"]
    assert data["ranks"][2] is None  # no scores: drawn dashed, no input to show
    for ki, kind in enumerate(("deletion", "insertion")):
        for mi, name in enumerate(["rollout", XSS_TOKENS[0]]):
            for step in range(STEPS + 1):
                assert _grey_from_data(data, mi, step, ki) == _expected_grey(
                    SCORES[name], step, kind), (kind, name, step)
    assert data["kinds"][0]["auc"][0] == pytest.approx(np.trapezoid(
        DELETION["rollout"][1], FRACTIONS))
    assert data["size"] == [60, 80] and data["grid"] == [3, 4]


def test_counts_round_half_up_on_odd_unit_counts():
    scores = {"a": np.arange(5.0)}
    f = np.arange(3) / 2  # 2 steps of 5 units: 0, 2.5 -> 3, 5
    view = curves_view_html({"a": (f, f)}, None, scores, tokens=list("vwxyz"))
    data = _data_block(view.html)
    assert data["kinds"][0]["counts"] == [0, 3, 5] and [k["name"] for k in data["kinds"]] == [
        "deletion"]
    assert _grey_from_data(data, 0, 1, 0) == _expected_grey(scores["a"], 1, "deletion", 2)


@pytest.mark.parametrize("change, match", [
    (dict(deletion=None, insertion=None), "pass deletion= or insertion="),
    (dict(deletion={"rollout": (FRACTIONS[:-1], np.ones(STEPS))}), "fractions must be 0"),
    (dict(deletion={"rollout": (FRACTIONS, np.ones(3))}), "same length"),
    (dict(insertion={"x": (FRACTIONS, FRACTIONS)}), "same methods"),
    (dict(scores={"nope": np.ones(12)}), "no curve"),
    (dict(scores={"rollout": np.ones(5)}), "grid 3x4 has 12 patches"),
    (dict(scores={"rollout": np.full(12, np.nan)}), "NaN"),
    (dict(image=None), "pass image= with grid=, or tokens="),
    (dict(grid=None), "grid must be"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_input_is_refused_naming_the_problem(change, match):
    args = dict(deletion=DELETION, insertion=INSERTION, scores={"rollout": SCORES["rollout"]},
                image=IMAGE, grid=GRID)
    args.update(change)
    with pytest.raises(ProbeError, match=match):
        curves_view_html(**args)


# ----------------------------------------------------------------------------- in the browser
@pytest.fixture(scope="module")
def browser():
    drv = start_browser()
    yield drv
    drv.quit()



def _point(browser, chart, fraction: float, value: float, data: dict) -> None:
    """Move the mouse onto the chart point (fraction, value) (the page's own axes)."""
    from selenium.webdriver.common.action_chains import ActionChains

    cw, ch, pad = 300, 210, (34, 10, 10, 30)
    y0, y1 = data["yrange"]
    x = pad[0] + fraction * (cw - pad[0] - pad[2])
    y = ch - pad[3] - (value - y0) / (y1 - y0) * (ch - pad[1] - pad[3])
    w, h = chart.size["width"], chart.size["height"]
    ActionChains(browser).move_to_element_with_offset(
        chart, int(round(x - w / 2)), int(round(y - h / 2))).perform()


def test_curves_view_in_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    view = curves_view_html(DELETION, INSERTION, SCORES, image=IMAGE, grid=GRID,
                            model_name=XSS_MODEL)
    data = _data_block(view.html)
    _open(browser, view, tmp_path, "curves")
    assert browser.title.startswith("<img")
    state = dataset(browser)
    assert state["kind"] == "deletion" and state["method"] == "0" and state["step"] == "2"
    assert state["grey"] == ",".join(map(str, _expected_grey(SCORES["rollout"], 2, "deletion")))
    charts = browser.find_elements(By.CSS_SELECTOR, "canvas.p-chart")
    assert len(charts) == 2
    before = canvas_sum(browser, "canvas.p-scene")
    # hover the second method's deletion point at step 6
    _point(browser, charts[0], FRACTIONS[6], DELETION[XSS_TOKENS[0]][1][6], data)
    state = dataset(browser)
    assert (state["kind"], state["method"], state["step"]) == ("deletion", "1", "6")
    assert state["grey"] == ",".join(map(str, _expected_grey(SCORES[XSS_TOKENS[0]], 6,
                                                             "deletion")))
    assert canvas_sum(browser, "canvas.p-scene") != before
    # the insertion chart: at step 2 only the top-ranked units are revealed
    _point(browser, charts[1], FRACTIONS[2], INSERTION["rollout"][1][2], data)
    state = dataset(browser)
    assert (state["kind"], state["method"], state["step"]) == ("insertion", "0", "2")
    assert state["grey"] == ",".join(map(str, _expected_grey(SCORES["rollout"], 2, "insertion")))
    assert "revealed" in browser.find_element(By.CSS_SELECTOR, ".p-readout").text
    # the random curve has no single order: no unit greyed, and the readout says why
    _point(browser, charts[0], FRACTIONS[4], DELETION["random"][1][4], data)
    assert dataset(browser)["method"] == "2" and dataset(browser)["grey"] == ""
    assert "no single input" in browser.find_element(By.CSS_SELECTOR, ".p-readout").text
    # a hidden method is not picked
    browser.find_elements(By.CSS_SELECTOR, ".p-swatch")[2].click()
    _point(browser, charts[0], FRACTIONS[4], DELETION["random"][1][4], data)
    assert dataset(browser)["method"] != "2"
    assert no_alert(browser) and browser.execute_script("return window.__xss") is None


def test_token_curves_in_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    tokens = ["the", XSS_TOKENS[1], "cat", XSS_TOKENS[2], "sat"]
    scores = {"ig": np.array([0.1, 0.5, -0.3, 0.5, 0.2])}
    f = np.arange(6) / 5
    view = curves_view_html({"ig": (f, 1 - f)}, {"ig": (f, f)}, scores, tokens=tokens)
    _open(browser, view, tmp_path, "tokens")
    spans = browser.find_elements(By.CSS_SELECTOR, ".p-flow .p-tok")
    assert [s.get_attribute("textContent") for s in spans] == tokens
    _point(browser, browser.find_elements(By.CSS_SELECTOR, "canvas.p-chart")[0], f[2], 1 - f[2],
           _data_block(view.html))
    gone = [i for i, s in enumerate(spans) if "gone" in s.get_attribute("class")]
    assert gone == _expected_grey(scores["ig"], 2, "deletion", 5) == [1, 3]


# ----------------------------------------------------------------------------- CLI
def _cli(argv, capsys):
    from probe.cli import main

    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_cli_image_curves_html_with_png(browser, tmp_path, capsys):
    rc, out, err = _cli(["render", "curves", "--method", "rollout", "--method", "random",
                         "--format", "html", "--format", "png", "--dpi", "40",
                         "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 0, err
    names = [Path(p).name for p in out.split()]
    assert sorted(Path(n).suffix for n in names) == [".html", ".png", ".png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    page = tmp_path / next(n for n in names if n.endswith(".html"))
    data = _data_block(page.read_text())
    assert data["methods"] == ["rollout", "random"] and data["unit"] == "patches"
    rows, cols = data["grid"]
    assert all(sorted(r) == list(range(rows * cols)) for r in data["ranks"])
    assert [len(k["values"][0]) for k in data["kinds"]] == [21, 21]
    assert load(browser, page) == "1"
    assert console_errors(browser) == [] and resources(browser) == 0
    assert dataset(browser)["grey"] != ""


def test_cli_text_curves_html_units_are_the_content_tokens(tmp_path, capsys):
    import probe

    rc, out, err = _cli(["render", "curves", "--text", "A man is playing a guitar.", "--pair",
                         "Someone plays music.", "--method", "attention", "--format", "html",
                         "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 0, err
    data = _data_block(Path(out.split()[0]).read_text())
    model, tok = probe.load_model("minilm")
    tr = probe.trace(model, "A man is playing a guitar.", tokenizer=tok)
    content = [t for t, s in zip(tr.tokens[0], tr.special_tokens_mask[0].tolist()) if not s]
    assert data["tokens"] == content and len(data["ranks"][0]) == len(content)
    rc, out, err = _cli(["render", "curves", "--text", "A man.", "--format", "html",
                         "--format", "png", "--out", str(tmp_path / "x"), "--quiet"], capsys)
    assert rc == 2 and "--pair" in err and not (tmp_path / "x").exists()
