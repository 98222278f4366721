"""Figures at a paper's column width (``width=``, ``probe render --width``), the shared
row-wrapping rule, the curves legend, and colour scales by quantity.

Hand-made data; a tiny random BERT for ``probe.plot``; MiniLM (packaged) for the CLI."""

from __future__ import annotations

import numpy as np
import pytest

import probe
from probe.viewers import (
    cls_head_grid,
    comparison_panel,
    curves_view,
    detr_queries_view,
    gate_maps,
    head_grid,
    head_heatmap,
    link_view,
    model_view,
    query_point_view,
    saliency_overlay,
    token_strip,
    window_query_view,
)
from probe.viewers._style import MIN_FONT_PT
from probe.viewers._width import (
    COLUMN_WIDTHS,
    columns_for_width,
    figure_width,
    resolve_width,
    smallest_font,
    text_clashes,
    wrap_grid,
)

TOKENS = ["[CLS]", "the", "animal", "didn", "'", "t", "cross", "the", "street", "because",
          "it", "was", "too", "tired", ".", "[SEP]"]
SHORT = ["[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]"]
WORDS = ["The", "animal", "didn't", "cross", "the", "street", "because", "it", "was", "."]
METHODS = ["attention", "rollout", "ig", "saliency", "random"]


def _attn(*shape: int, seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).random(shape) ** 4
    return a / a.sum(-1, keepdims=True)


def _image() -> np.ndarray:
    img = np.zeros((32, 32, 3))
    img[...] = (0.3, 0.5, 0.2)
    img[10:22, 6:20] = (0.9, 0.2, 0.2)
    return img


def _views() -> dict:
    rng = np.random.default_rng(1)
    img = _image()
    f = np.linspace(0, 1, 11)
    return {
        "head": lambda **k: head_heatmap(_attn(16, 16), TOKENS, layer=1, head=0, **k),
        # 9 tokens: every label fits 2 panels a row at one column (16 need 1.56 in panels,
        # refused at 3.5 in: tests/test_text_figures.py)
        "heads": lambda **k: head_grid(_attn(12, 9, 9), SHORT, layer=1, **k),
        "model": lambda **k: model_view(_attn(2, 4, 16, 16), TOKENS, **k),
        "cls": lambda **k: cls_head_grid(img, _attn(12, 64).reshape(12, 8, 8), layer=1, **k),
        "window": lambda **k: window_query_view(img, rng.random((6, 4, 4)), (1, 1), (8.0, 8.0),
                                                **k),
        "detr": lambda **k: detr_queries_view(img, rng.random((7, 4, 4)),
                                              np.array([[.5, .5, .4, .4]] * 7),
                                              [f"q{i}" for i in range(7)], **k),
        "query_point": lambda **k: query_point_view(img, _attn(5, 64).reshape(5, 8, 8),
                                                    [(i, i) for i in range(5)], **k),
        "gate_maps": lambda **k: gate_maps(img, {f"gate {i}": rng.random((8, 8))
                                                 for i in range(4)}, **k),
        "saliency": lambda **k: saliency_overlay(img, rng.random((8, 8)), method="rollout", **k),
        "compare": lambda **k: comparison_panel(img, {m: rng.random((8, 8)) for m in METHODS},
                                                **k),
        "curves": lambda **k: curves_view({m: (f, np.sort(rng.random(11))[::-1])
                                           for m in METHODS}, **k),
        "strip": lambda **k: token_strip(WORDS, rng.random(len(WORDS)), method="rollout", **k),
    }


# ------------------------------------------------------------------ widths and the wrap rule
def test_named_widths_and_bad_widths():
    assert resolve_width("single") == COLUMN_WIDTHS["single"] == 3.5
    assert resolve_width("double") == COLUMN_WIDTHS["double"] == 7.0
    assert resolve_width(4) == 4.0 and resolve_width(None) is None
    for bad in (True, 1.0, 41, float("nan"), "wide", [3.5]):
        with pytest.raises(probe.ProbeError, match="width must be"):
            resolve_width(bad)


