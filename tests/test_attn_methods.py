"""Attention-based methods of the registry: math against the analyzers, shapes, no side effects."""

from __future__ import annotations

import copy

import pytest
import torch
from tests._tiny import _ids, assert_unchanged, snapshot, timm_model

import probe
from probe.attribution._registry import attribute, list_methods
from probe._errors import ProbeError
from probe.analysis._relevance import relevance_from_gradients
from probe.analysis._rollout import rollout

ATTN_METHODS = ("attention", "rollout", "rollout-max", "rollout-min", "relevance", "random")


# fixtures vit (4x6 grid, 1 CLS), vit_reg (5 prefix tokens), bert_cls: conftest.py


# --------------------------------------------------------------------------- vision
@pytest.mark.parametrize("fixture", ["vit", "vit_reg"])
def test_vision_shapes_and_cls_reads(fixture, request):
    model, x = request.getfixturevalue(fixture)
    tr = probe.trace(model, x)
    rows, cols = tr.grid
    p = tr.num_prefix_tokens
    assert p == (5 if fixture == "vit_reg" else 1)
    for method in ATTN_METHODS:
        a = attribute(model, x, method, trace=tr)
        assert a.scores.shape == (2, rows * cols), method
        assert a.as_grid().shape == (2, rows, cols)
    attn = attribute(model, x, "attention", trace=tr).scores
    torch.testing.assert_close(attn, tr.attentions[-1].mean(1)[:, 0, p:].float())
    for method, fusion in (("rollout", "mean"), ("rollout-max", "max"), ("rollout-min", "min")):
        expected = rollout(tr, fusion)[:, 0, p:].float()
        torch.testing.assert_close(attribute(model, x, method, trace=tr).scores, expected)
    # options reach the analyzer
    expected = rollout(tr, "mean", discard_ratio=0.5, start_layer=1)[:, 0, p:].float()
    got = attribute(model, x, "rollout", trace=tr, discard_ratio=0.5, start_layer=1).scores
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("class_token", [False, True])
def test_average_pooled_vision_reads_the_mean_patch_row(class_token):
    model, x = timm_model("vit_small_patch16_224", class_token=class_token, global_pool="avg")
    tr = probe.trace(model, x)
    p = tr.num_prefix_tokens
    assert p == int(class_token)
    got = attribute(model, x, "attention", trace=tr).scores
    torch.testing.assert_close(got, tr.attentions[-1].mean(1)[:, p:, p:].mean(1).float())
    cls_row = attribute(model, x, "attention", trace=tr, query="cls" if p else 0).scores
    torch.testing.assert_close(cls_row, tr.attentions[-1].mean(1)[:, 0, p:].float())


def test_flow_matches_the_analyzer_and_keeps_its_size_error(vit):
    from probe.analysis._flow import attention_flow

    model, x = timm_model("vit_small_patch16_224")  # 17 tokens
    tr = probe.trace(model, x[:1])
    got = attribute(model, x[:1], "flow", trace=tr).scores
    torch.testing.assert_close(got, attention_flow(tr)[:, 0, 1:].float())
    with pytest.raises(ProbeError, match="max_tokens"):
        attribute(model, x[:1], "flow", trace=tr, max_tokens=8)


def _independent_relevance(model, inputs, target_fn, **trace_kwargs) -> tuple[torch.Tensor, object]:
    """Chefer relevance through .backward() and trace.gradients() on a copy of the model."""
    twin = copy.deepcopy(model)
    tr = probe.trace(twin, inputs, requires_grad=True, **trace_kwargs)
    target_fn(tr.output).sum().backward()
    return relevance_from_gradients(tr.attentions, tr.gradients()), tr


