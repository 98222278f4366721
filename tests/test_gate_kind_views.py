"""Figures of branch, channel-spatial, bilinear and context gates: the data each figure draws is
the captured gate (reduced as documented, checked exactly), on tiny random-init timm models of
every kind, through the Python viewers and ``probe render gates``."""

from __future__ import annotations

import functools
import itertools
import re
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from timm.layers import BatNonLocalAttn, GatherExcite, GlobalContext

import probe
from probe.analysis._gate_views import (
    bilinear_query_map,
    branch_channel_order,
    branch_stats,
    channel_mean_map,
    channel_profile,
    pick_blocks,
    resolve_stage,
    varying_channels,
)
from probe.viewers import branch_gates_view, channel_spatial_view, gate_figures, upsample_bilinear
from probe.viewers._style import MIN_FONT_PT
from probe.viewers._width import drawn_text_artists
from tests._cnn import SMALL, timm_cnn

ATTN = {
    "coord": "coord",
    "scoord": "scoord",
    "ge2": functools.partial(GatherExcite, extent=2, use_mlp=False),
    "bat": functools.partial(BatNonLocalAttn, block_size=2),
    "gc": GlobalContext,
    "cbam": "cbam",
    "nl": "nl",
}


def _model(name: str, attn: str | None = None, seed: int = 0) -> torch.nn.Module:
    """A narrow timm model; gate layers get random weights (timm zero-initialises some, which
    makes every gate constant)."""
    model = timm_cnn(name, None if attn is None else ATTN[attn], seed=seed, running_stats=False)
    with torch.no_grad():
        for mod_name, m in model.named_modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear) and (".se" in mod_name
                                                                     or ".attn" in mod_name):
                m.weight.normal_(0, 0.2)
    return model


def _pixels(size: int = 64) -> torch.Tensor:
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))


def _image(size: int = 64) -> np.ndarray:
    return np.random.default_rng(0).random((size, size, 3))


def _overlay(ax) -> np.ndarray:
    """The map drawn over the image of an overlay panel (the second image of the axes)."""
    return np.asarray(ax.images[1].get_array())


# ------------------------------------------------------------------ the data-preparation functions
def test_reductions_by_hand() -> None:
    v = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]],
                       [[0.0, 0.0], [0.0, 1.0]]]])  # [1, 3, 2, 2]
    torch.testing.assert_close(channel_mean_map(v), torch.tensor([[[0.5 / 3, 1.5 / 3],
                                                                    [1.5 / 3, 1.5 / 3]]]))
    torch.testing.assert_close(channel_profile(v), torch.tensor([[0.5, 0.5, 0.25]]))
    # spatial sd: channel 0 0.5, channel 1 0, channel 2 sqrt(3)/4 = 0.433
    assert varying_channels(v[0], 2) == [0, 2] and varying_channels(v[0], 9) == [0, 2, 1]
    assert varying_channels(torch.zeros(4, 2, 2), 3) == [0, 1, 2]  # ties: lower index first
    assert varying_channels(v[0], 0) == []
    w = torch.tensor([[[0.2, 0.6, 0.6, 0.9], [0.8, 0.4, 0.4, 0.1]]])  # [1, branch, channel]
    mean, sd = branch_stats(w)
    torch.testing.assert_close(mean, torch.tensor([[0.575, 0.425]]))
    torch.testing.assert_close(sd, torch.tensor([[w[0, 0].std(unbiased=False)] * 2]))
    assert branch_channel_order(w[0]).tolist() == [3, 1, 2, 0]  # the tie 1, 2 keeps its order
    for bad, call in [(v[0], channel_mean_map), (w, branch_channel_order), (w[0], branch_stats)]:
        with pytest.raises(probe.ProbeError, match="gate values must be"):
            call(bad)
    with pytest.raises(probe.ProbeError, match="non-negative integer"):
        varying_channels(v[0], -1)


