"""float16 / bfloat16 vision models on the CPU take the float32 pixels a notebook has.

HF ViT casts its pixels to its weights' dtype itself; timm models do not, so probe casts the
pixel copy it feeds every vision model (capture, attribution and perturbation alike), as the
gradient methods always did. The caller's tensor is not touched.
"""

from __future__ import annotations

import pytest
import torch

import probe
from tests._cnn import timm_cnn
from tests._tiny import timm_model


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_timm_vit_takes_float32_pixels_everywhere(dtype: torch.dtype) -> None:
    model, x = timm_model("vit_small_patch16_224")
    model = model.to(dtype)
    before = x.clone()
    got = probe.trace(model, x)
    want = probe.trace(model, x.to(dtype))  # what a user casting by hand gets
    torch.testing.assert_close(got.attentions, want.attentions, rtol=0, atol=0)
    torch.testing.assert_close(got.output, want.output, rtol=0, atol=0)
    assert got.attentions.dtype == dtype
    rollout = probe.attribute(model, x, "rollout")
    assert rollout.scores.shape == (2, 16) and torch.isfinite(rollout.scores).all()
    curve = probe.deletion_curve(model, x, rollout, steps=4)
    assert torch.isfinite(torch.as_tensor(curve.values)).all()
    assert x.dtype == torch.float32 and torch.equal(x, before)


def test_half_timm_cnn_takes_float32_pixels() -> None:
    model = timm_cnn("resnet10t", "se").to(torch.bfloat16)
    x = torch.randn(2, 3, 32, 32)
    attr = probe.attribute(model, x, "gradcam")
    assert torch.isfinite(attr.scores).all()
    curve = probe.insertion_curve(model, x, attr, steps=4)
    assert torch.isfinite(torch.as_tensor(curve.values)).all()
    result = probe.sanity_check(model, x, ["gradcam"])
    assert "gradcam" in str(result)
