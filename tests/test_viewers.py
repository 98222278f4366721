"""Viewers render for real: PNG/SVG/PDF files, pixel sizes, and what the figures show.

Every view is rendered from small synthetic data and saved in the three formats through
``save_figure``; one figure per view is then checked for content (image arrays equal the
data, a hot cell lands on the brightest pixel, line opacities equal weights, colours follow
scores, colourbar limits match the map, the legend shows the AUC).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

import probe.viewers as V
from probe._errors import ProbeError
from probe.viewers._style import format_token, thin_labels

DPI = 40  # small files, fast tests; sizes are checked against figsize * DPI
TOKENS = ["[CLS]", "the", "cat", "sat", "on", "it", "$5", "[SEP]"]
N = len(TOKENS)


def attention(*shape: int, seed: int = 0) -> torch.Tensor:
    """Row-stochastic random attention of shape ``[..., q, k]``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.softmax(2.0 * torch.randn(*shape, generator=gen), dim=-1)


def image(h: int = 24, w: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx / w, yy / h, np.full((h, w), 0.5)], axis=-1)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def build_heatmap():
    return V.head_heatmap(attention(N, N), TOKENS, model_name="tiny-bert", layer=1, head=2)


def build_head_grid():
    return V.head_grid(attention(5, N, N), TOKENS, layer=1, model_name="tiny-bert")


def build_model_view():
    return V.model_view(attention(2, 3, N, N), TOKENS, model_name="tiny-bert")


def build_link_view():
    return V.link_view(attention(4, N, N), TOKENS, heads=[0, 2], layer=1, model_name="tiny-bert")


def build_coref_view():
    words = "The cat sat on the mat because it was warm .".split()
    weights = rng().random(len(words))
    rows = [(3, 1, 1, 0.6), (4, 0, 5, 0.3), (2, 7, 1, 0.25)]
    return V.coref_view(words, 7, weights, top=rows, model_name="tiny-bert", layer=3)


def build_token_strip():
    scores = {"rollout": rng(1).random(N), "integrated gradients": rng(2).normal(size=N)}
    return V.token_strip(TOKENS, scores, model_name="tiny-bert")


def build_overlay():
    return V.saliency_overlay(image(), rng().random((3, 4)), model_name="tiny-vit",
                              method="rollout")


def build_cls_grid():
    return V.cls_head_grid(image(), rng().random((3, 3, 4)), layer=2, model_name="tiny-vit")


def build_comparison_image():
    maps = {"rollout": rng(1).random((3, 4)), "gradcam": rng(2).normal(size=(3, 4))}
    agreement = np.array([[1.0, 0.25], [0.25, 1.0]])
    faith = {"rollout": {"deletion": 0.2, "insertion": 0.7}, "gradcam": {"deletion": 0.3}}
    return V.comparison_panel(image(), maps, agreement=agreement, faithfulness=faith,
                              model_name="tiny-vit")


def build_comparison_text():
    maps = {"rollout": rng(1).random(N), "saliency": rng(2).random(N)}
    return V.comparison_panel(TOKENS, maps, agreement=[[1.0, -0.5], [-0.5, 1.0]])


def build_curves():
    f = np.linspace(0, 1, 6)
    return V.curves_view({"rollout": (f, np.exp(-3 * f)), "random": (f, 1 - f)}, "deletion")


VIEWS = {
    "head_heatmap": build_heatmap,
    "head_grid": build_head_grid,
    "model_view": build_model_view,
    "link_view": build_link_view,
    "coref_view": build_coref_view,
    "token_strip": build_token_strip,
    "saliency_overlay": build_overlay,
    "cls_head_grid": build_cls_grid,
    "comparison_image": build_comparison_image,
    "comparison_text": build_comparison_text,
    "curves_view": build_curves,
}


def png_pixel(png: np.ndarray, fig, ax, x: float, y: float) -> np.ndarray:
    """RGB of the PNG pixel under data point ``(x, y)`` of ``ax``."""
    px, py = ax.transData.transform((x, y))
    height, width = png.shape[:2]
    col = int(px / fig.bbox.width * width)
    row = int((1 - py / fig.bbox.height) * height)
    return png[row, col, :3].astype(float)


