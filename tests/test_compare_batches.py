"""probe.compare_batches: agreement between methods over a dataset, batch by batch, equals
probe.compare over everything at once."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close
from torch.utils.data import DataLoader, TensorDataset

import probe
from probe._errors import ProbeError
from tests._tiny import timm_model

METHODS = ("attention", "rollout", "saliency")


@pytest.fixture(scope="module")
def vit():
    model, _ = timm_model("vit_tiny_patch16_224", img=32, num_classes=3)
    torch.manual_seed(0)
    return model, torch.randn(7, 3, 32, 32)


@pytest.mark.parametrize("metric,k", [("spearman", None), ("kendall", None), ("topk", 0.25)])
def test_vision_batches_equal_one_call(vit, metric, k):
    model, x = vit
    whole = probe.compare([probe.attribute(model, x, m) for m in METHODS], metric, k=k)
    parts = probe.compare_batches(model, x, METHODS, metric, k=k, batch_size=3, progress=False)
    assert parts.methods == whole.methods and (parts.metric, parts.k) == (metric, k)
    assert_close(parts.values, whole.values, atol=1e-9, rtol=0)
    assert not torch.allclose(parts.values, torch.ones_like(parts.values))  # not trivially 1


def test_dataloader_generator_and_seeded_methods(vit):
    model, x = vit
    loader = DataLoader(TensorDataset(x, torch.arange(7)), batch_size=4)
    methods = ["rollout", "random", ("rollout", {"head_fusion": "max"})]
    table = probe.compare_batches(model, loader, methods, progress=False)
    assert table.methods == ("rollout", "random", "rollout[head_fusion=max]")
    # the reference: compare of attribute_batches (same seed per batch for 'random')
    reference = probe.compare([
        probe.attribute_batches(model, loader, "rollout", progress=False),
        probe.attribute_batches(model, loader, "random", progress=False),
        probe.attribute_batches(model, loader, "rollout", head_fusion="max", progress=False),
    ])
    assert_close(table.values, reference.values, atol=1e-9, rtol=0)
    lazy = probe.compare_batches(model, (x[i : i + 2] for i in range(0, 7, 2)), methods[:2],
                                 progress=False)
    assert_close(lazy.values, probe.compare_batches(model, x, methods[:2], batch_size=2,
                                                    progress=False).values)


def test_text_batches_ignore_padding(minilm):
    model, tok = minilm
    texts = ["A man plays guitar.", "Hi.", "The animal didn't cross the street because it was "
             "too tired.", "Dogs bark."]
    methods = ["attention", "rollout", "saliency"]

    def target(output):  # [batch]: the CLS embedding's sum, a per-item scalar
        return output.last_hidden_state[:, 0].sum(-1)

    whole_attrs = [probe.attribute(model, texts, m, tokenizer=tok, target=target) for m in methods]
    trace = probe.trace(model, texts, tokenizer=tok)
    whole = probe.compare(whole_attrs, mask=trace)  # real, non-special tokens only
    parts = probe.compare_batches(model, texts, methods, tokenizer=tok, target=target,
                                  batch_size=3, progress=False)
    assert_close(parts.values, whole.values, atol=1e-6, rtol=0)
    # text Attributions carry their valid tokens: the default is the trace's mask
    assert_close(probe.compare(whole_attrs).values, whole.values, atol=0, rtol=0)
    # plain tensors have no units: padding and specials counted, a different number
    padded = probe.compare({a.label: a.scores for a in whole_attrs})
    assert not torch.allclose(padded.values, parts.values)
    # attribute_batches keeps each item's valid tokens through the padding between batches
    batched = [probe.attribute_batches(model, texts, m, tokenizer=tok, target=target,
                                       batch_size=3, progress=False) for m in methods]
    assert batched[0].units.shape == batched[0].scores.shape
    assert_close(probe.compare(batched).values, parts.values, atol=1e-6, rtol=0)
    with pytest.raises(ProbeError, match="mark different tokens as valid.*same inputs"):
        probe.compare([whole_attrs[0], probe.attribute(model, texts[::-1], "random",
                                                       tokenizer=tok)])


def test_bad_calls(vit):
    model, x = vit
    with pytest.raises(ProbeError, match="at least two"):
        probe.compare_batches(model, x, ["rollout"])
    with pytest.raises(ProbeError, match="list of at least two"):
        probe.compare_batches(model, x, "rollout")
    with pytest.raises(ProbeError, match="needs k"):
        probe.compare_batches(model, x, METHODS, "topk")
    with pytest.raises(ProbeError, match="drop k"):
        probe.compare_batches(model, x, METHODS, k=3)
    with pytest.raises(ProbeError, match="unknown metric"):
        probe.compare_batches(model, x, METHODS, "pearson")  # type: ignore[arg-type]
    with pytest.raises(ProbeError, match="name or a"):
        probe.compare_batches(model, x, ["rollout", 3])
    with pytest.raises(ProbeError, match="empty"):
        probe.compare_batches(model, iter([]), METHODS, progress=False)
    with pytest.raises(ProbeError, match="duplicate"):
        probe.compare_batches(model, x, ["rollout", "rollout"], progress=False)


def test_mapping_chooses_labels_as_the_duplicate_message_suggests(vit):
    model, x = vit
    with pytest.raises(ProbeError, match="duplicate.*mapping"):
        probe.compare_batches(model, x, ["rollout", ("rollout", {})], progress=False)
    methods = {"mean": "rollout", "max": ("rollout", {"head_fusion": "max"}), "grad": "saliency"}
    table = probe.compare_batches(model, x, methods, batch_size=3, progress=False)
    listed = probe.compare_batches(model, x, list(methods.values()), batch_size=3, progress=False)
    assert table.methods == ("mean", "max", "grad")
    assert_close(table.values, listed.values, atol=0, rtol=0)
    with pytest.raises(ProbeError, match="at least two methods"):
        probe.compare_batches(model, x, {"only": "rollout"}, progress=False)
