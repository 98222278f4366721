"""Geometry of figures as a reviewer of a paper figure measures it: colourbars exactly as tall
as the panels they belong to, panels on one grid (every row's columns at the same x), and no
text outside the canvas, at the default size and at one- and two-column widths."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pytest

from _layout import layout_problems
from probe.viewers import cls_head_grid, comparison_panel, window_query_view

matplotlib.use("Agg")

WIDTHS = [None, "single", "double"]


def _drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    bars = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    panels = [ax for ax in fig.axes if ax not in bars]
    return panels, bars


def _span_px(fig, axes):
    """(top, bottom) in pixels of the union of ``axes``."""
    height = fig.bbox.height
    return (max(ax.get_position().y1 for ax in axes) * height,
            min(ax.get_position().y0 for ax in axes) * height)


def _assert_on_grid(fig, panels):
    """Panels in rows and columns: a row's panels share their y, a column's their x (no
    panel a few pixels off the others)."""
    width, height = fig.bbox.width, fig.bbox.height
    xs = sorted(ax.get_position().x0 * width for ax in panels)
    ys = sorted(ax.get_position().y0 * height for ax in panels)
    for values in (xs, ys):
        clusters = [[values[0]]]
        for v in values[1:]:
            if v - clusters[-1][-1] < 20:
                clusters[-1].append(v)
            else:
                clusters.append([v])
        for cluster in clusters:
            assert max(cluster) - min(cluster) < 0.5, values


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("heads", [4, 12])
def test_cls_grid_colourbar_is_as_tall_as_the_panels_of_a_16_9_image(width, heads):
    """A 16:9 photo (image_size=(360, 640)): the colourbar ran past a single row of panels
    (at least 1.9 in beside 1.1 in panels) and was 0.85 of a taller grid; at one column
    the title, centred over two narrow columns, ran off the left edge."""
    rng = np.random.default_rng(0)
    fig = cls_head_grid(rng.random((32, 32, 3)), rng.random((heads, 8, 8)), layer=3,
                        model_name="vit-shapes", image_size=(360, 640), width=width)
    panels, (bar,) = _drawn(fig)
    top, bottom = _span_px(fig, panels)
    bar_top, bar_bottom = _span_px(fig, [bar])
    assert abs(bar_top - top) <= 1 and abs(bar_bottom - bottom) <= 1
    _assert_on_grid(fig, panels)
    assert layout_problems(fig) == []


@pytest.mark.parametrize("width", [None, 12.0])
def test_compare_colourbars_are_as_tall_as_the_panels(width):
    """They were 0.85 of the panels' height, centred. (Narrower, the two-line labels no
    longer fit along one row of panels, and the bars are as long as their labels.)"""
    rng = np.random.default_rng(0)
    m = rng.random((8, 8))
    fig = comparison_panel(rng.random((32, 32, 3)), {"rollout": m, "ig": m - 0.5,
                                                     "random": m.T}, width=width)
    panels, bars = _drawn(fig)
    images = [ax for ax in panels if ax.images]
    top, bottom = _span_px(fig, images)
    assert len(bars) == 2
    for bar in bars:
        bar_top, bar_bottom = _span_px(fig, [bar])
        assert abs(bar_top - top) <= 1 and abs(bar_bottom - bottom) <= 1
    assert layout_problems(fig) == []


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("heads", [3, 6, 11])
def test_window_view_panels_line_up_and_the_colourbar_spans_them(width, heads):
    """The second row's first panel (head 3 of 6) sat a few pixels right of the input above
    it: the colourbar took its room from the map panels only."""
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = window_query_view(rng.random((32, 32, 3)), rng.random((heads, 4, 4)), (2, 2),
                                (8.0, 8.0), title="swin-shapes · layer 3 · stage 1, token (2, 2)",
                                width=width)
    panels, (bar,) = _drawn(fig)
    assert len(panels) == heads + 1
    _assert_on_grid(fig, panels)
    top, bottom = _span_px(fig, panels)
    bar_top, bar_bottom = _span_px(fig, [bar])
    assert abs(bar_top - top) <= 1 and abs(bar_bottom - bottom) <= 1
    assert layout_problems(fig) == []


@pytest.mark.parametrize("width", [None, "double"])
@pytest.mark.parametrize("view", ["model", "heads"])
def test_text_grid_colourbar_spans_the_panels(view, width):
    """The model view and a layer's head grid (cross-attention too: the same grid): the bar was
    0.8 of the panels' height (at least 2 in), centred."""
    from probe.viewers import head_grid, model_view

    rng = np.random.default_rng(0)
    tokens = ["[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]"]
    if view == "model":
        fig = model_view(rng.random((6, 12, 9, 9)), tokens, model_name="minilm", width=width)
    else:
        fig = head_grid(rng.random((12, 4, 9)), query_tokens=tokens[:4], key_tokens=tokens,
                        layer=1, width=width)
    panels, (bar,) = _drawn(fig)
    top, bottom = _span_px(fig, panels)
    bar_top, bar_bottom = _span_px(fig, [bar])
    assert abs(bar_top - top) <= 1 and abs(bar_bottom - bottom) <= 1
    assert layout_problems(fig) == []