# --------------------------------------------------------------------------- every view


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_view_renders_to_png_svg_pdf(name, tmp_path):
    import matplotlib.pyplot as plt  # only to check that nothing was registered with it

    fig = VIEWS[name]()
    assert isinstance(fig, matplotlib.figure.Figure)
    for fmt in ("png", "svg", "pdf"):
        path = V.save_figure(fig, tmp_path / f"{name}.{fmt}", dpi=DPI)
        assert path.exists() and path.stat().st_size > 0
    width, height = fig.get_size_inches()
    with Image.open(tmp_path / f"{name}.png") as png:
        assert abs(png.size[0] - width * DPI) <= 1 and abs(png.size[1] - height * DPI) <= 1
    assert (tmp_path / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    root = ET.parse(tmp_path / f"{name}.svg").getroot()
    assert root.tag.endswith("svg")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{name}.{fmt}" for fmt in ("png", "svg", "pdf")
    )  # no temporary files left behind
    assert plt.get_fignums() == []


def test_viewer_sources_use_the_object_api():
    for source in Path(V.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                names = []
            assert not any("pyplot" in n for n in names), f"{source.name} imports pyplot"
            if isinstance(node, ast.Attribute):
                assert node.attr != "show", f"{source.name} calls .show()"


def test_import_is_light():
    code = "import sys, probe.viewers; print('matplotlib' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_public_names():
    for name in V.__all__:
        assert hasattr(V, name)
    assert V.title(model="bert", layer=3, head=5, method="attention") == (
        "bert \u00b7 layer 3 \u00b7 head 5 \u00b7 attention"
    )
    assert V.title(layer=0, head=[0, 1, 2]) == "layer 0 \u00b7 heads 0\u20132"
    assert V.cmap_for(True) == "RdBu_r" and V.cmap_for(False) == "viridis"


# --------------------------------------------------------------------------- heatmaps


def test_heatmap_shows_the_data_with_tokens_and_title():
    attn = attention(N, N, seed=3)
    fig = V.head_heatmap(attn, TOKENS, model_name="tiny-bert", layer=1, head=2)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), attn.numpy(), rtol=1e-6)
    assert [t.get_text() for t in ax.get_yticklabels()] == [format_token(t) for t in TOKENS]
    assert [t.get_text() for t in ax.get_xticklabels()] == [format_token(t) for t in TOKENS]
    assert ax.get_title() == "tiny-bert \u00b7 layer 1 \u00b7 head 2 \u00b7 attention"
    assert fig.axes[1].get_ylabel() == "attention weight"  # the colourbar
    # torch and numpy inputs give the same picture
    fig_np = V.head_heatmap(attn.numpy(), TOKENS)
    np.testing.assert_array_equal(fig_np.axes[0].images[0].get_array(), ax.images[0].get_array())


def test_heatmap_hot_cell_is_brightest_pixel(tmp_path):
    data = np.zeros((6, 6))
    data[1, 4] = 1.0  # query 1 looks at key 4
    fig = V.head_heatmap(data, [f"t{i}" for i in range(6)], title="")
    V.save_figure(fig, tmp_path / "hot.png", dpi=60)
    png = np.asarray(Image.open(tmp_path / "hot.png").convert("RGB"))
    ax = fig.axes[0]
    top = np.array(matplotlib.colormaps["viridis"](1.0)[:3]) * 255
    bottom = np.array(matplotlib.colormaps["viridis"](0.0)[:3]) * 255
    np.testing.assert_allclose(png_pixel(png, fig, ax, 4, 1), top, atol=3)
    np.testing.assert_allclose(png_pixel(png, fig, ax, 1, 4), bottom, atol=3)  # transposed cell
    np.testing.assert_allclose(png_pixel(png, fig, ax, 0, 0), bottom, atol=3)


