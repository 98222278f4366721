"""Non-finite attention: every analyzer names where the first NaN or inf is, capture stays exact.

Each analyzer gets a hand-built trace whose attention holds one NaN (or +inf) at a chosen
layer and head; the error must name that layer and head (model numbering, not positions) and
the stack. Finite results are covered by the analyzers' own tests, unchanged.
"""

from __future__ import annotations

import dataclasses
import re
import warnings

import pytest
import torch

import probe
from probe._errors import ProbeError
from probe.analysis._detr import query_maps
from probe.analysis._finite import check_finite
from probe.capture._trace import AttentionStack
from tests._factories import make_trace, random_attention
from tests._tiny import bert_classifier

TOKENS = ["[CLS]", "the", "ani", "##mal", ",", "saw", "i", "##t", ".", "[SEP]"]
WORD_IDS = [None, 0, 1, 1, 2, 3, 4, 4, 5, None]
WORDS = ["The", "animal", ",", "saw", "it", "."]


def _poisoned(layers: int, heads: int, tokens: int, at: tuple[int, ...], value: float,
              batch: int = 1) -> torch.Tensor:
    """Softmax attention ``[layer, batch, head, tokens, tokens]`` with ``value`` at ``at``."""
    att = random_attention(layers, batch, heads, tokens, seed=3).clone()
    att[at] = value
    return att


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    assert "float16" in message and "masked" in message  # the likely causes and the fix
    return message


def test_rollout_names_model_layer_and_head_of_the_first_nan() -> None:
    # kept layers 2..4 of a 5-layer model: position 1 is model layer 3
    att = _poisoned(3, 4, 6, (1, 0, 2, 3, 4), float("nan"))
    att[2, 0, 0, 0, 0] = float("nan")  # a later NaN: the first one is named
    trace = make_trace(att, layer_indices=(2, 3, 4), num_model_layers=5)
    with pytest.raises(ProbeError, match=r"^rollout: .*NaN at layer 3, head 2 of the "
                       r"self-attention \(batch item 0, query 3, key 4\)") as err:
        probe.rollout(trace, start_layer=2)
    assert "1 non-finite value(s) in that layer" in _one_line(err)
    # a layer below start_layer is not read: no error
    trace = make_trace(_poisoned(3, 4, 6, (0, 0, 1, 0, 0), float("nan")))
    assert torch.isfinite(probe.rollout(trace, start_layer=1)).all()


def test_rollout_inf_and_heads_averaged() -> None:
    att = _poisoned(2, 1, 5, (1, 0, 0, 2, 2), float("inf"))
    trace = make_trace(att, head_indices=None)
    with pytest.raises(ProbeError, match=r"\+inf at layer 1, heads averaged") as err:
        probe.rollout(trace)
    _one_line(err)


def test_streamed_rollout_refuses_a_non_finite_result() -> None:
    good = make_trace(random_attention(2, 1, 2, 4))
    stored = probe.rollout(good).clone()
    stored[0, 1, 1] = float("nan")
    trace = make_trace(None, shape=(2, 1, 2, 4, 4), rollout_result=stored,
                       rollout_options={"head_fusion": "mean"})
    with pytest.raises(ProbeError, match="stream=True") as err:
        probe.rollout(trace)
    _one_line(err)


def test_rollout_step_on_a_tensor() -> None:
    fused = random_attention(1, 2, 1, 4)[0, :, 0].clone()
    fused[1, 2, 0] = float("-inf")
    with pytest.raises(ProbeError, match=r"^rollout_step: .*-inf .*batch item 1, query 2"):
        probe.rollout_step(fused, None)


def test_attention_flow_names_layer_and_head_and_skips_unread_items() -> None:
    att = _poisoned(3, 2, 5, (2, 1, 1, 0, 3), float("inf"), batch=2)
    trace = make_trace(att)
    with pytest.raises(ProbeError, match=r"^attention_flow: .*\+inf at layer 2, head 1 .*"
                       r"batch item 1") as err:
        probe.attention_flow(trace)
    _one_line(err)
    # item 0 is finite: computing it alone works
    assert torch.isfinite(probe.attention_flow(trace, batch_index=0)).all()