def _drawn_span(fig, axes):
    """(top, bottom) in pixels of ``axes`` as drawn (their boxes after aspect is applied)."""
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_window_extent(renderer) for ax in axes]
    return max(b.y1 for b in boxes), min(b.y0 for b in boxes)


@pytest.mark.parametrize("n", [8, 40])
def test_head_heatmap_colourbar_spans_the_matrix(n):
    """A long heatmap (40 tokens): the bar kept matplotlib's 20:1 box and stopped about 11 px
    short at each end at 100 dpi."""
    from probe.viewers import head_heatmap

    rng = np.random.default_rng(0)
    fig = head_heatmap(rng.random((n, n)), [f"w{i}" for i in range(n)], layer=5, head=0)
    fig.set_dpi(100)
    panels, (bar,) = _drawn(fig)
    top, bottom = _drawn_span(fig, panels)
    bar_top, bar_bottom = _drawn_span(fig, [bar])
    assert abs(bar_top - top) <= 1 and abs(bar_bottom - bottom) <= 1
    assert layout_problems(fig) == []


@pytest.mark.parametrize("shape", [(32, 32), (64, 32), (32, 96)])
def test_gate_map_colourbars_span_their_images(shape):
    """probe render gates: each bar spanned its panel's box at 20:1, not the image drawn in it
    (7 px short at each end of a square image, half the height of a tall one)."""
    from probe.viewers import gate_maps

    rng = np.random.default_rng(0)
    fig = gate_maps(rng.random((*shape, 3)), {"stage 1 spatial gate": rng.random((8, 8)),
                                              "GradCAM": rng.random((8, 8))})
    panels, bars = _drawn(fig)
    assert len(bars) == 2
    for panel in panels[1:]:
        top, bottom = _drawn_span(fig, [panel])
        bar = min(bars, key=lambda b: abs(b.get_window_extent().x0
                                          - panel.get_window_extent().x1))  # its own bar
        bar_top, bar_bottom = _drawn_span(fig, [bar])
        assert abs(bar_top - top) <= 1 and abs(bar_bottom - bottom) <= 1


def _image_panels(panels):
    """The panels that draw an image (overlays, heatmaps), left to right, top to bottom."""
    shown = [ax for ax in panels if ax.images]
    return sorted(shown, key=lambda ax: (-round(ax.get_window_extent().y1),
                                         ax.get_window_extent().x0))


def _assert_spans(fig, bar, panels):
    top, bottom = _drawn_span(fig, panels)
    bar_top, bar_bottom = _drawn_span(fig, [bar])
    assert abs(bar_top - top) <= 1 and abs(bar_bottom - bottom) <= 1, (
        (bar_top, bar_bottom), (top, bottom))


