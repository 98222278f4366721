"""The channel-gate figure (SE, ECA, CBAM's channel part): the numbers it plots are the
captured gate values (sorted, averaged and spread as documented), through the Python viewer,
``gate_figures`` and ``probe render gates`` on the embedded cnn-shapes."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

import probe
from probe.analysis._channel_gates import NEAR, channel_gate_stats
from probe.viewers import channel_gates_view, gate_figures
from probe.viewers._style import MIN_FONT_PT


@pytest.fixture(scope="module")
def shapes_gates():
    model, _ = probe.load_model("cnn-shapes")
    batch = probe.make_shapes(6, seed=3)
    return probe.trace_gates(model, batch.images), batch


def _line(fig, gid: str) -> list:
    return [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == gid]


def test_stats_match_numpy() -> None:
    torch.manual_seed(0)
    v = torch.rand(5, 12)
    v[0, 3] = v[1, 3] = 0.0  # a tie in the order and exact zeros
    s = channel_gate_stats(v)
    x = v.numpy().astype(np.float64)
    np.testing.assert_allclose(s.mean.numpy(), x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(s.sd.numpy(), x.std(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(s.low.numpy(), v.numpy().min(0))
    np.testing.assert_array_equal(s.high.numpy(), v.numpy().max(0))
    np.testing.assert_allclose(s.quartiles.numpy(), np.quantile(x, [0.1, 0.25, 0.5, 0.75, 0.9]),
                               rtol=1e-6)
    assert s.overall == pytest.approx(x.mean(), rel=1e-6)
    assert s.near_zero == pytest.approx((x < NEAR).mean())
    assert s.near_one == pytest.approx((x > 1 - NEAR).mean())
    assert list(s.order.numpy()) == sorted(range(12), key=lambda c: (-float(s.mean[c]), c))
    one = channel_gate_stats(v[2])  # [channel]: one image
    assert one.images == 1 and float(one.sd.abs().max()) == 0.0
    for bad in (torch.zeros(2, 3, 4), torch.zeros(0), torch.tensor([0.5, float("nan")])):
        with pytest.raises(probe.ProbeError, match="channel gates"):
            channel_gate_stats(bad)


def test_one_image_plots_the_captured_factors(shapes_gates) -> None:
    gt, batch = shapes_gates
    fig = gate_figures(gt, batch.to_display(2), item=2)["channel"]
    channel = gt.select("channel")
    assert len(channel) == 4  # one CBAM channel gate per stage
    lines = _line(fig, "factors")
    assert len(lines) == 4
    for line, gate in zip(lines, channel):
        captured = gate.values[2].float().numpy()
        np.testing.assert_array_equal(line.get_ydata(), np.sort(captured)[::-1])
    [means] = _line(fig, "mean")
    np.testing.assert_allclose(means.get_xdata(), [float(g.values[2].float().mean())
                                                   for g in channel], rtol=1e-6)
    assert not _line(fig, "spread")  # one image: no spread over images
    assert "one image" in fig.get_suptitle()
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [f"stage {g.stage} \u00b7 {g.name}" for g in channel]


def test_several_images_plot_the_spread(shapes_gates) -> None:
    gt, batch = shapes_gates
    fig = gate_figures(gt, batch.to_display(0), channel_items=[0, 1, 2, 3, 4, 5],
                       stage=2)["channel"]
    [gate] = gt.select("channel", 2)
    v = gate.values.float().numpy().astype(np.float64)  # [6, 64]
    order = np.argsort(-v.mean(0), kind="stable")
    [line] = _line(fig, "factors")
    np.testing.assert_allclose(line.get_ydata(), v.mean(0)[order], rtol=1e-6)
    [spread] = _line(fig, "spread")
    np.testing.assert_allclose(spread.get_xdata(), v.mean(0), rtol=1e-6)
    np.testing.assert_allclose(spread.get_ydata(), v.std(0), rtol=1e-4, atol=1e-6)
    band = [c for ax in fig.axes for c in ax.collections if c.get_label().startswith("min..max")]
    assert len(band) == 1
    assert "6 images" in fig.get_suptitle() and "detail: stage 2" in fig.get_suptitle()
    # the summary lists every block of the stage; its text gives the fractions near 0 and 1
    right = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert right == [f"mean {v.mean():.2f} \u00b7 <0.1: {(v < 0.1).mean():.0%} \u00b7 "
                     f">0.9: {(v > 0.9).mean():.0%}"]


def test_figure_text_is_readable(shapes_gates) -> None:
    from tests.test_gate_kind_views import _texts  # drawn texts only, measured by Agg

    gt, batch = shapes_gates
    for items in ([0], list(range(6))):
        fig = gate_figures(gt, batch.to_display(0), channel_items=items)["channel"]
        width, height, texts = _texts(fig)
        assert not [t for t, b, _ in texts if b.x0 < -1 or b.y0 < -1 or b.x1 > width + 1
                    or b.y1 > height + 1]
        clashes = [(ta, tb) for (ta, a, _), (tb, b, _) in itertools.combinations(texts, 2)
                   if min(a.x1, b.x1) - max(a.x0, b.x0) > 1
                   and min(a.y1, b.y1) - max(a.y0, b.y0) > 1]
        assert not clashes, clashes[:5]
        assert min(s for _, _, s in texts) >= MIN_FONT_PT


def test_view_refusals() -> None:
    with pytest.raises(probe.ProbeError, match="gates is empty"):
        channel_gates_view({})
    with pytest.raises(probe.ProbeError, match="different numbers of images"):
        channel_gates_view({"a": np.zeros((2, 4)), "b": np.zeros((3, 4))})
    with pytest.raises(probe.ProbeError, match="detail names 'c'"):
        channel_gates_view({"a": np.zeros((2, 4))}, detail=["c"])
    fig = channel_gates_view({"a": np.linspace(0, 1, 8)})  # [channel]: one image
    [line] = _line(fig, "factors")
    np.testing.assert_allclose(line.get_ydata(), np.linspace(1, 0, 8))


def test_channel_items_are_checked(shapes_gates) -> None:
    gt, batch = shapes_gates
    for bad in ([6], [], [True], [0, -1], [1, 1], np.array([2, 2])):
        with pytest.raises(probe.ProbeError,
                           match="channel_items must be distinct image indices in 0..5"):
            gate_figures(gt, batch.to_display(0), channel_items=bad)


def test_numpy_indices_are_taken_and_counts_named(shapes_gates) -> None:
    """Indices from numpy (np.arange, np.int64) work like ints; a bad item or max_blocks is
    named as the caller wrote it (item 1 of 6 was called 'out of range', max_blocks 'limit')."""
    gt, batch = shapes_gates
    plain = gate_figures(gt, batch.to_display(1), item=1, channel_items=[0, 1, 2])["channel"]
    numpy = gate_figures(gt, batch.to_display(1), item=np.int64(1),
                         channel_items=np.arange(3))["channel"]
    assert [np.asarray(ln.get_ydata()).tolist() for ax in numpy.axes for ln in ax.lines] == \
        [np.asarray(ln.get_ydata()).tolist() for ax in plain.axes for ln in ax.lines]
    assert numpy.get_suptitle() == plain.get_suptitle()
    with pytest.raises(probe.ProbeError, match=r"item must be an image index in 0..5, got 6"):
        gate_figures(gt, batch.to_display(0), item=6)
    with pytest.raises(probe.ProbeError, match="max_blocks must be a positive integer, got 0"):
        gate_figures(gt, batch.to_display(0), max_blocks=0)


def test_render_gates_draws_the_channel_gates(tmp_path: Path, capsys, monkeypatch) -> None:
    import probe.viewers._gate_kinds as kinds
    from probe.cli import main

    seen = []
    view = kinds.channel_gates_view

    def recorded(gates, **kwargs):
        seen.append({k: np.asarray(v) for k, v in gates.items()})
        return view(gates, **kwargs)

    monkeypatch.setattr(kinds, "channel_gates_view", recorded)
    rc = main(["render", "gates", "--model", "cnn-shapes", "--seed", "3", "--out", str(tmp_path),
               "--quiet", "--dpi", "50"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    names = [Path(line).name for line in out.strip().splitlines()]
    assert [n.split("_")[2] for n in names] == ["spatial-gradcam", "channel"]
    assert (tmp_path / names[1]).stat().st_size > 1000
    model, _ = probe.load_model("cnn-shapes")
    gt = probe.trace_gates(model, probe.make_shapes(1, seed=3).images)  # what the CLI drew
    [drawn] = seen
    assert list(drawn) == [f"stage {g.stage} \u00b7 {g.name}" for g in gt.select("channel")]
    for values, gate in zip(drawn.values(), gt.select("channel")):
        np.testing.assert_array_equal(values, gate.values.numpy())
