"""Swin V2 (scaled cosine attention, computed by hand in timm and HuggingFace) and HF's
DonutSwin (V1, by hand): exact capture against each model's own softmax, per-block geometry,
the model left as it was (also when the forward raises), and the window view on a V2 trace.
The window -> image mapping itself is shared with V1 and tested in tests/test_swin.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch.testing import assert_close

import probe
from tests._tiny import assert_unchanged, snapshot


def _pixels(h: int, w: int, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(5))


def timm_swinv2(img: tuple[int, int] = (32, 48), depths: tuple[int, ...] = (2, 2),
                heads: tuple[int, ...] = (2, 4), **kw: Any) -> Any:
    import timm

    torch.manual_seed(0)
    return timm.create_model(
        "swinv2_tiny_window8_256", pretrained=False, img_size=img, patch_size=4, embed_dim=16,
        depths=depths, num_heads=heads, window_size=4, num_classes=5, **kw,
    ).eval()


def hf_swinv2(classifier: bool = True) -> Any:
    from transformers import Swinv2Config, Swinv2ForImageClassification, Swinv2Model

    torch.manual_seed(0)
    config = Swinv2Config(image_size=32, patch_size=4, embed_dim=16, depths=[2, 2],
                          num_heads=[2, 4], window_size=4, num_labels=5)
    model = (Swinv2ForImageClassification if classifier else Swinv2Model)(config).eval()
    # random-init logit scales are all log(10); vary them so heads differ in temperature
    for i, m in enumerate(m for m in model.modules() if hasattr(m, "logit_scale")):
        with torch.no_grad():
            m.logit_scale.add_(0.3 * i - 0.5)
    return model


def _timm_reference(model: Any, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """timm's softmax outputs on a copy (its only path), and the logits."""
    ref = copy.deepcopy(model)
    got: list[torch.Tensor] = []
    for m in ref.modules():
        if type(m).__name__ == "WindowAttention":
            m.softmax.register_forward_hook(lambda _m, _i, out: got.append(out.detach()))
    with torch.no_grad():
        out = ref(x)
    return got, out


def _hf_reference(model: Any, x: torch.Tensor) -> tuple[list[torch.Tensor], Any]:
    """HF's own weights on a copy: every block's (``Swinv2Attention`` returns them with
    ``output_attentions=True``), and that output."""
    ref = copy.deepcopy(model)
    got: list[torch.Tensor] = []
    for m in ref.modules():
        if type(m).__name__ == "Swinv2Attention":
            m.register_forward_hook(lambda _m, _i, out: got.append(out[1].detach()))
    with torch.no_grad():
        out = ref(pixel_values=x, output_attentions=True)
    return got, out


# ----------------------------------------------------------------------------- timm
TIMM_CASES = {
    "nonsquare": dict(img=(32, 48)),  # 8x12 then 4x6
    "padded": dict(img=(36, 36), depths=(2,), heads=(2,)),  # 9x9 grid, 4x4 windows
}


@pytest.mark.parametrize("case", sorted(TIMM_CASES))
def test_timm_v2_windows_equal_the_models_softmax(case):
    model = timm_swinv2(**TIMM_CASES[case])
    x = _pixels(*TIMM_CASES[case]["img"])
    ref, ref_out = _timm_reference(model, x)
    with torch.no_grad():
        plain = model(x)
    before = snapshot(model)
    tr = probe.trace(model, x)
    assert_unchanged(model, before)
    assert len(tr.windows) == len(ref) > 0
    assert any(b.shifted for b in tr.windows) and any(not b.shifted for b in tr.windows)
    for block, expected in zip(tr.windows, ref):
        assert block.batch == 2
        assert_close(block.weights, expected, atol=1e-5, rtol=0)
    assert_close(tr.output, plain, atol=0, rtol=0)
    assert_close(tr.output, ref_out, atol=1e-6, rtol=0)


def test_timm_v2_geometry_of_each_block():
    tr = probe.trace(timm_swinv2(), _pixels(32, 48))
    got = [(b.stage, b.grid, b.layout.window, b.layout.shift, b.layout.shift_first,
            b.token_size) for b in tr.windows]
    assert got == [
        (0, (8, 12), (4, 4), (0, 0), True, (4, 4)),
        (0, (8, 12), (4, 4), (2, 2), True, (4, 4)),
        (1, (4, 6), (4, 4), (0, 0), True, (8, 8)),
        (1, (4, 6), (4, 4), (0, 2), True, (8, 8)),  # 4 rows fit one window: no shift along them
    ]
    assert [b.num_heads for b in tr.windows] == [2, 2, 4, 4]
    assert tr.windows[1].mask is not None and tr.windows[0].mask is None
    for block in tr.windows[:2]:  # unpadded stage: every row is the whole softmax row
        dense = block.to_image()
        assert_close(dense.sum(-1), torch.ones(dense.shape[:-1]), atol=1e-5, rtol=0)