@pytest.mark.parametrize("fixture", ["vit", "vit_reg"])
def test_vision_relevance_matches_independent_gradients(fixture, request):
    model, x = request.getfixturevalue(fixture)
    x_before = x.clone()
    before = snapshot(model)
    classes = model(x).argmax(-1)
    ref, tr = _independent_relevance(model, x, lambda out: out.gather(1, classes[:, None]))
    p = tr.num_prefix_tokens
    got = attribute(model, x, "relevance").scores
    torch.testing.assert_close(got, ref[:, 0, p:].float(), atol=1e-6, rtol=1e-5)
    # an explicit class and the full-map helper
    ref2, _ = _independent_relevance(model, x, lambda out: out[:, 3])
    got3 = attribute(model, x, "relevance", target=3).scores
    torch.testing.assert_close(got3, ref2[:, 0, p:].float())
    from probe.attribution._attention import gradient_relevance

    torch.testing.assert_close(gradient_relevance(model, x, target=3), ref2, atol=1e-6, rtol=1e-5)
    assert_unchanged(model, before)
    assert torch.equal(x, x_before) and not x.requires_grad and x.grad is None


# --------------------------------------------------------------------------- text
def test_text_classifier_reads_the_cls_row(bert_cls):
    model, inputs = bert_cls
    tr = probe.trace(model, inputs)
    mask = inputs["attention_mask"].bool()
    for method in ATTN_METHODS:
        scores = attribute(model, inputs, method, trace=tr).scores
        assert scores.shape == inputs["input_ids"].shape, method
        assert bool((scores[~mask] == 0).all()), method  # padding scores 0
    got = attribute(model, inputs, "attention", trace=tr).scores
    expected = tr.attentions[-1].mean(1)[:, 0, :].float() * mask
    torch.testing.assert_close(got, expected)
    got = attribute(model, inputs, "rollout", trace=tr).scores
    torch.testing.assert_close(got, rollout(tr)[:, 0, :].float() * mask)
    torch.testing.assert_close(got.sum(-1), torch.ones(2))  # rows sum to 1
    # overriding the query rows
    last = attribute(model, inputs, "rollout", trace=tr, query="last").scores
    torch.testing.assert_close(last[1], rollout(tr)[1, 5, :].float() * mask[1])
    third = attribute(model, inputs, "attention", trace=tr, query=2).scores
    torch.testing.assert_close(third, tr.attentions[-1].mean(1)[:, 2, :].float() * mask)


def test_left_padded_classifier_cls_row_is_refused(bert_cls):
    """Left padding puts padding where the classifier reads [CLS]: that row is zero, so every
    score would silently be 0; refused with the fix, and an explicit query still works."""
    model, inputs = bert_cls
    flipped = {k: v.flip(-1) for k, v in inputs.items()}  # item 1: padding first
    tr = probe.trace(model, flipped)
    for method in [m for m in ATTN_METHODS if m != "random"] + ["flow"]:
        with pytest.raises(ProbeError, match="left-padded.*padding_side"):
            attribute(model, flipped, method, trace=tr)
    last = attribute(model, flipped, "attention", trace=tr, query=-1).scores
    torch.testing.assert_close(last, tr.attentions[-1].mean(1)[:, -1, :].float()
                               * flipped["attention_mask"])


def test_text_relevance_matches_independent_gradients(bert_cls):
    model, inputs = bert_cls
    before = snapshot(model)
    ids_before = {k: v.clone() for k, v in inputs.items()}
    with torch.no_grad():
        classes = model(**inputs).logits.argmax(-1)
    ref, tr = _independent_relevance(
        model, inputs, lambda out: out.logits.gather(1, classes[:, None])
    )
    got = attribute(model, inputs, "relevance").scores
    mask = inputs["attention_mask"].bool()
    expected = (ref - torch.eye(ref.shape[-1]))[:, 0, :].float() * mask  # R - I, CLS row
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert_unchanged(model, before)
    assert all(torch.equal(v, ids_before[k]) for k, v in inputs.items())


