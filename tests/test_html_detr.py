"""The interactive DETR view (``detr_view_html`` / ``detr_html`` / ``probe render detr --format
html``) and the CLI's HTML alignment view: checks in Python, then in a real headless Chromium
(no console error under the page's CSP, no network request, hover and click change what is
drawn, embedded numbers decode to the data passed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _browser import (
    open_clean as _open,
    hover as _hover,
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
from probe.viewers.html import decode_array, detr_html, detr_view_html
from tests._tiny import resnet_detr

RNG = np.random.default_rng(0)
XSS_MODEL = "<img src=x onerror=\"window.__xss=9;alert(1)\">model</script>"


def _data_block(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def _maps(layers: int = 2, heads: int = 3, queries: int = 5, grid=(4, 6)) -> np.ndarray:
    x = np.exp(RNG.normal(size=(layers, heads, queries, grid[0] * grid[1])) * 2)
    return (x / x.sum(-1, keepdims=True)).reshape(layers, heads, queries, *grid).astype(np.float32)


MAPS = _maps()
BOXES = np.array([[0.25, 0.3, 0.3, 0.4], [0.7, 0.6, 0.4, 0.5], [0.5, 0.5, 0.9, 0.9],
                  [0.2, 0.8, 0.2, 0.2], [0.8, 0.2, 0.1, 0.1]])
CLASSES = ["cat", XSS_TOKENS[0], "dog", XSS_TOKENS[1], "cat"]
SCORES = [0.9, 0.8, 0.3, 0.6, 0.1]
IMAGE = np.stack([*np.meshgrid(np.linspace(0, 1, 90), np.linspace(0, 1, 60)),
    np.full((60, 90), 0.5)], -1)  # 60 x 90: wider than tall


def _decoded(view) -> tuple[np.ndarray, dict]:
    data = _data_block(view.html)
    unit = decode_array(data["maps"])
    return unit * np.asarray(data["scale"])[..., None, None], data


# ----------------------------------------------------------------------------- pure Python
def test_maps_are_embedded_per_map_with_the_mean_of_the_heads():
    view = detr_view_html(IMAGE, MAPS, BOXES, CLASSES, SCORES, kept=[1, 0, 3], layers=[4, 5])
    values, data = _decoded(view)
    assert values.shape == (2, 4, 5, 4, 6)  # 3 heads + their mean
    full = np.concatenate([MAPS, MAPS.mean(1, keepdims=True)], 1)
    tol = np.asarray(data["scale"])[..., None, None] / 510 + 1e-6  # each map's own step / 2
    assert np.all(np.abs(values - full) <= tol)
    assert data["kept"] == [1, 0, 3] and data["labels"] == CLASSES
    assert data["layers"] == ["4", "5"] and data["heads"] == ["0", "1", "2"]
    assert data["size"] == [60, 90] and data["layer0"] == 1
    assert data["colors"][2] == "#888888" and data["colors"][1] != "#888888"
    # a map whose largest value is tiny keeps its resolution (quantised per map)
    weak = MAPS.copy()
    weak[0, 0, 0] *= 1e-3
    values, data = _decoded(detr_view_html(IMAGE, weak, BOXES, CLASSES, SCORES))
    rel = np.abs(values[0, 0, 0] - weak[0, 0, 0]).max() / weak[0, 0, 0].max()
    assert rel <= 1 / 510 + 1e-6


def test_image_size_and_layer_and_kept_defaults():
    view = detr_view_html(IMAGE, MAPS, BOXES, CLASSES, SCORES, image_size=(300, 200), layer=0)
    data = _data_block(view.html)
    assert data["size"] == [300, 200] and data["layer0"] == 0 and data["kept"] == [0, 1, 2, 3, 4]
    assert detr_view_html(IMAGE, MAPS, BOXES, CLASSES, SCORES, kept=[-1, 4]).view == "detr"
    assert _data_block(detr_view_html(IMAGE, MAPS, BOXES, CLASSES, SCORES,
                                      kept=[-1, 4]).html)["kept"] == [4]


@pytest.mark.parametrize("change, match", [
    (dict(maps=MAPS[0]), r"\[layer, head, query, h, w\]"),
    (dict(maps=-MAPS), "negative"),
    (dict(maps=np.where(MAPS > 0.5, np.nan, MAPS)), "NaN"),
    (dict(boxes=BOXES[:3]), "one box per query"),
    (dict(classes=CLASSES[:2]), "classes has 2 entries"),
    (dict(scores=SCORES[:4]), "one finite score per query"),
    (dict(kept=[7]), "kept holds 7"),
    (dict(kept=[]), "kept is empty"),
    (dict(layer=2), "layer must be"),
    (dict(alpha=2.0), "alpha"),
    (dict(max_values=100), "budget of 100: pass fewer queries or layers"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_input_is_refused_naming_the_problem(change, match):
    args = dict(image=IMAGE, maps=MAPS, boxes=BOXES, classes=CLASSES, scores=SCORES)
    args.update(change)
    with pytest.raises(ProbeError, match=match):
        detr_view_html(**args)


def test_detr_html_of_a_trace_embeds_its_cross_attention_and_query_maps():
    import probe
    from probe.analysis._detr import detr_predictions, query_maps

    model = resnet_detr()
    pixels = torch.randn(2, 3, 48, 80, generator=torch.Generator().manual_seed(1))
    tr = probe.trace(model, pixels)
    classes, scores, boxes = detr_predictions(tr.output.logits, tr.output.pred_boxes)
    view = detr_html(tr, boxes[1], [f"c{int(c)}" for c in classes[1]], scores[1].tolist(),
                     batch_index=1, kept=[2])
    values, data = _decoded(view)
    rows, cols = tr.grid
    tol = np.asarray(data["scale"])[..., None, None] / 510 + 1e-6
    heads = tr.cross.attentions[:, 1].float().numpy().reshape(2, 2, 4, rows, cols)
    assert np.all(np.abs(values[:, :2] - heads) <= tol[:, :2])
    for layer in range(2):  # the mean is the static view's map (probe.analysis.query_maps)
        assert np.all(np.abs(values[layer, 2] - query_maps(tr, layer)[1].numpy())
                      <= tol[layer, 2])
    np.testing.assert_allclose(data["boxes"], boxes[1].numpy(), rtol=1e-6)
    assert data["size"] == [48, 80] and data["kept"] == [2]
    with pytest.raises(ProbeError, match="batch_index"):
        detr_html(tr, boxes[0], ["a"] * 4, scores[0].tolist(), batch_index=2)


# ----------------------------------------------------------------------------- in the browser
@pytest.fixture(scope="module")
def browser():
    drv = start_browser()
    yield drv
    drv.quit()




def test_detr_view_in_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    view = detr_view_html(IMAGE, MAPS, BOXES, CLASSES, SCORES, kept=[0, 1, 3],
                          queries=[10, 11, 12, 13, 14], model_name=XSS_MODEL)
    _open(browser, view, tmp_path, "detr")
    assert browser.title.startswith("<img")
    state = dataset(browser)
    assert state["query"] == "0" and state["layer"] == "1" and state["head"] == "mean"
    # the list: every query, best score first, class names as text
    rows = browser.find_elements(By.CSS_SELECTOR, "table.p-qlist tr.click")
    assert [r.get_attribute("data-query") for r in rows] == ["0", "1", "3", "2", "4"]
    assert rows[1].find_elements(By.TAG_NAME, "td")[2].get_attribute("textContent") == CLASSES[1]
    assert "off" in rows[3].get_attribute("class")  # query 2 is not kept
    # the canvas keeps the image's aspect ratio (60 x 90)
    scene = browser.find_element(By.CSS_SELECTOR, "canvas.p-scene")
    w, h = scene.size["width"], scene.size["height"]
    assert abs(w / h - 90 / 60) < 0.02
    # hover a row: that query's map; leave: back to the kept (locked) query
    before = canvas_sum(browser, "canvas.p-scene")
    _hover(browser, rows[2])
    assert dataset(browser)["query"] == "3" and dataset(browser)["locked"] == "0"
    assert canvas_sum(browser, "canvas.p-scene") != before
    assert "query 13" in browser.find_element(By.CSS_SELECTOR, ".p-readout").text
    _hover(browser, browser.find_element(By.CSS_SELECTOR, ".p-title"))
    assert dataset(browser)["query"] == "0"
    # hover a box on the image: the smallest drawn box under the pointer (query 3 at the
    # lower left: x 0.1..0.3, y 0.7..0.9); click keeps it
    bx, by = int((0.2 - 0.5) * w), int((0.8 - 0.5) * h)
    _hover(browser, scene, bx, by)
    assert dataset(browser)["query"] == "3"
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).click().perform()
    _hover(browser, browser.find_element(By.CSS_SELECTOR, ".p-title"))
    assert dataset(browser)["query"] == "3" and dataset(browser)["locked"] == "3"
    # query 2 (not kept) has no box to hover until "all boxes" is ticked
    only2 = int((0.07 - 0.5) * w), int((0.6 - 0.5) * h)  # inside query 2's box alone
    _hover(browser, scene, *only2)
    assert dataset(browser)["query"] == "3"
    browser.find_element(By.CSS_SELECTOR, ".p-bar input[type=checkbox]").click()
    _hover(browser, scene, *only2)
    assert dataset(browser)["query"] == "2"
    # layer and head selectors redraw the map of the shown query
    rows[0].click()
    _hover(browser, browser.find_element(By.CSS_SELECTOR, ".p-title"))
    selects = browser.find_elements(By.TAG_NAME, "select")
    before = canvas_sum(browser, "canvas.p-scene")
    Select(selects[0]).select_by_index(0)
    assert dataset(browser)["layer"] == "0"
    assert canvas_sum(browser, "canvas.p-scene") != before
    Select(selects[1]).select_by_index(2)
    assert dataset(browser)["head"] == "2"
    assert "head 2" in browser.find_element(By.CSS_SELECTOR, ".p-readout").text
    # the numbers the page reads are the maps passed (within each map's quantisation step)
    data = _data_block(view.html)
    n = 4 * 6
    off = ((0 * 4 + 2) * 5 + 0) * n  # layer 0, head 2, query 0
    shown = np.array(browser.execute_script(f"return window.probeValues('maps', {off}, {n})"))
    scale = data["scale"][0][2][0]
    assert np.max(np.abs(shown * scale - MAPS[0, 2, 0].ravel())) <= scale / 510 + 1e-6
    assert no_alert(browser) and browser.execute_script("return window.__xss") is None


def test_scores_are_shown_rounded_down_as_in_the_static_view():
    from probe.viewers import _gates

    near = [0.4996, 0.99996, 0.25, 0.1239, 0.0]
    view = detr_view_html(IMAGE, MAPS, BOXES, CLASSES, near)
    data = _data_block(view.html)
    assert data["score_text"] == ["0.499", "0.999", "0.250", "0.123", "0.000"]
    assert data["scores"] == near  # the list is still ordered by the exact scores
    assert "scores[q].toFixed" not in view.html  # no rounding to nearest in the page
    assert _gates.score_text(0.4996) == "0.49"  # the static view: two decimals, down


def test_detr_scores_in_browser_read_rounded_down(browser, tmp_path):
    from selenium.webdriver.common.by import By

    view = detr_view_html(IMAGE, MAPS, BOXES, CLASSES, [0.99996, 0.4996, 0.3, 0.6, 0.1])
    _open(browser, view, tmp_path, "detr-scores")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.p-qlist tr.click")
    shown = {r.get_attribute("data-query"): r.find_elements(By.TAG_NAME, "td")[3]
             .get_attribute("textContent") for r in rows}
    assert shown == {"0": "0.999", "1": "0.499", "2": "0.300", "3": "0.600", "4": "0.100"}
    assert " 0.999 \u00b7 decoder layer" in browser.find_element(
        By.CSS_SELECTOR, ".p-readout").get_attribute("textContent")


# ----------------------------------------------------------------------------- CLI
def _cli(argv, capsys):
    from probe.cli import main

    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    from transformers import DetrImageProcessor

    path = tmp_path_factory.mktemp("detr")
    resnet_detr().save_pretrained(path)
    DetrImageProcessor(size={"shortest_edge": 48, "longest_edge": 80}).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img") / "wide.png"
    Image.fromarray((RNG.random((40, 60, 3)) * 255).astype("uint8")).save(path)
    return path


def test_cli_detr_html_with_png_in_browser(browser, folder, wide, tmp_path, capsys):
    rc, out, err = _cli(["render", "detr", "--model", str(folder), "--image", str(wide),
                         "--query", "3", "--query", "1", "--layer", "0", "--format", "html",
                         "--format", "png", "--dpi", "50", "--out", str(tmp_path), "--quiet"],
                        capsys)
    assert rc == 0, err
    written = sorted(Path(p).name for p in out.split())
    assert [Path(n).suffix for n in written] == [".html", ".png"]
    assert Path(written[0]).stem == Path(written[1]).stem and "_L0_q3-1_" in written[0]
    page = tmp_path / written[0]
    data = _data_block(page.read_text())
    assert data["kept"] == [3, 1] and data["layer0"] == 0 and data["size"] == [40, 60]
    assert set(data["labels"]) <= {"cat", "dog"} and data["queries"] == ["0", "1", "2", "3"]
    assert load(browser, page) == "1"
    assert console_errors(browser) == [] and resources(browser) == 0
    assert dataset(browser)["query"] == "3" and dataset(browser)["layer"] == "0"


def test_cli_detr_html_errors_write_nothing(folder, wide, tmp_path, capsys):
    rc, out, err = _cli(["render", "detr", "--model", str(folder), "--image", str(wide),
                         "--query", "9", "--format", "png", "--format", "html",
                         "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 2 and "--query 9 is out of range" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    rc, out, err = _cli(["render", "detr", "--model", str(folder), "--image", str(wide),
                         "--layer", "5", "--format", "html", "--out", str(tmp_path), "--quiet"],
                        capsys)
    assert rc == 2 and "--layer" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_alignment_html_opens_on_the_chosen_layer_and_head(browser, tmp_path, capsys):
    rc, out, err = _cli(["render", "alignment", "--model", "toy-mt", "--text", "le chat",
                         "--layer", "0", "--head", "2", "--format", "html", "--format", "png",
                         "--dpi", "50", "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 0, err
    assert err.startswith("generated: ")
    names = sorted(Path(p).name for p in out.split())
    assert [Path(n).suffix for n in names] == [".html", ".png"] and "_L0H2_" in names[0]
    data = _data_block((tmp_path / names[0]).read_text())
    assert data["open"] == [0, 2] and data["ktokens"] == ["le", "chat"]
    assert load(browser, tmp_path / names[0]) == "1"
    assert console_errors(browser) == [] and resources(browser) == 0
    assert dataset(browser)["selected"] == "0,2"


def test_cli_alignment_html_matches_probe_alignment(tmp_path, capsys):
    import probe

    rc, out, err = _cli(["render", "alignment", "--model", "toy-mt", "--text", "le chat",
                         "--format", "html", "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 0, err
    data = _data_block(Path(out.split()[0]).read_text())
    model, tok = probe.load_model("toy-mt")
    al = probe.alignment(probe.generate(model, "le chat", tokenizer=tok, max_new_tokens=24))
    assert data["qtokens"] == list(al.target_words) and data["open"] == [1, 0]
    np.testing.assert_allclose(decode_array(data["attn"]), al.scores.float().numpy(),
                               atol=data["attn"]["step"] / 2 + 1e-6)