def test_signed_heatmap_is_diverging_and_centred():
    data = np.array([[-0.5, 0.1], [0.2, 0.3]])
    fig = V.head_heatmap(data, ["a", "b"])
    image_ = fig.axes[0].images[0]
    assert image_.get_cmap().name == "RdBu_r"
    assert image_.norm.vmin == -0.5 and image_.norm.vmax == 0.5


def test_cross_attention_labels():
    attn = attention(3, 5)
    fig = V.head_heatmap(attn, query_tokens=["a", "b", "c"], key_tokens=list("vwxyz"))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_xticklabels()] == list("vwxyz")
    with pytest.raises(ProbeError, match="query_tokens= and key_tokens="):
        V.head_heatmap(attn, TOKENS[:3])


def test_head_grid_and_model_view_panels():
    attn = attention(5, N, N, seed=4)
    fig = V.head_grid(attn, TOKENS, layer=1, heads=[10, 11, 12, 13, 14], model_name="m")
    panels = fig.axes[:5]
    for h, ax in enumerate(panels):
        np.testing.assert_allclose(ax.images[0].get_array(), attn[h].numpy(), rtol=1e-6)
        assert ax.get_title() == f"head {10 + h}"
        assert ax.images[0].norm.vmax == pytest.approx(float(attn.max()))  # shared scale
    assert fig.get_suptitle() == "m \u00b7 layer 1 \u00b7 attention"
    # labels on the left column and on panels without a panel below only
    assert [bool(ax.get_yticklabels()) for ax in panels] == [True, False, False, False, True]
    assert [bool(ax.get_xticklabels()) for ax in panels] == [False, True, True, True, True]

    full = attention(2, 3, N, N, seed=5)
    fig = V.model_view(full, TOKENS, layers=[4, 5])
    for idx, ax in enumerate(fig.axes[:6]):
        np.testing.assert_allclose(ax.images[0].get_array(), full[idx // 3, idx % 3].numpy(),
                                   rtol=1e-6)
    assert fig.axes[0].get_ylabel() == "layer 4" and fig.axes[3].get_ylabel() == "layer 5"
    assert [fig.axes[i].get_title() for i in range(3)] == ["head 0", "head 1", "head 2"]


def test_label_thinning_for_300_tokens():
    tokens = [f"w{i}" for i in range(300)]
    attn = attention(300, 300)
    assert list(thin_labels(300, 50)) == list(range(0, 300, 6))
    ax = V.head_heatmap(attn, tokens).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) <= 50 and labels == tokens[::6]
    assert list(ax.get_yticks()) == list(range(0, 300, 6))
    ax = V.head_heatmap(attn, tokens, max_labels=300).axes[0]
    assert len(ax.get_xticklabels()) == 300
    grid = V.head_grid(attention(2, 300, 300), tokens)
    assert len(grid.axes[0].get_yticklabels()) <= 16
    link = V.link_view(attention(300, 300), tokens, threshold=0.2)
    drawn = [t.get_text() for t in link.axes[0].texts if t.get_text() in tokens]
    assert len(drawn) == 2 * len(range(0, 300, 5))  # 60 labels per column


def test_token_labels_are_safe():
    assert format_token("$x$") == r"\$x\$"
    assert format_token("\n") == "\\n"
    assert format_token(" ") == "\u2423"
    assert format_token("a" * 30, 10) == "a" * 9 + "\u2026"


# --------------------------------------------------------------------------- links


