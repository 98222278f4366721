"""ALBERT: attention modules shared across depth, one layer of the trace per call.

ALBERT runs ``num_hidden_groups`` groups of ``inner_group_num`` layers ``num_hidden_layers``
times (albert-base-v2: one attention module computes all 12 layers). probe numbers the calls
(``probe/capture/adapters/_hf_shared.py``); these tests hold the schedule against eager
``output_attentions`` for several group layouts, and the paths that take layers or rows.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.testing import assert_close

import probe
from tests._tiny import albert, assert_unchanged, snapshot


def _eager(model):
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    return eager


def _real(attn: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return attn * mask.bool()[None, :, None, :, None]


@pytest.mark.parametrize("layers, groups, inner", [(4, 1, 1), (4, 2, 1), (3, 1, 2), (4, 2, 2),
                                                   (6, 3, 1), (5, 2, 1)])
def test_every_call_is_a_layer_exact_against_eager(layers, groups, inner):
    torch.manual_seed(0)
    model, inputs = albert(layers, groups, inner)
    assert model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        ref = _eager(model)(**inputs, output_attentions=True)
        plain = model(**inputs)
    before = snapshot(model)
    tr = probe.trace(model, inputs)
    assert_unchanged(model, before)
    assert model.config._attn_implementation == "sdpa"
    assert len(ref.attentions) == layers * inner
    assert tr.attentions.shape == (layers * inner, 2, 4, 9, 9)
    assert_close(tr.attentions, _real(torch.stack(ref.attentions), inputs["attention_mask"]),
                 atol=1e-5, rtol=0)
    assert_close(tr.output.last_hidden_state, plain.last_hidden_state, atol=1e-5, rtol=1e-5)
    # layer i runs group int(i / (layers / groups)), its inner layers in order
    for k, name in enumerate(tr.layer_names):
        i, j = divmod(k, inner)
        group = int(i / (layers / groups))
        assert name == f"encoder.albert_layer_groups.{group}.albert_layers.{j}.attention@{k}"


def test_layers_rows_chunks_and_gradients_follow_the_calls():
    torch.manual_seed(0)
    model, inputs = albert(4, 2, 1)
    full = probe.trace(model, inputs)
    assert_close(probe.trace(model, inputs, layers=[-1, 1]).attentions, full.attentions[[1, 3]])
    assert_close(probe.trace(model, inputs, chunk_size=4).attentions, full.attentions)
    rows = probe.trace(model, inputs, query_rows=[0, -1])
    assert_close(rows.attentions[..., 0, :], full.attentions[..., 0, :])
    assert_close(rows.attentions[..., -1, :], full.attentions[..., -1, :])
    graph = probe.trace(model, inputs, requires_grad=True)
    assert len(graph.layer_tensors) == 4
    # the four calls are four tensors of the graph: a loss on call 3 reaches only call <= 3
    graph.output.last_hidden_state[0, 0].sum().backward()
    assert all(t.grad is not None for t in graph.layer_tensors)
    assert len({t.data_ptr() for t in graph.layer_tensors}) == 4


def test_a_forward_that_raises_restores_the_call_count():
    """The per-module call counter lives in one capture: after a forward raised half-way,
    the next capture numbers the calls from 0 again."""
    torch.manual_seed(0)
    model, inputs = albert(4, 1, 1)
    full = probe.trace(model, inputs)
    calls = {"n": 0}

    def boom(module, args, output):
        calls["n"] += 1
        if calls["n"] == 2:  # the second call of the one shared layer
            raise RuntimeError("boom")

    handle = model.encoder.albert_layer_groups[0].albert_layers[0].register_forward_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            probe.trace(model, inputs)
    finally:
        handle.remove()
    assert model.config._attn_implementation == "sdpa"
    assert_close(probe.trace(model, inputs).attentions, full.attentions)


def test_methods_and_the_sanity_cascade_on_a_classifier():
    from transformers import AlbertConfig, AlbertForSequenceClassification

    torch.manual_seed(0)
    cfg = AlbertConfig(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=4,
                       num_hidden_groups=2, num_attention_heads=4, intermediate_size=64,
                       max_position_embeddings=64, num_labels=3)
    model = AlbertForSequenceClassification(cfg).eval()
    _, inputs = albert()
    for method in ("rollout", "relevance", "ig"):
        attr = probe.attribute(model, inputs, method=method)
        assert attr.scores.shape == (2, 9) and torch.isfinite(attr.scores).all()
    # IG's completeness holds through the shared layers (the sum of its attributions is the
    # change of the target logit from the baseline)
    ig = probe.integrated_gradients(model, inputs, n_steps=64)
    assert float(probe.completeness(ig).abs().max()) < 0.05
    # the cascade randomises a group (all the layers of depth it computes) per step
    steps = [name for name, _ in probe.cascade_order(model)]
    assert steps == ["classifier", "albert.pooler", "albert.encoder.albert_layer_groups.1",
                     "albert.encoder.albert_layer_groups.0", "embeddings"]


def test_a_layer_shared_by_registration_is_refused_clearly():
    """Another model reusing an attention module across depth (here a BERT whose second layer
    is its first) gets the once-per-forward error, which now names the cases it covers."""
    from tests._tiny import bert

    model, inputs = bert()
    model.encoder.layer[1] = model.encoder.layer[0]
    with pytest.raises(probe.ProbeError, match="ran 2 times in one forward.*ALBERT only"):
        probe.trace(model, inputs)
    assert model.config._attn_implementation == "sdpa"
