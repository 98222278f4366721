"""A dataset or a DataLoader batch handed to probe.trace / probe.attribute names the fix.

In a notebook the first thing at hand is often the DataLoader itself or one of its
``(inputs, labels)`` batches; both were "unsupported inputs of type DataLoader/tuple" (text)
or "convert images with the model's preprocessing first" (vision), which is not the fix.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import probe
from tests._tiny import bert, timm_model

BATCH = r"an \(inputs, labels, \.\.\.\) batch: pass batch\[0\]"


def test_vision_dataloader_and_its_batch() -> None:
    model, x = timm_model("vit_small_patch16_224")
    loader = DataLoader(TensorDataset(x, torch.tensor([0, 1])), batch_size=2)
    for call in (lambda: probe.trace(model, loader),
                 lambda: probe.attribute(model, loader, "rollout")):
        with pytest.raises(probe.ProbeError, match=r"DataLoader .*probe\.attribute_batches"):
            call()
    with pytest.raises(probe.ProbeError, match=BATCH):
        probe.trace(model, next(iter(loader)))


def test_text_dataloader_and_its_batch() -> None:
    model, _ = bert()
    loader = DataLoader([(torch.arange(5, 9), 0), (torch.arange(6, 10), 1)], batch_size=2)
    with pytest.raises(probe.ProbeError, match=r"DataLoader .*probe\.attribute_batches"):
        probe.attribute(model, loader, "attention")
    with pytest.raises(probe.ProbeError, match=BATCH):
        probe.trace(model, next(iter(loader)))
    with pytest.raises(probe.ProbeError, match=r"list_iterator .*probe\.attribute_batches"):
        probe.trace(model, iter([torch.arange(5, 9)[None]]))
