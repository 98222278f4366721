"""Paper-ready figures and help: the DETR figure's colour scale, glyphs drawn alike in labels
and titles, ``--help`` readable in an 80-column terminal, messages that say what an option
is."""

from __future__ import annotations

import pytest

import probe


def test_window_option_of_the_window_view_says_what_it_is():
    """``window=`` is the heads / model views' token window, not the Swin windows the window
    view draws: the message names it and what to use instead (checked before the source is
    looked at, so no model is needed)."""
    with pytest.raises(probe.ProbeError) as info:
        probe.show(object(), "window", window=(0, 3))
    message = str(info.value)
    assert "window=(start, stop)" in message and "token window" in message
    assert "layers=" in message and "layer=" in message and "drop it" in message
    assert "does not apply to the window view" not in message
    assert "\n" not in message


# ----------------------------------------------------------------------------- DETR colour scale
def _colorbars(fig) -> list:
    return [ax._colorbar for ax in fig.axes if hasattr(ax, "_colorbar")]


def _detr_figure(q: int = 3, shape=(24, 24), **kwargs):
    import numpy as np

    from probe.viewers import detr_queries_view

    rng = np.random.default_rng(0)
    maps = rng.random((q, 4, 4)) * np.arange(1, q + 1)[:, None, None]  # peaks 1, 2, 3...
    return maps, detr_queries_view(rng.random((*shape, 3)), maps,
                                   np.array([[.5, .5, .4, .4]] * q), [f"q{i}" for i in range(q)],
                                   scores=[.9] * q, title="detr", **kwargs)


def test_detr_view_has_one_labelled_colour_scale_shared_by_its_queries():
    """A reader can tell what the heat means: one colourbar, labelled, whose scale is the
    one every panel is drawn on (from 0 to the largest weight of the shown queries)."""
    from _layout import layout_problems

    maps, fig = _detr_figure()
    (bar,) = _colorbars(fig)
    assert bar.ax.get_ylabel() == "cross-attention weight"
    assert (bar.norm.vmin, bar.norm.vmax) == (0.0, pytest.approx(maps.max()))
    overlays = [im for ax in fig.axes for im in ax.images if im.get_array().ndim == 2]
    assert len(overlays) == 3 and all(im.norm.vmax == bar.norm.vmax for im in overlays)
    assert layout_problems(fig) == []
    _, fig = _detr_figure(colorbar_label="cross-attention weight\n(layer 5, heads averaged)")
    assert _colorbars(fig)[0].ax.get_ylabel() == "cross-attention weight\n(layer 5, heads averaged)"


def test_detr_view_scale_each_gives_every_query_its_own_labelled_bar():
    """``scale="each"`` (the DETR paper's figures: each map on its own scale) labels a bar
    per panel instead of hiding that the panels' colours do not compare."""
    from _layout import layout_problems

    maps, fig = _detr_figure(scale="each")
    bars = _colorbars(fig)
    assert [b.norm.vmax for b in bars] == pytest.approx(maps.reshape(3, -1).max(1))
    assert {b.ax.get_ylabel() for b in bars} == {"cross-attention weight"}
    assert layout_problems(fig) == []
    with pytest.raises(probe.ProbeError, match="scale"):
        _detr_figure(scale="per-query")


