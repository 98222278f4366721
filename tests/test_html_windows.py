"""The interactive windowed-attention (Swin) view (``window_view_html`` / ``windows_html`` /
``probe render window --format html``): the embedded raw windows and slot table in Python,
then in a real headless Chromium (no console error under the page's CSP, no network request,
labels inert, hover / click / selectors change what is drawn, the window pieces of a shifted
block outlined, and every map the page computes equal to ``window_query_map``)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import probe
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
from probe import ProbeError, WindowLayout, window_query_map, windows_to_image
from probe.viewers.html import decode_array, window_view_html, windows_html
from tests.test_swin import _pixels, hf_swin, timm_swin

XSS_MODEL = "<img src=x onerror=\"window.__xss=9;alert(1)\">model</script>"
RNG = np.random.default_rng(0)


def _data_block(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def _softmax_windows(windows: int, heads: int, n: int, sharp: float = 2.0) -> torch.Tensor:
    x = torch.from_numpy(RNG.normal(size=(windows, heads, n, n)) * sharp)
    return torch.softmax(x, -1)


# the hand case of tests/test_swin.py: 4x4 tokens rolled by -1, 2x2 windows; window 3 holds
# the four corner tokens 15, 12, 3, 0; the mask separates slot 0 (token 7) from slot 1
# (token 4) in window 1
LAYOUT = WindowLayout((4, 4), (2, 2), (1, 1), True)
MASK = torch.zeros(4, 4, 4)
MASK[1, 0, 1] = -100.0
WEIGHTS = _softmax_windows(4, 3, 4)
IMAGE = np.stack([*np.meshgrid(np.linspace(0, 1, 32), np.linspace(0, 1, 32)),
                  np.full((32, 32), 0.5)], -1)
HAND = [{"weights": WEIGHTS, "layout": LAYOUT, "mask": MASK, "token_size": (8, 8),
         "layer": 1, "stage": 0, "heads": [XSS_TOKENS[1], "b", "c"]},
        {"weights": _softmax_windows(4, 2, 4), "layout": WindowLayout((4, 4), (2, 2)),
         "token_size": (8, 8), "layer": 0, "stage": 0}]


# ----------------------------------------------------------------------------- pure Python
def test_raw_windows_slot_table_and_mask_are_embedded():
    view = window_view_html(IMAGE, HAND, open=0, query=(0, 0))
    data = _data_block(view.html)
    blk = data["blocks"][0]
    assert blk["index"] == LAYOUT.token_index().reshape(-1).tolist()
    # token -> (window, slot), the shift undone: token 0 is slot 3 of window 3, token 7 slot 0
    # of window 1
    assert (blk["win"][0], blk["slot"][0]) == (3, 3) and (blk["win"][7], blk["slot"][7]) == (1, 0)
    for t in range(16):
        assert blk["index"][blk["win"][t] * 4 + blk["slot"][t]] == t
    scale = np.frombuffer(base64.b64decode(blk["scale"]), dtype="<f4").reshape(4, 3, 4)
    values = decode_array(blk["weights"]) * scale[..., None]
    w = WEIGHTS.numpy()
    assert np.all(np.abs(values - w) <= w.max(-1, keepdims=True) / 510 + 1e-6)
    cut = decode_array(blk["cut"])
    assert cut[1, 0, 1] == 1 and cut.sum() == 1
    assert data["blocks"][1]["cut"] is None  # unshifted: no mask
    assert data["open"] == 0 and data["query"] == 0 and data["size"] == [32, 32]
    assert "shifted by (1, 1)" in blk["label"] and "not shifted" in data["blocks"][1]["label"]
    assert blk["heads"] == [XSS_TOKENS[1], "b", "c"] and data["blocks"][1]["heads"] == ["0", "1"]


def test_a_diffuse_row_keeps_its_resolution():
    flat = torch.full((4, 1, 4, 4), 0.25)
    flat[0, 0, 0] = torch.tensor([0.2501, 0.2499, 0.25, 0.25])
    blk = _data_block(window_view_html(IMAGE, [{"weights": flat, "layout": LAYOUT,
                                                "token_size": (8, 8)}]).html)["blocks"][0]
    scale = np.frombuffer(base64.b64decode(blk["scale"]), dtype="<f4").reshape(4, 1, 4)
    values = decode_array(blk["weights"]) * scale[..., None]
    assert np.abs(values - flat.numpy()).max() <= 0.2501 / 510


def test_page_of_a_trace_is_far_smaller_than_the_dense_maps():
    tr = probe.trace(timm_swin(), _pixels(32, 48))
    view = windows_html(tr, batch_index=1)
    dense = sum(b.grid[0] * b.grid[1] * b.grid[0] * b.grid[1] * b.num_heads for b in tr.windows)
    raw = sum(b.weights[0].numel() * b.layout.num_windows for b in tr.windows)
    assert raw < dense / 2  # what the page embeds vs the dense L x L maps
    data = _data_block(view.html)
    assert [b["grid"] for b in data["blocks"]] == [[8, 12], [8, 12], [4, 6], [4, 6]]
    assert data["open"] == 3 and data["input"] == [32.0, 48.0]
    assert [b["token"] for b in data["blocks"]] == [[4.0, 4.0]] * 2 + [[8.0, 8.0]] * 2
    # a selection of blocks, opened on one of them
    data = _data_block(windows_html(tr, layers=[2, -1], layer=2, note="two blocks").html)
    assert [b["grid"] for b in data["blocks"]] == [[4, 6], [4, 6]] and data["open"] == 0
    assert data["subtitle"].endswith("\u00b7 two blocks")
    with pytest.raises(ProbeError, match=r"layer 0 is not among the blocks shown \(\[2, 3\]\)"):
        windows_html(tr, layers=[2, 3], layer=0)
    with pytest.raises(ProbeError, match="layer 4 is out of range"):
        windows_html(tr, layers=[4])
    with pytest.raises(ProbeError, match="batch_index"):
        windows_html(tr, batch_index=2)
    with pytest.raises(ProbeError, match=r"budget of 100: pass fewer blocks") as err:
        windows_html(tr, max_values=100)
    assert str(err.value) == (  # the weights (plural) have
        "the blocks' window weights together have 10,240 values (10240), over the interactive "
        "view's budget of 100: pass fewer blocks (windows_html(trace, layers=[...]), or "
        "blocks=), a smaller image, or raise max_values=")
    with pytest.raises(ProbeError, match="needs a trace of a Swin model"):
        windows_html(object())


def test_probe_show_window_is_the_page_of_windows_html():
    """``probe.show(trace | model, "window")`` embeds what ``windows_html`` embeds."""
    model, pixels = timm_swin(), _pixels(32, 48)
    tr = probe.trace(model, pixels)
    want = _data_block(windows_html(tr, layers=[2, 3], layer=2).html)
    assert _data_block(probe.show(tr, "window", layers=[2, 3], layer=2).html) == want
    assert _data_block(probe.show(model, "window", pixels, layers=[2, 3], layer=2).html) == want
    assert _data_block(probe.show(tr, "window").html) == _data_block(windows_html(tr).html)
    with pytest.raises(ProbeError, match=r"heads= does not apply to the window view"):
        probe.show(tr, "window", heads=[0])
    with pytest.raises(ProbeError, match="needs a trace of a Swin model"):
        probe.show(probe.trace(*_vit_and_pixels()), "window")


def _vit_and_pixels() -> tuple[Any, torch.Tensor]:
    import timm

    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=1,
                            num_classes=3).eval()
    return vit, torch.rand(1, 3, 32, 32)


@pytest.mark.parametrize("change, match", [
    (dict(blocks=[]), "one or more block"),
    (dict(blocks=[{"weights": WEIGHTS}]), "weights, layout and token_size"),
    (dict(blocks=[{**HAND[0], "weights": WEIGHTS[:3]}]), r"\[4 windows, head, 4, 4\]"),
    (dict(blocks=[{**HAND[0], "weights": -WEIGHTS}]), "negative"),
    (dict(blocks=[{**HAND[0], "weights": WEIGHTS * float("nan")}]), "NaN"),
    (dict(blocks=[{**HAND[0], "mask": MASK[:2]}]), "mask must be"),
    (dict(blocks=[{**HAND[0], "token_size": (0, 8)}]), "token_size must be"),
    (dict(blocks=[{**HAND[0], "heads": ["a"]}]), "heads has 1 entries"),
    (dict(open=2), "open must be"),
    (dict(query=(4, 0)), "outside the opened block's 4x4 grid"),
    (dict(alpha=2.0), "alpha"),
    (dict(max_values=10), "budget of 10"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_input_is_refused_naming_the_problem(change, match):
    args: dict[str, Any] = dict(image=IMAGE, blocks=HAND)
    args.update(change)
    with pytest.raises(ProbeError, match=match):
        window_view_html(**args)


# ----------------------------------------------------------------------------- in the browser
@pytest.fixture(scope="module")
def browser():
    drv = start_browser()
    yield drv
    drv.quit()




def _page_maps(browser, block: int, head: int, tokens: int) -> np.ndarray:
    """``[tokens, tokens]``: the page's map of every query of ``block`` (head -1: the mean)."""
    return np.array(browser.execute_script(
        f"return [...Array({tokens}).keys()].map(q => window.probeMap({block}, {head}, q))"))


