"""HF vision families beyond ``prefix + patch grid``: Data2Vec-Vision (its SDPA class calls
torch's SDPA itself: run as its own eager class for the capture), YOLOS (detection tokens
after the patches) and ViT-MAE (random masking: exact in grid order, refused otherwise).
Tiny random-init configs, no downloads."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pytest
import torch
from torch.testing import assert_close

import probe
from probe.analysis._relevance import relevance_from_gradients
from tests._tiny import assert_unchanged, fails_late, snapshot

_SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              image_size=32, patch_size=8)


def _pixels(h: int = 32, w: int = 32) -> torch.Tensor:
    return torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))


def _config(model_type: str, **extra: Any) -> Any:
    import transformers
    from transformers import AutoConfig

    transformers.logging.set_verbosity_error()
    return AutoConfig.for_model(model_type, **{**_SMALL, **extra})


# --------------------------------------------------------------------------- Data2Vec-Vision
def _data2vec(**extra: Any) -> tuple[Any, Any]:
    """The model as users load it (SDPA class) and the same weights in the eager class."""
    from transformers import Data2VecVisionForImageClassification as Cls

    cfg = _config("data2vec-vision", num_labels=3, **extra)
    torch.manual_seed(0)
    model = Cls(cfg).eval()
    eager = Cls._from_config(copy.deepcopy(cfg), attn_implementation="eager").eval()
    eager.load_state_dict(model.state_dict())
    return model, eager


def _self_attention_classes(model: Any) -> list[str]:
    return [type(layer.attention.attention).__name__
            for layer in model.data2vec_vision.encoder.layer]


@pytest.mark.parametrize("extra", [{}, dict(use_relative_position_bias=True)])
def test_data2vec_vision_sdpa_is_exact_and_left_as_loaded(extra: dict[str, Any]) -> None:
    model, eager = _data2vec(**extra)
    assert _self_attention_classes(model) == ["Data2VecVisionSdpaSelfAttention"] * 2
    x = _pixels()
    before = snapshot(model)
    with torch.no_grad():
        plain = model(pixel_values=x)
    ref = eager(pixel_values=x, output_attentions=True)

    tr = probe.trace(model, x)
    assert tr.grid == (4, 4) and tr.num_prefix_tokens == 1 and tr.num_suffix_tokens == 0
    assert_close(tr.attentions, torch.stack(ref.attentions).detach(), atol=1e-5, rtol=0)
    assert_close(tr.output.logits, plain.logits, atol=1e-5, rtol=0)
    assert_unchanged(model, before)
    assert _self_attention_classes(model) == ["Data2VecVisionSdpaSelfAttention"] * 2
    assert model.config._attn_implementation == "sdpa"

    # gradient relevance reads the gradient of the eager class's own softmax
    def target(out: Any) -> torch.Tensor:
        return out.logits[:, 1]

    relevance = probe.gradient_relevance(model, x, target=target)
    grads = torch.autograd.grad(target(ref).sum(), ref.attentions)
    want = relevance_from_gradients(torch.stack(ref.attentions).detach(), torch.stack(grads))
    assert_close(relevance, want, atol=1e-5, rtol=0)
    assert _self_attention_classes(model) == ["Data2VecVisionSdpaSelfAttention"] * 2
    assert_unchanged(model, before)


def test_data2vec_vision_classes_and_hooks_restored_when_the_forward_raises() -> None:
    model, _ = _data2vec()
    before = snapshot(model)

    with fails_late(model.classifier) as boom, pytest.raises(boom):
        probe.trace(model, _pixels())
    assert_unchanged(model, before)
    assert _self_attention_classes(model) == ["Data2VecVisionSdpaSelfAttention"] * 2
    assert model.config._attn_implementation == "sdpa"
    probe.trace(model, _pixels())  # and captures again


# --------------------------------------------------------------------------- YOLOS
def _yolos() -> Any:
    from transformers import YolosConfig, YolosForObjectDetection

    cfg = YolosConfig(**{**_SMALL, "image_size": [32, 32]}, num_detection_tokens=5)
    torch.manual_seed(0)
    return YolosForObjectDetection(cfg).eval()


@pytest.mark.parametrize("size", [(32, 32), (32, 48)])
def test_yolos_exact_with_its_detection_tokens_after_the_patches(size: tuple[int, int]) -> None:
    """Any image size (YOLOS interpolates its position embeddings); the 5 detection tokens
    follow the patches and are queries like any other."""
    model = _yolos()
    x = _pixels(*size)
    rows, cols = size[0] // 8, size[1] // 8
    before = snapshot(model)
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        ref = eager(pixel_values=x, output_attentions=True)
        plain = model(pixel_values=x)
    tr = probe.trace(model, x)
    assert (tr.grid, tr.num_prefix_tokens, tr.num_suffix_tokens) == ((rows, cols), 1, 5)
    assert tr.seq_len == 1 + rows * cols + 5
    want = torch.stack(ref.attentions)
    assert_close(tr.attentions, want, atol=1e-5, rtol=0)
    assert_close(tr.output.logits, plain.logits, atol=1e-5, rtol=0)
    assert_unchanged(model, before)
    assert model.config._attn_implementation == "sdpa"
    assert tr.special_tokens_mask[0].tolist() == [True] + [False] * rows * cols + [True] * 5

    # a detection token's patch map: its attention to the patches, neither CLS nor detections
    patches = slice(1, 1 + rows * cols)
    for query in (-1, 1 + rows * cols):  # the last and the first detection token
        maps = probe.patch_maps(tr, query=query)
        assert_close(maps, want[..., query, patches].reshape(2, 2, 4, rows, cols), atol=1e-5,
                     rtol=0)
    scores = torch.arange(tr.seq_len, dtype=torch.float32).expand(2, -1)
    assert_close(probe.to_grid(scores, tr), scores[:, patches].reshape(2, rows, cols))
    cls_rollout = probe.rollout(tr)[:, 0, patches].reshape(2, rows, cols)
    assert_close(probe.rollout_map(tr), cls_rollout)
    attr = probe.attribute(model, x, method="rollout")
    assert attr.grid == (rows, cols)
    assert_close(attr.scores, cls_rollout.flatten(1), atol=1e-6, rtol=0)
    mean = probe.attribute(model, x, method="attention", query="mean")  # patch rows only
    layer = want[-1].mean(1)  # [batch, query, key], heads averaged
    assert_close(mean.scores, layer[:, patches, patches].mean(1), atol=1e-5, rtol=0)


def test_yolos_gradcam_and_labels_keep_the_detection_tokens_apart() -> None:
    from viewers.html import patches_html, trace_tokens

    model = _yolos()
    x = _pixels()
    tr = probe.trace(model, x)
    assert trace_tokens(tr)[-6:] == ["3,3", "D0", "D1", "D2", "D3", "D4"]
    assert "<html" in patches_html(tr).html.lower()  # the grid between CLS and D0 (was 21 keys)
    seen = []  # what the block computes on: after GradCAM's view rebuilt its input
    handle = model.vit.encoder.layer[-1].layernorm_before.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].detach().clone()))
    try:
        cam = probe.attribute(model, x, method="gradcam",
                              target=lambda out: out.logits[:, 0, 0])
        with torch.no_grad():
            model(pixel_values=x)
    finally:
        handle.remove()
    assert cam.scores.shape == (2, 16) and torch.isfinite(cam.scores).all()
    # the view put every token back where it was (CLS, patches, detections): the block saw
    # the model's own input
    assert len(seen) == 2
    assert_close(seen[0], seen[1], atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- ViT-MAE
def _mae(**extra: Any) -> Any:
    from transformers import ViTMAEForPreTraining

    cfg = _config("vit_mae", decoder_hidden_size=16, decoder_num_hidden_layers=1,
                  decoder_num_attention_heads=2, decoder_intermediate_size=32, **extra)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ViTMAEForPreTraining(cfg).eval()


def test_vit_mae_in_grid_order_is_exact_encoder_only() -> None:
    """mask_ratio 0 and increasing noise: every patch kept, in grid order. The pre-training
    decoder (other width and heads) is not captured; output_attentions leaves it out too."""
    model = _mae(mask_ratio=0.0)
    x = _pixels()
    noise = torch.arange(16.0).repeat(2, 1)
    before = snapshot(model)
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        ref = eager(pixel_values=x, noise=noise, output_attentions=True)
        plain = model(pixel_values=x, noise=noise)
    tr = probe.trace(model, x, noise=noise)
    assert (tr.grid, tr.num_prefix_tokens, tr.num_layers) == ((4, 4), 1, 2)
    assert_close(tr.attentions, torch.stack(ref.attentions), atol=1e-5, rtol=0)
    assert_close(tr.output.logits, plain.logits, atol=1e-5, rtol=0)
    assert torch.equal(tr.output.ids_restore, torch.arange(16).expand(2, 16))
    assert_unchanged(model, before)


@pytest.mark.parametrize("ratio, noise, message", [
    (0.75, None, r"ViTMAEForPreTraining keeps a random 4 of its 16 patches per image "
                 r"\(mask_ratio=0.75\)"),
    (0.75, "grid", r"keeps a random 4 of its 16 patches"),
    (0.0, None, r"shuffles its 16 patches in a random order per image \(no noise="),
    (0.0, "flipped", r"the noise= passed to ViTMAEForPreTraining orders its patches other than "
                     r"row-major"),
    (0.0, "one", r"noise= must be a \[batch, patches\] = \[2, 16\] tensor, got \(1, 16\)"),
])
def test_vit_mae_masking_is_refused_with_the_fix(ratio: float, noise: str | None,
                                                 message: str) -> None:
    model = _mae(mask_ratio=ratio)
    grid = torch.arange(16.0).repeat(2, 1)
    kwargs = {"grid": {"noise": grid}, "flipped": {"noise": grid.flip(1)},
              "one": {"noise": grid[:1]}}.get(noise or "", {})
    before = snapshot(model)
    fix = (r"set model.config.mask_ratio = 0.0 and pass the forward argument noise=torch."
           r"arange\(16.0\).repeat\(batch, 1\) to probe.trace")
    with pytest.raises(probe.ProbeError, match=f"{message}.*{fix}"):
        probe.trace(model, _pixels(), **kwargs)
    assert_unchanged(model, before)


def test_detection_tokens_outside_yolos_are_still_refused_not_misread() -> None:
    """The plain HF vision adapter counts extra tokens as a prefix: a model with detection
    tokens after its patches that YOLOS's adapter does not claim is refused."""
    from probe.capture.adapters._vision import HFVision

    with pytest.raises(probe.UnsupportedModelError, match="appends 5 detection tokens after its "
                                                          "image patches"):
        HFVision(_yolos()).vision_geometry(_pixels())