@pytest.mark.parametrize(("n", "columns", "shape"), [
    (1, 4, (1, 1)), (4, 4, (1, 4)), (5, 4, (2, 4)), (7, 4, (2, 4)), (13, 4, (4, 4)),
    (8, 3, (3, 3)), (6, 6, (1, 6)),
])
def test_wrap_grid_rows_and_columns(n, columns, shape):
    assert wrap_grid(n, columns) == shape


def test_columns_for_width_counts_panels_that_fit():
    assert columns_for_width(3.5, 1.0) == 3
    assert columns_for_width(3.5, 1.0, fixed=0.9, gap=0.1) == 2  # (3.5 - 0.9 + 0.1) / 1.1
    assert columns_for_width(30.0, 1.0, most=5) == 5
    assert columns_for_width(1.0, 2.0) == 1  # never fewer than one


def _panel_grid(fig, axes) -> tuple[int, int]:
    """(rows, cols) of ``axes``: their grid cells (subplots), or where they are placed."""
    specs = [ax.get_subplotspec() for ax in axes]
    if all(spec is not None for spec in specs):
        return (len({spec.rowspan.start for spec in specs}),
                len({spec.colspan.start for spec in specs}))
    boxes = [ax.get_position() for ax in axes]
    return (len({round(b.y0, 3) for b in boxes}), len({round(b.x0, 3) for b in boxes}))


def _image_axes(fig) -> list:
    return [ax for ax in fig.axes if ax.images and not hasattr(ax, "_colorbar")]


@pytest.mark.parametrize(("name", "width", "shape"), [
    ("heads", 3.5, (6, 2)),  # 12 heads, about 0.9 in each beside labels and colourbar
    ("heads", 7.0, (3, 5)),  # 6 a row would leave 0.87 in: under the 9 labels' 0.88 in at 6 pt
    ("cls", 3.5, (7, 2)),  # the input and 12 heads
    ("window", 3.5, (4, 2)),  # the input and 6 heads: (3.5 - 0.9 in bar) / 0.9 in -> 2 a row
    ("window", None, (2, 4)),  # default: 4 panels to a row
    ("detr", None, (2, 4)),  # 7 queries: no longer one 16 in row
    ("detr", 3.5, (3, 3)),
    ("query_point", None, (2, 4)),  # the input and 5 queries
])
def test_panels_wrap_into_the_expected_grid(name, width, shape):
    fig = _views()[name](**({} if width is None else {"width": width}))
    axes = _image_axes(fig)
    if name == "heads":  # heatmap panels (the colourbar axes has no image)
        axes = [ax for ax in fig.axes if ax.images]
    assert _panel_grid(fig, axes) == shape


@pytest.mark.parametrize("width", [3.5, 7.0])
@pytest.mark.parametrize("name", list(_views()))
def test_every_view_is_the_width_asked_with_legible_text(name, width):
    """The figure is ``width`` inches wide; at that (printed) size no text is under 6 pt, none
    leaves the canvas or runs into another."""
    fig = _views()[name](width=width)
    assert fig.get_size_inches()[0] == pytest.approx(width, abs=1e-6)
    assert smallest_font(fig) >= MIN_FONT_PT
    assert text_clashes(fig) == []


def test_default_sizes_do_not_change_and_a_context_width_applies():
    views = _views()
    before = views["heads"]().get_size_inches()
    assert before[0] > 7.0  # 4 columns of 2.2 in panels, as before width= existed
    with figure_width("single"):
        assert views["heads"]().get_size_inches()[0] == pytest.approx(3.5)
        assert views["heads"](width=5.0).get_size_inches()[0] == pytest.approx(5.0)  # wins
    np.testing.assert_allclose(views["heads"]().get_size_inches(), before)


def test_model_view_too_narrow_names_layers_heads_and_one_layer():
    """A 6 x 12 model cannot keep its matrix in one column: the error says what fits."""
    with pytest.raises(probe.ProbeError) as info:
        model_view(_attn(6, 12, 8, 8), width="single")
    message = str(info.value)
    assert "layers=" in message and "heads=" in message and "--layer" in message
    assert "use width >=" in message and "\n" not in message
    fig = model_view(_attn(6, 12, 8, 8), width="double")  # 12 heads fit 7 in
    assert fig.get_size_inches()[0] == pytest.approx(7.0)
    assert smallest_font(fig) >= MIN_FONT_PT


