"""The text views at paper sizes, measured as a reviewer reads them: the links view with a
chosen word draws that word's lines by head and fades the rest (its legends say what is
drawn), and fits one column; the heads view at one column labels every token; a rollout strip
says which query rows it read and which tokens it leaves out, from probe.plot and probe
render alike."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

import probe
from probe.viewers import head_grid, link_view
from probe.viewers._style import MIN_FONT_PT, categorical_colors
from probe.viewers._width import smallest_font

matplotlib.use("Agg")

TOKENS = ["[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]"]
SENTENCE = "The cat sat on the mat."


def _attn(heads: int, n: int = len(TOKENS), power: float = 4.0) -> np.ndarray:
    a = np.random.default_rng(0).random((heads, n, n)) ** power
    return a / a.sum(-1, keepdims=True)


def rest_rows(coll) -> tuple[np.ndarray, np.ndarray]:
    """(query, key) index arrays of a collection's segments."""
    segs = coll.get_segments()
    return (np.array([int(s[0][1]) for s in segs]), np.array([int(s[1][1]) for s in segs]))


def _lines(fig, gid: str):
    (coll,) = [c for c in fig.axes[0].collections if c.get_gid() == gid]
    return coll


def test_links_word_lines_by_head_stand_out_and_the_rest_fade():
    """With highlight= (a chosen word) every query's lines of all 12 heads were drawn at full
    strength in their heads' colours: a tangle with the word's lines hard to find."""
    attn = _attn(12, power=1.0)  # every weight over the threshold: every line drawn
    fig = link_view(attn, TOKENS, highlight=2, threshold=0.0, linewidth=1.5)
    colours = categorical_colors(12)
    for h in range(12):
        own = _lines(fig, f"head {h} highlight")
        assert [float(s[0][1]) for s in own.get_segments()] == [2.0] * 9  # the word's row only
        rgba = own.get_colors()
        assert np.allclose(rgba[:, :3], colours[h][:3])  # in its head's colour
        assert np.allclose(rgba[:, 3], np.minimum(1.0, attn[h, 2]))  # at its weight
        assert own.get_linewidths()[0] == pytest.approx(3.0)
        rest = _lines(fig, f"head {h}")
        assert 2.0 not in {float(s[0][1]) for s in rest.get_segments()}
        rgba = rest.get_colors()
        assert np.allclose(rgba[:, :3], 0.55)  # grey, whatever the head
        assert np.allclose(rgba[:, 3], 0.25 / 12 * np.minimum(1.0, attn[h][rest_rows(rest)]))
        assert rest.get_linewidths()[0] == pytest.approx(0.9)
        assert rest.get_zorder() < own.get_zorder()


def test_links_opacity_key_is_not_one_heads_colour_over_several_heads():
    """The key's sample lines were head 0's blue under lines of 12 colours; with a chosen word
    the key also shows the faint grey of the other queries."""
    ax = link_view(_attn(12), TOKENS, highlight=2).axes[0]
    key = ax.get_legend()
    assert [t.get_text() for t in key.get_texts()] == ["0.1", "0.5", "1", "other queries"]
    handles = key.legend_handles
    for handle in handles[:3]:
        assert matplotlib.colors.to_rgb(handle.get_color()) == pytest.approx((0.2, 0.2, 0.2))
    assert matplotlib.colors.to_rgb(handles[3].get_color()) == pytest.approx((0.55,) * 3)
    one = link_view(_attn(12), TOKENS, heads=[4]).axes[0].get_legend()  # one head: its colour
    assert matplotlib.colors.to_rgba(one.legend_handles[0].get_color())[:3] == pytest.approx(
        categorical_colors(12)[4][:3])
    plain = link_view(_attn(12), TOKENS).axes[0].get_legend()  # no word: no grey entry
    assert [t.get_text() for t in plain.get_texts()] == ["0.1", "0.5", "1"]


def test_links_heads_legend_fits_under_the_diagram_at_one_column():
    """The 12-head legend in 6 columns made a 6.1 in figure for a 9-token sentence, refused at
    width="single" (its 8 pt text would print at 4.6 pt)."""
    natural = link_view(_attn(12), TOKENS, layer=5, model_name="minilm",
                        sentence=f"\u201c{SENTENCE}\u201d")
    assert natural.get_size_inches()[0] <= 3.5 * smallest_font(natural) / MIN_FONT_PT
    fig = link_view(_attn(12), TOKENS, layer=5, model_name="minilm",
                    sentence=f"\u201c{SENTENCE}\u201d", width="single")
    assert fig.get_size_inches()[0] == pytest.approx(3.5)
    assert smallest_font(fig) >= MIN_FONT_PT
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    heads_legend = [a for a in ax.artists if isinstance(a, matplotlib.legend.Legend)][0]
    box = heads_legend.get_window_extent(renderer)
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width  # on the canvas
    assert box.width <= ax.get_window_extent(renderer).width + 1  # no wider than the diagram
    assert heads_legend._ncols == 3  # 12 heads in 4 rows of 3