def test_link_alphas_are_the_weights():
    attn = attention(4, N, N, seed=6)
    threshold = 0.05
    fig = V.link_view(attn, TOKENS, heads=[1, 3], threshold=threshold)
    ax = fig.axes[0]
    assert [c.get_gid() for c in ax.collections] == ["head 1", "head 3"]
    for coll in ax.collections:
        h = int(coll.get_gid().split()[1])
        segments, colors = coll.get_segments(), coll.get_colors()
        pairs = {(int(round(s[0][1])), int(round(s[1][1]))) for s in segments}
        expected = {(i, j) for i in range(N) for j in range(N) if attn[h, i, j] >= threshold}
        assert pairs == expected
        for seg, rgba in zip(segments, colors):
            i, j = int(round(seg[0][1])), int(round(seg[1][1]))
            assert rgba[3] == pytest.approx(float(attn[h, i, j]), abs=1e-6)
        weights = np.array([attn[h, int(round(s[0][1])), int(round(s[1][1]))] for s in segments])
        assert np.allclose(colors[:, 3] / colors[:, 3].max(), weights / weights.max())
    # a head keeps its colour when shown alone
    alone = V.link_view(attn, TOKENS, heads=[3], threshold=threshold).axes[0].collections[0]
    np.testing.assert_allclose(alone.get_colors()[0, :3], ax.collections[1].get_colors()[0, :3])
    from matplotlib.legend import Legend

    heads_legend, key = [c for c in ax.get_children() if isinstance(c, Legend)]
    assert [t.get_text() for t in heads_legend.get_texts()] == ["head 1", "head 3"]
    assert key.get_title().get_text() == "line opacity = attention weight"
    assert [h.get_alpha() for h in key.legend_handles] == [0.1, 0.5, 1.0]


def test_link_view_single_query_and_errors():
    attn = attention(N, N, seed=7)
    fig = V.link_view(attn, TOKENS, query=2, threshold=0.0, head=4, layer=0)
    segments = fig.axes[0].collections[0].get_segments()
    assert len(segments) == N and {round(s[0][1]) for s in segments} == {2}
    assert fig.axes[0].get_title() == "layer 0 \u00b7 head 4 \u00b7 attention"
    with pytest.raises(ProbeError, match="out of range"):
        V.link_view(attention(2, N, N), TOKENS, heads=[5])
    with pytest.raises(ProbeError, match="tokens"):
        V.link_view(attn, TOKENS[:-1])


def test_coref_view_highlights_word_and_antecedents():
    words = "The cat sat on the mat because it was warm .".split()
    weights = np.zeros(len(words))
    weights[[1, 5, 3, 7]] = [0.5, 0.3, 0.1, 0.9]  # 7 is the chosen word itself
    rows = [(3, 1, 1, 0.6), (4, 0, "mat", 0.3)]
    fig = V.coref_view(words, 7, weights, top=rows, top_k=2)
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if type(p).__name__ == "FancyBboxPatch"]
    assert len(boxes) == len(words)
    assert boxes[7].get_linewidth() > boxes[1].get_linewidth() > 0  # chosen word, antecedent
    assert boxes[3].get_linewidth() == 0  # 3rd-ranked is not in the top 2
    texts = [t.get_text() for t in ax.texts]
    assert "#1 0.50" in texts and "#2 0.30" in texts
    table = next(a for a in fig.axes if a.tables).tables[0]
    cells = {(r, c): cell.get_text().get_text() for (r, c), cell in table.get_celld().items()}
    assert cells[(1, 2)] == "cat (1)" and cells[(1, 3)] == "0.600"
    assert cells[(2, 2)] == "mat" and cells[(2, 3)] == "0.300"
    with pytest.raises(ProbeError, match="word_index"):
        V.coref_view(words, 20, weights)
    with pytest.raises(ProbeError, match="antecedent"):
        V.coref_view(words, 7, weights, top=[(0, 0, 99, 0.1)])


# --------------------------------------------------------------------------- token strip


def test_token_strip_colours_follow_scores():
    scores = np.array([0.1, 0.9, 0.4, 0.0, 0.6, 0.3, 0.8, 0.2])
    fig = V.token_strip(TOKENS, torch.tensor(scores), method="rollout")
    patches = fig.axes[0].patches
    assert len(patches) == N
    colors = np.array([p.get_facecolor() for p in patches])
    luminance = colors[:, :3] @ np.array([0.2126, 0.7152, 0.0722])
    order = np.argsort(scores)
    assert np.all(np.diff(luminance[order]) < 0)  # higher score, darker red
    reds = matplotlib.colormaps["Reds"]
    np.testing.assert_allclose(colors[1], reds(1.0))
    np.testing.assert_allclose(colors[3], reds(0.0))


