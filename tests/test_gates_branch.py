"""Branch gates (selective kernel, split attention), channel-spatial gates (gather-excite with a
local extent, coordinate attention), global-context pooling maps and bilinear non-local (BAT)
attention: exact capture from timm models built with pretrained=False, checked against each
module's formula and output."""

from __future__ import annotations

import functools

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.layers import GatherExcite, GlobalContext

import probe
from tests._cnn import assert_no_hooks_left, timm_cnn
from tests._factories import module_io


def _model(name: str, seed: int = 0, **kwargs: object) -> torch.nn.Module:
    return timm_cnn(name, seed=seed, **kwargs)


def _resnet(attn: object) -> torch.nn.Module:
    return timm_cnn("resnet10t", attn)


def _pixels(batch: int = 2, size: int = 48, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _unchanged(model: torch.nn.Module, x: torch.Tensor, **kwargs: object) -> probe.GateTrace:
    with torch.no_grad():
        plain = model(x)
    gt = probe.trace_gates(model, x, **kwargs)
    torch.testing.assert_close(gt.output, plain, rtol=0, atol=0)
    return gt


def test_selective_kernel_branch_gates() -> None:
    """SKNet (Li et al. 2019): softmax over paths of fc_select(relu(bn(fc_reduce(mean(sum U)))))."""
    model = _model("skresnet18")
    x = _pixels()
    gt = _unchanged(model, x)
    assert gt.kinds == ("branch",) and len(gt.gates) == 4 and gt.stages == (0, 1, 2, 3)
    parents = [g.name.removesuffix(".attn") for g in gt.gates]
    io = module_io(model, [g.name for g in gt.gates] + parents, x)
    for g, parent in zip(gt.gates, parents):
        sk = model.get_submodule(parent)
        paths = io[g.name][0]  # [B, path, C, H, W]: the branches the module mixes
        b, n, c, h, w = paths.shape
        assert g.values.shape == (b, n, c) and g.feature_size == (h, w)
        assert g.branches == ("3x3", "3x3 dil 2 (5x5)") and g.module_type == "SelectiveKernel"
        attn = sk.attn
        z = attn.act(attn.bn(attn.fc_reduce(paths.sum(1).mean((2, 3), keepdim=True))))
        ref = torch.softmax(attn.fc_select(z).view(b, n, c), dim=1)
        torch.testing.assert_close(g.values, ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(g.values.sum(1), torch.ones(b, c))
        mixed = (paths * g.values[..., None, None]).sum(1)
        torch.testing.assert_close(io[parent][1], mixed, rtol=0, atol=0)


def test_split_attention_branch_gates_and_radix_one() -> None:
    """ResNeSt (Zhang et al. 2020): a softmax over the radix splits per cardinal group."""
    model = _model("resnest14d")
    x = _pixels()
    gt = _unchanged(model, x)
    assert gt.kinds == ("branch",) and len(gt.gates) == 4
    io = module_io(model, [g.name for g in gt.gates], x)
    for g in gt.gates:
        m = model.get_submodule(g.name)
        inp, out = io[g.name]
        u = m.act0(m.bn0(m.conv(inp)))
        b, rc, h, w = u.shape
        splits = u.reshape(b, m.radix, rc // m.radix, h, w)
        z = m.act1(m.bn1(m.fc1(splits.sum(1).mean((2, 3), keepdim=True))))
        card = m.rsoftmax.cardinality
        logits = m.fc2(z).view(b, card, m.radix, -1).transpose(1, 2)  # [B, radix, card, C/card]
        ref = torch.softmax(logits, dim=1).reshape(b, m.radix, -1)
        assert g.values.shape == (b, 2, rc // 2) and g.branches == ("radix 0", "radix 1")
        assert g.feature_size == (h, w)
        torch.testing.assert_close(g.values, ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out, (splits * g.values[..., None, None]).sum(1), rtol=0, atol=0)
    one = _resnet(functools.partial(timm.layers.SplitAttn, radix=1))
    gt1 = _unchanged(one, x)
    assert gt1.kinds == ("channel",)
    io1 = module_io(one, [g.name for g in gt1.gates], x)
    for g in gt1.gates:
        m = one.get_submodule(g.name)
        u = m.act0(m.bn0(m.conv(io1[g.name][0])))
        torch.testing.assert_close(io1[g.name][1], u * g.values[..., None, None], rtol=0, atol=0)


@pytest.mark.parametrize("attn", ["ge2", "coord", "scoord"])
def test_channel_spatial_gates(attn: str) -> None:
    layer = {"ge2": functools.partial(GatherExcite, extent=2, use_mlp=False)}.get(attn, attn)
    model = _resnet(layer)
    x = _pixels()
    gt = _unchanged(model, x)
    assert gt.kinds == ("channel_spatial",) and len(gt.gates) == 4
    io = module_io(model, [g.name for g in gt.gates], x)
    for g in gt.gates:
        m = model.get_submodule(g.name)
        inp, out = io[g.name]
        assert g.values.shape == inp.shape and g.feature_size == tuple(inp.shape[-2:])
        torch.testing.assert_close(out, inp * g.values, rtol=1e-6, atol=1e-6)
        if attn == "ge2":  # Hu et al. 2018b: stride-4 average gather, nearest upsampling
            pooled = F.avg_pool2d(inp, kernel_size=m.gk, stride=m.gs, padding=m.gk // 2,
                                  count_include_pad=False)
            ref = torch.sigmoid(F.interpolate(pooled, size=inp.shape[-2:]))
        elif attn == "coord":  # Hou et al. 2021: a_h [C, H, 1] * a_w [C, 1, W]
            h = inp.shape[-2]
            pooled_w = inp.mean(2, keepdim=True).transpose(-1, -2)
            y = torch.cat([inp.mean(3, keepdim=True), pooled_w], 2)
            y = m.act(m.bn1(m.conv1(y)))
            ref = torch.sigmoid(m.conv_h(y[:, :, :h])) * torch.sigmoid(
                m.conv_w(y[:, :, h:].transpose(-1, -2)))
        else:
            yh = m.act(m.fc1(inp.mean(3).transpose(1, 2)))
            yw = m.act(m.fc1(inp.mean(2).transpose(1, 2)))
            ref = torch.sigmoid(m.fc_h(yh).transpose(1, 2)[..., None]
                                + m.fc_w(yw).transpose(1, 2)[..., None, :])
        torch.testing.assert_close(g.values, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fusion", ["scale", "add", "both"])
def test_global_context_pooling_maps(fusion: str) -> None:
    """GCNet (Cao et al. 2019): context = sum_j softmax_j(W_k x_j) x_j, in both fusions."""
    flags = {"scale": dict(), "add": dict(fuse_add=True, fuse_scale=False),
             "both": dict(fuse_add=True)}[fusion]
    model = _resnet(functools.partial(GlobalContext, **flags))
    x = _pixels()
    gt = _unchanged(model, x)
    maps = gt.select("context")
    assert len(maps) == 4 and all(g.name.endswith(".se.conv_attn") for g in maps)
    assert len(gt.select("channel") if fusion != "add" else ()) == (0 if fusion == "add" else 4)
    if fusion == "add":
        assert gt.kinds == ("context",)
    parents = [g.name.removesuffix(".conv_attn") for g in maps]
    io = module_io(model, parents, x)
    for g, parent in zip(maps, parents):
        m = model.get_submodule(parent)
        inp, out = io[parent]
        b, c, h, w = inp.shape
        assert g.values.shape == (b, h, w) and g.feature_size == (h, w)
        ref = torch.softmax((F.conv2d(inp, m.conv_attn.weight, m.conv_attn.bias)).flatten(1), -1)
        torch.testing.assert_close(g.values.flatten(1), ref, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(g.values.sum((1, 2)), torch.ones(b))
        context = (inp.flatten(2) * g.values.flatten(1)[:, None]).sum(-1)[..., None, None]
        expected = inp
        if m.mlp_scale is not None:
            expected = expected * torch.sigmoid(m.mlp_scale(context))
        if m.mlp_add is not None:
            expected = expected + m.mlp_add(context)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_options_gradients_and_cleanup_on_new_kinds() -> None:
    model = _model("skresnet18")
    x = _pixels(2, 32)
    only = probe.trace_gates(model, x, modules=["branch"], dtype="bfloat16")
    assert all(g.values.dtype == torch.bfloat16 for g in only.gates)
    assert only.stack("branch", stage=0).shape == (1, 2, 2, 16)
    gt = probe.trace_gates(model, x, requires_grad=True)
    gt.output[:, 0].sum().backward()
    assert gt.gates[-1].gradient().shape == gt.gates[-1].values.shape
    assert gt.gates[-1].gradient().abs().sum() > 0
    coord = probe.trace_gates(_resnet("coord"), x, requires_grad=True)
    with pytest.raises(probe.ProbeError, match="no gradient"):
        coord.gates[0].gradient()  # a_h * a_w is formed by probe, not by the model

    for m in (model, _resnet("coord"), _model("resnest14d")):
        assert_no_hooks_left(m, x, m.layer2, repeats=5)


def test_gc_models_in_the_timm_zoo() -> None:
    torch.manual_seed(0)
    model = timm.create_model("gcresnet33ts", pretrained=False).eval()  # byobnet, attn_layer gca
    gt = probe.trace_gates(model, _pixels(1, 64))
    assert "context" in gt.kinds and all(g.stage >= 0 for g in gt.gates)


def test_bilinear_nonlocal_attention() -> None:
    """BAT (Chi et al. 2020): y = P x Q per channel group, as A[(i,j),(k,l)] = P[i,k] Q[l,j]."""
    model = _resnet(functools.partial(timm.layers.BatNonLocalAttn, block_size=2))
    x = _pixels(2, 64)
    gt = _unchanged(model, x)
    assert gt.kinds == ("bilinear",) and len(gt.gates) == 4 and not gt.skipped
    names = [f"{g.name}.ba{sub}" for g in gt.gates for sub in ("", ".conv2")]
    io = module_io(model, names, x)
    for g in gt.gates:
        ba = model.get_submodule(g.name).ba
        inp = io[f"{g.name}.ba"][0]  # [B, C, H, W]
        mixed = io[f"{g.name}.ba.conv2"][0]  # P x Q, the input of conv2
        b, c, h, w = inp.shape
        assert g.values.shape == (b, ba.groups, h * w, h * w) and g.feature_size == (h, w)
        assert bool((g.values >= 0).all())
        torch.testing.assert_close(g.values.sum(-1), torch.ones(b, ba.groups, h * w))
        groups = torch.arange(c) // (c // ba.groups)  # channel -> group, as BAT expands p and q
        ref = torch.einsum("bcqk,bck->bcq", g.values[:, groups], inp.flatten(2))
        torch.testing.assert_close(mixed.flatten(2), ref, rtol=1e-5, atol=1e-5)