def test_render_links_at_single_width(minilm, tmp_path, capsys):
    from PIL import Image

    from probe.cli import main

    rc = main(["render", "links", "--text", SENTENCE, "--width", "single", "--dpi", "40",
               "--out", str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    (path,) = [line for line in out.splitlines() if line.endswith(".png")]
    assert Image.open(path).size[0] == 140  # 3.5 in at 40 dpi


def _tick_labels(ax, axis: str) -> list[str]:
    ticks = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
    return [t.get_text() for t in ticks if t.get_visible() and t.get_text()]


def _no_overlap(fig, ax, axis: str) -> None:
    renderer = fig.canvas.get_renderer()
    ticks = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
    boxes = sorted((t.get_window_extent(renderer) for t in ticks if t.get_text()),
                   key=lambda b: (b.y0 if axis == "y" else b.x0))
    for a, b in zip(boxes, boxes[1:]):  # one label per row, none over the next
        assert (b.y0 >= a.y1 - 0.5) if axis == "y" else (b.x0 >= a.x1 - 0.5)


def test_head_grid_at_one_column_labels_every_token():
    """At width="single" the head grid labelled every other token ([CLS], cat, on, mat, [SEP]:
    the, sat, the and . missing); now at 6 pt, the project's floor, every row and column."""
    fig = head_grid(_attn(12), TOKENS, layer=2, model_name="minilm", width="single")
    FigureCanvasAgg(fig).draw()
    panels = [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]
    assert _tick_labels(panels[0], "y") == TOKENS
    assert _tick_labels(panels[-1], "x") == TOKENS
    assert smallest_font(fig) >= MIN_FONT_PT
    _no_overlap(fig, panels[0], "y")
    _no_overlap(fig, panels[-1], "x")


def _labelled(fig, ax, axis: str) -> list[int]:
    """Positions of the drawn (non-empty) tick labels of ``ax`` on ``axis``."""
    ticks = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
    locs = ax.get_yticks() if axis == "y" else ax.get_xticks()
    return [int(round(p)) for p, t in zip(locs, ticks) if t.get_text()]


def _thinned(fig) -> str | None:
    found = [t.get_text() for t in fig.texts if t.get_gid() == "thinned"]
    return found[0] if found else None


@pytest.mark.parametrize("n, step", [(16, 2), (27, 3), (60, 7)])
def test_head_grid_thins_labels_it_cannot_all_fit_and_says_so(n, step):
    """16 tokens need 1.56 in panels at 6 pt: one a row at 3.5 in, a 27 in tall figure. It was
    refused; now it is drawn at 3.5 in, 2 panels a row within a page, every ``step``-th token
    labelled at 6 pt without overlap, and a line under the grid says so."""
    from probe.viewers._grid_labels import MAX_GRID_HEIGHT_IN

    tokens = [f"w{i}" for i in range(n)]
    fig = head_grid(_attn(12, n), tokens, layer=0, model_name="minilm", width="single",
                    sentence="\u201cThe animal didn't cross the street because it was too "
                             "tired today, an\u2026\u201d")  # as quoted_sentence cuts it
    FigureCanvasAgg(fig).draw()
    width, height = fig.get_size_inches()
    assert width == pytest.approx(3.5) and height <= MAX_GRID_HEIGHT_IN
    panels = [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]
    assert len(panels) == 12
    assert len({round(ax.get_position().x0, 4) for ax in panels}) == 2  # 2 panels a row
    shown = list(range(0, n, step))
    assert _labelled(fig, panels[0], "y") == shown
    assert _labelled(fig, panels[-1], "x") == shown
    assert _tick_labels(panels[0], "y") == [tokens[i] for i in shown]
    assert smallest_font(fig) >= MIN_FONT_PT
    _no_overlap(fig, panels[0], "y")
    _no_overlap(fig, panels[-1], "x")
    suffix = {2: "nd", 3: "rd"}.get(step, "th")
    assert _thinned(fig) == f"every {step}{suffix} token labelled ({n} tokens)"
    from _layout import layout_problems

    assert layout_problems(fig) == []  # the note, the long title: inside, over nothing


def test_head_grid_labels_every_token_where_they_fit_and_says_nothing():
    tokens = [f"w{i}" for i in range(16)]
    fig = head_grid(_attn(12, 16), tokens, width=6.6)
    assert fig.get_size_inches()[1] <= 9.0
    FigureCanvasAgg(fig).draw()
    assert _tick_labels(fig.axes[0], "y") == tokens
    assert _thinned(fig) is None
    fig = head_grid(_attn(12), TOKENS, width="single")
    assert _thinned(fig) is None


def test_head_grid_with_fixed_columns_thins_in_those_columns():
    """4 heads, one a row at 2.2 in: was refused ("would be 0.90 in each"); now drawn with
    thinned labels."""
    tokens = [f"w{i}" for i in range(16)]
    fig = head_grid(_attn(4, 16), tokens, width=2.2, ncols=1)
    FigureCanvasAgg(fig).draw()
    assert fig.get_size_inches()[0] == pytest.approx(2.2)
    assert _thinned(fig).startswith("every ") and smallest_font(fig) >= MIN_FONT_PT


def test_render_heads_at_single_width_draws_a_long_text(minilm, tmp_path, capsys):
    """probe render heads --width single refused texts of more than about 9 tokens."""
    from PIL import Image

    from probe.cli import main

    text = ("The animal didn't cross the street because it was too tired today, and then it "
            "slept for a very long time.")
    rc = main(["render", "heads", "--layer", "0", "--text", text, "--width", "single",
               "--dpi", "40", "--out", str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    (path,) = [line for line in out.splitlines() if line.endswith(".png")]
    width, height = Image.open(path).size
    assert width == 140 and height <= 9 * 40


def test_model_view_labels_every_query_token():
    """The "." between "mat" and "[SEP]" on the query axis is drawn (a 6 pt full stop), on its
    own row."""
    from probe.viewers import model_view

    fig = model_view(_attn(12)[None].repeat(6, 0), TOKENS, model_name="minilm")
    FigureCanvasAgg(fig).draw()
    assert _tick_labels(fig.axes[0], "y") == TOKENS
    _no_overlap(fig, fig.axes[0], "y")


def _texts(fig) -> list[str]:
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def test_rollout_strip_says_which_rows_it_read_and_which_tokens_it_hides(minilm):
    """MiniLM is mean-pooled (no logits): query='auto' reads the mean of the query rows; the
    strip leaves out [CLS] and [SEP] (their rollout dwarfs the words). Neither was said."""
    model, tokenizer = minilm
    trace = probe.trace(model, SENTENCE, tokenizer=tokenizer)
    fig = probe.plot(trace, "rollout")
    assert "minilm \u00b7 rollout\nmean over the query rows \u00b7 [CLS], [SEP] not shown" in (
        _texts(fig))
    assert [p for p in _texts(fig) if p in TOKENS] == TOKENS[1:-1]  # the words only


def test_strip_note_names_the_rows_each_query_option_reads(minilm):
    from probe.viewers._plot import strip_note

    model, tokenizer = minilm
    trace = probe.trace(model, SENTENCE, tokenizer=tokenizer)
    assert strip_note(trace, 0, "cls") == "row: [CLS] \u00b7 [CLS], [SEP] not shown"
    assert strip_note(trace, 0, "last").startswith("row: last token ([SEP])")
    assert strip_note(trace, 0, 2).startswith("row: token 2 (cat)")
    assert strip_note(trace, 0) == "[CLS], [SEP] not shown"  # a method that reads no rows


ANIMAL = ["[CLS]", "the", "animal", "didn", "'", "t", "cross", "the", "street", "because",
          "it", "was", "too", "tired", ".", "[SEP]"]


def test_a_wider_heads_view_never_labels_fewer_tokens():
    import matplotlib.pyplot as plt

    """At 7.0-8.2 in (``--width double``) 4 panels a row were too small for 6 pt labels and 3
    full-width panels a row over 9 in tall, so the labels were thinned, though 6.6 in labelled
    all 16: the panels now shrink to the page height and the spare width stays around them."""
    counts = []
    widths = [6.0, 6.4, 6.6, 7.0, 7.4, 7.8, 8.2, 9.0, 10.0, 12.0, 14.0]
    for width in widths:
        fig = head_grid(_attn(12, 16), ANIMAL, layer=2, model_name="minilm",
                        width=float(width))
        assert fig.get_size_inches()[0] == pytest.approx(width)
        assert fig.get_size_inches()[1] <= 9.0 + 1e-6
        counts.append(len(_labelled(fig, fig.axes[0], "y")))
        plt.close(fig)
    assert counts == sorted(counts), counts
    assert counts[2:] == [16] * (len(widths) - 2)  # 6.6 in onwards: every token


@pytest.mark.parametrize("n, heads, width", [(200, 12, "double"), (16, 12, 2.0),
                                             (60, 16, "single"), (100, 32, "single")])
def test_head_grid_with_its_thinned_note_stays_within_a_page(n, heads, width):
    """The note under a thinned grid was added after fitting: 200 tokens at double were
    9.12 in tall."""
    fig = head_grid(_attn(heads, n), [f"t{i}" for i in range(n)], layer=2,
                    model_name="minilm", width=width)
    assert _thinned(fig) is not None
    assert fig.get_size_inches()[1] <= 9.0 + 1e-6
    FigureCanvasAgg(fig).draw()
    from _layout import layout_problems

    assert layout_problems(fig) == []


def test_head_grid_that_fits_a_page_at_no_width_says_so():
    from probe._errors import ProbeError

    with pytest.raises(ProbeError, match=r"no width fits 40 panels within 9 in"):
        head_grid(_attn(40, 16), [f"t{i}" for i in range(16)], width="single", ncols=1)
    with pytest.raises(ProbeError, match=r"use width >= (\d+\.\d)") as err:
        head_grid(_attn(40, 16), [f"t{i}" for i in range(16)], width=2.0)
    need = float(str(err.value).split("use width >= ")[1].split(",")[0])
    fig = head_grid(_attn(40, 16), [f"t{i}" for i in range(16)], width=need)  # it works
    assert fig.get_size_inches()[1] <= 9.0 + 1e-6


@pytest.mark.parametrize("width", ["single", "double"])
@pytest.mark.parametrize("n, long_at", [(40, (5, 10, 20, 25, 35)), (41, (7, 14, 33)),
                                        (60, (1, 2, 9, 44, 59)), (25, (11, 13, 23))])
def test_head_grid_margins_hold_the_labels_thinning_draws(width, n, long_at):
    """The margins were measured on the tokens labelled at 16 a side, but thinning to the
    panels labels others: a long word there ran off the figure or the fit refused."""
    tokens = ["a"] * n
    for i in long_at:
        tokens[i] = "WWWWWWWWWW"
    fig = head_grid(_attn(12, n), tokens, layer=2, model_name="minilm", width=width)
    FigureCanvasAgg(fig).draw()
    from _layout import layout_problems

    assert layout_problems(fig) == []
    assert fig.get_size_inches()[1] <= 9.0 + 1e-6


def test_render_heads_of_a_long_text_at_one_column(minilm, tmp_path, capsys):
    """Exited 2 ("does not fit ... use a larger --width") for this text."""
    from probe.cli import main

    text = ("I saw a big elephant by the old red restaurant and it ran to the big lake so we "
            "immediately ran to the car remembering that it was a hot day in the big "
            "mountains of us")
    assert main(["render", "heads", "--layer", "2", "--width", "single", "--text", text,
                 "--out", str(tmp_path)]) == 0


@pytest.mark.parametrize("width", ["single", "double"])
@pytest.mark.parametrize("sentence", [
    "小猫没有过马路，因为它太累了。小猫没有过马路，因为它太累了。",
    "猫がマットの上に座った。猫がマットの上に座った。猫がマットの上に座った。",
    "Supercalifragilisticexpialidocious-antidisestablishmentarianism-floccinaucinihilipil"])
def test_head_grid_title_with_no_spaces_wraps_within_the_width(width, sentence):
    """A Chinese title broke only at spaces: at one column the figure was refused, a 19
    character one touched the canvas edge."""
    fig = head_grid(_attn(12, 12), [f"t{i}" for i in range(12)], layer=2,
                    model_name="minilm", width=width, sentence=sentence)
    FigureCanvasAgg(fig).draw()
    title = fig._suptitle.get_window_extent()
    assert title.x0 >= 0.05 * fig.dpi and title.x1 <= fig.bbox.width - 0.05 * fig.dpi
    from _layout import layout_problems

    assert layout_problems(fig) == []