# ----------------------------------------------------------------------------- glyphs
def _font_draws(ch: str) -> bool:
    """Whether a font of the viewers' family list has ``ch`` (read from the font files)."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    from probe.viewers._fonts import font_families

    return any(ord(ch) in FT2Font(font_manager.findfont(family)).get_charmap()
               for family in font_families())


def _shown(ch: str) -> str:
    return ch if _font_draws(ch) else f"<U+{ord(ch):04X}>"


def test_labels_and_title_show_a_character_alike():
    """An emoji a font draws is drawn in labels and title; one no font draws (U+1F44D here:
    no installed font has it) is ``<U+1F44D>`` in both (the title drew an empty box with a
    "Glyph missing" warning); bytes of a split character are ``<0x..>`` escapes on the
    tokens that continue it, never mojibake (``ð``, ``Ł``)."""
    import warnings

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from tests._tokenizers import byte_level
    from tests.test_token_labels import _gpt2

    matplotlib.use("Agg")
    smile, thumb, cat = "\U0001F600", "\U0001F44D", "\u732b"
    assert _font_draws(smile) and not _font_draws(thumb)  # the case this test is about
    tok = byte_level()
    tr = probe.trace(_gpt2(len(tok)), f"Hi {thumb} {smile} {cat} ok", tokenizer=tok)
    # one token per byte here (the tiny tokenizer never saw these characters)
    assert tr.labels[0][3:7] == (thumb, "<0x9F>", "<0x91>", "<0x8D>")
    for view, options in (("heads", {"layer": 0}), ("links", {"layer": 0}),
                          ("head", {"layer": 0, "head": 0})):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "Glyph missing"
            fig = probe.plot(tr, view, **options)
            FigureCanvasAgg(fig).draw()  # a bare Figure's own canvas draws nothing
        texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
        texts += [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]
        joined = " ".join(texts)
        assert thumb not in joined and "<U+1F44D>" in joined, view
        assert smile in joined and "<U+1F600>" not in joined, view
        assert cat in joined and not any(c in joined for c in "\u00f0\u0141\u00e7"), view
        if view == "heads":  # the title quotes the sentence
            title = fig._suptitle.get_text()
            assert f"<U+1F44D> {smile} {cat}" in title


def test_title_shows_invisible_characters_as_the_labels_do():
    """A zero-width space or a bidi override in the sentence is ``<U+200B>`` / ``<U+202E>``
    in the title quoting it, as in the token labels (it vanished, or reordered the title)."""
    from tests._tokenizers import byte_level
    from tests.test_token_labels import _gpt2

    tok = byte_level()
    tr = probe.trace(_gpt2(len(tok)), "the cat\u200b sat \u202eon", tokenizer=tok)
    fig = probe.plot(tr, "heads", layer=0)
    title = fig._suptitle.get_text()
    assert "<U+200B>" in title and "<U+202E>" in title
    assert "\u200b" not in title and "\u202e" not in title
    labels = [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]
    assert any("<U+200B>" in t for t in labels) or any("<U+200B>" in t for t in tr.labels[0])


# ----------------------------------------------------------------------------- --help
COMMANDS = [[], ["render"], ["models"], ["eval"], ["bench"], ["serve"]]


def _help(argv: list[str], columns: int, monkeypatch, capsys, tmp_path) -> str:
    from probe.cli import main

    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setenv("PROBE_SERVE_SOCKET", str(tmp_path / "none.sock"))  # no server
    assert main([*argv, "--help"]) == 0
    return capsys.readouterr().out


def test_every_command_has_a_help_that_fits_the_terminal():
    """Every command's ``--help`` is listed here (so a new command is not forgotten)."""
    import argparse

    from probe.cli import _build_parser

    sub = next(a for a in _build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(sub.choices) == sorted(c[0] for c in COMMANDS if c)


@pytest.mark.parametrize("columns", [80, 60])
@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a) or "probe")
def test_help_lines_fit_an_80_column_terminal(argv, columns, monkeypatch, capsys, tmp_path):
    """``probe render --help`` printed its description as one 235-character line, and a view
    summary ran to 120; every line now fits the terminal (argparse wraps to its width - 2),
    save a single word longer than a line could hold."""
    out = _help(argv, columns, monkeypatch, capsys, tmp_path)
    long = [line for line in out.splitlines()
            if len(line) > columns and len(max(line.split(), key=len)) < columns - 30]
    assert long == []


def test_render_help_lists_each_view_on_one_line(monkeypatch, capsys, tmp_path):
    from probe.commands.render import VIEWS

    out = _help(["render"], 80, monkeypatch, capsys, tmp_path)
    block = out.split("\nviews:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[0] for line in block] == list(VIEWS)  # one line each, no wrapping
    assert all(len(line.split()) >= 4 for line in block)  # with a summary
    assert out.split("\n\n")[1].startswith("Render one analysis")
    assert "one sentence is no evidence" in " ".join(out.lower().split())  # details kept
    examples = out.split("\nexamples:\n", 1)[1]
    assert "\\\n      --text" in examples  # a long example continues as a shell line


def test_link_view_title_names_a_run_of_heads_as_a_range():
    """``probe render links --layer 2`` was titled "heads 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11"
    (the view names heads by strings): now "heads 0–11", as the other views write it."""
    import numpy as np

    from probe.viewers import link_view
    from probe.viewers._style import title

    assert title("m", 2, [str(h) for h in range(12)]) == "m \u00b7 layer 2 \u00b7 heads 0\u201311"
    assert title("m", 2, ["0", "2"]) == "m \u00b7 layer 2 \u00b7 heads 0, 2"
    attn = np.full((12, 3, 3), 1 / 3)
    fig = link_view(attn, ["a", "b", "c"], layer=2, model_name="m")
    titles = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))
              if "heads" in t.get_text()]
    assert titles == ["m \u00b7 layer 2 \u00b7 heads 0\u201311 \u00b7 attention"]


def test_attention_colourbars_say_attention_weight_in_every_view():
    """The window and non-local views labelled their bars "attention", the heatmaps
    "attention weight": one quantity, one label."""
    import numpy as np

    from probe.viewers import head_heatmap, query_point_view, window_query_view

    rng = np.random.default_rng(0)
    image = rng.random((16, 16, 3))
    figures = [
        window_query_view(image, rng.random((2, 4, 4)), (1, 1), (4.0, 4.0)),
        query_point_view(image, rng.random((4, 4)), (1, 2)),
        head_heatmap(rng.random((3, 3)), ["a", "b", "c"]),
    ]
    labels = [[ax._colorbar.ax.get_ylabel() for ax in fig.axes if hasattr(ax, "_colorbar")]
              for fig in figures]
    assert labels == [["attention weight"]] * 3


