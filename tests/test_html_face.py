"""How the interactive views look: the image view shows its input on its own and draws every
map over a grey copy of it (the figures' rule), every map has a colour bar, and the views fit a
narrow (400 px) window without the page scrolling sideways. Structural checks in Python, then
a real headless Chromium (one browser session for the module)."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest

from _browser import dataset, load, open_clean, start_browser
from probe.viewers._saliency import grey_image
from probe.viewers.html import image_view_html

RNG = np.random.default_rng(3)


def _data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def _png(url: str) -> np.ndarray:
    from PIL import Image

    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def _colour_image() -> np.ndarray:
    """``[24, 32, 3]``: a saturated gradient, far from grey everywhere."""
    yy, xx = np.mgrid[0:24, 0:32]
    return np.stack([xx / 31, 1 - yy / 23, 0.5 + 0 * xx], -1)


def _view(alpha: float | None = None, methods: int = 2):
    g = (3, 4)
    names = ["attention", "rollout", "relevance", "ig", "saliency", "gradcam", "random"]
    maps = {names[i]: RNG.random(g) for i in range(methods)}
    patch = RNG.random((2, 3, 12, 12)).astype(np.float32)
    patch /= patch.sum(-1, keepdims=True)
    agreement = np.eye(methods)
    options = {} if alpha is None else {"alpha": alpha}
    return image_view_html(_colour_image(), maps, agreement=agreement,
                           cls_maps=patch[:, :, 0].reshape(2, 3, *g), patch_attn=patch,
                           **options)


# ----------------------------------------------------------------------------- pure Python

def assert_no_sideways_scroll(browser, path) -> None:
    """At 400 px wide the page at ``path`` does not scroll sideways (the window size is
    restored afterwards)."""
    size = browser.get_window_size()
    browser.set_window_size(400, 800)
    try:
        assert load(browser, path) == "1"
        wide, width = browser.execute_script(
            "var d = document.documentElement; return [d.scrollWidth, d.clientWidth]")
        assert wide <= width
    finally:
        browser.set_window_size(size["width"], size["height"])

def test_image_view_embeds_the_figures_grey_copy_and_their_opacity():
    data = _data(_view().html)
    grey = _png(data["grey"])
    assert grey.ndim == 2  # one channel
    expect = grey_image(_colour_image())[..., 0] * 255
    assert np.max(np.abs(grey.astype(float) - expect)) <= 0.5 + 1e-9
    colour = _png(data["image"])
    assert colour.shape == (24, 32, 3)
    assert data["alpha"] == 0.65  # saliency_overlay's default


# ----------------------------------------------------------------------------- in the browser
@pytest.fixture(scope="module")
def browser():
    drv = start_browser()
    yield drv
    drv.quit()


def _pixels(drv, css: str) -> np.ndarray:
    """``[h, w, 4]`` RGBA of the first canvas matching ``css``."""
    w, h, flat = drv.execute_script(
        "var c = document.querySelector(arguments[0]); var d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; return [c.width, c.height, "
        "Array.from(d)];", css)
    return np.asarray(flat, dtype=np.int16).reshape(h, w, 4)


def test_image_view_shows_the_input_and_maps_over_grey(browser, tmp_path):
    # alpha 0: the map is invisible, what remains under it must be the grey copy
    open_clean(browser, _view(alpha=0.0), tmp_path, "grey")
    main = _pixels(browser, "canvas.p-main")
    spread = main[..., :3].max(-1) - main[..., :3].min(-1)
    assert spread.max() <= 2, "the map is drawn over the colour image, not a grey copy"
    thumbs = _pixels(browser, "figure canvas")
    assert (thumbs[..., :3].max(-1) - thumbs[..., :3].min(-1)).max() <= 2
    patch = _pixels(browser, "canvas.p-patch")
    coloured = patch[..., :3][(patch[..., :3].max(-1) - patch[..., :3].min(-1)) > 2]
    assert len(coloured) > 0 and (coloured[:, 0] > coloured[:, 1] + 40).all()  # the red outline
    # the input is a panel of its own, in its colours, at the map's size
    shown = _pixels(browser, "canvas.p-input")
    assert shown.shape == main.shape
    assert np.median(shown[..., :3].max(-1) - shown[..., :3].min(-1)) > 60
    top_left, bottom_right = shown[5, 5, :3], shown[-5, -5, :3]
    assert top_left[1] > 200 and bottom_right[0] > 200  # green top left, red bottom right


def test_image_view_maps_have_colour_bars_that_follow_the_controls(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_clean(browser, _view(), tmp_path, "legends")
    legends = browser.find_elements(By.CSS_SELECTOR, ".p-legend")
    assert len(legends) == 2  # the CLS maps' and the patch map's
    assert all(leg.find_elements(By.TAG_NAME, "canvas") for leg in legends)
    cls_text = legends[0].text
    assert "attention (this layer)" in cls_text
    Select(browser.find_elements(By.TAG_NAME, "select")[0]).select_by_index(0)
    assert dataset(browser)["clsLayer"] == "0"
    assert legends[0].text != cls_text  # the other layer's maximum
    assert "attention (this map)" in legends[1].text


def test_image_view_fits_a_narrow_window(browser, tmp_path):
    """At 400 px the wide agreement table scrolls in its own box; the page does not."""
    path = _view(methods=7).save(tmp_path / "narrow.html")
    assert_no_sideways_scroll(browser, path)


def _detr_view(alpha: float):
    from tests.test_html_detr import BOXES, CLASSES, IMAGE, MAPS, SCORES
    from probe.viewers.html import detr_view_html

    return detr_view_html(IMAGE, MAPS, BOXES, CLASSES, SCORES, alpha=alpha)


def _gates_view(alpha: float):
    from tests.test_html_gates import BLOCKS, IMAGE
    from probe.viewers.html import gates_view_html

    return gates_view_html(IMAGE, BLOCKS, cam=RNG.random((4, 6)), alpha=alpha)


def _window_view(alpha: float):
    from tests.test_html_windows import HAND, IMAGE
    from probe.viewers.html import window_view_html

    return window_view_html(IMAGE, HAND, open=0, query=(0, 0), alpha=alpha)


def _spread(px: np.ndarray) -> np.ndarray:
    return px[..., :3].max(-1) - px[..., :3].min(-1)


@pytest.mark.parametrize("build, maps", [
    (_detr_view, ["canvas.p-scene"]),
    (_gates_view, ["canvas.p-scene", "canvas.p-cam"]),
    (_window_view, ["canvas.p-scene"]),
])
def test_image_views_show_the_input_and_draw_maps_over_grey(browser, tmp_path, build, maps):
    """detr, gates and window follow the figures too: the input in its own panel, the maps
    over the grey copy (at alpha 0 only the grey copy and the outlines remain)."""
    view = build(0.0)
    open_clean(browser, view, tmp_path, view.view)
    for css in maps:  # boxes and window outlines are coloured: most pixels are grey
        assert np.median(_spread(_pixels(browser, css))) <= 2, css
    assert np.median(_spread(_pixels(browser, "canvas.p-input"))) > 20
    assert _data(view.html)["grey"].startswith("data:image/png;base64,")


@pytest.mark.parametrize("build", [_detr_view, _window_view])
def test_scene_views_fit_a_narrow_window_and_hover_where_shown(browser, tmp_path, build):
    """At 400 px the detr and window scenes (420 px wide) shrink to the window and the page
    does not scroll sideways; the pointer still picks what is drawn under it."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    path = build(0.6).save(tmp_path / "scene.html")
    size = browser.get_window_size()
    browser.set_window_size(400, 800)
    try:
        assert load(browser, path) == "1"
        wide, width = browser.execute_script(
            "var d = document.documentElement; return [d.scrollWidth, d.clientWidth]")
        assert wide <= width
        scene = browser.find_element(By.CSS_SELECTOR, "canvas.p-scene")
        w, h = scene.size["width"], scene.size["height"]
        drawn = int(scene.get_attribute("width")) / int(scene.get_attribute("height"))
        assert w <= width and abs(w / h - drawn) < 0.02  # shrunk, not squashed
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", scene)
        if build is _window_view:  # 4 x 4 tokens: the bottom-right one is 15
            ActionChains(browser).move_to_element_with_offset(
                scene, w // 2 - 3, h // 2 - 3).perform()
            assert dataset(browser)["query"] == "15"
        else:  # the box of query 2 covers the middle of the image (0.5, 0.5, 0.9, 0.9)
            ActionChains(browser).move_to_element_with_offset(scene, 0, 0).perform()
            assert dataset(browser)["query"] == "2"
    finally:
        browser.set_window_size(size["width"], size["height"])


def _model_view():
    from probe.viewers.html import model_view_html

    x = np.exp(RNG.normal(size=(6, 12, 16, 16)) * 2)
    return model_view_html((x / x.sum(-1, keepdims=True)).astype(np.float32),
                           [f"tok{i}" for i in range(16)])


def test_model_view_thumbnails_scroll_in_their_box_at_400px(browser, tmp_path):
    """6 x 12 thumbnails are wider than a 400 px window: they scroll in their own box, the
    page does not scroll sideways, and the thumbnails stay full size."""
    from selenium.webdriver.common.by import By

    path = _model_view().save(tmp_path / "model.html")
    size = browser.get_window_size()
    browser.set_window_size(400, 800)
    try:
        assert load(browser, path) == "1"
        wide, width = browser.execute_script(
            "var d = document.documentElement; return [d.scrollWidth, d.clientWidth]")
        assert wide <= width
        box = browser.find_element(By.CSS_SELECTOR, ".p-gridbox")
        assert browser.execute_script("return arguments[0].scrollWidth > arguments[0].clientWidth",
                                      box)
    finally:
        browser.set_window_size(size["width"], size["height"])


def test_model_view_thumbnails_open_from_the_keyboard(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_clean(browser, _model_view(), tmp_path, "model_keys")
    thumbs = browser.find_elements(By.CSS_SELECTOR, ".p-grid canvas")
    assert all(t.get_attribute("tabindex") == "0" for t in thumbs)
    assert thumbs[14].get_attribute("aria-label") == "layer 1, head 2"
    thumbs[14].send_keys(Keys.ENTER)
    assert dataset(browser)["selected"] == "1,2"
    thumbs[3].send_keys(Keys.SPACE)
    assert dataset(browser)["selected"] == "0,3"
    assert browser.execute_script("return document.activeElement") == thumbs[3]


def test_curves_label_the_scores_extremes_not_the_padded_axis_ends(browser, tmp_path):
    """A probability axis is labelled 0 and 1 (the curves' own range), not -0.05 and 1.05
    (the ends of the axis, padded by 5% so the lines clear the frame)."""
    from probe.viewers.html import curves_view_html

    f = np.arange(5) / 4
    deletion = {"a": (f, np.linspace(1, 0, 5)), "b": (f, np.linspace(1, 0.5, 5))}
    view = curves_view_html(deletion, None, {"a": RNG.random(4), "b": RNG.random(4)},
                            tokens=list("wxyz"))
    data = _data(view.html)
    assert data["yticks"] == [0.0, 1.0]
    assert data["yrange"][0] < 0 and data["yrange"][1] > 1
    open_clean(browser, view, tmp_path, "curves")


def test_token_view_colour_bar_label_wraps_at_400px(browser, tmp_path):
    """The colour bar's long label ("score / largest |score| of the method") wraps instead of
    pushing the page wider than a 400 px window."""
    from probe.viewers.html import token_view_html

    tokens = ["the", "animal", "didn", "'", "t", "cross", "the", "street"]
    path = token_view_html(tokens, {"attention": RNG.random(8), "rollout": RNG.random(8)}).save(
        tmp_path / "tokens.html")
    assert_no_sideways_scroll(browser, path)


def test_image_view_patch_map_keeps_a_click_and_moves_with_arrow_keys(browser, tmp_path):
    """As the detr, gates and window views: click keeps the query patch, the pointer then
    changes nothing until a second click; arrow keys move it (3 x 4 patches), Escape releases."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_clean(browser, _view(), tmp_path, "keep")
    patch = browser.find_element(By.CSS_SELECTOR, "canvas.p-patch")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", patch)
    w, h = patch.size["width"], patch.size["height"]
    ActionChains(browser).move_to_element_with_offset(patch, -w // 2 + 3, -h // 2 + 3).click(
    ).perform()
    assert dataset(browser)["patch"] == "0" and dataset(browser)["patchKept"] == "1"
    ActionChains(browser).move_to_element_with_offset(patch, w // 2 - 3, h // 2 - 3).perform()
    assert dataset(browser)["patch"] == "0"  # kept
    patch.send_keys(Keys.ARROW_RIGHT)
    patch.send_keys(Keys.ARROW_DOWN)
    assert dataset(browser)["patch"] == "5"
    patch.send_keys(Keys.ESCAPE)
    assert dataset(browser)["patchKept"] == "0"
    ActionChains(browser).move_to_element_with_offset(patch, w // 2 - 3, h // 2 - 3).perform()
    ActionChains(browser).move_to_element_with_offset(patch, w // 2 - 4, h // 2 - 4).perform()
    assert dataset(browser)["patch"] == "11"


def _head_view(tokens):
    from probe.viewers.html import head_view_html

    n = len(tokens)
    x = np.exp(RNG.normal(size=(2, 3, n, n)))
    return head_view_html((x / x.sum(-1, keepdims=True)).astype(np.float32), tokens)


def test_head_view_tokens_are_reached_by_tab_and_kept_with_enter(browser, tmp_path):
    """As the model view's thumbnails and the image view's patches: Tab from the last head
    swatch reaches the first query token (focus shows its lines, as hovering does), Tab goes
    on to the next token, Enter keeps one, Escape releases it."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_clean(browser, _head_view(["the", "cat", "sat", "down"]), tmp_path, "head_keys")
    toks = browser.find_elements(By.CSS_SELECTOR, ".p-tok")
    assert len(toks) == 8 and all(t.get_attribute("tabindex") == "0" for t in toks)
    assert toks[1].get_attribute("aria-label") == "query 1: cat"
    swatches = browser.find_elements(By.CSS_SELECTOR, ".p-swatch")
    browser.execute_script("arguments[0].focus()", swatches[-1])
    ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.execute_script("return document.activeElement") == toks[0]
    assert dataset(browser)["focus"] == "q0"
    ActionChains(browser).send_keys(Keys.TAB).perform()
    assert dataset(browser)["focus"] == "q1"
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    assert dataset(browser)["focus"] == "q1!"
    ActionChains(browser).send_keys(Keys.TAB).perform()
    assert dataset(browser)["focus"] == "q1!"  # kept while Tab moves on
    toks[2].send_keys(Keys.SPACE)
    assert dataset(browser)["focus"] == "q2!"
    toks[2].send_keys(Keys.ESCAPE)
    assert dataset(browser)["focus"] == "q2"


@pytest.mark.parametrize("tokens", [[f"t{i}" for i in range(8)],
                                    ["[CLS]", "internationalisation", "x", "[SEP]"],
                                    ["a", "b", "c", "counterrevolutionaries_everywhere"]])
def test_model_view_label_band_fits_the_longest_label(browser, tmp_path, tokens):
    """The detail heatmap's label band was 92 px whatever the labels: short labels left a
    wide gap, long ones were cut. It is now as wide as the longest label, which shows whole."""
    from probe.viewers.html import model_view_html

    n = len(tokens)
    x = np.exp(RNG.normal(size=(2, 3, n, n)))
    view = model_view_html((x / x.sum(-1, keepdims=True)).astype(np.float32), tokens)
    open_clean(browser, view, tmp_path, "band")
    band = int(dataset(browser)["band"])
    widths = browser.execute_script(
        "return [...document.querySelectorAll('.p-ylab')].map(e => "
        "[e.scrollWidth, e.clientWidth])")
    heights = browser.execute_script(
        "return [...document.querySelectorAll('.p-xlab')].map(e => "
        "[e.scrollHeight, e.clientHeight])")
    assert all(s <= c for s, c in widths) and all(s <= c for s, c in heights)  # none cut
    longest = max(s for s, _ in widths)
    assert longest <= band <= longest + 12, (longest, band)
    left = browser.execute_script(
        "return document.querySelector('.p-stack canvas').offsetLeft")
    assert left == band  # the map starts right after the band


@pytest.mark.parametrize("tokens", [["[CLS]", "猫がマットの上に座った", "x", "[SEP]"],
                                    ["[CLS]", "小猫", "没有", "过马路", "因为它太累了", "[SEP]"]])
def test_model_view_cjk_key_labels_show_whole_and_sideways(browser, tmp_path, tokens):
    """The band was measured on horizontal labels, but the key labels run vertically, where
    CJK stood upright (about 1.45 em a character) and was cut; rotated 180 degrees it also
    read upside down. Key labels now lie sideways like the rest, measured as drawn."""
    from probe.viewers.html import model_view_html

    n = len(tokens)
    x = np.exp(RNG.normal(size=(2, 3, n, n)))
    view = model_view_html((x / x.sum(-1, keepdims=True)).astype(np.float32), tokens)
    open_clean(browser, view, tmp_path, "band_cjk")
    band = int(dataset(browser)["band"])
    assert band < 240  # under the cap: every label must show whole
    heights = browser.execute_script(
        "return [...document.querySelectorAll('.p-xlab')].map(e => "
        "[e.scrollHeight, e.clientHeight, getComputedStyle(e).textOrientation])")
    assert heights and all(s <= c for s, c, _ in heights), heights  # none cut
    assert {o for _, _, o in heights} == {"sideways"}
    longest = max(s for s, _, _ in heights)
    assert longest <= band <= longest + 12, (longest, band)


def test_curves_auc_rows_take_their_curves_colours(browser, tmp_path):
    from probe.viewers.html import curves_view_html

    f = np.arange(5) / 4
    deletion = {"a": (f, np.linspace(1, 0, 5)), "b": (f, np.linspace(1, 0.5, 5)),
                "random": (f, np.linspace(1, 0.2, 5))}
    view = curves_view_html(deletion, None, {m: RNG.random(4) for m in deletion},
                            tokens=list("wxyz"))
    data = _data(view.html)
    colours, ranked = data["colors"], [r is not None for r in data["ranks"]]
    open_clean(browser, view, tmp_path, "auc")
    rows = browser.execute_script(
        "return [...document.querySelectorAll('.p-auc-row')].map(r => [r.dataset.method, "
        "getComputedStyle(r).color, getComputedStyle(r.firstChild).borderTopColor, "
        "getComputedStyle(r.firstChild).borderTopStyle, r.textContent])")

    def rgb(hex_colour):
        h = hex_colour.lstrip("#")
        return "rgb({}, {}, {})".format(*(int(h[i:i + 2], 16) for i in (0, 2, 4)))

    assert [r[0] for r in rows] == ["a", "b", "random"]
    for (method, text_colour, key_colour, style, text), colour, solid in zip(rows, colours,
                                                                             ranked):
        assert text_colour == key_colour == rgb(colour)
        assert style == ("solid" if solid else "dashed")  # as the curve is drawn
        assert text.startswith(f"{method} AUC ")