def test_too_narrow_grid_counts_its_panels_in_singular_and_plural():
    tokens = [f"supercalifragilistic{i}" for i in range(5)]
    rng = np.random.default_rng(0)
    with pytest.raises(probe.ProbeError) as info:
        head_grid(rng.random((2, 5, 5)), tokens, width=2, ncols=1)
    assert str(info.value) == ("1 panel per row at width=2 in would be 0.13 in each (under "
                               "0.3 in): use width >= 2.2")
    with pytest.raises(probe.ProbeError) as info:
        head_grid(rng.random((2, 5, 5)), tokens, width=2, ncols=2)
    assert str(info.value).startswith("2 panels per row at width=2 in would be ")


def test_small_panels_label_fewer_tokens_and_shorten_titles():
    fig = model_view(_attn(2, 12, 16, 16), TOKENS, width="double")
    first = fig.axes[0]
    labels = [t.get_text() for t in first.get_yticklabels()]
    cell_pt = first.get_position().height * fig.get_size_inches()[1] * 72
    assert 1 <= len(labels) <= cell_pt // (MIN_FONT_PT + 1)  # one label per 7 pt at most
    titles = [ax.get_title() for ax in fig.axes[:12]]
    assert titles[0] in ("head 0", "H0") and all(t for t in titles)


def test_hand_placed_view_is_scaled_and_refused_under_the_floor():
    """The link view is placed by hand: it is scaled to the width (fonts too) while its text
    stays >= 6 pt, and refused, with the narrowest width that works, below that."""
    attn = _attn(4, 16, 16)
    natural = link_view(attn, TOKENS)
    small = smallest_font(natural)
    need = natural.get_size_inches()[0] * MIN_FONT_PT / small
    fig = link_view(attn, TOKENS, width=need + 0.1)
    assert fig.get_size_inches()[0] == pytest.approx(need + 0.1)
    assert smallest_font(fig) >= MIN_FONT_PT
    with pytest.raises(probe.ProbeError, match=r"under 6 pt\); use width >= "):
        link_view(attn, TOKENS, width=need - 0.3)


def test_window_view_draws_the_map_over_the_token_grid_not_the_panel_grid():
    """6 heads wrap into a 2 x 4 panel grid; each map still covers the 4 x 4 token grid of
    8 px tokens, the whole 32 px image (it was drawn over 4 x 2 tokens)."""
    rng = np.random.default_rng(0)
    fig = window_query_view(_image(), rng.random((6, 4, 4)), (1, 1), (8.0, 8.0))
    maps = [ax.images[1] for ax in fig.axes if len(ax.images) == 2]
    assert len(maps) == 6
    assert all(tuple(im.get_extent()) == (0, 32.0, 32.0, 0) for im in maps)


def test_plot_takes_width():
    from tests._factories import make_trace
    import torch

    attn = torch.softmax(torch.randn(2, 1, 4, 6, 6), -1)
    trace = make_trace(attn, tokens=[["a", "b", "c", "d", "e", "f"]])
    assert probe.plot(trace, "model", width="single").get_size_inches()[0] == pytest.approx(3.5)
    fig = probe.plot(trace, "heads", layer=1, width=3.0)
    assert fig.get_size_inches()[0] == pytest.approx(3.0)
    with pytest.raises(probe.ProbeError, match="width must be"):
        probe.plot(trace, "head", width="narrow")


# ------------------------------------------------------------------ curves legend
def test_curves_legend_names_the_auc_once_and_says_n():
    f = np.linspace(0, 1, 11)
    curves = {"rollout": (f, 1 - f), "random": (f, 1 - f ** 2)}
    fig = curves_view(curves, "deletion", auc={"random": 0.5}, n=16, unit="images")
    legend = fig.axes[0].get_legend()
    assert legend.get_title().get_text() == "AUC (lower is better)\nN = 16 images"
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["rollout: 0.500", "random (baseline): 0.500"]
    assert not any("((" in t or ") (" in t for t in texts)
    one = curves_view(curves, "insertion", n=1, unit="images").axes[0].get_legend()
    assert one.get_title().get_text() == "AUC (higher is better)\nN = 1 image"
    assert curves_view(curves).axes[0].get_legend().get_title().get_text() == (
        "AUC (lower is better)")  # N unknown: not made up
    with pytest.raises(probe.ProbeError, match="n must be"):
        curves_view(curves, n=0)