def test_bilinear_query_map_is_the_group_mean_of_the_query_row() -> None:
    a = torch.rand(2, 3, 6, 6)
    a = a / a.sum(-1, keepdim=True)
    out = bilinear_query_map(a, (2, 3), (1, 2))  # query 1 * 3 + 2 = 5
    torch.testing.assert_close(out, a[:, :, 5].mean(1).reshape(2, 2, 3), rtol=0, atol=0)
    torch.testing.assert_close(out.sum((1, 2)), torch.ones(2))
    with pytest.raises(probe.ProbeError, match="outside the 2x3"):
        bilinear_query_map(a, (2, 3), (2, 0))
    with pytest.raises(probe.ProbeError, match=r"\[batch, group, 9, 9\] for a 3x3 map"):
        bilinear_query_map(a, (3, 3), (0, 0))


def test_block_choice() -> None:
    stages = [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 3]
    assert pick_blocks(stages) == [2, 12, 13, 15]  # the last block of each stage
    assert pick_blocks(stages, 0) == [0, 1, 2]
    assert pick_blocks(stages, 1) == [3, 5, 7, 8, 10, 12]  # 10 blocks thinned to 6, ends kept
    assert pick_blocks(stages, 1, limit=1) == [12] and pick_blocks(stages, 1, limit=2) == [3, 12]
    assert pick_blocks([0, 2], 1) == []
    assert resolve_stage([0, 1, 3], -1) == 3 and resolve_stage([0, 1, 3], 1) == 1
    assert resolve_stage([0, 1], None) is None
    for bad in (2, -3, True, 1.0):
        with pytest.raises(probe.ProbeError, match=r"has no gates: stages with gates are \[0, 1\]"):
            resolve_stage([0, 1], bad)
    with pytest.raises(probe.ProbeError, match="positive integer"):
        pick_blocks(stages, 0, limit=0)


# ------------------------------------------------------------------ figures draw the captured data
def test_channel_spatial_view_draws_the_captured_gate() -> None:
    model = _model("resnet10t", "coord")
    gt = probe.trace_gates(model, _pixels())
    g = gt.gates[0]  # stage 0, [1, 16, 16, 16]
    assert float(g.values.std()) > 0.01  # the random gate weights make it vary
    img = _image()
    fig = channel_spatial_view(img, {"block": g.values[0]}, top_channels=2)
    ax_mean, ax_a, ax_b, ax_profile = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    expected = upsample_bilinear(g.values[0].double().mean(0).numpy(), (64, 64))
    np.testing.assert_allclose(_overlay(ax_mean), expected, rtol=1e-6, atol=1e-7)
    spread = g.values[0].flatten(1).std(1, unbiased=False)
    top = [int(c) for c in torch.argsort(spread, descending=True)[:2]]
    assert [ax_a.get_title(), ax_b.get_title()] == [f"channel {c}" for c in top]
    for ax, c in zip((ax_a, ax_b), top):
        expected = upsample_bilinear(g.values[0, c].numpy(), (64, 64))
        np.testing.assert_allclose(_overlay(ax), expected, rtol=1e-6, atol=1e-7)
    profile = ax_profile.lines[0].get_ydata()
    np.testing.assert_allclose(profile, g.values[0].double().mean((1, 2)).numpy(), rtol=1e-6)
    assert ax_profile.lines[1].get_xdata().tolist() == top
    with pytest.raises(probe.ProbeError, match=r"\[channel, h, w\]"):
        channel_spatial_view(img, {"block": g.values})
    with pytest.raises(probe.ProbeError, match="gates is empty"):
        channel_spatial_view(img, {})
    with pytest.raises(probe.ProbeError, match="top_channels"):
        channel_spatial_view(img, {"block": g.values[0]}, top_channels=-1)


