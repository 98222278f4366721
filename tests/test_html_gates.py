"""The interactive CNN gate view (``gates_view_html``, ``probe render gates --format html``):
checks in Python, then in a real headless Chromium (hover a block: its map; over a non-local
block, hover a position: its attention row), numbers equal to the gates passed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from _browser import (
    hover as _hover,
    XSS_TOKENS,
    canvas_sum,
    console_errors,
    dataset,
    load,
    no_alert,
    resources,
    screenshot_colors,
    start_browser,
)
from probe import ProbeError
from probe.viewers.html import decode_array, gates_view_html

RNG = np.random.default_rng(0)
XSS_MODEL = "<img src=x onerror=\"window.__xss=9;alert(1)\">model</script>"
IMAGE = np.stack([*np.meshgrid(np.linspace(0, 1, 60), np.linspace(0, 1, 40)),
                  np.full((40, 60), 0.5)], -1)  # 40 x 60


def _attention(h: int, w: int) -> np.ndarray:
    x = np.exp(RNG.normal(size=(h * w, h * w)) * 2)
    return (x / x.sum(-1, keepdims=True)).reshape(h, w, h, w).astype(np.float32)


SPATIAL = RNG.random((4, 6)).astype(np.float32)
NONLOCAL = _attention(2, 3)
BLOCKS = {
    "layer1.0.se.spatial": {"kind": "spatial", "stage": 0, "type": "SpatialAttn",
                            "values": SPATIAL},
    XSS_TOKENS[1]: {"kind": "nonlocal", "stage": 1, "type": "NonLocalAttn", "values": NONLOCAL,
                    "query": (1, 2)},
}


def _data_block(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def test_blocks_are_embedded_each_on_its_own_range():
    view = gates_view_html(IMAGE, BLOCKS, cam=RNG.random((4, 6)))
    data = _data_block(view.html)
    spatial, nonlocal_ = data["blocks"]
    assert spatial["grid"] == [4, 6] and not spatial["attention"] and spatial["stage"] == 0
    assert nonlocal_["grid"] == [2, 3] and nonlocal_["attention"] and nonlocal_["query"] == 5
    assert nonlocal_["name"] == XSS_TOKENS[1] and data["first"] == 1 and data["size"] == [40, 60]
    for blk, expect in ((spatial, SPATIAL), (nonlocal_, NONLOCAL.reshape(6, 6))):
        np.testing.assert_allclose(decode_array(blk["data"]), expect,
                                   atol=blk["data"]["step"] / 2 + 1e-6)


@pytest.mark.parametrize("change, match", [
    (dict(blocks={}), "one or more"),
    (dict(blocks={"a": {"kind": "channel", "values": np.ones(4)}}), "channel, branch"),
    (dict(blocks={"a": {"kind": "spatial", "values": np.ones(4)}}), r"\[h, w\] map"),
    (dict(blocks={"a": {"kind": "nonlocal", "values": np.ones((2, 3, 3, 2))}}),
     r"\[h, w, h, w\]"),
    (dict(blocks={"a": {"kind": "nonlocal", "values": -NONLOCAL}}), "negative"),
    (dict(blocks={"a": {"kind": "nonlocal", "values": NONLOCAL, "query": (2, 0)}}), "outside"),
    (dict(blocks={"a": {"kind": "spatial", "values": np.full((2, 2), np.nan)}}), "NaN"),
    (dict(cam=np.ones(3)), "cam must be"),
    (dict(max_values=10), "budget of 10: pass fewer blocks"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_input_is_refused_naming_the_problem(change, match):
    args = dict(image=IMAGE, blocks=BLOCKS)
    args.update(change)
    with pytest.raises(ProbeError, match=match):
        gates_view_html(**args)


def test_over_the_budget_the_gate_maps_have_their_values():
    with pytest.raises(ProbeError) as err:
        gates_view_html(IMAGE, BLOCKS, max_values=10)
    assert str(err.value) == (
        "the gate maps together have 60 values (60), over the interactive view's budget of 10: "
        "pass fewer blocks (probe.show(model, 'gates', x, stage=S): one stage), a smaller image, "
        "or raise max_values=")


@pytest.fixture(scope="module")
def browser():
    drv = start_browser()
    yield drv
    drv.quit()



def test_gates_view_in_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    view = gates_view_html(IMAGE, BLOCKS, cam=RNG.random((4, 6)), model_name=XSS_MODEL)
    path = view.save(tmp_path / "gates.html")
    assert load(browser, path) == "1"
    assert console_errors(browser) == [] and resources(browser) == 0 and no_alert(browser)
    assert screenshot_colors(browser) > 20 and browser.title.startswith("<img")
    state = dataset(browser)
    assert state["block"] == "1" and state["query"] == "5"  # the given query (1, 2)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.p-blocks tr.click")
    assert rows[1].find_elements(By.TAG_NAME, "td")[1].get_attribute("textContent") == \
        XSS_TOKENS[1]
    scene = browser.find_element(By.CSS_SELECTOR, "canvas.p-scene")
    w, h = scene.size["width"], scene.size["height"]
    assert abs(w / h - 60 / 40) < 0.02
    # hover a position of the non-local block: its row (cell (0, 0) at the top left)
    before = canvas_sum(browser, "canvas.p-scene")
    _hover(browser, scene, -w // 2 + 3, -h // 2 + 3)
    assert dataset(browser)["query"] == "0"
    assert canvas_sum(browser, "canvas.p-scene") != before
    _hover(browser, scene, w // 2 - 3, -h // 2 + 3)
    assert dataset(browser)["query"] == "2"
    # click keeps the position while the mouse moves on
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).click().perform()
    _hover(browser, scene, -w // 2 + 3, h // 2 - 3)
    assert dataset(browser)["query"] == "2"
    # hover a block row: its map; click: keep it
    before = canvas_sum(browser, "canvas.p-scene")
    _hover(browser, rows[0])
    assert dataset(browser)["block"] == "0" and dataset(browser)["query"] == ""
    assert canvas_sum(browser, "canvas.p-scene") != before
    assert "SpatialAttn" in browser.find_element(By.CSS_SELECTOR, ".p-readout").text
    rows[0].click()
    _hover(browser, browser.find_element(By.CSS_SELECTOR, ".p-title"))
    assert dataset(browser)["block"] == "0" and dataset(browser)["locked"] == "0"
    # the numbers the page reads are the gates passed
    data = _data_block(view.html)
    got = np.array(browser.execute_script("return window.probeValues('block1', 12, 6)"))
    step = data["blocks"][1]["data"]["step"]
    assert np.max(np.abs(got - NONLOCAL.reshape(6, 6)[2])) <= step / 2 + 1e-6
    assert browser.execute_script("return window.__xss") is None


def _cli(argv, capsys):
    from probe.cli import main

    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_cli_nonlocal_gates_html_with_png(browser, tmp_path, capsys):
    rc, out, err = _cli(["render", "gates", "--model", "cnn-shapes-nl", "--seed", "1",
                         "--format", "html", "--format", "png", "--dpi", "40",
                         "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 0, err
    names = [Path(p).name for p in out.split()]
    assert sorted(Path(n).suffix for n in names) == [".html", ".png"]
    page = tmp_path / next(n for n in names if n.endswith(".html"))
    [blk] = _data_block(page.read_text())["blocks"]
    assert blk["kind"] == "nonlocal" and blk["attention"]
    assert load(browser, page) == "1"
    assert console_errors(browser) == [] and resources(browser) == 0
    assert dataset(browser)["query"] == str(blk["query"])


def test_render_gates_page_embeds_the_gate_trace():
    """The page of ``probe render gates --format html`` holds the gate trace's own numbers (the
    render session's image), and its start query is the cell under the GradCAM peak."""
    import probe
    from probe.commands.render._args import RenderArgs
    from probe.commands.render._html import HTML_VIEWS
    from probe.commands.render._session import _session

    s = _session(RenderArgs(view="gates", model="cnn-shapes-nl", seed=1, formats=("html",),
                            quiet=True))
    [(stem, page)] = HTML_VIEWS["gates"](s)
    assert stem.startswith("gates_cnn-shapes-nl_interactive_")
    [blk] = _data_block(page.html)["blocks"]
    [gate] = probe.trace_gates(s.model, s.pixel_values).select("nonlocal")
    np.testing.assert_allclose(decode_array(blk["data"]), gate.values[0].numpy(),
                               atol=blk["data"]["step"] / 2 + 1e-6)
    cam = probe.attribute(s.model, s.pixel_values, "gradcam").as_grid()[0]
    r, c = divmod(int(cam.flatten().argmax()), cam.shape[1])
    h, w = gate.feature_size
    assert blk["query"] == int((r + 0.5) * h / cam.shape[0]) * w + int((c + 0.5) * w / cam.shape[1])