@pytest.mark.parametrize("shape", [(32, 32), (64, 32), (32, 96)])
@pytest.mark.parametrize("queries", [1, 3, 6])
def test_detr_query_colourbar_spans_the_query_panels(shape, queries):
    """probe render detr: the shared bar kept matplotlib's 20:1 box beside the query panels."""
    from probe.viewers import detr_queries_view

    rng = np.random.default_rng(0)
    boxes = np.tile([[0.5, 0.5, 0.4, 0.3]], (queries, 1))
    fig = detr_queries_view(rng.random((*shape, 3)), rng.random((queries, 4, 4)), boxes,
                            [f"class {i}" for i in range(queries)], scores=[0.9] * queries)
    fig.set_dpi(100)
    panels, (bar,) = _drawn(fig)
    _assert_spans(fig, bar, _image_panels(panels))
    assert layout_problems(fig) == []


@pytest.mark.parametrize("shape", [(32, 32), (64, 32)])
def test_detr_query_colourbars_each_span_their_panel(shape):
    from probe.viewers import detr_queries_view

    rng = np.random.default_rng(0)
    fig = detr_queries_view(rng.random((*shape, 3)), rng.random((2, 4, 4)),
                            np.tile([[0.5, 0.5, 0.4, 0.3]], (2, 1)), ["cat", "dog"],
                            scale="each")
    fig.set_dpi(100)
    panels, bars = _drawn(fig)
    images = _image_panels(panels)
    assert len(bars) == len(images) == 2
    for panel in images:
        bar = min(bars, key=lambda b: abs(b.get_window_extent().x0
                                          - panel.get_window_extent().x1))
        _assert_spans(fig, bar, [panel])


@pytest.mark.parametrize("shape", [(32, 32), (64, 32), (32, 96)])
@pytest.mark.parametrize("queries", [1, 3])
def test_non_local_query_colourbar_spans_the_query_panels(shape, queries):
    """probe render gates (non-local / BAT blocks): the bar beside the query panels was 20:1."""
    from probe.viewers import query_point_view

    rng = np.random.default_rng(0)
    maps = rng.random((queries, 4, 4))
    points = [(i % 4, (2 * i) % 4) for i in range(queries)]
    fig = query_point_view(rng.random((*shape, 3)), maps if queries > 1 else maps[0],
                           points if queries > 1 else points[0])
    fig.set_dpi(100)
    panels, (bar,) = _drawn(fig)
    images = _image_panels(panels)
    assert len(images) == queries + 1
    query_panels = [ax for ax in images if ax.get_title() != "input"]
    _assert_spans(fig, bar, query_panels)
    assert layout_problems(fig) == []


def test_branch_gate_colourbar_spans_the_heatmaps():
    """probe render gates (SK, ResNeSt): the branch-weight bar spans the heatmaps (a guard:
    it already did before the colourbar changes; no defect was seen here)."""
    from probe.viewers import branch_gates_view

    rng = np.random.default_rng(0)
    w = rng.random((2, 3, 24))
    w = w / w.sum(1, keepdims=True)
    fig = branch_gates_view({"stage 1": w[0], "stage 2": w[1]})
    fig.set_dpi(100)
    panels, (bar,) = _drawn(fig)
    heatmaps = _image_panels(panels)
    assert len(heatmaps) == 2
    _assert_spans(fig, bar, heatmaps)
    assert layout_problems(fig) == []


@pytest.mark.parametrize("shape", [(32, 32), (64, 32), (32, 96)])
def test_channel_spatial_colourbars_span_their_maps(shape):
    """probe render gates (gather-excite, coordinate attention): the mean's bar and the top
    channels' shared bar span their maps (a guard: they already did before the colourbar
    changes; no defect was seen here)."""
    from probe.viewers import channel_spatial_view

    rng = np.random.default_rng(0)
    fig = channel_spatial_view(rng.random((*shape, 3)),
                               {"block a": rng.random((6, 4, 4)), "block b": rng.random((6, 4, 4))},
                               top_channels=2)
    fig.set_dpi(100)
    panels, bars = _drawn(fig)
    images = _image_panels(panels)
    assert len(bars) == 4 and len(images) == 6
    for row in (images[:3], images[3:]):
        mean, channels = row[0], row[1:]
        row_bars = sorted((b for b in bars if abs(b.get_window_extent().y1
                                                  - _drawn_span(fig, row)[0]) < 40),
                          key=lambda b: b.get_window_extent().x0)
        assert len(row_bars) == 2
        _assert_spans(fig, row_bars[0], [mean])
        _assert_spans(fig, row_bars[1], channels)