def test_branch_gates_view_draws_the_captured_weights() -> None:
    gt = probe.trace_gates(_model("skresnet18"), _pixels())
    weights = {g.name: g.values[0] for g in gt.gates}
    labels = {g.name: g.branches for g in gt.gates}
    shown = [gt.gates[0].name, gt.gates[3].name]
    fig = branch_gates_view(weights, labels, detail=shown, title="sk")
    top, *strips = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert len(strips) == 2 and [a.get_title() for a in strips] == shown
    assert len(top.containers) == 2
    for b, container in enumerate(top.containers):  # one error-bar series per branch
        line = container.lines[0]
        mean = [float(g.values[0, b].double().mean()) for g in gt.gates]
        np.testing.assert_allclose(line.get_xdata(), mean, rtol=1e-6)
        sd = [float(g.values[0, b].double().std(unbiased=False)) for g in gt.gates]
        segs = container.lines[2][0].get_segments()
        np.testing.assert_allclose([s[1, 0] - s[0, 0] for s in segs], 2 * np.array(sd), rtol=1e-6)
    assert [t.get_text() for t in top.get_yticklabels()] == list(weights)
    assert [t.get_text() for t in top.get_legend().get_texts()] == ["3x3", "3x3 dil 2 (5x5)"]
    for ax, name in zip(strips, shown):
        w = weights[name].double()
        order = torch.argsort(-w[0], stable=True)
        np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), w[:, order].numpy())
        assert [t.get_text() for t in ax.get_yticklabels()] == ["3x3", "3x3 dil 2 (5x5)"]
    with pytest.raises(probe.ProbeError, match="one label per branch"):
        branch_gates_view(weights, {shown[0]: ("a",)})
    with pytest.raises(probe.ProbeError, match="not a block of weights"):
        branch_gates_view(weights, detail=["nope"])
    with pytest.raises(probe.ProbeError, match="weights is empty"):
        branch_gates_view({})


def test_maps_of_bilinear_and_context_blocks_and_the_query_at_the_cam_peak() -> None:
    img = _image()
    gt = probe.trace_gates(_model("resnet10t", "bat"), _pixels())
    cam = torch.zeros(8, 8)
    cam[6, 1] = 1.0  # the peak, resized to each block's map
    figs = gate_figures(gt, img, cam=cam)
    assert list(figs) == ["maps"]
    panels = [a for a in figs["maps"].axes if a.get_label() != "<colorbar>"]
    assert len(panels) == 6  # input, 4 stages, the cam
    for ax, g in zip(panels[1:5], gt.gates):
        h, w = g.feature_size
        peak = torch.nn.functional.interpolate(cam[None, None], size=(h, w), mode="bilinear")
        row, col = divmod(int(peak.argmax()), w)
        assert ax.get_title() == f"stage {g.stage} bilinear (BAT)\nquery ({row}, {col})"
        expected = g.values[0, :, row * w + col].double().mean(0).reshape(h, w).numpy()
        np.testing.assert_allclose(_overlay(ax), upsample_bilinear(expected, (64, 64)),
                                   rtol=1e-6, atol=1e-9)
        x, y = ax.lines[0].get_data()  # the query's cross, in image pixels
        assert (x[0], y[0]) == ((col + 0.5) * 64 / w, (row + 0.5) * 64 / h)
    np.testing.assert_allclose(_overlay(panels[5]), upsample_bilinear(cam.numpy(), (64, 64)))
    assert gate_figures(gt, img)["maps"].axes[1].get_title().endswith(
        f"query ({gt.gates[0].feature_size[0] // 2}, {gt.gates[0].feature_size[1] // 2})")
    gc = probe.trace_gates(_model("resnet10t", "gc"), _pixels())
    fig = gate_figures(gc, img, stage=-1)["maps"]
    [ax] = [a for a in fig.axes if a.get_title() == "stage 3 context pooling"]
    ctx = gc.select("context", stage=3)[0].values[0].double().numpy()
    np.testing.assert_allclose(_overlay(ax), upsample_bilinear(ctx, (64, 64)), rtol=1e-6)


# ------------------------------------------------------------------ every kind, and mixed models
@pytest.mark.parametrize(
    ("name", "attn", "keys"),
    [
        ("skresnet18", None, ["branch"]),
        ("resnest14d", None, ["branch"]),
        ("resnet10t", "coord", ["channel_spatial"]),
        ("resnet10t", "scoord", ["channel_spatial"]),
        ("resnet10t", "ge2", ["channel_spatial"]),
        ("resnet10t", "bat", ["maps"]),
        ("resnet10t", "gc", ["maps", "channel"]),  # its channel gates too
        ("resnet10t", "cbam", ["maps", "channel"]),  # its channel gates too
        ("resnet10t", "nl", ["maps"]),
        ("skresnet18", "coord", ["channel_spatial", "branch"]),
        ("skresnet18", "bat", ["maps", "branch"]),
    ],
)
def test_gate_figures_for_every_kind(name: str, attn: str | None, keys: list[str]) -> None:
    gt = probe.trace_gates(_model(name, attn), _pixels())
    figs = gate_figures(gt, _image())
    assert sorted(figs) == sorted(keys)
    with_cam = gate_figures(gt, _image(), cam=torch.rand(2, 2), stage=1)
    assert sorted(with_cam) == sorted(set(keys) | ({"maps"} if "maps" in keys else {"cam"}))
    if "channel_spatial" in keys:  # stage 1 only: one row
        [row] = with_cam["channel_spatial"].subfigs
        assert row.get_suptitle().startswith("stage 1 \u00b7 layer2.0.se (")
    if "branch" in keys:
        strips = [a for a in with_cam["branch"].axes if a.images]
        name = gt.select("branch", 1)[0].name
        assert [a.get_title() for a in strips] == [f"stage 1 \u00b7 {name}"]


