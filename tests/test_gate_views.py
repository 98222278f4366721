"""Figures of CNN gates and DETR queries: data in, a Figure out."""

from __future__ import annotations

import numpy as np
import pytest

import probe
from probe.viewers import channel_profiles_view, detr_queries_view, gate_maps, query_point_view


def _image() -> np.ndarray:
    return np.random.default_rng(0).random((32, 32, 3))


def test_gate_maps_panels_and_colorbars() -> None:
    fig = gate_maps(_image(),
                    {"stage 0 spatial gate": np.random.rand(16, 16),
                     "GradCAM": np.random.rand(8, 8)})
    axes = fig.axes
    assert len(axes) == 5  # input, two overlays, two colorbars
    assert axes[1].get_title() == "stage 0 spatial gate"
    assert {a.get_ylabel() for a in axes[3:]} == {"gate", "score"}
    with pytest.raises(probe.ProbeError, match="maps is empty"):
        gate_maps(_image(), {})


def test_channel_profiles_view() -> None:
    prof = {"stage 0": np.random.rand(4, 16), "stage 3": np.random.rand(4, 96)}
    fig = channel_profiles_view(prof, ["a", "b", "c", "d"], specificity={"stage 3": 1.5})
    assert len(fig.axes) == 2 and "1.50" in fig.axes[1].get_title()
    assert len(fig.axes[0].lines) == 4
    with pytest.raises(probe.ProbeError, match="class names"):
        channel_profiles_view(prof, ["a", "b"])


def test_query_point_view_marks_the_query() -> None:
    heat = np.random.rand(4, 4)
    fig = query_point_view(_image(), heat / heat.sum(), (1, 2))
    x, y = fig.axes[1].lines[0].get_data()
    assert (x[0], y[0]) == (20.0, 12.0)
    with pytest.raises(probe.ProbeError, match="outside"):
        query_point_view(_image(), heat, (4, 0))


def test_query_point_view_several_queries_share_one_scale() -> None:
    heat = np.random.default_rng(1).random((2, 4, 4))
    fig = query_point_view(_image(), heat, [(0, 0), (3, 3)], labels=["on object", "background"])
    assert [fig.axes[i].get_title() for i in (1, 2)] == ["on object", "background"]
    assert len(fig.axes) == 4  # input, two overlays, one shared colorbar
    assert fig.axes[3].get_ylim()[1] == pytest.approx(heat.max())
    assert fig.axes[0].lines[1].get_data()[0][0] == 28.0  # the second query's cross, x
    with pytest.raises(probe.ProbeError, match="one of each per query"):
        query_point_view(_image(), heat, [(0, 0)])


def test_detr_queries_view_draws_boxes() -> None:
    fig = detr_queries_view(_image(), np.random.rand(2, 4, 4),
                            np.array([[0.5, 0.5, 0.5, 0.25]] * 2),
                            ["cat", "dog"], scores=[0.9, 0.4])
    rect = fig.axes[0].patches[0]
    assert rect.get_xy() == (8.0, 12.0) and rect.get_width() == 16.0 and rect.get_height() == 8.0
    assert fig.axes[1].get_title() == "dog 0.40"
    with pytest.raises(probe.ProbeError, match="one of each per query"):
        detr_queries_view(_image(), np.random.rand(2, 4, 4), np.zeros((1, 4)), ["cat", "dog"])


def test_detr_title_and_panels_write_the_threshold_alike() -> None:
    """A query scoring 0.4996 was drawn as 'cat 0.50' under the title 'no query scores >= 0.5':
    both now write two decimals, the panels rounded down, so no panel shows a threshold its
    query did not reach."""
    from probe.commands._pages import pick_queries

    scores = [0.4996, 0.3, 0.29, 0.57]
    shown, note = pick_queries(scores[:3], [])
    assert (shown, note) == ([0, 1, 2], "no query scores >= 0.50: the best 3")
    assert pick_queries([0.5, 0.2], [])[1] == "queries with score >= 0.50"
    assert pick_queries([0.5, 0.2], [], threshold=0.125)[1] == "queries with score >= 0.125"
    fig = detr_queries_view(_image(), np.random.rand(4, 4, 4), np.full((4, 4), 0.5),
                            ["cat", "dog", "cow", "hen"], scores=scores)
    assert [ax.get_title() for ax in fig.axes[:4]] == [
        "cat 0.49", "dog 0.30", "cow 0.29", "hen 0.57"]
