"""Interactive HTML views: page safety and encoding (pure Python), then every view in a real
headless Chromium (one browser session per module): loads from file:// with no console
error and no network request, interactions change what is drawn, XSS payloads in tokens and
model names execute nothing, embedded numbers decode to the data."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import numpy as np
import pytest

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
from probe._text import visible_text
from probe.viewers.html import (
    HtmlView,
    coref_view_html,
    decode_array,
    encode_array,
    head_view_html,
    image_view_html,
    model_view_html,
    token_view_html,
)

RNG = np.random.default_rng(0)
TOKENS = ["[CLS]", *XSS_TOKENS, "the", "cat", "[SEP]"]
XSS_MODEL = "<img src=x onerror=\"window.__xss=9;alert(1)\">model</script>"


def _softmax_attention(layers: int, heads: int, q: int, k: int | None = None) -> np.ndarray:
    x = RNG.normal(size=(layers, heads, q, k or q)) * 3
    e = np.exp(x)
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


ATTN = _softmax_attention(2, 3, len(TOKENS))


def _data_block(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


# ----------------------------------------------------------------------------- pure Python
def test_encoding_round_trip_within_quantisation_error():
    x = RNG.random((3, 5, 7)) * 4 - 1
    enc = encode_array(x)
    back = decode_array(enc)
    assert back.shape == x.shape
    assert np.max(np.abs(back - x)) <= enc["step"] / 2 + 1e-12
    flat = encode_array(np.full((2, 2), 0.25))
    assert np.allclose(decode_array(flat), 0.25)


def test_page_escapes_every_string_and_pins_inline_code_by_hash():
    page = head_view_html(ATTN, TOKENS, model_name=XSS_MODEL).html
    data_text = re.search(r'id="probe-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in data_text and ">" not in data_text and "&" not in data_text
    assert "\u2028" not in page
    # the only tags in the page are ours: 3 scripts/styles, nothing from a token
    assert page.count("<script") == 2 and page.count("</script>") == 2
    assert "<img" not in page and "onerror" not in page.split("<script", 1)[0].replace(
        "&quot;", "").split("<title>")[0]
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert "<" not in title
    assert _data_block(page)["qtokens"][1] == XSS_TOKENS[0]
    csp = re.search(r'Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    for tag in ("script", "style"):
        body = re.search(rf"<{tag}>(.*?)</{tag}>", page, re.S).group(1)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "eval(" not in page and "new Function" not in page
    assert "http://" not in page and "https://" not in page


def test_view_object_repr_and_atomic_save(tmp_path):
    view = model_view_html(ATTN, TOKENS)
    frame = view._repr_html_()
    assert frame.startswith("<iframe") and 'sandbox="allow-scripts"' in frame
    assert "allow-same-origin" not in frame and "<script" not in frame
    assert view._repr_html_() != frame  # unique ids per display
    out = view.save(tmp_path / "m.html")
    assert out.read_text() == view.html and view.size_bytes == len(view.html.encode())
    assert [p.name for p in tmp_path.iterdir()] == ["m.html"]
    with pytest.raises(ProbeError, match="html"):
        view.save(tmp_path / "m.png")
    with pytest.raises(ProbeError, match="does not exist"):
        view.save(tmp_path / "missing" / "m.html")


def test_over_budget_is_refused_with_what_to_select():
    with pytest.raises(ProbeError, match="select fewer layers or heads"):
        model_view_html(np.zeros((2, 2, 8, 8)), max_values=100)
    with pytest.raises(ProbeError, match="negative"):
        head_view_html(-ATTN)
    with pytest.raises(ProbeError, match="query tokens"):
        head_view_html(ATTN, TOKENS[:-1])


def test_cross_attention_columns_may_differ():
    attn = _softmax_attention(1, 2, 3, 5)
    view = head_view_html(attn, query_tokens=["a", "b", "c"], key_tokens=list("vwxyz"))
    data = _data_block(view.html)
    assert data["qtokens"] == ["a", "b", "c"] and len(data["ktokens"]) == 5


# ----------------------------------------------------------------------------- in the browser
@pytest.fixture(scope="module")
def browser():
    drv = start_browser()
    yield drv
    drv.quit()



def _hover(browser, element) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element(element).perform()


def test_head_view_in_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    view = head_view_html(ATTN, TOKENS, model_name=XSS_MODEL, layers=[4, 5], threshold=0.05)
    _open(browser, view, tmp_path, "head")
    assert browser.title.startswith("<img")
    toks = browser.find_elements(By.CSS_SELECTOR, ".p-left .p-tok")
    assert [t.text for t in toks[1:3]] == [XSS_TOKENS[0], XSS_TOKENS[1]]
    assert dataset(browser)["layer"] == "1"
    all_lines = int(
        browser.find_element(By.CSS_SELECTOR, "canvas.p-lines").get_attribute("data-lines"))
    enc = _data_block(view.html)["attn"]
    q = np.rint((ATTN - enc["lo"]) / enc["step"])
    thr = np.ceil((0.05 - enc["lo"]) / enc["step"])
    assert all_lines == int((q[1] >= thr).sum())  # every pair of every head above threshold
    before = canvas_sum(browser, "canvas.p-lines")
    Select(browser.find_element(By.TAG_NAME, "select")).select_by_index(0)
    assert dataset(browser)["layer"] == "0"
    assert canvas_sum(browser, "canvas.p-lines") != before
    # hover a query token: only its lines, the key column shaded by weight
    _hover(browser, toks[2])
    assert dataset(browser)["focus"] == "q2"
    lines = browser.find_element(By.CSS_SELECTOR, "canvas.p-lines")
    assert int(lines.get_attribute("data-lines")) == int((q[0, :, 2] >= thr).sum())
    # click a head swatch: isolate it; double-click: all again
    swatch = browser.find_elements(By.CSS_SELECTOR, ".p-swatch")[1]
    swatch.click()
    assert dataset(browser)["heads"] == "1"
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).double_click(swatch).perform()
    assert dataset(browser)["heads"] == "0,1,2"
    # click to lock: moving away keeps the focus
    toks[3].click()
    _hover(browser, browser.find_element(By.CSS_SELECTOR, ".p-title"))
    assert dataset(browser)["focus"] == "q3!"
    assert no_alert(browser) and browser.execute_script("return window.__xss") is None


def test_model_view_in_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    view = model_view_html(ATTN, TOKENS, model_name=XSS_MODEL)
    _open(browser, view, tmp_path, "model")
    thumbs = browser.find_elements(By.CSS_SELECTOR, ".p-grid canvas")
    assert len(thumbs) == 6
    assert dataset(browser)["selected"] == "1,0"
    thumbs[2].click()
    assert dataset(browser)["selected"] == "0,2"
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".p-ylab")]
    assert labels[0] == "[CLS]" and XSS_TOKENS[1][:5] in labels[2]
    over = browser.find_elements(By.CSS_SELECTOR, ".p-stack canvas")[1]
    from selenium.webdriver.common.action_chains import ActionChains

    before = canvas_sum(browser, ".p-stack canvas:nth-of-type(2)")
    h = over.size["height"]
    ActionChains(browser).move_to_element_with_offset(over, 0, -h // 2 + 3).perform()
    assert dataset(browser)["row"] == "0"
    ActionChains(browser).move_to_element_with_offset(over, 0, h // 2 - 3).perform()
    assert dataset(browser)["row"] == str(len(TOKENS) - 1)
    assert canvas_sum(browser, ".p-stack canvas:nth-of-type(2)") != before
    assert "query" in browser.find_element(By.CSS_SELECTOR, ".p-readout").text


def test_embedded_numbers_decode_in_the_browser(browser, tmp_path):
    view = model_view_html(ATTN, TOKENS)
    path = view.save(tmp_path / "fid.html")
    assert load(browser, path) == "1"
    values = np.array(browser.execute_script(f"return window.probeValues('attn', 0, {ATTN.size})"))
    step = _data_block(view.html)["attn"]["step"]
    assert np.max(np.abs(values - ATTN.ravel())) <= step / 2 + 1e-6


def test_token_view_in_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    scores = {"attention": RNG.random(len(TOKENS)), XSS_TOKENS[1]: RNG.normal(size=len(TOKENS))}
    view = token_view_html(TOKENS, scores, model_name=XSS_MODEL)
    _open(browser, view, tmp_path, "tokens")
    rows = browser.find_elements(By.CSS_SELECTOR, ".p-row")
    assert len(rows) == 2
    assert rows[1].find_element(By.CSS_SELECTOR, ".p-rowlab").text == XSS_TOKENS[1]
    spans = rows[0].find_elements(By.CSS_SELECTOR, ".p-tok")
    # U+2028 (a line separator, drawn as nothing) is shown as its code point <U+2028>
    assert [s.get_attribute("textContent") for s in spans] == [visible_text(t) for t in TOKENS]
    colours = {s.value_of_css_property("background-color") for s in spans}
    assert len(colours) > 3
    _hover(browser, spans[3])
    assert dataset(browser)["hover"] == "3"
    tip = browser.find_element(By.CSS_SELECTOR, ".p-tip").text
    shown = re.search(r"attention: (-?[0-9.]+)", tip)  # the quantised value, 2 decimals
    step = _data_block(view.html)["scores"]["step"]
    assert shown and abs(float(shown.group(1)) - scores["attention"][3]) <= step / 2 + 0.005
    values = np.array(
        browser.execute_script(f"return window.probeValues('scores', 0, {2 * len(TOKENS)})"))
    expect = np.concatenate(list(scores.values()))
    step = _data_block(view.html)["scores"]["step"]
    assert np.max(np.abs(values - expect)) <= step / 2 + 1e-6


def _image_view(name: str = "vit") -> HtmlView:
    yy, xx = np.mgrid[0:48, 0:64] / 64.0
    image = np.stack([xx, yy, 0.5 + 0 * xx], -1)
    g = (3, 4)
    n = g[0] * g[1]
    patch = _softmax_attention(2, 2, n)
    maps = {"rollout": RNG.random(g), "ig": RNG.normal(size=g), XSS_TOKENS[0]: RNG.random(g)}
    agreement = np.array([[1, 0.3, 0.1], [0.3, 1, -0.2], [0.1, -0.2, 1]])
    faith = {"rollout": {"deletion AUC": 0.21, "insertion AUC": 0.63}}
    return image_view_html(image, maps, agreement=agreement, faithfulness=faith,
                           cls_maps=patch[:, :, 0].reshape(2, 2, *g), patch_attn=patch,
                           layers=[10, 11], model_name=name)


def test_image_view_in_browser(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _open(browser, _image_view(XSS_MODEL), tmp_path, "image")
    tabs = browser.find_elements(By.CSS_SELECTOR, ".p-tab")
    assert [t.text for t in tabs] == ["rollout", "ig", XSS_TOKENS[0]]
    assert "deletion AUC" in browser.find_element(By.CSS_SELECTOR, ".p-panel").text
    before = canvas_sum(browser, "canvas.p-main")
    tabs[1].click()
    assert dataset(browser)["method"] == "1"
    assert canvas_sum(browser, "canvas.p-main") != before
    row = browser.find_elements(By.CSS_SELECTOR, "table.p-table tr")[2]
    assert "sel" in row.get_attribute("class")
    # the per-head CLS grid follows the layer selector
    thumbs = "figure canvas"
    before = canvas_sum(browser, thumbs)
    Select(browser.find_elements(By.TAG_NAME, "select")[0]).select_by_index(0)
    assert dataset(browser)["clsLayer"] == "0"
    assert canvas_sum(browser, thumbs) != before
    # hover a patch: the map shows that patch's attention
    patch = browser.find_element(By.CSS_SELECTOR, "canvas.p-patch")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", patch)
    before = canvas_sum(browser, "canvas.p-patch")
    w, h = patch.size["width"], patch.size["height"]
    ActionChains(browser).move_to_element_with_offset(patch, -w // 2 + 2, -h // 2 + 2).perform()
    assert dataset(browser)["patch"] == "0"
    assert canvas_sum(browser, "canvas.p-patch") != before
    ActionChains(browser).move_to_element_with_offset(patch, w // 2 - 2, h // 2 - 2).perform()
    assert dataset(browser)["patch"] == "11"
    assert no_alert(browser) and browser.execute_script("return window.__xss") is None


def test_coref_view_in_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    words = ["The", "trophy", XSS_TOKENS[1], "fit", "because", "it", "was", "big"]
    w_it = RNG.random((2, 3, len(words)))
    w_it[1, 2] = [0.05, 0.6, 0.1, 0.05, 0.0, 0.1, 0.05, 0.05]
    w_was = RNG.random((2, 3, len(words)))
    top = {5: [(7, 2, 1, 0.6), (6, 0, 2, 0.4)]}
    view = coref_view_html(words, {5: w_it, 6: w_was}, top=top, candidates={5: [1, 2, 3]},
                           layers=[6, 7], heads=[0, 1, 2], model_name=XSS_MODEL)
    _open(browser, view, tmp_path, "coref")
    state = dataset(browser)
    assert state["word"] == "5" and state["head"] == "1,2"  # the top-ranked head first
    assert state["top"].split(",")[0] == "1"  # "trophy" first for that head
    rows = browser.find_elements(By.CSS_SELECTOR, "table.p-table tr.click")
    assert len(rows) == 3 and XSS_TOKENS[1] in rows[2].get_attribute("textContent")
    rows[0].click()  # mean of all heads
    assert dataset(browser)["head"] == "mean"
    Select(browser.find_element(By.TAG_NAME, "select")).select_by_index(1)
    assert dataset(browser)["word"] == "6"
    browser.find_elements(By.CSS_SELECTOR, ".p-flow .p-tok")[5].click()
    assert dataset(browser)["word"] == "5"


# ----------------------------------------------------------------------------- one call
def test_show_from_trace_and_model(minilm, tmp_path):
    import probe

    model, tokenizer = minilm
    text = "The trophy did not fit in the suitcase because it was too big."
    trace = probe.trace(model, text, tokenizer=tokenizer)
    heads = probe.show(trace, "heads", layers=[4, 5], heads=[0, 3])
    data = _data_block(heads.html)
    assert data["layers"] == ["4", "5"] and data["heads"] == ["0", "3"]
    expect = trace.attentions[4:6, 0][:, [0, 3]].numpy()
    assert np.max(np.abs(decode_array(data["attn"]) - expect)) <= data["attn"]["step"] / 2 + 1e-6
    window = probe.show(trace, "model", window=(2, 6))
    assert _data_block(window.html)["qtokens"] == list(trace.tokens[0][2:6])
    with pytest.raises(ProbeError, match="token window"):
        probe.show(trace, "model", max_values=1000)
    coref = _data_block(probe.show(trace, "coref").html)
    first = coref["choices"][0]
    assert coref["words"][first["index"]] == "it"
    links = probe.coref(trace, "it")
    assert [r[3] for r in first["top"]] == pytest.approx([link.weight for link in links[:12]])
    tokens = probe.show((model, tokenizer), "tokens", text, methods=["attention", "rollout"])
    assert _data_block(tokens.html)["methods"] == ["attention", "rollout"]
    with pytest.raises(ProbeError, match="unknown view"):
        probe.show(trace, "nope")


# ----------------------------------------------------------------------------- CLI
SENTENCE = "The animal didn't cross the street because it was too tired."


def _cli(argv, capsys):
    from probe.cli import main

    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("argv", [
    ["heads", "--format", "html", "--format", "png"],
    ["links", "--layer", "-1", "--format", "html"],
    ["coref", "--word", "it", "--format", "html"],
    ["saliency", "--method", "attention", "--format", "html"],
], ids=lambda a: a[0])
def test_cli_text_views_write_html(argv, tmp_path, capsys):
    rc, out, err = _cli(["render", *argv, "--text", SENTENCE, "--out", str(tmp_path), "--quiet"],
                        capsys)
    assert rc == 0, err
    written = sorted(p.name for p in tmp_path.iterdir())
    assert any(n.endswith(".html") for n in written)
    assert ("--format" in argv[2:] and "png" in argv) == any(n.endswith(".png") for n in written)
    page = next(p for p in tmp_path.iterdir() if p.suffix == ".html").read_text()
    assert "Content-Security-Policy" in page


def test_cli_image_compare_html_in_browser(browser, tmp_path, capsys):
    rc, out, err = _cli(["render", "compare", "--method", "rollout", "--method", "random",
                         "--format", "html", "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 0, err
    (page,) = list(tmp_path.glob("*.html"))
    assert load(browser, page) == "1"
    assert console_errors(browser) == [] and resources(browser) == 0
    assert dataset(browser)["method"] == "0" and "patch" in dataset(browser)


def test_every_render_view_has_an_html_form():
    """Every ``probe render`` view answers ``--format html``; a view without one would be
    refused up front, naming the views that have one."""
    from probe.commands.render._command import VIEWS
    from probe.commands.render._html import HTML_VIEWS, html_pages

    assert set(VIEWS) == set(HTML_VIEWS)
    with pytest.raises(ProbeError, match="the nope view has no HTML form: use --format html "
                                         "with one of alignment, "):
        html_pages("nope", None)


def test_cli_html_error_is_all_or_nothing(tmp_path, capsys):
    rc, out, err = _cli(["render", "curves", "--text", "a dog", "--format", "png", "--format",
                         "html", "--out", str(tmp_path / "new"), "--quiet"], capsys)
    assert rc == 2 and "--pair" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_cross_view_of_an_encoder_decoder_trace(browser, tmp_path):
    """probe.show(trace, "cross"): target tokens left, source tokens right, the trace's
    cross-attention embedded exactly (within the quantisation error)."""
    import probe
    from selenium.webdriver.common.by import By

    from probe.models._translation import toy_split

    model, tok = probe.load_model("toy-mt")
    gen = probe.generate(model, toy_split()[1][0].source_text, tokenizer=tok, max_new_tokens=24)
    trace = gen.to_trace()
    view = probe.show(trace, "cross")
    data = _data_block(view.html)
    n_src = trace.valid_length(0)
    assert data["ktokens"] == list(trace.tokens[0][:n_src])
    assert len(data["qtokens"]) == trace.cross.attentions.shape[-2]
    decoded = decode_array(data["attn"])
    expected = trace.cross.attentions[:, 0, :, :, :n_src].float().numpy()
    np.testing.assert_allclose(decoded, expected, atol=data["attn"]["step"] / 2 + 1e-6)
    _open(browser, view, tmp_path, "cross")
    left = browser.find_elements(By.CSS_SELECTOR, ".p-left .p-tok")
    right = browser.find_elements(By.CSS_SELECTOR, ".p-right .p-tok")
    assert len(left) > 1 and len(right) > 1
    with pytest.raises(ProbeError, match="no cross-attention"):
        probe.show(_no_cross_trace(), "cross")


def _no_cross_trace():
    import probe

    model, tok = probe.load_model("minilm")
    return probe.trace(model, "a dog", tokenizer=tok)


def test_alignment_view_in_browser(browser, tmp_path):
    import probe
    from probe.models._translation import toy_split
    from selenium.webdriver.common.by import By

    model, tok = probe.load_model("toy-mt")
    gen = probe.generate(model, toy_split()[1][0].source_text, tokenizer=tok, max_new_tokens=24)
    align = probe.alignment(gen)
    view = probe.show(align, "alignment")
    data = _data_block(view.html)
    assert data["qtokens"] == list(align.target_words)
    assert data["ktokens"] == list(align.source_words)
    decoded = decode_array(data["attn"])
    np.testing.assert_allclose(decoded, align.scores.float().numpy(),
                               atol=data["attn"]["step"] / 2 + 1e-6)
    _open(browser, view, tmp_path, "alignment")
    assert len(browser.find_elements(By.CSS_SELECTOR, "canvas")) >= align.scores.shape[0]
    with pytest.raises(ProbeError, match="Alignment of probe.alignment"):
        probe.show(gen.to_trace(), "alignment")


def test_trace_views_keep_the_real_tokens_of_a_left_padded_item():
    """Left padding puts the padding first: the views must show the real tokens, not the
    first ``n`` positions (which are padding and all-zero attention)."""
    import dataclasses

    import torch

    from tests._factories import make_trace
    from probe import AttentionStack
    from probe.viewers.html import cross_html, heads_html, trace_attention

    attn = torch.from_numpy(_softmax_attention(2, 3, 4)).unsqueeze(1).repeat(1, 2, 1, 1, 1)
    attn[:, 1, :, :, :2] = 0  # item 1: two left-padding positions
    attn[:, 1, :, :2, :] = 0
    mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    tokens = [["a", "b", "c", "d"], ["<pad>", "<pad>", "hi", "there"]]
    trace = make_trace(attn, tokens=tokens, attention_mask=mask)
    sel, toks, _, _ = trace_attention(trace, batch_index=1)
    assert toks == ["hi", "there"]
    np.testing.assert_array_equal(sel, attn[:, 1, :, 2:, 2:].numpy())
    sel, toks, _, _ = trace_attention(trace, batch_index=1, window=(1, 2))
    assert toks == ["there"] and sel.shape[-1] == 1
    assert _data_block(heads_html(trace, batch_index=1).html)["qtokens"] == ["hi", "there"]
    cross = torch.from_numpy(_softmax_attention(2, 3, 3, 4)).unsqueeze(1).repeat(1, 2, 1, 1, 1)
    cross[:, 1, :, :, :2] = 0
    stack = AttentionStack(kind="cross", attentions=cross, layer_names=("l0", "l1"),
                           layer_indices=(0, 1), head_indices=(0, 1, 2))
    view = cross_html(dataclasses.replace(trace, cross=stack), batch_index=1)
    assert _data_block(view.html)["ktokens"] == ["hi", "there"]


def test_trace_views_of_a_capture_from_ids_label_positions():
    """A trace captured from ids alone has no token strings and no grid: numbered labels."""
    import torch

    from tests._factories import make_trace
    from probe.viewers.html import heads_html, model_html

    trace = make_trace(torch.from_numpy(_softmax_attention(2, 3, 4)).unsqueeze(1))
    for view in (heads_html(trace), model_html(trace)):
        assert _data_block(view.html)["qtokens"] == ["0", "1", "2", "3"]


def test_show_coref_reads_the_chosen_batch_item():
    """``probe.show(trace, "coref", batch_index=1)`` shows item 1's words (it read item 0's)."""
    import torch

    import probe
    from tests._factories import make_trace

    attn = torch.from_numpy(_softmax_attention(2, 3, 5)).unsqueeze(1).repeat(1, 2, 1, 1, 1)
    tokens = [["[CLS]", "a", "cat", "sat", "[SEP]"], ["[CLS]", "dogs", "bark", "loudly", "[SEP]"]]
    words = [["a", "cat", "sat"], ["dogs", "bark", "loudly"]]
    word_ids = [[None, 0, 1, 2, None]] * 2
    trace = make_trace(attn, tokens=tokens, words=words, word_ids=word_ids, num_prefix_tokens=1)
    data = _data_block(probe.show(trace, "coref", batch_index=1).html)
    assert data["words"] == words[1]
    data = _data_block(probe.show(trace, "coref", word="loudly", batch_index=1).html)
    assert data["words"] == words[1]
    with pytest.raises(ProbeError, match="batch_index"):
        probe.show(trace, "coref", batch_index=2)