def test_gate_figures_refusals() -> None:
    gt = probe.trace_gates(_model("resnet10t", "coord"), _pixels())
    with pytest.raises(probe.ProbeError, match=r"stage 4 has no gates: stages with gates are"):
        gate_figures(gt, _image(), stage=4)
    with pytest.raises(probe.ProbeError, match=r"item must be an image index in 0..0, got 1"):
        gate_figures(gt, _image(), item=1)
    se = probe.trace_gates(timm.create_model("resnet10t", num_classes=5, **SMALL,
                                             block_args=dict(attn_layer="se")).eval(), _pixels())
    assert list(gate_figures(se, _image())) == ["channel"]  # SE gates alone: their own figure
    assert list(gate_figures(se, _image(), cam=torch.rand(2, 2))) == ["cam", "channel"]


def test_the_cam_figure_title_wraps_inside_the_figure() -> None:
    """A model whose gates are no map over the image draws GradCAM alone: two panels (4.6 in)
    under the caption "... (8 channel_spatial gates captured; none is a map over the image)",
    which ran off both edges of the figure."""
    from probe.viewers._width import text_clashes

    gt = probe.trace_gates(_model("resnet10t", "coord"), _pixels())
    fig = gate_figures(gt, _image(), cam=torch.rand(2, 2))["cam"]
    assert fig.get_suptitle().replace("\n", " ") == (
        "resnet10t: GradCAM (last stage) (4 channel_spatial gates captured; none is a map "
        "over the image)")
    assert fig.get_suptitle().count("\n") >= 2  # wrapped, not cut
    assert text_clashes(fig) == []


def test_many_blocks_are_thinned() -> None:
    torch.manual_seed(0)
    model = timm.create_model("resnest26d", pretrained=False, num_classes=5).eval()  # 2 per stage
    gt = probe.trace_gates(model, _pixels())
    fig = gate_figures(gt, _image())["branch"]
    strips = [a for a in fig.axes if a.images and a.get_label() != "<colorbar>"]
    assert [a.get_title() for a in strips] == [
        f"stage {s} \u00b7 layer{s + 1}.1.conv2" for s in range(4)]  # last block of each stage
    assert len(fig.axes[0].get_yticks()) == 8  # the summary shows every block
    stage = gate_figures(gt, _image(), stage=0, max_blocks=1)["branch"]
    assert stage.get_suptitle().endswith("(heatmaps: stage 0, 1 of its 2 blocks)")
    assert [a.get_title() for a in stage.axes if a.images] == ["stage 0 \u00b7 layer1.1.conv2"]
    assert len(stage.axes[0].get_yticks()) == 2  # the summary: the stage's blocks


# ------------------------------------------------------------------ the look: readable text
def _texts(fig):
    """Canvas width and height at 100 dpi, and (text, window extent, font size) of every text
    drawn."""
    fig.set_dpi(100)
    drawn = drawn_text_artists(fig)
    return fig.bbox.width, fig.bbox.height, [(t.get_text(), box, float(t.get_fontsize()))
                                             for t, box in drawn]