def test_head_stats_names_layer_and_head() -> None:
    att = _poisoned(3, 4, 6, (2, 0, 3, 5, 0), float("nan"))
    with pytest.raises(ProbeError, match=r"^head_stats: .*NaN at layer 2, head 3") as err:
        probe.head_stats(make_trace(att))
    _one_line(err)
    # kept heads (1, 3) of a 4-head model: head position 1 is model head 3
    kept = _poisoned(2, 2, 6, (0, 0, 1, 0, 0), float("nan"))
    with pytest.raises(ProbeError, match=r"NaN at layer 0, head 3"):
        probe.head_stats(make_trace(kept, head_indices=(1, 3), num_heads=4))


def test_coref_and_word_attention_name_layer_and_head() -> None:
    att = torch.eye(10, dtype=torch.float64).repeat(2, 2, 1, 1)[:, None].clone()
    att[1, 0, 1, 6, 2] = float("nan")  # the row of "i", the key "ani"
    trace = make_trace(att, tokens=TOKENS, words=WORDS, word_ids=WORD_IDS)
    with pytest.raises(ProbeError, match=r"NaN at layer 1, head 1 .*query 6, key 2") as err:
        probe.coref(trace, "it")
    _one_line(err)
    with pytest.raises(ProbeError, match=r"NaN at layer 1, head 1"):
        probe.word_attention(trace, "it")
    # another word's rows are finite: no error
    assert torch.isfinite(probe.word_attention(trace, "saw")).all()


def test_patch_maps_name_layer_head_and_the_row() -> None:
    att = _poisoned(2, 3, 5, (1, 0, 2, 0, 3), float("nan"))
    trace = make_trace(att, grid=(2, 2), num_prefix_tokens=1)
    with pytest.raises(ProbeError, match=r"^patch_maps: .*NaN at layer 1, head 2 .*query 0"):
        probe.patch_maps(trace, query=0)
    assert torch.isfinite(probe.patch_maps(trace, query=1)).all()  # another row


def test_detr_query_maps_name_the_cross_attention() -> None:
    cross = _poisoned(2, 4, 4, (1, 0, 3, 2, 1), float("nan"))[..., :4]
    stack = AttentionStack(kind="cross", attentions=cross, layer_names=("a", "b"),
                           layer_indices=(0, 1), head_indices=(0, 1, 2, 3))
    trace = make_trace(random_attention(1, 1, 1, 4), grid=(2, 2)).replace(cross=stack)
    with pytest.raises(ProbeError, match=r"^query_maps: .*NaN at layer 1, head 3 of the "
                       r"cross-attention") as err:
        query_maps(trace, layer=-1)
    _one_line(err)
    assert torch.isfinite(query_maps(trace, layer=0)).all()


def test_relevance_names_attention_and_gradients() -> None:
    att = _poisoned(2, 3, 4, (1, 0, 1, 2, 2), float("nan")).float()
    grads = torch.ones_like(att)
    with pytest.raises(ProbeError, match=r"^relevance_from_gradients: .*attention is not "
                       r"finite: NaN at layer 1, head 1"):
        probe.relevance_from_gradients(att, grads)
    fine = random_attention(2, 1, 3, 4).float()
    bad_grads = grads.clone()
    bad_grads[0, 0, 2, 0, 1] = float("inf")
    with pytest.raises(ProbeError, match=r"attention gradient is not finite: \+inf at layer 0, "
                       r"head 2"):
        probe.relevance_from_gradients(fine, bad_grads)
    leaves = tuple(att[layer].clone().requires_grad_(True) for layer in range(2))
    sum(t.sum() for t in leaves).backward()
    trace = make_trace(att.flip(0), layer_tensors=leaves[::-1], layer_indices=(1, 0))
    with pytest.raises(ProbeError, match=r"^relevance: .*NaN at layer 1, head 1"):
        probe.relevance(trace)


