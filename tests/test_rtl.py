"""Right-to-left sentences laid out right to left (``direction="auto" | "ltr" | "rtl"``).

The decision (:func:`probe._text.text_direction`), the static viewers read back from their
Axes (which weight is drawn under which label), English figures unchanged, ``probe.plot``
on the real MiniLM (which tokenizes Arabic and Hebrew letters) and ``probe render
--direction``. The HTML views are tested in a real Chromium in ``test_rtl_html.py``.
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import probe  # noqa: E402
from probe import viewers as V  # noqa: E402
from probe._text import text_direction  # noqa: E402
from probe.cli import main  # noqa: E402
from probe.viewers._style import format_token  # noqa: E402

ARABIC = ["[CLS]", "القط", "جلس", "على", "الحصير", "[SEP]"]  # the cat sat on the mat
HEBREW = ["[CLS]", "החתול", "ישב", "על", "השטיח", "[SEP]"]
ENGLISH = ["[CLS]", "the", "cat", "sat", "on", "[SEP]"]
AR_TEXT = "القط جلس على الحصير."
HE_TEXT = "החתול ישב על השטיח."


def _attn(n: int, heads: int = 2, seed: int = 0) -> np.ndarray:
    """``[head, query, key]`` rows summing to 1, every weight distinct."""
    a = np.random.default_rng(seed).random((heads, n, n)) + 0.05
    return a / a.sum(-1, keepdims=True)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50, metadata={"Software": None})
    return buf.getvalue()


# ----------------------------------------------------------------------------- the decision
@pytest.mark.parametrize("texts, expected", [
    (ARABIC, "rtl"), (HEBREW, "rtl"), (ENGLISH, "ltr"),
    (["[CLS]", "1", ",", "2", "[SEP]"], None), ([], None),
    (["<s>", "▁שלום", "</s>"], "rtl"), (["<|endoftext|>", "مرحبا"], "rtl"),
    (["<U+200F>", "<0xD8>", "سلام"], "rtl"),  # label escapes are markup, not letters
    (["##ات"], "rtl"), (["hello", "שלום"], "ltr"), (["שלום", "hello"], "rtl"),
    (["(", "42", "مرحبا"], "rtl"), (["[unused0]", "x"], "ltr"), (["ܫܠܡܐ"], "rtl"),  # Syriac
])
def test_the_first_strong_letter_decides(texts, expected):
    assert text_direction(texts) == expected


@pytest.mark.parametrize("call", [
    lambda d: V.head_heatmap(_attn(6)[0], ENGLISH, direction=d),
    lambda d: V.head_grid(_attn(6), ENGLISH, direction=d),
    lambda d: V.model_view(_attn(6)[None], ENGLISH, direction=d),
    lambda d: V.link_view(_attn(6), ENGLISH, direction=d),
    lambda d: V.coref_view(ENGLISH, 2, np.ones(6), direction=d),
    lambda d: V.token_strip(ENGLISH, np.arange(6.0), direction=d),
    lambda d: V.comparison_panel(ENGLISH, {"ig": np.arange(6.0)}, direction=d),
    lambda d: V.alignment_view(_attn(6)[0], ENGLISH, ENGLISH, direction=d),
])
@pytest.mark.parametrize("bad", ["RTL", "right", None, 1])
def test_a_bad_direction_is_one_line(call, bad):
    with pytest.raises(probe.ProbeError, match="direction must be 'auto', 'ltr' or 'rtl'") as e:
        call(bad)
    assert "\n" not in str(e.value)


def test_an_image_refuses_a_direction():
    with pytest.raises(probe.ProbeError, match="drop it for an image"):
        V.comparison_panel(np.zeros((8, 8, 3)), {"ig": np.ones((2, 2))}, direction="rtl")


# ----------------------------------------------------------------------------- heatmaps
def _label_centres(fig, texts) -> dict[str, tuple[float, float]]:
    """Display centre of each non-empty tick label (drawn on an Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    out = {}
    for t in texts:
        if t.get_visible() and t.get_text():
            bb = t.get_window_extent()
            out[t.get_text()] = ((bb.x0 + bb.x1) / 2, (bb.y0 + bb.y1) / 2)
    return out


def _check_cells_under_labels(fig, ax, attn: np.ndarray, q_tokens, k_tokens,
                              marked: tuple[int, int] | None = None) -> None:
    """The pixel in column "under key label k" and row "beside query label q" has the colour
    of ``attn[q, k]``, for every pair: read from the rendered canvas and the labels' drawn
    positions, not from the data coordinates the viewer used. The ``marked`` cell holds a
    red dot (alignment_view's predicted link) instead."""
    xs = _label_centres(fig, ax.get_xticklabels())
    ys = _label_centres(fig, ax.get_yticklabels())
    rgba = np.asarray(fig.canvas.buffer_rgba()).astype(float)
    image = ax.images[0]
    height = rgba.shape[0]
    for q, qt in enumerate(q_tokens):
        for k, kt in enumerate(k_tokens):
            x, _ = xs[format_token(kt)]
            _, y = ys[format_token(qt)]
            got = rgba[int(round(height - y)), int(round(x)), :3]
            want = np.asarray(image.cmap(image.norm(attn[q, k]))[:3]) * 255
            if (q, k) == marked:
                want = np.array([0xD6, 0x27, 0x28])  # the predicted link's dot, #d62728
            assert np.abs(got - want).max() <= 3, (q, k, got, want)


def test_heatmap_of_an_arabic_sentence_runs_right_to_left_and_keeps_its_weights():
    attn = _attn(6)[0]
    fig = V.head_heatmap(attn, ARABIC)
    ax = fig.axes[0]
    left, right = ax.get_xlim()
    assert left > right  # key 0 at the right
    xs = _label_centres(fig, ax.get_xticklabels())
    order = [xs[format_token(t)][0] for t in ARABIC]
    assert order == sorted(order, reverse=True)  # first token rightmost
    assert ax.yaxis.get_ticks_position() == "right"
    ys = _label_centres(fig, ax.get_yticklabels())
    assert [ys[format_token(t)][1] for t in ARABIC] == sorted(
        ys[format_token(t)][1] for t in ARABIC)[::-1]  # queries still top-down
    cbar = fig.axes[1]
    assert cbar.get_position().x1 < ax.get_position().x0  # colourbar at the left
    _check_cells_under_labels(fig, ax, attn, ARABIC, ARABIC)


def test_heatmap_of_an_english_sentence_is_unchanged():
    attn = _attn(6)[0]
    fig = V.head_heatmap(attn, ENGLISH)
    ax = fig.axes[0]
    assert ax.get_xlim() == (-0.5, 5.5)
    assert ax.yaxis.get_ticks_position() == "left"
    assert fig.axes[1].get_position().x0 > ax.get_position().x1
    _check_cells_under_labels(fig, ax, attn, ENGLISH, ENGLISH)
    assert _png(V.head_heatmap(attn, ENGLISH)) == _png(
        V.head_heatmap(attn, ENGLISH, direction="ltr"))


def test_direction_overrides_the_tokens():
    attn = _attn(6)[0]
    ar_ltr = V.head_heatmap(attn, ARABIC, direction="ltr").axes[0]
    en_rtl = V.head_heatmap(attn, ENGLISH, direction="rtl").axes[0]
    assert ar_ltr.get_xlim() == (-0.5, 5.5)
    assert en_rtl.get_xlim() == (5.5, -0.5)


def test_cross_attention_reads_the_direction_of_the_key_axis():
    attn = _attn(6)[0]
    fig = V.head_heatmap(attn, query_tokens=ENGLISH, key_tokens=HEBREW)
    ax = fig.axes[0]
    assert ax.get_xlim()[0] > ax.get_xlim()[1]
    _check_cells_under_labels(fig, ax, attn, ENGLISH, HEBREW)
    fig = V.alignment_view(attn, HEBREW, ENGLISH, gold=[(1, 2)])
    assert fig.axes[0].get_xlim() == (-0.5, 5.5)  # English source words: left to right
    fig = V.alignment_view(attn, ENGLISH, ARABIC, gold=[(1, 2)], predicted=[(1, 2)])
    ax = fig.axes[0]
    assert ax.get_xlim()[0] > ax.get_xlim()[1]
    _check_cells_under_labels(fig, ax, attn, ENGLISH, ARABIC, marked=(1, 2))
    # the gold square and the dot stay on the cell of source word 2 (under its label)
    square = [p for p in ax.patches if p.get_label() == "gold"][0]
    assert square.get_x() + 0.5 == 2 and ax.collections[0].get_offsets()[0][0] == 2


@pytest.mark.parametrize("grid", ["heads", "model"])
def test_grids_mirror_whole(grid):
    attn = _attn(6, heads=3)
    if grid == "heads":
        fig = V.head_grid(attn, HEBREW, layer=0)
        panels = fig.axes[:3]
    else:
        fig = V.model_view(np.stack([attn, attn[::-1]]), HEBREW)
        panels = fig.axes[:6]
    xs = [p.get_position().x0 for p in panels[:3]]
    assert xs == sorted(xs, reverse=True)  # head 0 in the right column
    bar = fig.axes[-1]
    assert bar.get_position().x1 < min(p.get_position().x0 for p in panels)
    for ax in panels:
        assert ax.get_xlim()[0] > ax.get_xlim()[1]
    # labels sit on the first (right) column and the bottom panels: the bottom-right panel
    # (head 0; in the model view of layer 1, whose heads are attn reversed) has both
    corner, weights = (panels[0], attn[0]) if grid == "heads" else (panels[3], attn[::-1][0])
    _check_cells_under_labels(fig, corner, weights, HEBREW, HEBREW)
    en = V.head_grid(attn, ENGLISH, layer=0)
    assert [p.get_position().x0 for p in en.axes[:3]] == sorted(
        p.get_position().x0 for p in en.axes[:3])
    assert _png(en) == _png(V.head_grid(attn, ENGLISH, layer=0, direction="ltr"))


# ----------------------------------------------------------------------------- link view
def test_link_view_puts_the_queries_on_the_right():
    attn = _attn(6)
    fig = V.link_view(attn, ARABIC, threshold=0.0, highlight=1)
    ax = fig.axes[0]
    at: dict[tuple[float, str], list[float]] = {}  # (row, label) -> x of each drawn label
    for t in ax.texts:
        at.setdefault((round(t.get_position()[1], 6), t.get_text()), []).append(
            t.get_position()[0])
    coll = [c for c in ax.collections if c.get_gid() == "head 0"][0]
    segs = coll.get_segments()
    x_query, x_key = segs[0][0][0], segs[0][1][0]
    assert x_query > x_key
    # every line starts beside its query's label (right of the query line) and ends beside
    # its key's label (left of the key line), with the opacity of that pair's weight (a
    # quarter of it shared by the 2 heads: the lines of the queries not highlighted)
    rest = [(q, k) for q in range(6) for k in range(6) if q != 1]  # 1: highlighted, drawn last
    assert len(segs) == len(rest)
    for (q, k), seg, rgba in zip(rest, segs, coll.get_colors()):
        assert seg[0][1] == q and seg[1][1] == k
        assert any(x > x_query for x in at[(float(q), format_token(ARABIC[q]))])
        assert any(x < x_key for x in at[(float(k), format_token(ARABIC[k]))])
        assert rgba[3] == pytest.approx(0.25 / 2 * min(1.0, attn[0, q, k]))  # faded, 2 heads
    en = V.link_view(attn, ENGLISH, threshold=0.0)
    seg = [c for c in en.axes[0].collections if c.get_gid() == "head 0"][0].get_segments()[0]
    assert seg[0][0] < seg[1][0]
    assert _png(en) == _png(V.link_view(attn, ENGLISH, threshold=0.0, direction="ltr"))


# ----------------------------------------------------------------------------- strips
def _boxes(ax, n):
    return [(p.get_x(), p.get_y(), p.get_width(), p.get_facecolor()) for p in ax.patches[:n]]


def _text_at(ax, x, y):
    """The text drawn at the centre of a box."""
    near = [t for t in ax.texts if abs(t.get_position()[0] - x) < 1e-6 and t.get_position()[1]
            == pytest.approx(y, abs=30)]
    return near[0].get_text()


def test_token_strip_runs_from_the_right_and_wraps_leftwards():
    toks = ARABIC[1:5] * 6  # 24 words: several lines at width 4
    scores = np.random.default_rng(1).normal(size=len(toks))
    fig = V.token_strip(toks, scores, width=4.0)
    ax = fig.axes[0]
    boxes = _boxes(ax, len(toks))
    width_pt = ax.get_xlim()[1]
    assert boxes[0][0] + boxes[0][2] == pytest.approx(width_pt)  # first token at the right
    lines = sorted({b[1] for b in boxes})
    assert len(lines) > 1
    for y in lines:
        row = [b for b in boxes if b[1] == y]
        assert [b[0] for b in row] == sorted((b[0] for b in row), reverse=True)
        assert row[0][0] + row[0][2] == pytest.approx(width_pt)  # every line right-aligned
    ltr = V.token_strip(toks, scores, width=4.0, direction="ltr").axes[0]
    for i, ((x, y, w, face), (lx, ly, lw, lface)) in enumerate(zip(boxes, _boxes(ltr, len(toks)))):
        # the same box (colour, size, line, label) for each token: only its x is mirrored
        assert _text_at(ax, x + w / 2, y) == format_token(toks[i])
        assert (y, w) == (ly, pytest.approx(lw)) and np.allclose(face, lface)
        assert x == pytest.approx(width_pt - lx - lw)
    # the method name of a multi-method strip sits at the right
    fig = V.token_strip(HEBREW, {"ig": np.arange(6.0), "attention": np.ones(6)})
    ax = fig.axes[0]
    names = [t for t in ax.texts if t.get_text() in ("ig", "attention")]
    assert all(t.get_horizontalalignment() == "right" for t in names)
    assert min(t.get_position()[0] for t in names) > max(p.get_x() for p in ax.patches)


def test_token_strip_of_english_is_unchanged():
    scores = np.arange(6.0)
    fig = V.token_strip(ENGLISH, {"ig": scores, "random": scores[::-1]})
    xs = [p.get_x() for p in fig.axes[0].patches[:6]]
    assert xs == sorted(xs)
    assert _png(fig) == _png(V.token_strip(ENGLISH, {"ig": scores, "random": scores[::-1]},
                                           direction="ltr"))


def test_coref_and_comparison_panels_run_right_to_left():
    words = ARABIC[1:5]
    fig = V.coref_view(words, 3, np.array([0.4, 0.3, 0.2, 0.1]), top=[(0, 1, 0, 0.4)])
    boxes = _boxes(fig.axes[0], 4)
    assert [b[0] for b in boxes] == sorted((b[0] for b in boxes), reverse=True)
    for i, (x, y, w, _) in enumerate(boxes):
        assert _text_at(fig.axes[0], x + w / 2, y) == format_token(words[i])
    fig = V.comparison_panel(HEBREW, {"ig": np.arange(6.0), "random": np.ones(6)})
    xs = [p.get_x() for p in fig.axes[0].patches[:6]]
    assert xs == sorted(xs, reverse=True)
    en = V.comparison_panel(ENGLISH, {"ig": np.arange(6.0)})
    assert _png(en) == _png(V.comparison_panel(ENGLISH, {"ig": np.arange(6.0)},
                                               direction="ltr"))
    en = V.coref_view(ENGLISH[1:5], 3, np.ones(4))
    assert _png(en) == _png(V.coref_view(ENGLISH[1:5], 3, np.ones(4), direction="ltr"))


# ----------------------------------------------------------------------------- probe.plot
def test_plot_lays_out_a_real_arabic_and_hebrew_trace(minilm):
    model, tokenizer = minilm
    trace = probe.trace(model, AR_TEXT, tokenizer=tokenizer)
    ax = probe.plot(trace, "head", layer=0, head=1).axes[0]
    assert ax.get_xlim()[0] > ax.get_xlim()[1]
    ax = probe.plot(trace, "head", layer=0, head=1, direction="ltr").axes[0]
    assert ax.get_xlim()[0] < ax.get_xlim()[1]
    seg = probe.plot(trace, "links", layer=0, head=1).axes[0].collections[0].get_segments()[0]
    assert seg[0][0] > seg[1][0]
    fig = probe.plot(trace, "coref", word="على")
    xs = [p.get_x() for p in fig.axes[0].patches[:5]]
    assert xs == sorted(xs, reverse=True)
    he = probe.trace(model, HE_TEXT, tokenizer=tokenizer)
    xs = [p.get_x() for p in probe.plot(he, "rollout").axes[0].patches[:4]]
    assert xs == sorted(xs, reverse=True)
    with pytest.raises(probe.ProbeError, match="direction must be"):
        probe.plot(he, "heads", layer=0, direction="backwards")
    en = probe.trace(model, "The cat sat on the mat.", tokenizer=tokenizer)
    assert probe.plot(en, "model").axes[0].get_xlim()[0] < 0


def test_plot_of_a_vision_trace_refuses_a_direction(vit):
    model, images = vit
    trace = probe.trace(model, images)
    for view in ("cls", "rollout"):
        with pytest.raises(probe.ProbeError, match="does not take option.*direction") as e:
            probe.plot(trace, view, direction="rtl")
        assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("argv, message", [
    (["render", "head", "--text", "hi", "--direction", "up"], "invalid choice: 'up'"),
    (["render", "saliency", "--image", "docs/figures/html_heads.png", "--direction", "rtl"],
     "an --image has none"),
    (["render", "gates", "--direction", "ltr"], "does not apply to the gates view"),
    (["render", "curves", "--text", "hi", "--pair", "ho", "--direction", "rtl"],
     "add --format html"),
    (["render", "detr", "--direction", "rtl"], "does not apply to the detr view"),
    (["render", "saliency", "--direction", "rtl"], "vit-shapes is an image model"),
])
def test_cli_refuses_direction_where_nothing_is_laid_out(argv, message, capsys, tmp_path):
    rc = main([*argv, "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_cli_renders_right_to_left(capsys, tmp_path):
    out = tmp_path / "o"
    rc = main(["render", "links", "--text", AR_TEXT, "--format", "png", "--format", "html",
               "--out", str(out), "--quiet"])
    assert rc == 0
    paths = capsys.readouterr().out.split()
    page = [p for p in paths if p.endswith(".html")][0]
    assert '"rtl":true' in open(page, encoding="utf-8").read().replace(" ", "")
    rc = main(["render", "links", "--text", AR_TEXT, "--format", "html", "--direction", "ltr",
               "--out", str(tmp_path / "ltr"), "--quiet"])
    assert rc == 0
    page = capsys.readouterr().out.split()[0]
    assert '"rtl":false' in open(page, encoding="utf-8").read().replace(" ", "")