@pytest.mark.parametrize("kind", ["branch", "channel_spatial", "maps", "maps of one stage"])
def test_look_of_the_new_figures(kind: str) -> None:
    if kind == "maps of one stage":  # three GC blocks in stage 2, titled by their long names
        torch.manual_seed(0)
        gt = probe.trace_gates(timm.create_model("gcresnet33ts", pretrained=False).eval(),
                               _pixels())
        fig = gate_figures(gt, _image(), cam=torch.rand(2, 2), stage=2)["maps"]
        assert fig.axes[1].get_title() == "stages.2.0.attn.conv_attn\ncontext pooling"
    else:
        model = {"branch": ("skresnet18", None), "channel_spatial": ("resnet10t", "ge2"),
                 "maps": ("resnet10t", "bat")}[kind]
        gt = probe.trace_gates(_model(*model), _pixels())
        fig = gate_figures(gt, _image(), cam=torch.rand(2, 2))[kind]
    width, height, texts = _texts(fig)
    outside = [t for t, b, _ in texts if b.x0 < -1 or b.y0 < -1 or b.x1 > width + 1
               or b.y1 > height + 1]
    assert not outside
    clashes = [(ta, tb) for (ta, a, _), (tb, b, _) in itertools.combinations(texts, 2)
               if min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1]
    assert not clashes, clashes[:5]
    assert min(s for _, _, s in texts) >= MIN_FONT_PT


# ------------------------------------------------------------------ probe render gates
def _session(model: torch.nn.Module, layer: int | None = None):
    from probe.capture import adapter_for
    from probe.commands.render._args import RenderArgs
    from probe.commands.render._session import Session

    args = RenderArgs(view="gates", layer=layer)
    s = Session(args, model, None, "tiny", "vision", pixel_values=_pixels(), display=_image(),
                source="tiny")
    s.extra["adapter"] = adapter_for(model)
    return s


def test_render_view_on_tiny_models() -> None:
    from probe.commands.render._figures import VIEWS

    out = VIEWS["gates"](_session(_model("skresnet18", "coord")))
    assert [stem.split("_")[2] for stem, _ in out] == ["gradcam", "branch", "channel-spatial"]
    out = VIEWS["gates"](_session(_model("resnet10t", "bat"), layer=-1))
    [(stem, fig)] = out
    assert stem.startswith("gates_tiny_S3_spatial-gradcam_tiny-")
    titles = [a.get_title() for a in fig.axes[:3]]
    assert titles[0] == "input" and titles[2] == "GradCAM (last stage)"
    assert re.fullmatch(r"stage 3 bilinear \(BAT\)\nquery \([01], [01]\)", titles[1])  # 2x2
    with pytest.raises(probe.ProbeError, match=r"^--layer picks a stage in the gates view: stage 5"
                       r" has no gates"):
        VIEWS["gates"](_session(_model("resnet10t", "bat"), layer=5))


def test_render_gates_cli_on_split_attention(tmp_path: Path, capsys) -> None:
    from probe.cli import main

    rc = main(["render", "gates", "--model", "timm:resnest14d", "--layer", "-1", "--out",
               str(tmp_path), "--quiet", "--dpi", "60"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    names = [Path(line).name for line in out.strip().splitlines()]
    assert [n.split("_")[2:4] for n in names] == [["S3", "gradcam"], ["S3", "branch"]]
    assert all((tmp_path / n).stat().st_size > 1000 for n in names)
    for argv, needle in [(["--layer", "4"], "--layer picks a stage in the gates view: stage 4 has "
                                             "no gates: stages with gates are [0, 1, 2, 3]"),
                         (["--head", "0"], "--head does not apply to the gates view")]:
        rc = main(["render", "gates", "--model", "timm:resnest14d", *argv, "--out",
                   str(tmp_path / "o"), "--quiet"])
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and needle in lines[0], err
        assert not out and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_render_gates_cli_on_bat(tmp_path: Path, capsys) -> None:
    from probe.cli import main

    rc = main(["render", "gates", "--model", "timm:bat_resnext26ts", "--out", str(tmp_path),
               "--quiet", "--dpi", "60"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    [path] = [Path(line) for line in out.strip().splitlines()]
    assert "_spatial-gradcam_" in path.name and path.stat().st_size > 1000


def test_bat_on_indivisible_maps_is_a_clear_error() -> None:
    model = _model("resnet10t", "bat")
    before = [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()]
    with pytest.raises(probe.ProbeError, match=r"layer3\.0\.se \(BatNonLocalAttn\) needs feature "
                                               r"maps divisible by its block size 2, got 3x3"):
        probe.trace_gates(model, _pixels(48))
    assert [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()] == before
