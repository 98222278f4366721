"""Attribution on CNNs: GradCAM on a stage's feature map, cbam-spatial, and the gate analyses."""

from __future__ import annotations

import pytest
import timm
import torch

import probe
from probe.analysis._gates import channel_profiles, gate_specificity, query_point_map, to_unit_grid
from probe.attribution._registry import list_methods
from probe.models._cnn_shapes import build_cnn_shapes
from tests._cnn import randomize_norms
from tests._tiny import assert_unchanged, snapshot


@pytest.fixture(scope="module")
def cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return randomize_norms(build_cnn_shapes().eval(), running_stats=False)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return probe.make_shapes(2, seed=3).images


def test_cnn_gradcam_is_the_textbook_formula(cnn: torch.nn.Module, images: torch.Tensor) -> None:
    feats = {}
    handle = cnn.layer4.register_forward_hook(lambda _m, _i, o: feats.__setitem__("a", o))
    try:
        logits = cnn(images)
    finally:
        handle.remove()
    cls = logits.argmax(-1)
    a = feats["a"]
    grads = torch.autograd.grad(logits.gather(1, cls[:, None]).sum(), a)[0]
    ref = torch.relu((grads.mean((2, 3), keepdim=True) * a).sum(1)).detach()
    attr = probe.attribute(cnn, images, "gradcam")
    assert attr.grid == (8, 8) and attr.image_size == (32, 32) and attr.model_name == "cnn-shapes"
    torch.testing.assert_close(attr.as_grid(), ref, rtol=1e-4, atol=1e-6)


def test_cnn_gradcam_on_a_coarser_stage_map_is_pooled() -> None:
    torch.manual_seed(0)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=3).eval()
    x = torch.randn(1, 3, 64, 64)
    last = probe.attribute(model, x, "gradcam")
    first = probe.attribute(model, x, "gradcam", block=0)  # 16x16 map averaged onto 2x2 cells
    assert last.grid == first.grid == (2, 2)
    assert last.scores.shape == first.scores.shape == (1, 4)


def test_cbam_spatial_is_the_captured_gate(cnn: torch.nn.Module, images: torch.Tensor) -> None:
    gt = probe.trace_gates(cnn, images)
    last = gt.select("spatial", stage=-1)[0].values  # 8x8: already the unit grid
    attr = probe.attribute(cnn, images, "cbam-spatial")
    torch.testing.assert_close(attr.as_grid(), last)
    first = gt.select("spatial", stage=0)[0].values  # 16x16: 2x2 block means
    one = probe.attribute(cnn, images, "cbam-spatial", stage=0)
    torch.testing.assert_close(one.as_grid(), first.reshape(2, 8, 2, 8, 2).mean((2, 4)))
    every = probe.attribute(cnn, images, "cbam-spatial", stage=None)
    maps = [to_unit_grid(g.values, (8, 8)) for g in gt.select("spatial")]
    torch.testing.assert_close(every.as_grid(), torch.stack(maps).mean(0))
    with pytest.raises(probe.ProbeError, match="stage"):
        probe.attribute(cnn, images, "cbam-spatial", stage=4)


def test_cnn_methods_leave_the_model_alone(cnn: torch.nn.Module, images: torch.Tensor) -> None:
    for method in ("gradcam", "cbam-spatial", "ig", "random"):
        before = snapshot(cnn)
        copy = images.clone()
        a = probe.attribute(cnn, images, method, **({"n_steps": 4} if method == "ig" else {}))
        assert a.scores.shape == (2, 64) and bool(torch.isfinite(a.scores).all())
        assert_unchanged(cnn, before)
        assert torch.equal(images, copy)


def test_gate_methods_are_listed_on_request_only() -> None:
    assert "cbam-spatial" not in list_methods("vision")
    assert "cbam-spatial" in list_methods("vision", needs="gates")
    torch.manual_seed(0)
    se = timm.create_model("seresnet18", pretrained=False, num_classes=3).eval()
    with pytest.raises(probe.UnsupportedModelError,
                       match=r"no spatial gates: its gates are \['channel'\]"):
        probe.attribute(se, torch.randn(1, 3, 32, 32), "cbam-spatial")


def test_to_unit_grid_math() -> None:
    maps = torch.arange(16.0).reshape(1, 4, 4)
    torch.testing.assert_close(to_unit_grid(maps, (2, 2)),
                               torch.tensor([[[2.5, 4.5], [10.5, 12.5]]]))
    assert to_unit_grid(maps, (4, 4)) is maps
    up = to_unit_grid(torch.ones(1, 2, 2), (4, 4))
    torch.testing.assert_close(up, torch.ones(1, 4, 4))
    with pytest.raises(probe.ProbeError, match="batch, height, width"):
        to_unit_grid(torch.ones(4, 4), (2, 2))


def test_channel_profiles_and_specificity() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    values = torch.tensor([[0.1, 0.9], [0.3, 0.9], [0.7, 0.9], [0.9, 0.9]])
    prof = channel_profiles(values, labels, 3)
    torch.testing.assert_close(prof[:2], torch.tensor([[0.2, 0.9], [0.8, 0.9]]))
    assert torch.isnan(prof[2]).all()
    spec = gate_specificity(values, labels)
    # channel 0: class means 0.2 / 0.8 (sd 0.4243), pooled within sd 0.1414; channel 1: all 0
    assert spec["between"] == pytest.approx((0.6 / 2**0.5) / 2, rel=1e-5)
    assert spec["within"] == pytest.approx((0.04 / 2) ** 0.5 / 2, rel=1e-5)
    with pytest.raises(probe.ProbeError, match="two classes"):
        gate_specificity(values[:2], labels[:2])


def test_query_point_map() -> None:
    attn = torch.softmax(torch.randn(2, 6, 6), -1)
    out = query_point_map(attn, (2, 3), (1, 2))
    torch.testing.assert_close(out, attn[:, 5].reshape(2, 2, 3))
    with pytest.raises(probe.ProbeError, match="outside"):
        query_point_map(attn, (2, 3), (2, 0))
