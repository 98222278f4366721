"""Very thin and very wide images in every image view: each image drawn at its own ratio in a
panel box of at most about 4:1, colourbars long enough to read, no text over other text, over
another panel's image or off the canvas (measured with the renderer's text bounding boxes);
square images drawn exactly as before.

(``saliency_overlay`` has its own tests in ``tests/test_render_vit_aspect.py``.)
"""

from __future__ import annotations

import hashlib
import warnings

import matplotlib
import numpy as np
import pytest

from _layout import data_ratios, drawn_ratios, image_axes, layout_problems
from probe.viewers import (
    channel_spatial_view,
    cls_head_grid,
    comparison_panel,
    detr_queries_view,
    gate_maps,
    query_point_view,
    saliency_overlay,
)

matplotlib.use("Agg")

VIEWS = ["compare", "cls", "gates", "channel_spatial", "detr", "query"]
# (pixel shape of the array, image_size=) -> the drawn (height, width)
SHAPES = {
    "1000x10": ((10, 1000), None),
    "10x1000": ((1000, 10), None),
    "3:1": ((100, 300), None),
    "1:3": ((300, 100), None),
    "resized to 1000x10": ((32, 32), (10, 1000)),
    "resized to 1:3": ((32, 32), (300, 100)),
}


def _figure(view: str, image: np.ndarray, size) -> object:
    rng = np.random.default_rng(0)
    kw = {} if size is None else {"image_size": size}
    m = rng.random((4, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constrained layout's "not compatible" notes
        if view == "compare":
            return comparison_panel(image, {"attention": m, "ig": m - 0.5, "random": m.T}, **kw)
        if view == "cls":
            return cls_head_grid(image, rng.random((3, 4, 4)), layer=2, model_name="vit", **kw)
        if view == "gates":
            return gate_maps(image, {"stage 1 non-local\nquery (2, 4)": m,
                                     "GradCAM (last stage)": m}, title="g", **kw)
        if view == "channel_spatial":
            return channel_spatial_view(image, {"block 1": rng.random((12, 4, 4))}, **kw)
        if view == "detr":
            return detr_queries_view(image, rng.random((3, 4, 4)), np.array([[.5, .5, .4, .4]] * 3),
                                     ["cat", "dog", "no object"], scores=[.9, .8, .7],
                                     title="detr · layer 5", **kw)
        return query_point_view(image, rng.random((2, 4, 4)), [(1, 1), (2, 3)], title="nl", **kw)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("view", VIEWS)
def test_thin_and_wide_images_stay_readable(view, shape):
    (h, w), size = SHAPES[shape]
    height, width = size or (h, w)
    fig = _figure(view, np.random.default_rng(1).random((h, w, 3)), size)
    assert layout_problems(fig) == []
    # every image at its own proportions, on the canvas too
    assert data_ratios(fig) == pytest.approx([width / height] * len(image_axes(fig)), rel=1e-6)
    assert drawn_ratios(fig) == pytest.approx(data_ratios(fig), rel=0.03)
    fig_w, fig_h = fig.get_size_inches()
    for ax in image_axes(fig):  # the box the layout gave the panel: about 4:1 at most
        box = ax.get_position(original=True)
        ratio = (box.width * fig_w) / (box.height * fig_h)
        assert 1 / 5 <= ratio <= 5
        if width >= 3 * height:  # a wide image gets a wide box (a square box wastes it)
            assert ratio >= 2.4
        if height >= 3 * width:
            assert ratio <= 1.0
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:  # colourbars long enough for three ticks and their label
        if hasattr(ax, "_colorbar"):
            pos = ax.get_position()
            long_side = max(pos.width * fig_w, pos.height * fig_h)
            assert long_side >= 0.5
            label = ax._colorbar.ax.yaxis.label if pos.height > pos.width else (
                ax._colorbar.ax.xaxis.label)
            extent = label.get_window_extent(renderer)
            assert max(extent.width, extent.height) / fig.dpi <= long_side + 0.05  # its margins


def test_query_point_view_image_size_stretches_image_maps_and_crosses():
    image = np.random.default_rng(0).random((32, 32, 3))
    fig = query_point_view(image, np.random.default_rng(1).random((4, 4)), (1, 2),
                           image_size=(10, 1000))
    for ax in image_axes(fig):
        assert ax.get_xlim() == (0.0, 1000.0) and ax.get_ylim() == (10.0, 0.0)
        for img in ax.images:
            assert tuple(img.get_extent()) == (0, 1000, 10, 0)
        (line,) = ax.lines
        assert line.get_xdata()[0] == pytest.approx(2.5 * 1000 / 4)
        assert line.get_ydata()[0] == pytest.approx(1.5 * 10 / 4)
    with pytest.raises(ValueError, match="image_size"):
        query_point_view(image, np.ones((4, 4)), (1, 2), image_size=(10,))


# ----------------------------------------------------------------------------- square images
def _square_cases() -> dict:
    rng = np.random.default_rng(0)
    img = rng.random((24, 24, 3))
    m = rng.random((4, 4))
    boxes = np.array([[.5, .5, .4, .4]] * 3)
    return {
        "compare": lambda: comparison_panel(img, {"attention": m, "ig": m - 0.5,
                                                  "random": m[::-1]}),
        "compare_size": lambda: comparison_panel(img, {"attention": m}, image_size=(24, 24)),
        "cls": lambda: cls_head_grid(img, rng.random((3, 4, 4)), layer=2, model_name="vit"),
        "cls_norm": lambda: cls_head_grid(img, rng.random((7, 4, 4)), normalize=True),
        "gates": lambda: gate_maps(img, {"stage 3 spatial gate": m, "GradCAM": m}, title="g"),
        "gates_rows": lambda: gate_maps(img, {f"m{i}": m for i in range(7)}, title="g",
                                        columns=3),
        "chspatial": lambda: channel_spatial_view(
            img, {"b1": rng.random((8, 4, 4)), "b2": rng.random((6, 4, 4))}, title="t"),
        "detr": lambda: detr_queries_view(img, rng.random((3, 4, 4)), boxes, ["a", "b", "c"],
                                          scores=[.9, .8, .7], title="detr"),
        "detr1": lambda: detr_queries_view(img, rng.random((1, 4, 4)), boxes[:1], ["a"]),
        "query": lambda: query_point_view(img, rng.random((4, 4)), (1, 2)),
        "query2": lambda: query_point_view(img, rng.random((2, 4, 4)), [(1, 1), (2, 3)],
                                           title="nl"),
        "saliency": lambda: saliency_overlay(img, m, title="t"),
    }


#: SHA-256 (first 16 hex digits) of the RGBA pixels each square case drew at 40 dpi before the
#: thin-image layouts (matplotlib 3.11.2 as pinned; cases built in this order, one generator);
#: detr and detr1 as drawn since the DETR figure got its colourbar (one shared colour scale),
#: query and query2 since their colourbar reads "attention weight" (was "attention"); compare,
#: cls, gates, chspatial and saliency since every unsigned colour scale starts at 0 and an
#: unsigned map's colourbar says "score" (was "saliency"); compare and cls since the colourbars
#: of an overlay grid span its panels (they were 0.85 of their height, at least 1.9 in); gates
#: and gates_rows since each map's colourbar spans its image (it kept a 20:1 box, shorter)
#: detr, detr1, query, query2 and chspatial since their colourbars span their panels too, as
#: thick as a 20:1 bar of that length, 0.1 in from a row of panels
BEFORE = {
    "compare": "9dfb8955d1d3e169",
    "compare_size": "11957ecc713b6747",
    "cls": "c2753195f76b82b8",
    "cls_norm": "4f3b954920027316",
    "gates": "c7dbbac775aff21a",
    "gates_rows": "30381063bd9031d6",
    "chspatial": "316f52bcce070600",
    "detr": "8360c884fe059cee",
    "detr1": "56daa31a57396aa3",
    "query": "b30298bd436f7ab2",
    "query2": "d38475f1fb766436",
    "saliency": "56f56e9161c656b2",
}


def test_square_images_draw_the_same_pixels_as_before():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    drawn = {}
    for name, make in _square_cases().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig = make()
        canvas = FigureCanvasAgg(fig)
        fig.set_dpi(40)
        canvas.draw()
        drawn[name] = hashlib.sha256(bytes(canvas.buffer_rgba())).hexdigest()[:16]
    assert drawn == BEFORE


# ----------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("shape", [(10, 1000), (1000, 10)])
def test_cli_image_views_of_a_thin_file(shape, tmp_path, monkeypatch):
    """``probe render saliency --layer``, ``compare``, ``gates`` and ``detr`` on a 1000x10 and a
    10x1000 file: every figure drawn at the file's ratio, its texts clear of each other."""
    from PIL import Image

    import probe.viewers
    import probe.viewers._gate_kinds as kinds
    from probe.cli import main

    h, w = shape
    pixels = np.full((h, w, 3), 200, np.uint8)
    pixels[: max(1, h // 2), : max(1, w // 2)] = (220, 30, 30)
    path = tmp_path / "thin.png"
    Image.fromarray(pixels).save(path)
    figures = []
    for name in ("cls_head_grid", "comparison_panel", "gate_maps", "detr_queries_view"):
        view = getattr(probe.viewers, name)

        def recorded(*args, _view=view, **kwargs):
            figures.append(_view(*args, **kwargs))
            return figures[-1]

        monkeypatch.setattr(probe.viewers, name, recorded)
        if name == "gate_maps":
            monkeypatch.setattr(kinds, "gate_maps", recorded)
    out = ["--image", str(path), "--out", str(tmp_path / "out"), "--quiet", "--dpi", "30"]
    assert main(["render", "saliency", "--model", "vit-shapes", "--layer", "1", *out]) == 0
    assert main(["render", "compare", "--model", "vit-shapes", "--method", "rollout",
                 "--method", "attention", *out]) == 0
    assert main(["render", "gates", "--model", "cnn-shapes-nl", *out]) == 0
    assert main(["render", "detr", "--model", "detr-shapes", *out]) == 0
    assert len(figures) == 4
    for fig in figures:
        assert layout_problems(fig) == []
        assert data_ratios(fig) == pytest.approx([w / h] * len(image_axes(fig)), rel=1e-6)
        assert drawn_ratios(fig) == pytest.approx(data_ratios(fig), rel=0.03)