def test_alignment_names_the_cross_attention() -> None:
    from tests.test_alignment import _tiny_marian_with_words

    model, tok = _tiny_marian_with_words()
    gen = probe.generate(model, "the big dog", tokenizer=tok, max_new_tokens=3,
                         eos_token_id=None, min_new_tokens=3)
    cross = gen.cross.attentions.clone()
    cross[1, 0, 2, 1, 0] = float("nan")
    bad = dataclasses.replace(gen, cross=dataclasses.replace(gen.cross, attentions=cross))
    with pytest.raises(ProbeError, match=r"^alignment: .*NaN at layer 1, head 2 of the "
                       r"cross-attention \(batch item 0, query 1, key 0\)") as err:
        probe.alignment(bad)
    _one_line(err)
    assert probe.alignment(gen).scores.isfinite().all()


def _nan_head_classifier(layer: int, head: int):
    """Tiny BERT whose ``head`` of ``layer`` computes NaN queries: NaN attention starts there."""
    model, inputs = bert_classifier()
    attn = model.bert.encoder.layer[layer].attention.self
    size = attn.attention_head_size
    with torch.no_grad():
        attn.query.weight[head * size:(head + 1) * size] = float("nan")
    return model, inputs


def test_capture_records_nan_exactly_and_silently_methods_refuse() -> None:
    model, inputs = _nan_head_classifier(1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace = probe.trace(model, inputs)  # capture records what the model computed
    att = trace.attentions
    assert torch.isfinite(att[0]).all() and torch.isnan(att[1, :, 2]).all()
    assert torch.isfinite(att[1, :, [0, 1, 3]]).all()
    for method in ("attention", "rollout", "flow"):
        options = {"layer": 1} if method == "attention" else {}
        with pytest.raises(ProbeError, match=r"layer 1, head 2 of the self-attention"):
            probe.attribute(model, inputs, method, **options)
    # the attention of a finite layer is still read
    assert probe.attribute(model, inputs, "attention", layer=0).scores.isfinite().all()
    with pytest.raises(ProbeError, match=r"^relevance: .*layer 1, head 2"):
        probe.gradient_relevance(model, inputs, target=0)
    streamed = probe.trace(model, inputs, stream=True)
    with pytest.raises(ProbeError, match="capture again without stream=True"):
        probe.rollout(streamed)


def test_check_finite_is_silent_on_finite_and_integer_tensors() -> None:
    att = random_attention(2, 1, 2, 3)
    check_finite(att, "x")
    check_finite(torch.zeros(1, 1, 1, 1, 1, dtype=torch.long), "x")
    check_finite(torch.full((1, 1, 1, 2, 4), 3e38), "x")  # the sum overflows; every value finite
    half = att.half()
    half[1, 0, 1, 2, 0] = float("nan")
    with pytest.raises(ProbeError, match="NaN at layer 1, head 1"):
        check_finite(half, "x")
    before = att.clone()
    trace = make_trace(att)
    probe.rollout(trace)
    probe.head_stats(trace)
    assert torch.equal(att, before)
    message = "x: the captured attention is not finite: NaN at layer 0, head 0"
    with pytest.raises(ProbeError, match=re.escape(message)):
        check_finite(torch.full((1, 1, 2, 1, 1), float("nan")), "x")


def test_row_selected_trace_names_the_query_position() -> None:
    full = _poisoned(2, 3, 5, (1, 0, 2, 3, 1), float("nan"))
    rows = full[:, :, :, [0, 3]].clone()  # kept query rows 0 and 3
    trace = make_trace(full, grid=(2, 2), num_prefix_tokens=1).replace(
        attentions=rows, query_indices=(0, 3))
    assert torch.isfinite(probe.patch_maps(trace, query=0)).all()
    with pytest.raises(ProbeError, match=r"NaN at layer 1, head 2 of the self-attention "
                       r"\(batch item 0, query 3, key 1\)"):
        probe.patch_maps(trace, query=3)
