"""Attribution and faithfulness over datasets: batch by batch equals one call."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close
from torch.utils.data import DataLoader, TensorDataset

import probe
from probe._errors import ProbeError
from tests._tiny import timm_model


@pytest.fixture(scope="module")
def vit():
    model, _ = timm_model("vit_tiny_patch16_224", img=32, num_classes=3)
    torch.manual_seed(0)
    return model, torch.randn(7, 3, 32, 32)


@pytest.mark.parametrize("method", ["rollout", "saliency", "random"])
def test_batches_equal_one_call(vit, method):
    model, x = vit
    whole = probe.attribute(model, x, method)
    parts = probe.attribute_batches(model, x, method, batch_size=3, progress=False)
    assert parts.info["batches"] == 3 and parts.grid == whole.grid
    if method == "random":  # each batch draws from the same seed: rows restart per batch
        assert_close(parts.scores[:3], whole.scores[:3])
        return
    assert_close(parts.scores, whole.scores, atol=1e-5, rtol=1e-4)


def test_dataloader_with_labels(vit):
    model, x = vit
    loader = DataLoader(TensorDataset(x, torch.arange(7)), batch_size=4)
    parts = probe.attribute_batches(model, loader, "rollout", progress=False)
    assert parts.scores.shape[0] == 7 and parts.info["batches"] == 2
    assert_close(parts.scores, probe.attribute(model, x, "rollout").scores)


def test_texts_pad_scores_and_keep_tokens(minilm):
    model, tok = minilm
    texts = ["A man plays guitar.", "Hi.", "The animal didn't cross the street."]
    parts = probe.attribute_batches(model, texts, "rollout", tokenizer=tok, batch_size=2,
                                    progress=False)
    assert parts.scores.shape[0] == 3 and len(parts.tokens) == 3
    alone = probe.attribute(model, texts[2:], "rollout", tokenizer=tok)
    n = alone.scores.shape[1]
    assert_close(parts.scores[2, :n], alone.scores[0])
    assert bool((parts.scores[2, n:] == 0).all())


def test_faithfulness_batches_equal_one_call(vit):
    model, x = vit
    whole = probe.faithfulness(model, x,
                               [probe.attribute(model, x, m) for m in ("rollout", "saliency")],
                               steps=4, n_random=0)
    parts = probe.faithfulness_batches(model, x, ["rollout", "saliency"], batch_size=3,
                                       steps=4, n_random=0, progress=False)
    assert parts.methods == whole.methods
    assert_close(parts.deletion_auc, whole.deletion_auc, atol=1e-5, rtol=1e-4)
    assert_close(parts.insertion_auc, whole.insertion_auc, atol=1e-5, rtol=1e-4)
    assert parts.curves["rollout"][0].values.shape == (7, 5)
    with_random = probe.faithfulness_batches(model, x, {"rollout": {}}, batch_size=4, steps=4,
                                             n_random=2, progress=False)
    assert 0.0 <= with_random.random_deletion_auc <= 1.0


def test_faithfulness_batches_takes_one_method_name(vit):
    model, x = vit
    loader = DataLoader(TensorDataset(x, torch.arange(7)), batch_size=4)
    one = probe.faithfulness_batches(model, loader, "rollout", steps=4, n_random=0, progress=False)
    listed = probe.faithfulness_batches(model, x, ["rollout"], batch_size=4, steps=4, n_random=0,
                                        progress=False)
    assert one.methods == ("rollout",)
    assert_close(one.deletion_auc, listed.deletion_auc)


def test_bad_datasets(vit):
    model, _ = vit
    with pytest.raises(ProbeError, match="empty"):
        probe.attribute_batches(model, iter([]), "rollout", progress=False)
    with pytest.raises(ProbeError, match="batch_size"):
        probe.attribute_batches(model, torch.zeros(2, 3, 32, 32), "rollout", batch_size=0)
    with pytest.raises(ProbeError, match="not one string"):
        probe.attribute_batches(model, "a text", "rollout")
    with pytest.raises(ProbeError, match="cannot iterate"):
        probe.attribute_batches(model, 3, "rollout")


def test_attribute_batches_refuses_several_methods(vit):
    model, x = vit
    with pytest.raises(ProbeError, match="runs one method: pass a name, or use compare_batches"):
        probe.attribute_batches(model, x, ["rollout"], batch_size=2, progress=False)
    with pytest.raises(ProbeError, match="runs one method.*got int"):
        probe.attribute_batches(model, x, 3, batch_size=2, progress=False)


def test_progress_bars_have_the_number_of_batches_as_total(vit, monkeypatch):
    """The batch bars of attribute_batches, faithfulness_batches and compare_batches had no
    total ("3batch [00:01, 2.1batch/s]") although the number of batches is known."""
    import tqdm.auto

    from probe.attribution._batches import batch_count

    totals = []
    real = tqdm.auto.tqdm

    def recording(*args, **kwargs):
        totals.append((kwargs.get("desc"), kwargs.get("total")))
        kwargs["disable"] = True
        return real(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", recording)
    model, x = vit
    probe.attribute_batches(model, x, "rollout", batch_size=3)
    probe.faithfulness_batches(model, x, ["rollout"], batch_size=4, steps=2, n_random=0)
    probe.compare_batches(model, x, ["rollout", "random"], batch_size=5)
    loader = DataLoader(TensorDataset(x, torch.arange(7)), batch_size=2)
    probe.attribute_batches(model, loader, "rollout")
    probe.attribute_batches(model, (b for b in [x[:3], x[3:]]), "rollout")
    assert totals == [("rollout", 3), ("faithfulness", 2), ("compare", 2), ("rollout", 4),
                      ("rollout", None)]  # a generator's length is not known
    assert batch_count(["a", "b", "c"], 2) == 2 and batch_count(["a"], None) == 1
    assert batch_count({"input_ids": torch.zeros(5, 3)}, 2) == 3