def test_embedding_model_reads_the_mean_of_real_rows():
    from transformers import BertConfig, BertModel

    torch.manual_seed(1)
    model = BertModel(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=4, intermediate_size=64)).eval()
    inputs = _ids()
    tr = probe.trace(model, inputs)
    mask = inputs["attention_mask"].bool()
    got = attribute(model, inputs, "rollout", trace=tr).scores
    roll = rollout(tr)
    for b in range(2):
        expected = roll[b, mask[b]].mean(0).float() * mask[b]
        torch.testing.assert_close(got[b], expected)
    torch.testing.assert_close(got.sum(-1), torch.ones(2))
    # an embedding model has no predicted class: relevance needs a target
    with pytest.raises(ProbeError, match="similarity_target"):
        attribute(model, inputs, "relevance")

    def pooled_norm(out, attention_mask):
        h = out.last_hidden_state * attention_mask[..., None]
        return h.sum((1, 2))

    pooled_norm.needs_attention_mask = True
    scores = attribute(model, inputs, "relevance", target=pooled_norm).scores
    assert scores.shape == (2, 9) and bool((scores[~mask] == 0).all())


def test_mean_pooled_relevance_is_independent_of_padding():
    from transformers import BertConfig, BertModel

    from probe.attribution._targets import mean_pooled_embedding

    torch.manual_seed(2)
    model = BertModel(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=4, intermediate_size=64)).eval()
    direction = torch.randn(32)

    def projection(out, attention_mask):  # a mean-pooled embedding target, like MiniLM's
        return mean_pooled_embedding(out, attention_mask) @ direction

    projection.needs_attention_mask = True
    inputs = _ids()  # item 1: 6 real tokens, then 3 padding
    alone = {k: v[1:, :6] for k, v in inputs.items()}
    for method in ("relevance", "attention", "rollout"):
        target = projection if method == "relevance" else None
        batch = attribute(model, inputs, method, target=target).scores
        single = attribute(model, alone, method, target=target).scores
        torch.testing.assert_close(batch[1, :6], single[0], atol=1e-5, rtol=1e-4)
        assert bool((batch[1, 6:] == 0).all())


# --------------------------------------------------------------------------- random
def test_random_is_deterministic_by_seed(vit, bert_cls):
    model, x = vit
    a = attribute(model, x, "random", seed=3).scores
    assert torch.equal(a, attribute(model, x, "random", seed=3).scores)
    assert not torch.equal(a, attribute(model, x, "random", seed=4).scores)
    assert bool(((a >= 0) & (a < 1)).all())
    expected = torch.rand(2, 24, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, expected)
    text_model, inputs = bert_cls
    t = attribute(text_model, inputs, "random", seed=3).scores
    assert bool((t[1, 6:] == 0).all()) and bool((t[:, :6] > 0).all())


# --------------------------------------------------------------------------- state and errors
@pytest.mark.parametrize("method", ATTN_METHODS)
def test_no_side_effects_even_in_train_mode_and_frozen(method, vit):
    model, x = vit
    twin = copy.deepcopy(model).train()
    for p in twin.blocks[0].parameters():
        p.requires_grad_(False)
    before = snapshot(twin)
    x_before = x.clone()
    attribute(twin, x, method)
    assert_unchanged(twin, before)
    assert torch.equal(x, x_before) and not x.requires_grad


def test_relevance_works_with_every_parameter_frozen(vit):
    model, x = vit
    twin = copy.deepcopy(model)
    twin.requires_grad_(False)
    scores = attribute(twin, x, "relevance").scores
    torch.testing.assert_close(scores, attribute(model, x, "relevance").scores)
    assert not any(p.requires_grad for p in twin.parameters())


def test_bad_options(vit):
    model, x = vit
    with pytest.raises(ProbeError, match="does not take option"):
        attribute(model, x, "rollout", n_steps=3)
    with pytest.raises(ProbeError, match="query must be"):
        attribute(model, x, "attention", query="first")
    with pytest.raises(ProbeError, match="out of range"):
        attribute(model, x, "attention", query=99)
    with pytest.raises(ProbeError, match="discard_ratio"):
        attribute(model, x, "rollout", discard_ratio=1.5)


