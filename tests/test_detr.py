"""DETR: encoder, decoder and cross-attention of object queries, exact against eager."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import DetrConfig, DetrForObjectDetection

import probe
from probe.analysis._detr import detr_predictions, query_maps


def _config(**kw) -> DetrConfig:
    base = dict(
        use_timm_backbone=True, backbone="resnet18", use_pretrained_backbone=False, num_queries=5,
        d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, num_labels=3,
    )
    return DetrConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def detr() -> DetrForObjectDetection:
    torch.manual_seed(0)
    return DetrForObjectDetection(_config(attn_implementation="sdpa")).eval()


def _pixels() -> torch.Tensor:
    return torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))


def test_detr_attention_equals_eager_output_attentions(detr: DetrForObjectDetection) -> None:
    x = _pixels()
    eager = copy.deepcopy(detr)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        ref = eager(pixel_values=x, output_attentions=True)
        plain = detr(pixel_values=x)
    tr = probe.trace(detr, x)
    assert detr.config._attn_implementation == "sdpa"
    assert tr.family == "encoder-decoder" and tr.grid == (2, 3) and tr.num_prefix_tokens == 0
    torch.testing.assert_close(tr.output.logits, plain.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(tr.attentions, torch.stack(ref.encoder_attentions), rtol=1e-5,
                               atol=1e-6)
    torch.testing.assert_close(tr.decoder.attentions, torch.stack(ref.decoder_attentions),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(tr.cross.attentions, torch.stack(ref.cross_attentions), rtol=1e-5,
                               atol=1e-6)
    assert tr.cross.attentions.shape == (2, 2, 4, 5, 6)
    maps = query_maps(tr)
    assert maps.shape == (2, 5, 2, 3)
    torch.testing.assert_close(maps.sum((-1, -2)), torch.ones(2, 5))
    torch.testing.assert_close(maps[1, 3].flatten(), tr.cross.attentions[-1, 1, :, 3].mean(0))


def test_detr_odd_sizes_and_the_exception_path(detr: DetrForObjectDetection) -> None:
    x = torch.randn(1, 3, 70, 33)
    tr = probe.trace(detr, x)
    assert tr.grid == (3, 2)  # ceil(70 / 32), ceil(33 / 32)

    def boom(*_):
        raise RuntimeError("boom")

    handle = detr.model.decoder.layers[1].register_forward_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            probe.trace(detr, x)
    finally:
        handle.remove()
    assert detr.config._attn_implementation == "sdpa"
    with torch.no_grad():
        torch.testing.assert_close(probe.trace(detr, x).output.logits, detr(pixel_values=x).logits)


def test_detr_predictions() -> None:
    logits = torch.tensor([[[2.0, 0.0, 5.0], [0.0, 3.0, 0.0]]])
    classes, scores, boxes = detr_predictions(logits, torch.rand(1, 2, 4))
    assert classes.tolist() == [[0, 1]]
    torch.testing.assert_close(scores[0, 1], logits[0, 1].softmax(-1)[1])
    with pytest.raises(probe.ProbeError, match="boxes"):
        detr_predictions(logits, torch.rand(1, 3, 4))


def test_deformable_detr_is_not_supported_yet() -> None:
    from transformers import DeformableDetrConfig, DeformableDetrForObjectDetection

    cfg = DeformableDetrConfig(
        use_timm_backbone=True, backbone="resnet18", use_pretrained_backbone=False, num_queries=4,
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_labels=2,
    )
    torch.manual_seed(0)
    model = DeformableDetrForObjectDetection(cfg).eval()
    with pytest.raises(probe.UnsupportedModelError, match="not supported yet"):
        probe.trace(model, torch.randn(1, 3, 64, 64))


def test_conditional_detr_shares_detr_attention_and_is_exact() -> None:
    """Conditional DETR's queries attend over the whole feature map like DETR's (their
    queries add a learned spatial part): captured exactly, with the same geometry."""
    from transformers import ConditionalDetrConfig, ConditionalDetrForObjectDetection

    base = dict(
        use_timm_backbone=True, backbone="resnet18", use_pretrained_backbone=False, num_queries=5,
        d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, num_labels=3,
    )
    torch.manual_seed(0)
    model = ConditionalDetrForObjectDetection(
        ConditionalDetrConfig(**base, attn_implementation="sdpa")
    ).eval()
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    x = _pixels()
    with torch.no_grad():
        ref = eager(pixel_values=x, output_attentions=True)
        plain = model(pixel_values=x)
    tr = probe.trace(model, x)
    assert model.config._attn_implementation == "sdpa"
    assert tr.grid == (2, 3)
    torch.testing.assert_close(tr.output.logits, plain.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(tr.attentions, torch.stack(ref.encoder_attentions), rtol=1e-5,
                               atol=1e-6)
    torch.testing.assert_close(tr.decoder.attentions, torch.stack(ref.decoder_attentions),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(tr.cross.attentions, torch.stack(ref.cross_attentions), rtol=1e-5,
                               atol=1e-6)
    maps = query_maps(tr)
    assert maps.shape == (2, 5, 2, 3)
    torch.testing.assert_close(maps.sum((-1, -2)), torch.ones(2, 5))


def test_table_transformer_is_refused_clearly() -> None:
    """Table Transformer is a DETR whose attention is written by hand (no dispatch): refused
    with the message every hand-written attention gets, never a crash."""
    from transformers import TableTransformerConfig, TableTransformerForObjectDetection

    cfg = TableTransformerConfig(
        use_timm_backbone=True, backbone="resnet18", use_pretrained_backbone=False, num_queries=4,
        d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_labels=2,
    )
    model = TableTransformerForObjectDetection(cfg).eval()
    with pytest.raises(probe.UnsupportedModelError, match="no attention modules found"):
        probe.trace(model, torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize(
    "kind, grid",
    [("detr-resnet-50", (3, 4)), ("detr-resnet-50-dc5", (6, 8)),
     ("conditional-detr-resnet-50", (3, 4))],
)
def test_published_detr_architectures_at_full_size(kind: str, grid: tuple) -> None:
    """The published checkpoints' architectures (``facebook/detr-resnet-50``, its dilated
    ``-dc5`` variant, ``microsoft/conditional-detr-resnet-50``: their configs are the
    transformers defaults, ResNet-50 backbone, 6 + 6 layers, 8 heads, 100 or 300 queries,
    d_model 256) with random weights, since the trained ones cannot be downloaded here: exact
    against eager at a 96 x 128 image (grid = image / 32, or / 16 with dilation)."""
    from transformers import ConditionalDetrConfig, ConditionalDetrForObjectDetection

    conditional = kind.startswith("conditional")
    cls, cfg_cls = ((ConditionalDetrForObjectDetection, ConditionalDetrConfig) if conditional
                    else (DetrForObjectDetection, DetrConfig))
    cfg = cfg_cls(use_pretrained_backbone=False, dilation=kind.endswith("dc5"))
    torch.manual_seed(0)
    model = cls(cfg).eval()
    assert model.config._attn_implementation == "sdpa"
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    x = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = eager(pixel_values=x, output_attentions=True)
        plain = model(pixel_values=x)
    tr = probe.trace(model, x)
    queries = cfg.num_queries
    assert tr.grid == grid and tr.cross.attentions.shape == (6, 1, 8, queries, grid[0] * grid[1])
    torch.testing.assert_close(tr.output.logits, plain.logits, rtol=1e-5, atol=1e-5)
    for got, want in ((tr.attentions, ref.encoder_attentions),
                      (tr.decoder.attentions, ref.decoder_attentions),
                      (tr.cross.attentions, ref.cross_attentions)):
        torch.testing.assert_close(got, torch.stack(want), rtol=1e-5, atol=1e-6)
    assert query_maps(tr).shape == (1, queries, *grid)
