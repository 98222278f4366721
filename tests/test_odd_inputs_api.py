"""Python API inputs found by an attack on the error promise: each is one ``ProbeError`` line
naming the problem and the fix, never an error from deep inside torch or transformers.
"""

from __future__ import annotations

import copy

import pytest
import torch

import probe
from tests._cnn import timm_cnn
from tests._tiny import bert_classifier, gpt2, timm_model

META = r"the model's weights are on the meta device and hold no values \(e\.g\. '.+'; built " \
       r"under torch\.device\('meta'\) or init_empty_weights\?\): load real weights first"


def _on_meta(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(model).to("meta")


def test_a_model_without_weights_is_one_line():
    """``model.to('meta')`` / ``init_empty_weights``: was ``RuntimeError: Tensor.item() cannot
    be called on meta tensors`` (text) or ``Tensor on device cpu is not on the expected device
    meta`` (vision)."""
    bert, ids = bert_classifier()
    vit, pixels = timm_model("vit_small_patch16_224")
    gpt, gpt_ids = gpt2()
    cnn = timm_cnn("resnet18", attn="cbam")
    calls = {
        "probe.trace": lambda: probe.trace(_on_meta(bert), ids),
        "probe.trace ": lambda: probe.trace(_on_meta(vit), pixels),
        "probe.attribute": lambda: probe.attribute(_on_meta(vit), pixels, "rollout"),
        "probe.attribute ": lambda: probe.attribute(_on_meta(bert), ids, "saliency", target=0),
        "probe.generate": lambda: probe.generate(_on_meta(gpt), gpt_ids["input_ids"][:1],
                                                 max_new_tokens=2),
        "probe.trace_gates": lambda: probe.trace_gates(_on_meta(cnn), torch.rand(1, 3, 32, 32)),
    }
    for entry, call in calls.items():
        with pytest.raises(probe.ProbeError, match=rf"^{entry.strip()}: {META}"):
            call()
    probe.trace(bert, ids)  # the models themselves still work
    probe.trace(vit, pixels)


def test_a_model_with_one_empty_buffer_is_named_by_it():
    vit, pixels = timm_model("vit_small_patch16_224")
    vit = copy.deepcopy(vit)
    vit.pos_embed = torch.nn.Parameter(vit.pos_embed.to("meta"))
    with pytest.raises(probe.ProbeError, match=r"\(e\.g\. 'pos_embed'; "):
        probe.trace(vit, pixels)


def test_to_grid_and_upsample_name_what_they_take():
    """Swapped arguments were ``AttributeError: 'Tensor' object has no attribute 'grid'``, a
    numpy array ``AttributeError: ... 'dim'``."""
    import numpy as np

    vit, pixels = timm_model("vit_small_patch16_224")
    tr = probe.trace(vit, pixels)
    scores = torch.rand(2, tr.seq_len)
    with pytest.raises(probe.ProbeError, match=r"^probe\.to_grid takes \(scores, trace\): the "
                                               r"trace came first; swap them$"):
        probe.to_grid(tr, scores)
    with pytest.raises(probe.ProbeError, match=r"^probe\.to_grid needs a probe Trace, got Tensor"):
        probe.to_grid(scores, scores)
    with pytest.raises(probe.ProbeError, match=r"scores must be a torch tensor, got ndarray "
                                               r"\(convert it with torch\.as_tensor\)$"):
        probe.to_grid(scores.numpy(), tr)
    with pytest.raises(probe.ProbeError, match=r"^probe\.upsample\(maps, size\): maps must be a "
                                               r"torch tensor, got ndarray"):
        probe.upsample(np.zeros((4, 4)), (8, 8))
    grid = probe.to_grid(scores, tr)
    assert torch.equal(grid.flatten(1), scores[:, tr.num_prefix_tokens:])


def test_show_names_an_option_its_view_does_not_take(minilm):
    """``probe.show(trace, "heads", foo=1)`` was ``TypeError: head_view_html() got an
    unexpected keyword argument 'foo'`` (``probe.plot`` already said which options it takes)."""
    model, tokenizer = minilm
    tr = probe.trace(model, "The cat sat because it was tired.", tokenizer=tokenizer)
    for view, kwargs, page in (("heads", {}, "head_view_html"), ("model", {}, "model_view_html"),
                               ("coref", {"word": "it"}, "coref_view_html")):
        with pytest.raises(probe.ProbeError, match=rf"^colour= is not an option of the {view} "
                           rf"view \(its page is probe\.viewers\.html\.{page}: see its help for "
                           r"the options\): drop it$"):
            probe.show(tr, view, colour="red", **kwargs)
        assert callable(getattr(probe.viewers.html, page))
    assert "mine" in probe.show(tr, "heads", title="mine").html  # a real option still works