def test_all_methods_are_registered():
    assert set(ATTN_METHODS) | {"flow"} <= set(list_methods("text"))
    assert set(ATTN_METHODS) | {"flow"} <= set(list_methods("vision"))


# --------------------------------------------------------------------------- trace= reuse
def test_a_trace_of_other_inputs_is_refused_not_used(vit, bert_cls):
    """``trace=`` saves a forward pass on *the same* inputs; one of other inputs (other images,
    other text, another length or batch) used to be read silently: another input's scores."""
    model, x = vit
    other = probe.trace(model, x.flip(0))
    for method in ("attention", "rollout", "relevance"):
        with pytest.raises(ProbeError, match=r"trace= was captured from other inputs"):
            attribute(model, x, method, trace=other)
    with pytest.raises(ProbeError, match=r"trace= was captured from other inputs"):
        attribute(model, x[:1], "rollout", trace=probe.trace(model, x))
    same = probe.trace(model, x.clone())  # equal inputs, another tensor: reused
    torch.testing.assert_close(attribute(model, x, "rollout", trace=same).scores,
                               attribute(model, x, "rollout").scores)
    text_model, inputs = bert_cls
    shorter = {k: v[:, :5] for k, v in inputs.items()}
    for wrong in (probe.trace(text_model, shorter),
                  probe.trace(text_model, {**inputs, "input_ids": inputs["input_ids"].flip(1)})):
        with pytest.raises(ProbeError, match=r"trace= was captured from other inputs"):
            attribute(text_model, inputs, "attention", trace=wrong)
    with pytest.raises(ProbeError, match=r"trace= must be a probe\.Trace"):
        attribute(text_model, inputs, "attention", trace=inputs)


def test_a_trace_of_another_model_is_refused_even_with_the_same_ids(bert_cls):
    """A trace records its model's family, layers, layer modules and heads: one of another
    architecture was read as this model's attention when only the token ids matched."""
    from transformers import BertConfig, BertForSequenceClassification, GPT2Config, GPT2Model

    model, inputs = bert_cls
    tr = probe.trace(model, inputs)
    cfg = model.config.to_dict()

    def bert(**change):
        return BertForSequenceClassification(BertConfig(**{**cfg, **change})).eval()

    gpt2 = GPT2Model(GPT2Config(vocab_size=99, n_embd=32, n_layer=3, n_head=4)).eval()
    n, h = model.config.num_hidden_layers, model.config.num_attention_heads
    name = repr(tr.model_name)
    fix = ": pass a trace of this model (probe.trace(model, inputs)), or drop trace= to capture it"
    cases = [
        (gpt2, f"(the trace's {name} is an encoder model, the 'GPT2Model' passed a decoder)"),
        (bert(num_hidden_layers=n + 1), f"(the trace's {name} has {n} attention layers, the "
                                        f"'BertForSequenceClassification' passed {n + 1})"),
        (bert(num_attention_heads=h // 2), f"(the trace's {name} has {h} heads per layer, the "
                                           "'BertForSequenceClassification' passed "
                                           f"{h // 2})"),
    ]
    for other, detail in cases:
        with pytest.raises(ProbeError) as err:
            attribute(other, inputs, "attention", trace=tr)
        assert str(err.value) == ("trace= was captured from another model than the one passed "
                                  + detail + fix)
    # legitimate reuse: the same model, a copy of it, a trace of some of its layers
    expected = attribute(model, inputs, "rollout").scores
    torch.testing.assert_close(attribute(model, inputs, "rollout", trace=tr).scores, expected)
    twin = copy.deepcopy(model)
    torch.testing.assert_close(attribute(twin, inputs, "rollout", trace=tr).scores, expected)
    last = probe.trace(model, inputs, layers=[-1], model_name="mine")
    torch.testing.assert_close(attribute(model, inputs, "attention", trace=last).scores,
                               attribute(model, inputs, "attention").scores)