def test_token_strip_signed_rows_and_wrapping():
    scores = {"ig": np.linspace(-1, 1, N), "grad": np.linspace(2, -2, N)}
    fig = V.token_strip(TOKENS, scores)
    patches = fig.axes[0].patches
    assert len(patches) == 2 * N  # method-major
    first, last = patches[0].get_facecolor(), patches[N - 1].get_facecolor()
    assert first[2] > first[0] and last[0] > last[2]  # negative blue, positive red
    np.testing.assert_allclose(patches[N].get_facecolor(), last)  # normalized per method
    bar = fig.axes[1]
    assert bar.get_xlim() == pytest.approx((-1.0, 1.0))
    assert "normalized per method" in bar.get_xlabel()
    long_text = [f"word{i}" for i in range(120)]
    fig = V.token_strip(long_text, rng().random(120), width=6)
    tops = {round(p.get_y(), 3) for p in fig.axes[0].patches}
    assert len(tops) > 3  # wrapped over several lines
    assert max(p.get_x() + p.get_width() for p in fig.axes[0].patches) <= (6 - 0.4) * 72 + 1e-6
    with pytest.raises(ProbeError, match="one score per token"):
        V.token_strip(TOKENS, {"a": np.ones(N), "b": np.ones(N - 1)})


# --------------------------------------------------------------------------- saliency


def test_overlay_colourbar_matches_map_range():
    heat = rng(3).random((3, 4)) * 5 + 2
    fig = V.saliency_overlay(image(), heat, alpha=0.4)
    shown, ax, cax = fig.axes  # the input in its own colours, the map over grey, the bar
    np.testing.assert_allclose(shown.images[0].get_array(), image())
    assert cax.get_ylim() == pytest.approx((0.0, heat.max()))  # unsigned: from 0, not min
    base, over = ax.images
    assert over.get_alpha() == 0.4
    assert over.get_array().shape == (24, 32)
    grey = base.get_array()
    np.testing.assert_allclose(grey[..., 0], grey[..., 2])  # no hue under the map
    assert 0.3 - 1e-9 <= grey.min() and grey.max() <= 0.9 + 1e-9


