"""probe.show(alignment, "alignment", layers=, heads=) embeds the chosen layers and heads:
the page's matrices are probe.alignment's matrix(layer, head) of each chosen pair (checked in
Python, then the page opens in a real headless Chromium with one thumbnail per pair)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import probe
from _browser import console_errors, load, resources, start_browser
from probe import ProbeError
from probe.viewers.html import decode_array


def _data_block(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def alignment():
    model, tok = probe.load_model("toy-mt")
    gen = probe.generate(model, "the tiny dog takes a big letter today", tokenizer=tok,
                         max_new_tokens=24)
    return (model, tok), gen, probe.alignment(gen)


@pytest.mark.parametrize(("layers", "heads", "want_layers", "want_heads"), [
    ([0], [1, 3], [0], [1, 3]),
    ([-1], None, [1], [0, 1, 2, 3]),
    (None, [2], [0, 1], [2]),
    ([1, 0], [-1, 0], [1, 0], [3, 0]),  # the order asked for
])
def test_selected_layers_and_heads_are_what_the_page_holds(alignment, layers, heads,
                                                           want_layers, want_heads):
    _, _, al = alignment
    data = _data_block(probe.show(al, "alignment", layers=layers, heads=heads).html)
    assert data["layers"] == [str(v) for v in want_layers]
    assert data["heads"] == [str(v) for v in want_heads]
    expected = np.stack([np.stack([al.matrix(layer=layer, head=head).float().numpy()
                                   for head in want_heads]) for layer in want_layers])
    got = decode_array(data["attn"])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=data["attn"]["step"] / 2 + 1e-6)


def test_selection_refusals(alignment):
    (model, tok), gen, al = alignment
    with pytest.raises(ProbeError, match=r"layer 5 is out of range: the model has 2 layers"):
        probe.show(al, "alignment", layers=[5])
    with pytest.raises(ProbeError, match=r"heads lists head -4 twice \(as 0\)"):
        probe.show(al, "alignment", heads=[0, -4])
    with pytest.raises(ProbeError, match=r"window= does not apply to the alignment view"):
        probe.show(al, "alignment", window=(0, 2))
    grad = probe.gradient_alignment(model, gen)  # one matrix: layer 0, head 0
    assert _data_block(probe.show(grad, "alignment", layers=[0], heads=[0]).html)["heads"] == [
        "0"]
    averaged = probe.alignment(probe.generate(model, "the tiny dog", tokenizer=tok,
                                              max_new_tokens=8, average_heads=True))
    with pytest.raises(ProbeError, match=r"heads were averaged during capture.*drop heads="):
        probe.show(averaged, "alignment", heads=[0])
    assert _data_block(probe.show(averaged, "alignment", layers=[1]).html)["heads"] == ["mean"]


def test_selected_page_in_browser(alignment, tmp_path):
    from selenium.webdriver.common.by import By

    _, _, al = alignment
    drv = start_browser()
    try:
        path = probe.show(al, "alignment", layers=[1], heads=[0, 2]).save(tmp_path / "al.html")
        assert load(drv, path) == "1"
        assert console_errors(drv) == [] and resources(drv) == 0
        titles = [c.get_attribute("title")
                  for c in drv.find_elements(By.CSS_SELECTOR, ".p-grid canvas")]
        assert titles == ["layer 1, head 0", "layer 1, head 2"]
        assert drv.find_element(By.CSS_SELECTOR, ".p-detail .p-title").text == "layer 1, head 0"
        full = probe.show(al, "alignment").save(tmp_path / "all.html")
        assert load(drv, full) == "1"
        assert len(drv.find_elements(By.CSS_SELECTOR, ".p-grid canvas")) == 8
    finally:
        drv.quit()
