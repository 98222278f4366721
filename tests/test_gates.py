"""CNN attention gates: exact capture from timm CNNs built with pretrained=False."""

from __future__ import annotations

import functools

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.layers import GatherExcite

import probe
from tests._cnn import assert_no_hooks_left, timm_cnn
from tests._factories import module_io
from probe.capture.adapters._timm_cnn import TimmCNN

ATTN = ["se", "ese", "eca", "ecam", "ceca", "gc", "cbam", "lcbam", "nl"]


def _resnet(attn: object, seed: int = 0) -> torch.nn.Module:
    return timm_cnn("resnet10t", attn, seed=seed, small=False)


def _pixels(batch: int = 2, size: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("attn", ATTN + ["ge"])
def test_gates_are_what_the_model_multiplied_by(attn: str) -> None:
    layer = functools.partial(GatherExcite, use_mlp=False) if attn == "ge" else attn
    model = _resnet(layer)
    x = _pixels()
    with torch.no_grad():
        plain = model(x)
    gt = probe.trace_gates(model, x)
    torch.testing.assert_close(gt.output, plain, rtol=0, atol=0)  # outputs unchanged
    io = module_io(model, [g.name for g in gt.gates], x)
    assert len(gt.gates) == 4 * (2 if "cbam" in attn or attn == "gc" else 1)
    for g in gt.gates:
        inp, out = io[g.name]
        assert g.feature_size == tuple(inp.shape[-2:])
        assert g.stride == (64 / inp.shape[-2], 64 / inp.shape[-1])
        if g.kind == "channel":
            assert g.values.shape == inp.shape[:2]
            assert bool(((g.values >= 0) & (g.values <= 1)).all())
            torch.testing.assert_close(out, inp * g.values[:, :, None, None], rtol=1e-6, atol=1e-6)
        elif g.kind == "context":  # GC's pooling map: tests/test_gates_branch.py
            assert g.name.endswith(".conv_attn") and g.values.shape == (2, *g.feature_size)
        elif g.kind == "spatial":
            assert g.values.shape == (inp.shape[0], *inp.shape[-2:])
            torch.testing.assert_close(out, inp * g.values[:, None], rtol=1e-6, atol=1e-6)
        else:  # non-local: out = norm(z(attn @ g)) + x
            m = model.get_submodule(g.name)
            b, c, h, w = inp.shape
            v = m.g(inp).flatten(2).transpose(1, 2)
            mixed = torch.bmm(g.values, v).transpose(1, 2).reshape(b, -1, h, w)
            torch.testing.assert_close(out, m.norm(m.z(mixed)) + inp, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(g.values.sum(-1), torch.ones(b, h * w))


def test_stages_and_stacking() -> None:
    gt = probe.trace_gates(_resnet("cbam"), _pixels())
    assert gt.stages == (0, 1, 2, 3)
    assert [g.stage for g in gt.select("spatial")] == [0, 1, 2, 3]
    assert gt.stack("channel", stage=-1).shape == (1, 2, 512)
    assert gt.stack("spatial", stage=0).shape == (1, 2, 16, 16)
    with pytest.raises(probe.ProbeError, match="different shapes"):
        gt.stack("channel")
    with pytest.raises(probe.ProbeError, match="no nonlocal gates"):
        gt.select("nonlocal")
    with pytest.raises(probe.ProbeError, match="stage 7"):
        gt.select("spatial", stage=7)


def test_se_against_its_formula() -> None:
    """SE (Hu et al. 2018): sigmoid(W2 relu(W1 mean(x))) recomputed from the module's weights."""
    model = _resnet("se")
    x = _pixels()
    gt = probe.trace_gates(model, x)
    io = module_io(model, [g.name for g in gt.gates], x)
    for g in gt.gates:
        m = model.get_submodule(g.name)
        s = io[g.name][0].mean((2, 3))
        hidden = F.relu(F.linear(s, m.fc1.weight[:, :, 0, 0], m.fc1.bias))
        ref = torch.sigmoid(F.linear(hidden, m.fc2.weight[:, :, 0, 0], m.fc2.bias))
        torch.testing.assert_close(g.values, ref, rtol=1e-5, atol=1e-6)


def test_nonlocal_equals_the_softmax_the_block_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real = F.softmax

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out.detach().clone())
        return out

    model = _resnet("nl")
    x = _pixels()
    gt = probe.trace_gates(model, x)
    monkeypatch.setattr(F, "softmax", spy)
    with torch.no_grad():
        model(x)
    monkeypatch.undo()
    assert len(seen) == len(gt.gates) == 4
    for g, ref in zip(gt.gates, seen):
        torch.testing.assert_close(g.values, ref, rtol=0, atol=0)
        assert g.values.shape == (2, g.feature_size[0] * g.feature_size[1],) * 1 + (
            g.feature_size[0] * g.feature_size[1],
        )


def test_timm_zoo_models() -> None:
    for name, kinds in [("seresnet18", ("channel",)), ("ecaresnet26t", ("channel",)),
                        ("efficientnet_b0", ("channel",))]:
        torch.manual_seed(0)
        model = timm.create_model(name, pretrained=False).eval()
        gt = probe.trace_gates(model, _pixels(1, 64))
        assert gt.kinds == kinds
        assert all(g.stage >= 0 for g in gt.gates)


def test_options_modules_dtype_and_grad() -> None:
    model = _resnet("cbam")
    x = _pixels()
    only = probe.trace_gates(model, x, modules=["spatial", "layer1.0.se.channel"], dtype="float16")
    assert [g.name for g in only.gates][:2] == ["layer1.0.se.channel", "layer1.0.se.spatial"]
    assert len(only.gates) == 5 and all(g.values.dtype == torch.float16 for g in only.gates)
    with pytest.raises(probe.ProbeError, match="did you mean 'spatial'"):
        probe.trace_gates(model, x, modules=["spatail"])
    with pytest.raises(probe.ProbeError, match="dtype"):
        probe.trace_gates(model, x, dtype="int8")
    gt = probe.trace_gates(model, x, requires_grad=True)
    gt.output[:, 0].sum().backward()
    grad = gt.select("spatial", stage=-1)[0].gradient()
    assert grad.shape == (2, 2, 2) and grad.abs().sum() > 0
    model.zero_grad()
    plain = probe.trace_gates(model, x)
    with pytest.raises(probe.ProbeError, match="requires_grad=True"):
        plain.gates[0].gradient()


def test_nothing_left_behind_also_when_the_forward_raises() -> None:
    from probe.models._cnn_shapes import build_cnn_shapes

    torch.manual_seed(0)
    model = build_cnn_shapes().eval()  # timm ResNet with CBAM, small enough for 100 captures
    assert_no_hooks_left(model, _pixels(2, 32), model.layer3, repeats=100)


def test_cnns_get_clear_errors() -> None:
    torch.manual_seed(0)
    plain = timm.create_model("resnet18", pretrained=False).eval()
    assert isinstance(probe.adapter_for(plain), TimmCNN)
    with pytest.raises(probe.UnsupportedModelError, match="no attention modules; use gradient"):
        probe.trace(plain, _pixels(1))
    with pytest.raises(probe.UnsupportedModelError, match="no attention gates probe captures"):
        probe.trace_gates(plain, _pixels(1))
    with pytest.raises(probe.UnsupportedModelError, match="trace_gates"):
        probe.trace(_resnet("se"), _pixels(1))
    with pytest.raises(probe.UnsupportedModelError, match="EfficientLocalAttn"):
        probe.trace_gates(_resnet("ela"), _pixels(1))
    with pytest.raises(probe.ProbeError, match="unsqueeze"):
        probe.trace_gates(_resnet("se"), _pixels(1)[0])
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8)
    with pytest.raises(probe.UnsupportedModelError, match="use probe.trace"):
        probe.trace_gates(vit.eval(), _pixels(1, 32))