def test_narrow_curves_put_the_legend_under_the_axes():
    f = np.linspace(0, 1, 11)
    fig = curves_view({"rollout": (f, 1 - f)}, width="single", n=4)
    ax = fig.axes[0]
    fig.canvas.draw()
    legend_box = ax.get_legend().get_window_extent()
    assert legend_box.y1 <= ax.get_window_extent().y0  # below the plot, not squeezing it
    assert text_clashes(fig) == []


# ------------------------------------------------------------------ colour scales by quantity
def _bars(fig) -> list:
    return [ax._colorbar for ax in fig.axes if hasattr(ax, "_colorbar")]


def test_unsigned_scales_start_at_zero_in_every_view():
    """The rule: any unsigned quantity (attention, gates, scores) from 0 to its largest value,
    even when the data's own minimum is far above 0."""
    rng = np.random.default_rng(0)
    img = _image()
    high = 0.5 + 0.5 * rng.random((4, 8, 8))  # minimum 0.5
    figs = {
        "saliency": saliency_overlay(img, high[0]),
        "cls": cls_head_grid(img, high),
        "gate_maps": gate_maps(img, {"gate": high[0]}),
        "heatmap": head_heatmap(high[0]),
        "window": window_query_view(img, high, (1, 1), (8.0, 8.0)),
        "strip": token_strip(WORDS[:8], high[0, 0]),
    }
    for name, fig in figs.items():
        for bar in _bars(fig):
            assert bar.norm.vmin == 0.0, name
            assert bar.norm.vmax == pytest.approx(high[0].max() if name in (
                "saliency", "gate_maps", "heatmap") else (
                high[0, 0].max() if name == "strip" else high.max())), name


def test_signed_scales_are_symmetric_and_user_limits_win():
    signed = np.linspace(-0.2, 1.0, 64).reshape(8, 8)
    bar = _bars(saliency_overlay(_image(), signed))[0]
    assert (bar.norm.vmin, bar.norm.vmax) == (pytest.approx(-1.0), pytest.approx(1.0))
    bar = _bars(saliency_overlay(_image(), np.abs(signed), vmin=0.3))[0]
    assert bar.norm.vmin == pytest.approx(0.3)


def test_colourbars_name_the_same_quantity_alike():
    """A single view and the comparison say "score" for an unsigned map; the comparison adds
    that each method is normalized."""
    rng = np.random.default_rng(0)
    img = _image()
    assert _bars(saliency_overlay(img, rng.random((8, 8))))[0].ax.get_ylabel() == "score"
    fig = comparison_panel(img, {m: rng.random((8, 8)) for m in METHODS[:3]})
    assert _bars(fig)[0].ax.get_ylabel() == "score\n(normalized per method)"
    fig = comparison_panel(WORDS, {m: rng.random(len(WORDS)) for m in METHODS[:3]})
    assert _bars(fig)[0].ax.get_xlabel() == "score (normalized per method)"