def test_cli_gates_html_without_a_map_writes_nothing(tmp_path, capsys):
    rc, out, err = _cli(["render", "gates", "--model", "timm:skresnet18", "--format", "png",
                         "--format", "html", "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "no gate with a map over the image" in err and "--format png" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_render_gates_page_of_a_bilinear_block_averages_its_groups():
    """BAT blocks: each position's row is the groups' mean, as ``bilinear_query_map`` (the
    figure's map) computes it; without ``--layer`` the blocks are over the size budget."""
    import probe
    from probe.analysis._gate_views import bilinear_query_map
    from probe.commands.render._args import RenderArgs
    from probe.commands.render._html import HTML_VIEWS
    from probe.commands.render._session import _session

    s = _session(RenderArgs(view="gates", model="timm:bat_resnext26ts", layer=-1,
                            formats=("html",), quiet=True))
    [(_, page)] = HTML_VIEWS["gates"](s)
    blocks = _data_block(page.html)["blocks"]
    gates = {g.name: g for g in probe.trace_gates(s.model, s.pixel_values).select("bilinear")}
    assert blocks and all(b["kind"] == "bilinear" and b["name"] in gates for b in blocks)
    for blk in blocks:
        gate = gates[blk["name"]]
        h, w = gate.feature_size
        rows = decode_array(blk["data"])
        for q in (0, blk["query"], h * w - 1):
            expect = bilinear_query_map(gate.values, gate.feature_size, divmod(q, w))[0]
            np.testing.assert_allclose(rows[q], expect.flatten().numpy(),
                                       atol=blk["data"]["step"] / 2 + 1e-6)
    s.args = RenderArgs(view="gates", model="timm:bat_resnext26ts", formats=("html",))
    with pytest.raises(ProbeError, match="pass fewer blocks"):
        HTML_VIEWS["gates"](s)