def test_upsampling_matches_torch():
    grid = torch.rand(1, 1, 5, 7, dtype=torch.float64)
    ours = V.upsample_bilinear(grid[0, 0], (40, 23))
    ref = torch.nn.functional.interpolate(grid, size=(40, 23), mode="bilinear",
                                          align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_image_layouts_and_ranges():
    chw = torch.tensor(image()).permute(2, 0, 1)
    uint8 = (image() * 255).round().astype(np.uint8)
    a = V.saliency_overlay(chw, np.ones((2, 2))).axes[0].images[0].get_array()
    b = V.saliency_overlay(uint8, np.ones((2, 2))).axes[0].images[0].get_array()
    np.testing.assert_allclose(a, image())
    np.testing.assert_allclose(b, image(), atol=1 / 255)
    with pytest.raises(ProbeError, match="normalization"):
        V.saliency_overlay(image() * 3 - 1.5, np.ones((2, 2)))
    with pytest.raises(ProbeError, match=r"\[H, W, 3\]"):
        V.saliency_overlay(np.zeros((4, 5, 6)), np.ones((2, 2)))


def test_cls_head_grid_shared_scale():
    maps = rng(4).random((3, 3, 4))
    fig = V.cls_head_grid(image(), maps, heads=[7, 8, 9])
    assert fig.axes[0].get_title() == "input"
    panels = fig.axes[1:4]
    assert [ax.get_title() for ax in panels] == ["head 7", "head 8", "head 9"]
    assert fig.axes[4].get_ylim() == pytest.approx((0.0, maps.max()))  # unsigned: from 0


# --------------------------------------------------------------------------- comparison


def test_comparison_panel_content():
    fig = build_comparison_image()
    titles = [ax.get_title() for ax in fig.axes]
    assert "rollout" in titles and "gradcam \u00b1" in titles  # signed maps marked
    agree = next(ax for ax in fig.axes if ax.get_title().startswith("rank agreement"))
    assert [t.get_text() for t in agree.texts] == ["1.00", "0.25", "0.25", "1.00"]
    table = next(ax for ax in fig.axes if ax.get_title() == "faithfulness").tables[0]
    cells = {(r, c): cell.get_text().get_text() for (r, c), cell in table.get_celld().items()}
    assert cells[(0, 0)] == "deletion" and cells[(1, 1)] == "0.700"
    assert cells[(2, 1)] == "\u2013" and cells[(2, -1)] == "gradcam"

    text_fig = build_comparison_text()
    strip = text_fig.axes[0]
    assert len(strip.patches) == 2 * N
    assert {"rollout", "saliency"} <= {t.get_text() for t in strip.texts}
    with pytest.raises(ProbeError, match="method names"):
        V.comparison_panel(TOKENS, {"a": np.ones(N)}, agreement=np.eye(2))
    # agreement rows named explicitly; an empty faithfulness dict leaves the table out
    fig = V.comparison_panel(TOKENS, {"a": np.ones(N), "b": np.arange(N)},
                             agreement=np.eye(2), methods=["A", "B"], faithfulness={})
    agree = next(ax for ax in fig.axes if ax.get_title().startswith("rank agreement"))
    assert [t.get_text() for t in agree.get_yticklabels()] == ["A", "B"]
    assert not any(ax.tables for ax in fig.axes)


def test_curves_legend_has_auc():
    f = np.linspace(0, 1, 11)
    curves = {"rollout": (f, np.exp(-3 * f)), "random": (torch.tensor(f), torch.tensor(1 - f))}
    fig = V.curves_view(curves, "insertion", auc={"random": 0.123})
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    expected = np.trapezoid(np.exp(-3 * f), f)
    assert texts == [f"rollout: {expected:.3f}", "random (baseline): 0.123"]
    assert fig.axes[0].get_legend().get_title().get_text() == "AUC (higher is better)"
    assert V.curve_auc(f, 1 - f) == pytest.approx(0.5)
    assert fig.axes[0].get_xlabel() == "fraction of input inserted"
    with pytest.raises(ProbeError, match="increase"):
        V.curves_view({"x": (f[::-1], f)})
    with pytest.raises(ProbeError, match="kind"):
        V.curves_view(curves, "both")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- ax= and saving


def test_views_draw_into_a_given_ax():
    fig = V.new_figure((10, 3))
    axes = fig.subplots(1, 4)
    assert V.head_heatmap(attention(N, N), TOKENS, ax=axes[0]) is fig
    assert V.link_view(attention(N, N), TOKENS, ax=axes[1]) is fig
    assert V.saliency_overlay(image(), np.ones((2, 2)), ax=axes[2]) is fig
    assert V.curves_view({"a": ([0, 1], [1, 0])}, ax=axes[3]) is fig
    fig2 = V.new_figure((6, 2))
    assert V.token_strip(TOKENS, np.arange(N), ax=fig2.add_subplot()) is fig2
    with pytest.raises(ProbeError, match="Axes"):
        V.head_heatmap(attention(N, N), ax="not an axes")  # type: ignore[arg-type]


def test_save_to_missing_directory_writes_nothing(tmp_path):
    fig = build_curves()
    with pytest.raises(ProbeError, match="does not exist"):
        V.save_figure(fig, tmp_path / "missing" / "out.png")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ProbeError, match="unsupported figure format"):
        V.save_figure(fig, tmp_path / "out.jpg")
    with pytest.raises(ProbeError, match="format"):
        V.save_figure(fig, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    path = V.save_figure(fig, tmp_path / "out", format="svg")
    assert path.read_bytes().lstrip().startswith(b"<?xml")
    # a format that contradicts a known suffix: a PDF named .png was written before
    with pytest.raises(ProbeError, match=r"ends in \.png but format='pdf'.*end the path in \.pdf"):
        V.save_figure(fig, tmp_path / "x.png", format="pdf")
    assert not (tmp_path / "x.png").exists()
    assert V.save_figure(fig, tmp_path / "y.PNG", format="png").read_bytes()[:4] == b"\x89PNG"
    assert V.save_figure(fig, tmp_path / "fig.v2", format="pdf").read_bytes()[:4] == b"%PDF"


def test_failed_render_leaves_target_and_no_temp_file(tmp_path, monkeypatch):
    fig = build_curves()
    target = tmp_path / "fig.png"
    target.write_bytes(b"old")

    def broken(*args, **kwargs):
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="exploded"):
        V.save_figure(fig, target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


@pytest.mark.skipif(sys.platform == "win32" or __import__("os").geteuid() == 0,
                    reason="permissions are not enforced for root")
def test_unwritable_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(ProbeError, match="not writable"):
            V.save_figure(build_curves(), locked / "out.png")
    finally:
        locked.chmod(0o700)


def test_unwritable_directory_simulated(tmp_path, monkeypatch):
    import probe._atomic as atomic

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    with pytest.raises(ProbeError, match="not writable"):
        V.save_figure(build_curves(), tmp_path / "out.pdf")
    assert list(tmp_path.iterdir()) == []


def test_bad_input_messages():
    with pytest.raises(ProbeError, match="got 3 tokens for 8"):
        V.head_heatmap(attention(N, N), TOKENS[:3])
    with pytest.raises(ProbeError, match=r"\[head, query, key\]"):
        V.head_grid(attention(N, N), TOKENS)
    with pytest.raises(ProbeError, match="NaN"):
        V.head_heatmap(torch.full((2, 2), float("nan")), ["a", "b"])
    with pytest.raises(ProbeError, match="max_labels"):
        V.head_heatmap(attention(N, N), TOKENS, max_labels=0)


# --------------------------------------------------------------- first use: plot, baselines


def test_attached_words_reads_contractions_and_punctuation() -> None:
    from probe.viewers._tokens import attached_words

    words = ["The", "animal", "didn", "'", "t", "cross", "(", "it", ")", "."]
    assert attached_words(words) == [False, False, False, True, True, False, False, True,
                                     True, True]
    assert attached_words(["小", "猫", "it"]) == [False, True, False]


def test_coref_marks_follow_the_candidates() -> None:
    from probe.viewers import coref_view

    words = ["The", "animal", "crossed", "it", "application", "."]
    weights = [0.9, 0.3, 0.1, 0.0, 0.8, 0.7]
    fig = coref_view(words, 3, weights, candidates=[1, 2], top_k=3)
    ax = fig.axes[0]
    outlined = [i for i, p in enumerate(ax.patches[: len(words)])
                if p.get_linewidth() > 0 and i != 3]
    assert outlined == [1, 2]  # not "The", ".", nor "application" after the pronoun
    labels = [t.get_text() for t in ax.texts if t.get_text().startswith("#")]
    assert labels == ["#1 0.30", "#2 0.10"]


def test_baselines_last_and_dashed_grey() -> None:
    from probe.viewers import curves_view
    from probe.viewers._style import baselines_last

    assert baselines_last(["random", "ig", "rollout"]) == [1, 2, 0]
    x = np.linspace(0, 1, 5)
    fig = curves_view({"random": (x, x), "ig": (x, 1 - x)})
    lines = fig.axes[0].get_lines()
    assert [ln.get_label().split(" ")[0].rstrip(":") for ln in lines] == ["ig", "random"]
    assert lines[-1].get_linestyle() == "--" and lines[-1].get_color() == "0.45"


def test_metric_headers_have_arrows() -> None:
    from probe.viewers._compare import metric_header

    assert metric_header("deletion AUC") == "deletion AUC \u2193"
    assert metric_header("comprehensiveness") == "comprehensiveness \u2191"
    assert metric_header("other") == "other"


def test_plot_views_of_a_trace() -> None:
    import torch

    import probe
    from tests._factories import make_trace

    attn = torch.softmax(torch.randn(2, 1, 2, 5, 5, generator=torch.Generator().manual_seed(0)), -1)
    words = ["it", "is", "here"]
    trace = make_trace(attn, tokens=[["[CLS]", "it", "is", "here", "[SEP]"]], words=[words],
                       word_ids=[[None, 0, 1, 2, None]], special_tokens_mask=[[1, 0, 0, 0, 1]],
                       family="encoder")
    for view in ("model", "heads", "head", "links", "rollout"):
        assert probe.plot(trace, view).axes
    with pytest.raises(probe.ProbeError, match="unknown view"):
        probe.plot(trace, "nope")
    with pytest.raises(probe.ProbeError, match=r"^pass a view name: one of \['model', "):
        probe.plot(trace)
    with pytest.raises(probe.ProbeError, match="does not take"):
        probe.plot(trace, "head", colour="red")


def test_plain_text_strips_rst() -> None:
    from probe._text import plain_text

    assert plain_text("see :func:`~probe.coref` and ``x``\n  and `y`") == "see coref and x and y"


def test_with_article() -> None:
    from probe._text import with_article

    assert [with_article(w) for w in ("encoder", "encoder-decoder", "decoder", "vision", "")] == [
        "an encoder", "an encoder-decoder", "a decoder", "a vision", "a ",
    ]


@pytest.mark.parametrize("fmt", ["svg", "pdf", "png"])
def test_saved_figures_are_byte_identical_across_saves(fmt, tmp_path):
    """SVG ids are salted with a random UUID and PDFs carry a creation date unless told
    otherwise: probe's files must not change when nothing drawn changed."""
    import matplotlib

    from probe.viewers import save_figure

    def figure():
        from probe.viewers import head_heatmap

        return head_heatmap(torch.rand(5, 5, generator=torch.Generator().manual_seed(0)),
                            list("abcdé"))

    before = dict(matplotlib.rcParams)
    first = save_figure(figure(), tmp_path / f"a.{fmt}").read_bytes()
    second = save_figure(figure(), tmp_path / f"b.{fmt}").read_bytes()
    assert first == second
    assert dict(matplotlib.rcParams) == before  # the salt is set for the call only
    if fmt == "svg":
        with matplotlib.rc_context({"svg.hashsalt": "mine"}):  # a user's salt is kept
            mine = save_figure(figure(), tmp_path / "c.svg").read_bytes()
            assert matplotlib.rcParams["svg.hashsalt"] == "mine"
        assert mine != first


def test_svg_salt_is_restored_when_saving_raises(tmp_path, monkeypatch):
    import matplotlib
    from matplotlib.figure import Figure

    from probe.viewers import save_figure

    fig = Figure()

    def broken(*args, **kwargs):
        assert matplotlib.rcParams["svg.hashsalt"] == "probe"
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="renderer failed"):
        save_figure(fig, tmp_path / "x.svg")
    assert matplotlib.rcParams["svg.hashsalt"] is None
    assert not (tmp_path / "x.svg").exists()