def test_timm_v2_any_size_reads_the_grid_from_the_pixels():
    model = timm_swinv2(img=(32, 32), strict_img_size=False)
    x = _pixels(40, 56)
    ref, _ = _timm_reference(model, x)
    tr = probe.trace(model, x)
    assert tr.grid == (10, 14) == tr.windows[0].grid and tr.windows[2].grid == (5, 7)
    for block, expected in zip(tr.windows, ref):
        assert_close(block.weights, expected, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- HF
@pytest.mark.parametrize("size", [(32, 32), (36, 44)])
def test_hf_v2_windows_equal_the_models_own_weights(size):
    model = hf_swinv2()
    x = _pixels(*size)
    ref, ref_out = _hf_reference(model, x)
    with torch.no_grad():
        plain = model(pixel_values=x)
    before = snapshot(model)
    impl = model.config._attn_implementation
    tr = probe.trace(model, x)
    assert_unchanged(model, before)
    assert model.config._attn_implementation == impl
    assert len(tr.windows) == len(ref) == 4
    for block, expected in zip(tr.windows, ref):
        assert_close(block.weights, expected, atol=1e-5, rtol=0)
    # output_attentions=True returns the last block of each stage
    assert_close(tr.windows[1].weights, ref_out.attentions[0], atol=1e-5, rtol=0)
    assert_close(tr.windows[3].weights, ref_out.attentions[1], atol=1e-5, rtol=0)
    assert_close(tr.output.logits, plain.logits, atol=0, rtol=0)
    rows, cols = -(-size[0] // 4), -(-size[1] // 4)
    assert [b.grid for b in tr.windows] == [(rows, cols)] * 2 + [(-(-rows // 2),
                                                                  -(-cols // 2))] * 2
    assert tr.windows[1].shifted and not tr.windows[0].shifted
    assert not tr.windows[1].layout.shift_first  # HF pads, then rolls


def test_hf_v2_model_and_the_shift_mask():
    tr = probe.trace(hf_swinv2(classifier=False), _pixels(32, 32))
    block = tr.windows[1]
    assert block.layout.shift == (2, 2)
    dense = block.to_image()
    rows, cols = block.grid
    q, k = (dense[0, 0] > 0).nonzero(as_tuple=True)
    # a query only sees tokens of its own window on the image (the mask kept wrapped pairs out)
    assert ((q // cols - k // cols).abs() < 4).all() and ((q % cols - k % cols).abs() < 4).all()
    assert_close(dense.sum(-1), torch.ones(dense.shape[:-1]), atol=1e-5, rtol=0)


def test_hf_v2_forward_that_raises_leaves_no_trace():
    model = hf_swinv2()

    def explode(*_: Any) -> None:
        raise RuntimeError("forward failed")

    handle = model.swinv2.encoder.layers[1].blocks[0].output.register_forward_hook(explode)
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="forward failed"):
        probe.trace(model, _pixels(32, 32))
    assert_unchanged(model, before)
    handle.remove()


def hf_donut() -> Any:
    from transformers import DonutSwinConfig, DonutSwinModel

    torch.manual_seed(0)
    return DonutSwinModel(DonutSwinConfig(image_size=32, patch_size=4, embed_dim=16,
                                          depths=[2, 2], num_heads=[2, 4],
                                          window_size=4)).eval()


@pytest.mark.parametrize("size", [(32, 32), (36, 44)])
def test_hf_donut_swin_windows_equal_the_models_own_weights(size):
    model = hf_donut()
    x = _pixels(*size)
    ref: list[torch.Tensor] = []
    copied = copy.deepcopy(model)
    for m in copied.modules():
        if type(m).__name__ == "DonutSwinAttention":
            m.register_forward_hook(lambda _m, _i, out: ref.append(out[1].detach()))
    with torch.no_grad():
        copied(pixel_values=x, output_attentions=True)
        plain = model(pixel_values=x)
    before = snapshot(model)
    tr = probe.trace(model, x)
    assert_unchanged(model, before)
    assert len(tr.windows) == len(ref) == 4
    for block, expected in zip(tr.windows, ref):
        assert_close(block.weights, expected, atol=1e-5, rtol=0)
    assert_close(tr.output.last_hidden_state, plain.last_hidden_state, atol=0, rtol=0)
    assert tr.windows[1].shifted and not tr.windows[1].layout.shift_first


def test_hf_donut_swin_small_grids_are_refused_and_the_layers_restored():
    model = hf_donut()
    layers = [m for m in model.modules() if type(m).__name__ == "DonutSwinLayer"]
    before = [(m.window_size, m.shift_size) for m in layers]
    probe.trace(model, _pixels(32, 32))  # stage 1 is 4x4 = the window: the layer drops its shift
    assert [(m.window_size, m.shift_size) for m in layers] == before
    with pytest.raises(probe.ProbeError, match=r"2x2 token grid, smaller than its 4x4 window"):
        probe.trace(model, _pixels(16, 16))
    assert [(m.window_size, m.shift_size) for m in layers] == before


# ----------------------------------------------------------------------------- views
def test_window_view_and_head_stats_on_a_v2_trace():
    tr = probe.trace(hf_swinv2(), _pixels(32, 32, batch=1))
    fig = probe.plot(tr, "window", layer=1, query=(0, 0))
    drawn = fig.axes[1].images[-1].get_array()
    assert_close(torch.as_tensor(drawn.data), tr.windows[1].query_map(0, 0)[0, 0].double())
    stats = tr.windows[2].head_stats()
    assert stats.entropy.shape == stats.distance.shape == (1, 4)
    assert (stats.entropy <= stats.window_entropy + 1e-5).all()
    with pytest.raises(probe.ProbeError, match="windowed attention"):
        probe.rollout(tr)


# ----------------------------------------------------------------------------- GradCAM
def _gradcam_by_hand(model: Any, x: torch.Tensor, block: Any) -> torch.Tensor:
    """GradCAM on ``block``'s input computed with autograd directly: ``[batch, rows, cols]``.

    The block's input is replaced by a leaf copy (same values), the predicted class's logit
    differentiated w.r.t. it, ``ReLU(sum_d mean_rc(grad_d) * A_d)``.
    """
    seen: dict[str, Any] = {}

    def leaf(_m: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        hidden = args[0] if args else kwargs["hidden_states"]
        seen["a"] = hidden.detach().clone().requires_grad_(True)
        seen["dims"] = kwargs.get("input_dimensions", args[1] if len(args) > 1 else None)
        if args:
            return (seen["a"], *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": seen["a"]}

    handle = block.register_forward_pre_hook(leaf, with_kwargs=True)
    try:
        out = model(x)
    finally:
        handle.remove()
    logits = out if isinstance(out, torch.Tensor) else out.logits
    score = logits.gather(1, logits.argmax(-1, keepdim=True)).sum()
    (grad,) = torch.autograd.grad(score, seen["a"])
    a = seen["a"].detach()
    if a.dim() == 4:  # timm [batch, rows, cols, dim]
        a, grad = a.permute(0, 3, 1, 2), grad.permute(0, 3, 1, 2)
    else:  # HF [batch, rows * cols, dim]
        rows, cols = (int(v) for v in seen["dims"])
        a = a.transpose(1, 2).reshape(a.shape[0], -1, rows, cols)
        grad = grad.transpose(1, 2).reshape(grad.shape[0], -1, rows, cols)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    return torch.relu((weights * a).sum(1))


def _swin_blocks(model: Any) -> list[Any]:
    names = ("SwinTransformerBlock", "SwinTransformerV2Block", "SwinLayer", "Swinv2Layer")
    return [m for m in model.modules() if type(m).__name__ in names]


@pytest.mark.parametrize("build", ["timm_v1", "timm_v2", "hf_v1", "hf_v2"])
def test_gradcam_on_swin_equals_gradcam_by_hand(build):
    from probe.analysis._gates import to_unit_grid
    from tests.test_swin import hf_swin, timm_swin

    model = {"timm_v1": timm_swin, "timm_v2": timm_swinv2, "hf_v1": hf_swin,
             "hf_v2": hf_swinv2}[build]()
    x = _pixels(32, 48) if build.startswith("timm") else _pixels(32, 32)
    pixels = x.clone()
    before = snapshot(model)
    blocks = _swin_blocks(model)
    grid = probe.trace(model, x).windows[0].grid
    # a stage-0 block: its map is the patch grid itself
    first = probe.attribute(model, x, "gradcam", block=1).scores
    expected = _gradcam_by_hand(model, x, blocks[1])
    assert expected.shape[1:] == grid
    assert expected.sum() > 0
    assert_close(first, expected.flatten(1), atol=1e-6, rtol=1e-5)
    # the last block (stage 1, half the grid): resampled to the patch grid
    last = probe.attribute(model, x, "gradcam").scores
    coarse = _gradcam_by_hand(model, x, blocks[-1])
    assert coarse.shape[1:] == (grid[0] // 2, grid[1] // 2)
    assert_close(last, to_unit_grid(coarse, grid).flatten(1), atol=1e-6, rtol=1e-5)
    assert_unchanged(model, before)
    assert torch.equal(x, pixels)


def test_gradcam_on_swin_block_out_of_range_is_one_line():
    with pytest.raises(probe.ProbeError, match=r"block must be a block index in -4\.\.3, got 4"):
        probe.attribute(hf_swinv2(), _pixels(32, 32), "gradcam", block=4)
