"""timm vision transformers probe does not capture yet are refused naming what they are: a
hybrid with its own attention classes is not called a convolutional network, a multi-stage
transformer without a patch embedding is not told that CNNs are unsupported (their gates are),
and a plain CNN keeps its message with the routes that work."""

from __future__ import annotations

import re

import pytest
import torch

import probe
from tests._tiny import assert_unchanged, snapshot

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.parametrize("name, message", [
    ("levit_128s", "levit_128s has attention modules probe does not capture yet (Attention, "
                   "AttentionDownsample): probe.trace captures timm models whose attention "
                   "modules have a fused_attn flag over one token sequence (ViT, DeiT, EVA, "
                   "BEiT; Swin by its windows)"),
    ("gcvit_xxtiny", "gcvit_xxtiny has attention modules probe does not capture yet "
                     "(WindowAttentionGlobal): probe.trace captures timm models whose attention "
                     "modules have a fused_attn flag over one token sequence (ViT, DeiT, EVA, "
                     "BEiT; Swin by its windows); it has 11 attention gates (channel): capture "
                     "them with probe.trace_gates(model, pixels)"),
    ("twins_svt_small", "Twins has attention modules but no patch embedding (patch_embed) "
                        "mapping its tokens to one patch grid (a hybrid or multi-stage vision "
                        "transformer): not supported yet; probe supports timm ViT, DeiT, EVA, "
                        "BEiT and Swin"),
    ("resnet18", "resnet18 is a convolutional network: probe.trace captures attention matrices "
                 "of transformers; it has no attention modules; use gradient methods such as "
                 "probe.attribute(model, pixels, 'gradcam')"),
])
def test_refusal_names_what_the_model_is(name: str, message: str) -> None:
    import timm

    model = timm.create_model(name, pretrained=False, num_classes=3).eval()
    before = snapshot(model)
    x = torch.randn(1, *model.pretrained_cfg["input_size"])
    with pytest.raises(probe.UnsupportedModelError, match=re.escape(message) + "$"):
        probe.trace(model, x)
    assert_unchanged(model, before)
