"""``layer=`` counts the MODEL's layers in every view, even on a trace that kept only some.

The DETR views' one layer (the detr page's opening ``layer=``, ``query_maps(trace, layer)``,
``probe render detr --layer``) used to be a position among the kept decoder layers, unlike
every other view: on a trace of decoder layers ``[1, 3]``, ``layer=1`` drew layer 3 and
``layer=3`` was out of range. All of them now read a layer through the one shared check,
:func:`probe._index.model_position`, as the views' ``layers=`` and ``select_cross`` do.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import DetrImageProcessor

import probe
from probe._index import model_position
from probe.analysis._detr import query_maps
from probe.commands._pages import CLI, detections, detr_page, select_cross
from probe.viewers.html import cross_html, detr_html
from tests._tiny import resnet_detr

KEPT = [1, 3]
NAMES = ["cat", "dog"]
NOT_KEPT = (r"^layer 0 was not captured \(kept layers: \[1, 3\]\); capture it again with "
            r"layers=\[\.\.\.\] including 0 \(or layers=None\)$")


def _detr() -> Any:
    """4 encoder and 4 decoder layers (``layers=[1, 3]`` keeps two of each), 2 heads."""
    return resnet_detr(encoder_layers=4, decoder_layers=4)


@pytest.fixture(scope="module")
def traces():
    """A 4-decoder-layer DETR, a trace of every layer and one of layers [1, 3]."""
    model = _detr()
    pixels = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    return model, probe.trace(model, pixels), probe.trace(model, pixels, layers=KEPT)


def _data(view) -> dict:
    m = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>', view.html,
                  re.S)
    assert m is not None
    return json.loads(m.group(1))


# ----------------------------------------------------------------------------- the one check
def test_model_position_by_hand() -> None:
    assert [model_position(v, KEPT, 4) for v in (1, 3, -1, -3)] == [0, 1, 1, 0]
    with pytest.raises(probe.ProbeError, match=NOT_KEPT):
        model_position(0, KEPT, 4)
    with pytest.raises(probe.ProbeError, match=r"^layer -2 \(the model's layer 2\) was not "
                                                r"captured \(kept layers: \[1, 3\]\)"):
        model_position(-2, KEPT, 4)  # the model's layer 2, not the kept layer 1
    with pytest.raises(probe.ProbeError, match=r"^layer 4 is out of range: the model has 4 "
                                                r"layers \(use -4\.\.3; negative counts from "
                                                r"the end\)$"):
        model_position(4, KEPT, 4)
    for bad in (True, 1.0, None, "1"):
        with pytest.raises(probe.ProbeError, match=r"^layer must be an integer"):
            model_position(bad, KEPT, 4)
    assert model_position(np.int64(3), KEPT, 4) == 1
    # the model's count unknown (0): negatives count back from the last kept
    assert model_position(-1, KEPT, 0) == 1 and model_position(-2, KEPT, 0) == 0
    with pytest.raises(probe.ProbeError, match=r"^layer -3 is out of range: 2 layers were kept "
                                                r"\(use \[1, 3\] or -2\.\.-1 from the last "
                                                r"kept\)$"):
        model_position(-3, KEPT, 0)
    with pytest.raises(probe.ProbeError, match=r"^head -1 \(the decoder's head 3\) was not "
                                                r"captured \(kept heads: \[0, 1\]\); capture "
                                                r"it again with heads=\[\.\.\.\] including 3"):
        model_position(-1, [0, 1], 4, name="head", unit="heads", owner="the decoder")


def test_views_and_select_cross_share_one_check(traces) -> None:
    """``probe.show(trace, "cross")``'s ``layers=`` and the detr page's ``select_cross`` say the
    same (one helper), ``select_cross`` naming its option first."""
    _, _, kept = traces
    messages = []
    for call in (lambda: cross_html(kept, layers=[0]),
                 lambda: select_cross(kept, [0], None)):
        with pytest.raises(probe.ProbeError) as err:
            call()
        messages.append(str(err.value))
    assert messages[1] == "layers=: " + messages[0]
    assert "layer 0 was not captured (kept layers: [1, 3])" in messages[0]


# ----------------------------------------------------------------------------- DETR
def test_query_maps_counts_the_models_decoder_layers(traces) -> None:
    _, full, kept = traces
    assert kept.cross.layer_indices == (1, 3) and kept.cross.num_model_layers == 4
    last = query_maps(kept, 3)
    torch.testing.assert_close(query_maps(kept, -1), last)
    torch.testing.assert_close(query_maps(kept), last)  # default: the last kept
    torch.testing.assert_close(last, query_maps(full, 3))
    torch.testing.assert_close(query_maps(kept, 1), query_maps(full, 1))
    torch.testing.assert_close(query_maps(kept, -3), query_maps(full, 1))
    rows, cols = full.grid
    want = full.cross.attentions[3].float().mean(1).reshape(1, -1, rows, cols)  # by hand
    torch.testing.assert_close(last, want)
    with pytest.raises(probe.ProbeError, match=NOT_KEPT):
        query_maps(kept, 0)  # was drawn as kept position 0 (the model's layer 1)
    with pytest.raises(probe.ProbeError, match=r"^layer 4 is out of range: the model has 4 "
                                                r"decoder layers \(use -4\.\.3; "):
        query_maps(kept, 4)


def test_detr_page_opens_on_the_models_decoder_layer(traces) -> None:
    model, full, kept = traces
    boxes, classes, scores = detections(probe.adapter_for(model), kept)
    pages = {layer: detr_page(kept, boxes, classes, scores, layer=layer)
             for layer in (None, 3, -1, 1, -3)}
    assert {k: p[2] for k, p in pages.items()} == {None: 3, 3: 3, -1: 3, 1: 1, -3: 1}
    assert pages[3][0].html == pages[-1][0].html == pages[None][0].html
    assert pages[1][0].html == pages[-3][0].html != pages[3][0].html
    data = _data(pages[1][0])
    assert data["layers"] == ["1", "3"] and data["layer0"] == 0  # opens on the model's layer 1
    assert _data(pages[3][0])["layer0"] == 1
    with pytest.raises(probe.ProbeError, match=NOT_KEPT.replace("^", "^--layer: ")):
        detr_page(kept, boxes, classes, scores, layer=0, words=CLI)
    # probe.show: from the trace, and layer= against the layers= it embeds
    shown = probe.show(kept, "detr", class_names=NAMES, layer=-1)
    assert _data(shown)["layer0"] == 1 and _data(shown)["layers"] == ["1", "3"]
    with pytest.raises(probe.ProbeError, match=NOT_KEPT):
        probe.show(kept, "detr", class_names=NAMES, layer=0)
    with pytest.raises(probe.ProbeError, match=r"^layer 1 is not among the layers= shown \[3\]: "
                                                r"add it to layers=, or drop layer=$"):
        probe.show(kept, "detr", class_names=NAMES, layers=[3], layer=1)
    one = probe.show(kept, "detr", class_names=NAMES, layers=[-1], layer=-1)
    assert _data(one)["layers"] == ["3"] and _data(one)["layer0"] == 0
    # the viewer itself: layer= is the model's decoder layer too
    html = detr_html(kept, boxes, classes, scores, layer=3)
    assert _data(html)["layer0"] == 1
    on_full = detr_html(full, boxes, classes, scores, layer=1)
    assert _data(on_full)["layer0"] == 1 and _data(on_full)["layers"] == ["0", "1", "2", "3"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("detr4")
    _detr().save_pretrained(path)
    DetrImageProcessor(size={"shortest_edge": 48, "longest_edge": 64}).save_pretrained(path)
    img = path / "scene.png"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 60, 3)) * 255).astype("uint8")).save(img)
    return path


@pytest.mark.parametrize("fmt", ["png", "html"])
def test_render_detr_layer_counts_the_models_decoder_layers(folder, fmt) -> None:
    """``probe render detr --layer`` on a session whose trace kept decoder layers [1, 3]: the
    figure and the page read ``--layer 3`` and ``--layer -1`` as the model's last layer."""
    from probe.commands.render._args import RenderArgs
    from probe.commands.render._figures import VIEWS
    from probe.commands.render._html import HTML_VIEWS
    from probe.commands.render._session import _session

    views = VIEWS if fmt == "png" else HTML_VIEWS
    s = _session(RenderArgs(view="detr", model=str(folder), image=str(folder / "scene.png"),
                            formats=(fmt,), quiet=True))
    s._trace = probe.trace(s.model, s.pixel_values, layers=KEPT)
    names = {}
    for layer in (3, -1, 1, -3, None):
        s.args = dataclasses.replace(s.args, layer=layer)
        [(names[layer], _)] = views["detr"](s)
    assert all("_L3_" in names[k] for k in (3, -1, None)), names
    assert all("_L1_" in names[k] for k in (1, -3)), names
    s.args = dataclasses.replace(s.args, layer=0)
    with pytest.raises(probe.ProbeError, match=NOT_KEPT.replace("^", "^--layer: ")):
        views["detr"](s)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_stack_repr_shows_the_models_counts(traces) -> None:
    _, _, kept = traces
    text = repr(kept.cross)
    assert text.endswith("layer_indices=(1, 3), head_indices=(0, 1), num_model_layers=4, "
                         "num_heads=2)"), text
    assert "num_model_layers=4, num_heads=2)" in repr(kept.encoder)