def test_save_paths_bytes_home_and_a_file_in_the_way(tmp_path, monkeypatch):
    """Figures and HTML views take the paths ``open`` takes: bytes, ``~``; a file where the
    folder should be is named as such."""
    import probe
    from probe.viewers import head_heatmap, save_figure

    monkeypatch.setenv("HOME", str(tmp_path))
    attn = torch.full((3, 3), 1 / 3)
    fig = head_heatmap(attn, ["a", "b", "c"])
    assert save_figure(fig, os.fsencode(tmp_path / "b.png")) == tmp_path / "b.png"
    assert save_figure(fig, "~/home.svg") == tmp_path / "home.svg"
    assert (tmp_path / "home.svg").stat().st_size > 1000
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(probe.ProbeError, match=r"blocker' is a file, not a folder"):
        save_figure(fig, tmp_path / "blocker" / "sub" / "x.png")
    with pytest.raises(probe.ProbeError, match="must be a string or a path, got int"):
        save_figure(fig, 3)
    from probe.viewers.html import head_view_html

    page = head_view_html(attn[None, None], ["a", "b", "c"])
    assert page.save(os.fsencode(tmp_path / "v.html")) == tmp_path / "v.html"
    assert page.save("~/w.html") == tmp_path / "w.html"
    with pytest.raises(probe.ProbeError, match=r"blocker' is a file, not a folder"):
        page.save(tmp_path / "blocker" / "v.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "b.png", "blocker", "home.svg", "v.html", "w.html"]