# ------------------------------------------------------------------ probe render --width
def _cli(argv, capsys):
    from probe.cli import main

    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(("extra", "message"), [
    (["--width", "wide"], "--width must be single"),
    (["--width", "1"], "--width must be single"),
    (["--width", "single", "--format", "html"], "--width sets the size of png/svg/pdf"),
])
def test_render_width_refused_before_anything_loads(extra, message, capsys, tmp_path):
    rc, out, err = _cli(["render", "heads", "--text", "The cat sat.", "--out",
                         str(tmp_path / "o"), "--quiet", *extra], capsys)
    assert rc == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_render_width_draws_the_figure_at_that_width(capsys, tmp_path):
    from PIL import Image

    rc, out, err = _cli(["render", "heads", "--text", "The cat sat on the mat.", "--layer", "0",
                         "--width", "single", "--dpi", "40", "--out", str(tmp_path / "o"),
                         "--quiet"], capsys)
    assert rc == 0, err
    (path,) = [line for line in out.splitlines() if line.endswith(".png")]
    assert Image.open(path).size[0] == 140  # 3.5 in at 40 dpi
    rc, out, err = _cli(["render", "heads", "--text", "The cat sat on the mat.", "--width",
                         "single", "--out", str(tmp_path / "p"), "--quiet"], capsys)
    assert rc == 2 and "--layer" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("view", "extra", "message"), [
    ("heads", [], "12 panels per row at --width 2 would be 0.00 in each (under 0.3 in): use "
                  "--width 6.4 or more, or show one layer with --layer L (its heads wrap into "
                  "rows)"),
    ("links", ["--layer", "0"], "the links figure is 4.4 in wide with 8 pt text: at --width 2 "
                                "its text would print at 3.7 pt (under 6 pt); use --width 3.3 "
                                "or more"),  # its 12-head legend in 3 columns (was 6: 6.1 in)
    ("coref", ["--word", "it"], "--width 2 is too narrow for the coref view: use --width 3..40"),
    ("compare", [], "--width 2 is too narrow for the compare view: use --width 3..40"),
])
def test_render_width_refusals_speak_the_command_line(view, extra, message, capsys, tmp_path):
    """A viewer's refusal at --width read in API terms ("at width=2 in", "use width >= 6.4",
    "the link_view figure", "capture them with probe.trace(..., layers=[...])"), and the
    coref and compare views said "width must be in [3, 40] inches, got 2.0"."""
    rc, out, err = _cli(["render", view, "--text", "The cat sat on the mat because it was "
                         "very tired today.", "--width", "2", *extra, "--out",
                         str(tmp_path / "o"), "--quiet"], capsys)
    assert rc == 2 and out == "" and err == f"probe: error: {message}\n"
    assert not (tmp_path / "o").exists()


def test_width_range_wording_names_the_side():
    """The CLI's own check keeps --width within 2..40, so a viewer's range refusal above it is
    reached only from the wording function: it must still say which side is wrong."""
    from probe.commands.render._wording import cli_width_wording

    msg = "width must be a figure width in inches in [3, 40], got 50.0"
    assert cli_width_wording(msg, "coref", "50") == (
        "--width 50 is too wide for the coref view: use --width 3..40")
    assert cli_width_wording(msg.replace("50.0", "2.0"), "coref", "2") == (
        "--width 2 is too narrow for the coref view: use --width 3..40")


def test_every_public_figure_viewer_takes_width():
    """``width=`` is on every viewer of ``probe.viewers`` that draws a figure."""
    import inspect

    import probe.viewers as V

    figure_views = [
        "alignment_view", "branch_gates_view", "channel_gates_view", "channel_profiles_view",
        "channel_spatial_view", "cls_head_grid", "comparison_panel", "coref_view",
        "curves_view", "detr_queries_view", "gate_figures", "gate_maps", "head_grid",
        "head_heatmap", "link_view", "model_view", "query_point_view", "saliency_overlay",
        "token_strip", "window_query_view",
    ]
    missing = [n for n in figure_views
               if "width" not in inspect.signature(getattr(V, n)).parameters]
    assert missing == []
    fig = V.alignment_view(np.eye(3), ["a", "b", "c"], ["x", "y", "z"], width="single")
    assert fig.get_size_inches()[0] == pytest.approx(3.5)


def test_gate_figures_pass_the_width_to_every_figure():
    """The packaged cnn-shapes (CBAM: spatial and channel gates): both figures at 7 in, text
    at 6 pt or more; in a 3.5 in column the channel figure is refused with what fits."""
    model, _ = probe.load_model("cnn-shapes")
    batch = probe.make_shapes(1, seed=3)
    gates = probe.trace_gates(model, batch.images)
    figs = probe.viewers.gate_figures(gates, batch.to_display(0), width="double")
    assert set(figs) == {"maps", "channel"}
    for fig in figs.values():
        assert fig.get_size_inches()[0] == pytest.approx(7.0)
        assert smallest_font(fig) >= MIN_FONT_PT
    with pytest.raises(probe.ProbeError, match="channel_gates_view .* use width >= "):
        probe.viewers.gate_figures(gates, batch.to_display(0), width="single")