def test_streamed_rollout_of_hf_vision_counts_the_prefix_from_the_sequence() -> None:
    """HF vision adapters count their prefix from the captured sequence (``-1`` until then):
    ``stream=True`` raised "num_prefix_tokens must be >= 0, got -1" on every HF ViT. The
    streamed rollout now equals the rollout of the full trace, discarding included."""
    from tests._tiny import hf_vit

    vit, x = hf_vit()
    for model in (vit, _data2vec()[0], _yolos()):
        full = probe.trace(model, x)
        streamed = probe.trace(model, x, stream=True, discard_ratio=0.5)
        assert_close(streamed.rollout_result, probe.rollout(full, discard_ratio=0.5),
                     atol=1e-6, rtol=0)


def test_vit_mae_attribution_names_a_fix_that_works() -> None:
    """``probe.attribute`` on ViT-MAE said 'pass noise= to probe.trace', and passing it to
    ``probe.attribute`` said it takes no option ``noise``: a loop. The message now names the
    route that works: a grid-order trace passed to an attention method."""
    model = _mae(mask_ratio=0.0)
    x = _pixels()
    with pytest.raises(probe.ProbeError, match=r"probe cannot state which patch each token is; "
                       r"probe\.attribute passes no forward argument, so it cannot keep the "
                       r"patches in grid order: set model\.config\.mask_ratio = 0\.0, capture "
                       r"trace = probe\.trace\(model, pixels, noise=torch\.arange\(16\.0\)\."
                       r"repeat\(batch, 1\)\) and pass it to an attention method, probe\."
                       r"attribute\(model, pixels, 'rollout', trace=trace\) \('attention', "
                       r"'flow' too\); the other methods run the model themselves and cannot$"):
        probe.attribute(model, x, "ig")
    trace = probe.trace(model, x, noise=torch.arange(16.0).repeat(2, 1))  # the fix named
    got = probe.attribute(model, x, "rollout", trace=trace)
    assert got.grid == (4, 4)
    assert_close(got.scores, probe.rollout_map(trace).flatten(1).float(), atol=1e-6, rtol=0)