def _pixel(browser, x: int, y: int) -> list[int]:
    return browser.execute_script(
        "return Array.from(document.querySelector('canvas.p-scene').getContext('2d')"
        ".getImageData(arguments[0], arguments[1], 1, 1).data)", x, y)


def test_window_view_in_browser(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    view = window_view_html(IMAGE, HAND, open=0, query=(0, 0), model_name=XSS_MODEL)
    _open(browser, view, tmp_path, "window")
    assert browser.title.startswith("<img")
    state = dataset(browser)
    assert state == {**state, "block": "0", "head": "mean", "query": "0", "locked": "0"}
    heads = Select(browser.find_elements(By.TAG_NAME, "select")[1])
    assert heads.options[0].get_attribute("textContent") == "head " + XSS_TOKENS[1]
    scene = browser.find_element(By.CSS_SELECTOR, "canvas.p-scene")
    assert (scene.size["width"], scene.size["height"]) == (422, 422)  # with its 1px border
    w, h = int(scene.get_attribute("width")), int(scene.get_attribute("height"))
    assert (w, h) == (420, 420)  # the image is 32 x 32: square
    cell = w // 4
    # the query's window (3: the four corners) is outlined piece by piece in yellow; the
    # border between tokens 4 (window 1) and 5 (window 0) is an ordinary outline
    for x, y in [(3 * cell, 3 * cell + cell // 2), (cell // 2, 3 * cell), (3 * cell + cell // 2,
                                                                             cell)]:
        r, g, b, _ = _pixel(browser, x, y)
        assert r > 230 and 180 < g < 235 and b < 60, (x, y, r, g, b)
    r, g, b, _ = _pixel(browser, cell, cell + cell // 2)
    assert not (r > 230 and 180 < g < 235 and b < 60)
    # the values shown are window_query_map's (mean of heads, then one head)
    ref = window_query_map(WEIGHTS, LAYOUT, (0, 0), MASK)[0]
    tol = WEIGHTS.amax(-1).max().item() / 510 + 1e-6
    shown = np.array(browser.execute_script("return window.probeShown()"))
    assert np.abs(shown - ref.mean(0).reshape(-1).numpy()).max() <= tol
    # hover token 7 (row 1, col 3): its map, without the pair the mask separates (token 4)
    before = canvas_sum(browser, "canvas.p-scene")
    _hover(browser, scene, int(3.5 * cell) - w // 2, int(1.5 * cell) - h // 2)
    assert dataset(browser)["query"] == "7"
    assert canvas_sum(browser, "canvas.p-scene") != before
    heads.select_by_index(2)
    assert dataset(browser)["head"] == "2"
    shown = np.array(browser.execute_script("return window.probeShown()"))
    ref = window_query_map(WEIGHTS, LAYOUT, (1, 3), MASK)[0, 2].reshape(-1).numpy()
    assert np.abs(shown - ref).max() <= tol and shown[4] == 0 and shown[7] > 0
    text = browser.find_element(By.CSS_SELECTOR, ".p-readout").text
    assert "head c" in text and "query patch (row 1, col 3)" in text
    top = max(range(16), key=lambda i: ref[i])
    assert f"strongest keys: ({top // 4}, {top % 4})" in text
    # click keeps the query; hovering elsewhere no longer moves it; click again releases
    ActionChains(browser).click().perform()
    _hover(browser, scene, -w // 2 + 5, -h // 2 + 5)
    assert dataset(browser)["query"] == "7" and dataset(browser)["locked"] == "1"
    ActionChains(browser).click().perform()
    assert dataset(browser)["locked"] == "0" and dataset(browser)["query"] == "0"
    # the block selector: the other block, the query kept at the same place, heads rebuilt
    Select(browser.find_elements(By.TAG_NAME, "select")[0]).select_by_index(1)
    state = dataset(browser)
    assert state["block"] == "1" and state["query"] == "0" and state["head"] == "mean"
    assert len(Select(browser.find_elements(By.TAG_NAME, "select")[1]).options) == 3
    assert no_alert(browser) and browser.execute_script("return window.__xss") is None


@pytest.mark.parametrize("case", ["timm-padded-shift", "hf"])
def test_every_map_the_page_computes_equals_window_query_map(case, browser, tmp_path):
    """All blocks, all heads and their mean, every query token: the page's map from the raw
    windows and slot table equals the dense image-coordinate matrix, within each row's step."""
    if case == "hf":
        tr = probe.trace(hf_swin(), _pixels(32, 32))
    else:  # 9x9 grid rolled then padded to 12x12 (pairs left open by the mask across edges)
        tr = probe.trace(timm_swin(img=(36, 36), depths=(2,), heads=(2,)), _pixels(36, 36))
    _open(browser, windows_html(tr, batch_index=1), tmp_path, case)
    for b, block in enumerate(tr.windows):
        dense = block.to_image()[1].double()  # [head, L, L]
        assert torch.equal(dense[:, 5], block.query_map(*divmod(5, block.grid[1]))[1].flatten(1))
        tol = block.weights.amax(-1).max().item() / 510 + 1e-6
        n = block.grid[0] * block.grid[1]
        for head in range(block.num_heads):
            assert np.abs(_page_maps(browser, b, head, n) - dense[head].numpy()).max() <= tol
        assert np.abs(_page_maps(browser, b, -1, n) - dense.mean(0).numpy()).max() <= tol
    assert windows_to_image is not None and console_errors(browser) == []


# ----------------------------------------------------------------------------- CLI
def _cli(argv, capsys):
    from probe.cli import main

    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture(scope="module")
def swin_folder(tmp_path_factory) -> str:
    from transformers import ViTImageProcessor

    folder = tmp_path_factory.mktemp("swin")
    hf_swin().save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "wide.png"
    Image.fromarray((RNG.random((40, 60, 3)) * 255).astype("uint8")).save(path)
    return path


def test_cli_window_html_with_png_in_browser(browser, swin_folder, wide, tmp_path, capsys):
    rc, out, err = _cli(["render", "window", "--model", swin_folder, "--image", str(wide),
                         "--layer", "1", "--query", "9", "--format", "html", "--format", "png",
                         "--dpi", "50", "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 0, err
    written = sorted(Path(p).name for p in out.split())
    assert [Path(n).suffix for n in written] == [".html", ".png"]
    assert Path(written[0]).stem == Path(written[1]).stem and "_L1_q9_" in written[0]
    page = tmp_path / written[0]
    data = _data_block(page.read_text())
    assert data["open"] == 1 and data["query"] == 9 and data["size"] == [40, 60]
    assert data["input"] == [32.0, 32.0] and len(data["blocks"]) == 4
    assert load(browser, page) == "1"
    assert console_errors(browser) == [] and resources(browser) == 0
    assert dataset(browser)["block"] == "1" and dataset(browser)["query"] == "9"


@pytest.mark.parametrize("extra, message", [
    (["--query", "64"], "--query 64 is out of range"),
    (["--layer", "7"], "--layer: layer 7 is out of range"),
])
def test_cli_window_html_errors_write_nothing(extra, message, swin_folder, tmp_path, capsys):
    rc, out, err = _cli(["render", "window", "--model", swin_folder, *extra, "--format", "png",
                         "--format", "html", "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_window_html_over_the_budget_keeps_the_stage_of_layer(swin_folder, tmp_path, capsys,
                                                                 monkeypatch):
    import probe.viewers.html as html

    monkeypatch.setattr(html, "DEFAULT_MAX_VALUES", 5000)  # the 4 blocks hold 6144 weights
    rc, out, err = _cli(["render", "window", "--model", swin_folder, "--layer", "0",
                         "--format", "html", "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 0, err
    data = _data_block(Path(out.split()[0]).read_text())
    assert len(data["blocks"]) == 2 and data["open"] == 0
    assert [b["grid"] for b in data["blocks"]] == [[8, 8], [8, 8]]
    assert "the blocks of stage 0 only: all 4 blocks" in data["subtitle"]
