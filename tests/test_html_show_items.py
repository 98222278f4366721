"""``probe.show`` picks the batch item of every view that runs the model (``batch_index=``,
the name the trace views use), and the detr view of a trace reads the trace's own
predictions when no ``detections=`` are given."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import torch

import probe
from probe import ProbeError
from probe.viewers.html import decode_array


def _data_block(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="probe-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def detr():
    from probe.models._scenes import make_scenes

    model, _ = probe.load_model("detr-shapes")
    return model.eval(), make_scenes(2, seed=4).images


# ----------------------------------------------------------------------------- detr of a trace
def test_detr_of_a_trace_reads_its_own_predictions(detr):
    """Without ``detections=`` the trace's output gives them: with the detector's class names
    the page is the page of the model; without, the classes are named by index."""
    model, images = detr
    tr = probe.trace(model, images)
    for item in (0, 1):
        of_model = _data_block(probe.show(model, "detr", images, batch_index=item).html)
        of_trace = _data_block(probe.show(tr, "detr", batch_index=item,
                                          class_names=model.config.id2label).html)
        assert of_trace == of_model
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    by_list = _data_block(probe.show(tr, "detr", batch_index=1, class_names=names).html)
    assert by_list == of_model
    plain = _data_block(probe.show(tr, "detr", batch_index=1).html)
    index = {n: i for i, n in enumerate(names)}
    assert plain["labels"] == [f"class {index[c]}" for c in of_model["labels"]]
    assert plain["scores"] == of_model["scores"] and plain["maps"] == of_model["maps"]
    assert of_model != _data_block(probe.show(model, "detr", images, batch_index=0).html)


@pytest.mark.parametrize("change, match", [
    (dict(output=None), r"^this trace's output holds no detections .*pass detections="),
    (dict(), r"^class_names must name the detector's \d+ classes .*got 2 names$"),
    (dict(batch_index=2), r"^batch_index must be in 0\.\.1 \(or -2\.\.-1 from the end\), "
                          r"got 2$"),
], ids=["no output", "names", "item"])
def test_detr_of_a_trace_refusals(detr, change, match):
    model, images = detr
    tr = probe.trace(model, images)
    kwargs = {}
    if "output" in change:
        tr = dataclasses.replace(tr, output=None)
    elif "batch_index" in change:
        kwargs = change
    else:
        kwargs = dict(class_names=["a", "b"])
    with pytest.raises(ProbeError, match=match) as err:
        probe.show(tr, "detr", **kwargs)
    assert "\n" not in str(err.value)
    with pytest.raises(ProbeError, match=r"^class_names= goes with a trace"):
        probe.show(model, "detr", images, class_names=["a"])
    with pytest.raises(ProbeError, match=r"^class_names= names the trace's own predictions"):
        probe.show(tr, "detr", detections=([], [], []), class_names=["a"])


# ----------------------------------------------------------------------------- gates, curves
def test_gates_batch_index_shows_that_item():
    """Item 1 of a batch of two is the page of that image alone (eval mode: items are
    independent), within the quantisation step; item 0 differs."""
    model, _ = probe.load_model("cnn-shapes-nl")
    model.eval()
    pixels = probe.make_shapes(2, seed=6).images
    two = _data_block(probe.show(model, "gates", pixels, batch_index=1).html)
    one = _data_block(probe.show(model, "gates", pixels[1:2]).html)
    first = _data_block(probe.show(model, "gates", pixels).html)
    assert two["image"] == one["image"] != first["image"]
    for a, b in zip(two["blocks"], one["blocks"]):
        assert a["query"] == b["query"] and a["name"] == b["name"]
        np.testing.assert_allclose(decode_array(a["data"]), decode_array(b["data"]),
                                   atol=a["data"]["step"] + b["data"]["step"] + 1e-6)
    np.testing.assert_allclose(decode_array(two["cam"]), decode_array(one["cam"]),
                               atol=two["cam"]["step"] + one["cam"]["step"] + 1e-6)
    with pytest.raises(ProbeError, match=r"^batch_index must be in 0\.\.1 \(or -2\.\.-1 from the "
                                         r"end\), got 5$"):
        probe.show(model, "gates", pixels, batch_index=5)


def test_curves_batch_index_shows_that_item():
    model, _ = probe.load_model("vit-shapes")
    pixels = probe.make_shapes(2, seed=7).images
    data = _data_block(probe.show(model, "curves", pixels, methods=["rollout"],
                                  batch_index=1).html)
    attr = probe.attribute(model, pixels, "rollout")
    curve = probe.deletion_curve(model, pixels, attr)
    np.testing.assert_allclose(data["kinds"][0]["values"][0], curve.values[1].numpy(), rtol=1e-6)
    order = np.argsort(-attr.scores[1].numpy(), kind="stable")
    assert [data["ranks"][0][u] for u in order] == list(range(len(order)))
    assert _data_block(probe.show(model, "curves", pixels, methods=["rollout"],
                                  batch_index=-1).html) == data  # -1 counts from the end
    with pytest.raises(ProbeError, match=r"^batch_index must be in 0\.\.1 \(or -2\.\.-1 from the "
                                         r"end\), got -3$"):
        probe.show(model, "curves", pixels, methods=["rollout"], batch_index=-3)
    assert not torch.equal(pixels[0], pixels[1])


def test_tokens_batch_index_shows_that_sentence():
    lm = probe.load_model("minilm")
    texts = ["A cat sat.", "The dog ran home."]
    data = _data_block(probe.show(lm, "tokens", texts, methods=["attention"],
                                  batch_index=1).html)
    assert data["tokens"] == ["the", "dog", "ran", "home", "."]
    tr = probe.trace(lm.model, texts, tokenizer=lm.processor)
    attr = probe.attribute(lm.model, texts, "attention", tokenizer=lm.processor, trace=tr)
    keep = [i for i, t in enumerate(tr.tokens[1]) if t in data["tokens"]]
    np.testing.assert_allclose(decode_array(data["scores"])[0], attr.scores[1, keep].numpy(),
                               atol=data["scores"]["step"] / 2 + 1e-6)
    with pytest.raises(ProbeError, match=r"^batch_index must be in 0\.\.1 \(or -2\.\.-1 from the "
                                         r"end\), got 2$"):
        probe.show(lm, "tokens", texts, methods=["attention"], batch_index=2)


def test_image_batch_index_is_the_page_of_that_image_alone():
    """Maps, agreement, faithfulness and the trace's CLS maps of item 1 of two are those of
    that image shown alone (a ViT: items independent)."""
    model, _ = probe.load_model("vit-shapes")
    pixels = probe.make_shapes(2, seed=7).images
    kw = dict(methods=["rollout", "attention"])
    two = _data_block(probe.show(model, "image", pixels, batch_index=1, **kw).html)
    one = _data_block(probe.show(model, "image", pixels[1:2], **kw).html)
    first = _data_block(probe.show(model, "image", pixels, **kw).html)
    assert two["image"] == one["image"] != first["image"]
    for key in ("maps", "cls", "patch"):
        np.testing.assert_allclose(decode_array(two[key]), decode_array(one[key]),
                                   atol=two[key]["step"] + one[key]["step"] + 1e-6)
    np.testing.assert_allclose(two["agreement"]["values"], one["agreement"]["values"],
                               atol=1e-6)
    for m in kw["methods"]:
        for k, v in one["faithfulness"][m].items():
            assert two["faithfulness"][m][k] == pytest.approx(v, abs=1e-5), (m, k)
    assert two["agreement"]["values"] != first["agreement"]["values"]