def test_rollout_over_text_and_over_an_image_has_one_colourbar_label(tmp_path, monkeypatch):
    """``probe render rollout`` labelled the same quantity "score" over tokens and "saliency"
    over an image: both now name the method, "rollout score" ("ig attribution" if signed)."""
    import probe.viewers
    from probe.cli import main

    monkeypatch.setenv("PROBE_SERVE_SOCKET", str(tmp_path / "none.sock"))
    figures = []
    for name in ("saliency_overlay", "token_strip"):
        view = getattr(probe.viewers, name)

        def recorded(*args, _view=view, **kwargs):
            figures.append(_view(*args, **kwargs))
            return figures[-1]

        monkeypatch.setattr(probe.viewers, name, recorded)
    out = ["--out", str(tmp_path), "--quiet", "--dpi", "20"]
    assert main(["render", "rollout", "--text", "The cat sat on the mat.", *out]) == 0
    assert main(["render", "rollout", "--model", "vit-shapes", *out]) == 0
    labels = [[ax._colorbar.ax.get_xlabel() or ax._colorbar.ax.get_ylabel()
               for ax in fig.axes if hasattr(ax, "_colorbar")] for fig in figures]
    assert labels == [["rollout score"], ["rollout score"]]


def test_probe_plot_names_the_quantity_on_its_colourbar_as_probe_render_does():
    """``probe.plot(trace, "rollout")`` and ``probe.plot(attribution)`` labelled their
    colourbars "score" where ``probe render`` says "rollout score" ("ig attribution" if
    signed, and then on a scale centred at 0 as there, also when this input's scores are all
    positive); a vision attribution without ``image=`` now says where an image comes from."""
    import torch

    from tests._tiny import hf_vit
    from tests._factories import make_trace

    def labels(fig):
        return [ax._colorbar.ax.get_xlabel() or ax._colorbar.ax.get_ylabel()
                for ax in fig.axes if hasattr(ax, "_colorbar")]

    attn = torch.softmax(torch.randn(2, 1, 2, 5, 5, generator=torch.Generator().manual_seed(0)), -1)
    text = make_trace(attn, tokens=[["[CLS]", "it", "is", "here", "[SEP]"]],
                      words=[["it", "is", "here"]], word_ids=[[None, 0, 1, 2, None]],
                      special_tokens_mask=[[1, 0, 0, 0, 1]], family="encoder")
    assert labels(probe.plot(text, "rollout")) == ["rollout score"]
    assert labels(probe.plot(text, "rollout", colorbar_label="mine")) == ["mine"]
    model, pixels = hf_vit()
    assert labels(probe.plot(probe.trace(model, pixels[:1]), "rollout")) == ["rollout score"]
    attr = probe.attribute(model, pixels[:1], "rollout")
    with pytest.raises(probe.ProbeError, match=r"keeps no image: .*to_display"):
        probe.plot(attr)
    image = torch.rand(3, 32, 32)
    assert labels(probe.plot(attr, image=image)) == ["rollout score"]
    signed = probe.Attribution(scores=torch.tensor([[0.5, -0.2, 0.1]]), method="ig",
                               modality="text", signed=True, tokens=(("a", "b", "c"),))
    assert labels(probe.plot(signed)) == ["ig attribution"]
    positive = probe.Attribution(scores=torch.tensor([[0.5, 0.2, 0.1]]), method="ig",
                                 modality="text", signed=True, tokens=(("a", "b", "c"),))
    bar = next(ax._colorbar for ax in probe.plot(positive).axes if hasattr(ax, "_colorbar"))
    assert bar.norm.vmin == -bar.norm.vmax  # signed: centred at 0, not Reds from 0


def test_window_view_wraps_many_heads_into_rows():
    """Six heads in one row made a 17 x 2.6 inch figure (3-point text on a two-column
    page); panels now wrap after ``columns`` (default 4), one colourbar for all heads."""
    import numpy as np

    from _layout import image_axes, layout_problems
    from probe.viewers import window_query_view

    rng = np.random.default_rng(0)
    fig = window_query_view(rng.random((32, 32, 3)), rng.random((6, 4, 4)), (1, 1), (8.0, 8.0),
                            title="swin · layer 3")
    width, height = fig.get_size_inches()
    assert width <= 10.5 and height >= 4.5
    assert len(image_axes(fig)) == 7 and len(_colorbars(fig)) == 1
    rows = {round(ax.get_position().y0, 6) for ax in image_axes(fig)}
    assert len(rows) == 2
    assert layout_problems(fig) == []
    small = window_query_view(rng.random((32, 32, 3)), rng.random((2, 4, 4)), (1, 1), (8.0, 8.0))
    # one row of 2 in panels on a grid placed by hand, beside a colourbar as tall as they are
    assert tuple(small.get_size_inches()) == pytest.approx((7.39, 2.775))
    with pytest.raises(probe.ProbeError, match="columns"):
        window_query_view(rng.random((32, 32, 3)), rng.random((2, 4, 4)), (1, 1), (8.0, 8.0),
                          columns=1)
