"""attribute_batches(target="labels"): each (inputs, labels) batch explained for its own
labels, equal to probe.attribute per batch with the labels as an explicit target; refusals
for batches without labels and for labels the model cannot explain."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close
from torch.utils.data import DataLoader, TensorDataset

import probe
from tests._tiny import bert_classifier, timm_model


@pytest.fixture(scope="module")
def vit():
    model, _ = timm_model("vit_tiny_patch16_224", img=32, num_classes=3)
    torch.manual_seed(0)
    x = torch.randn(7, 3, 32, 32)
    predicted = model(x).argmax(-1)
    labels = (predicted + 1) % 3  # never the predicted class: target=None would differ
    return model, x, labels


def _per_batch(model, x, labels, method, size, **options):
    parts = [probe.attribute(model, x[i : i + size], method, target=labels[i : i + size],
                             **options).scores for i in range(0, len(x), size)]
    return torch.cat(parts)


@pytest.mark.parametrize(("method", "options"), [("saliency", {}), ("ig", {"n_steps": 4}),
                                                 ("gradcam", {})])
def test_labels_equal_per_batch_explicit_targets(vit, method, options):
    model, x, labels = vit
    loader = DataLoader(TensorDataset(x, labels), batch_size=3)
    got = probe.attribute_batches(model, loader, method, target="labels", progress=False,
                                  **options)
    assert got.info["batches"] == 3
    assert_close(got.scores, _per_batch(model, x, labels, method, 3, **options),
                 atol=1e-6, rtol=1e-5)
    default = probe.attribute_batches(model, loader, method, progress=False, **options)
    assert not torch.allclose(got.scores, default.scores)  # the labels were explained


def test_labels_of_a_mapping_and_of_text_batches():
    model, ids = bert_classifier()
    labels = torch.tensor([2, 0])
    data = {**ids, "labels": labels}  # a tokenizer output with a labels column
    got = probe.attribute_batches(model, data, "saliency", target="labels", batch_size=1,
                                  progress=False)
    want = torch.cat([probe.attribute(model, {k: v[i : i + 1] for k, v in ids.items()},
                                      "saliency", target=labels[i : i + 1]).scores
                      for i in range(2)])
    assert_close(got.scores, want, atol=1e-6, rtol=1e-5)
    # a list of (ids, labels) batches, labels as a list of ints
    batches = [({k: v[:1] for k, v in ids.items()}, [2]), ({k: v[1:] for k, v in ids.items()},
                                                             [0])]
    again = probe.attribute_batches(model, batches, "saliency", target="labels", progress=False)
    assert_close(again.scores, want, atol=1e-6, rtol=1e-5)


def test_labels_refused_clearly(vit):
    model, x, labels = vit
    unlabelled = DataLoader(TensorDataset(x), batch_size=4)
    cases = [
        (x, r"target='labels' needs batches that carry labels, but a Tensor"),
        (["a text", "another"], r"but a list of inputs has none"),
        (unlabelled, r"batch 0 carries no labels"),
        ([(x[:2], labels[:2]), x[2:4]], r"batch 1 carries no labels"),
        (DataLoader(TensorDataset(x, labels + 3), batch_size=4),
         r"batch 0 has label \d \(item 0\), but the model has 3 classes: .* 0\.\.2"),
        ([(x[:2], labels[:2]), (x[2:4], torch.tensor([0, 7]))],
         r"batch 1 has label 7 \(item 1\), but the model has 3 classes"),
        ([(x[:2], torch.tensor([0, -100]))], r"batch 0 has label -100; class indices are 0"),
        ([(x[:2], torch.nn.functional.one_hot(labels[:2], 3))],
         r"labels of shape \(2, 3\) for 2 inputs; .* one class index per item"),
        ([(x[:2], labels[:2].float())], r"torch.float32 labels; they must be integer"),
        ([(x[:2], labels[:3])], r"labels of shape \(3,\) for 2 inputs"),
    ]
    for data, match in cases:
        with pytest.raises(probe.ProbeError, match=match) as err:
            probe.attribute_batches(model, data, "saliency", target="labels", progress=False)
        assert "\n" not in str(err.value)
    with pytest.raises(probe.ProbeError, match=r"the only named one is 'labels'"):
        probe.attribute_batches(model, x, "saliency", target="label", progress=False)
    with pytest.raises(probe.ProbeError, match=r"for probe.attribute_batches .* pass its labels"):
        probe.attribute(model, x[:2], "saliency", target="labels")


def test_unlabelled_batches_refused_before_the_progress_bar(vit, capsys):
    model, x, _ = vit
    with pytest.raises(probe.ProbeError, match="carries no labels"):
        probe.attribute_batches(model, DataLoader(TensorDataset(x), batch_size=4), "saliency",
                                target="labels", progress=True)
    assert "saliency" not in capsys.readouterr().err  # no bar was drawn
