"""The coreference view's geometry: an arrow for every ranked antecedent, also across
wrapped lines (each from the chosen word's box to its antecedent's box, never across another
word), and a long text drawn as a readable excerpt (``context="excerpt"``, the default) or
whole (``context="all"``). Measured with the renderer, not assumed."""

from __future__ import annotations

import numpy as np
import pytest

from probe._errors import ProbeError
from probe.viewers import coref_view
from probe.viewers._coref_excerpt import EXCERPT_WORDS, excerpt, sentences

SHORT = ["The", "animal", "didn't", "cross", "the", "street", "because", "it", "was", "too",
         "tired", "."]
_FILLER = ("the keeper climbed the stairs every evening to light the old lamp and watch the "
           "sea").split()


def _paragraph(n_sentences: int = 20) -> list[str]:
    """About 300 words: sentences of filler, the last one holding the pronoun "it"."""
    words: list[str] = []
    for _ in range(n_sentences - 1):
        words += [*_FILLER, "."]
    return words + ["One", "night", "he", "saw", "a", "ship", "near", "the", "rocks", "and",
                    "rang", "the", "bell", "until", "it", "turned", "away", "."]


def _geometry(fig):
    """(word boxes by index, word texts by index, arrows by antecedent, all texts) in pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    boxes, labels, arrows = {}, {}, {}
    for p in ax.patches:
        gid = p.get_gid() or ""
        if gid.startswith("word "):
            boxes[int(gid.split()[1])] = p.get_window_extent(renderer)
        elif gid.startswith("arrow "):
            # the route as given (get_path() adds the head's outline)
            verts = p._path_original.vertices
            arrows[int(gid.split()[1])] = ax.transData.transform(verts)
    for t in ax.texts:
        gid = t.get_gid() or ""
        if gid.startswith("word "):
            labels[int(gid.split()[1])] = t.get_window_extent(renderer)
    return boxes, labels, arrows


def _ranks(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts if t.get_text().startswith("#")]


def _inside(point, bbox, tol: float = 0.5) -> bool:
    x, y = point
    return bbox.x0 - tol <= x <= bbox.x1 + tol and bbox.y0 - tol <= y <= bbox.y1 + tol


def _hits(a, b, bbox, shrink: float = 1.0) -> bool:
    """Whether the axis-parallel segment a-b passes through bbox (shrunk by ``shrink`` px)."""
    x0, x1 = sorted((a[0], b[0]))
    y0, y1 = sorted((a[1], b[1]))
    return (x1 > bbox.x0 + shrink and x0 < bbox.x1 - shrink
            and y1 > bbox.y0 + shrink and y0 < bbox.y1 - shrink)


def _check_arrows(fig, word: int, ranked: list[int]) -> None:
    """One arrow per ranked antecedent (and rank label), starting in the chosen word's box,
    ending in the antecedent's box, no segment through any word's text."""
    boxes, labels, arrows = _geometry(fig)
    assert sorted(arrows) == sorted(ranked)
    assert len(_ranks(fig)) == len(arrows)
    for ante, path in arrows.items():
        assert _inside(path[0], boxes[word]), (ante, path[0], boxes[word])
        assert _inside(path[-1], boxes[ante]), (ante, path[-1], boxes[ante])
        for a, b in zip(path[:-1], path[1:]):
            assert a[0] == pytest.approx(b[0]) or a[1] == pytest.approx(b[1])  # orthogonal
            for i, extent in labels.items():
                if i in (word, ante):
                    continue
                assert not _hits(a, b, extent), (ante, "crosses word", i)


def _ranked(weights, word: int, candidates, top_k: int = 3) -> list[int]:
    pool = candidates if candidates is not None else [i for i in range(len(weights)) if i != word]
    return sorted(pool, key=lambda i: (-weights[i], i))[:top_k]


@pytest.mark.parametrize("width", ["single", 3.0, 4.2, 5.0, "double", 8.0])
def test_every_ranked_antecedent_gets_an_arrow_at_every_width(width) -> None:
    weights = np.array([0.02, 0.5, 0.01, 0.1, 0.02, 0.3, 0.02, 0.0, 0.0, 0.0, 0.0, 0.0])
    cands = [1, 3, 5]
    fig = coref_view(SHORT, 7, weights, candidates=cands, width=width)
    _check_arrows(fig, 7, _ranked(weights, 7, cands))


def test_single_column_wraps_and_still_draws_all_arrows() -> None:
    """At 3.5 in the sentence wraps ("it" on the second line) and every arrow crosses lines:
    before, none was drawn."""
    weights = np.array([0.02, 0.5, 0.01, 0.1, 0.02, 0.3, 0.02, 0.0, 0.0, 0.0, 0.0, 0.0])
    fig = coref_view(SHORT, 7, weights, candidates=[1, 3, 5], width="single")
    boxes, _, arrows = _geometry(fig)
    assert boxes[7].y1 < boxes[1].y0  # "it" is on a lower line than "animal"
    assert len(arrows) == 3


def test_pronoun_at_the_start_of_a_line() -> None:
    """A width where the chosen word opens its line: its arrows leave through the margin."""
    weights = np.array([0.02, 0.5, 0.01, 0.1, 0.02, 0.3, 0.02, 0.0, 0.0, 0.0, 0.0, 0.0])
    found = 0
    for width in np.arange(3.0, 6.0, 0.1):
        fig = coref_view(SHORT, 7, weights, candidates=[1, 3, 5], width=float(width))
        boxes, _, _ = _geometry(fig)
        row = [b for b in boxes.values() if abs(b.y0 - boxes[7].y0) < 1]
        if min(b.x0 for b in row) == pytest.approx(boxes[7].x0) and len(row) > 1:
            found += 1
            _check_arrows(fig, 7, [1, 5, 3])
    assert found


@pytest.mark.parametrize("direction", ["ltr", "rtl"])
def test_antecedents_several_lines_up_and_below(direction) -> None:
    """Antecedents many lines up (whole text drawn), and one after the word (explicit
    candidates may follow it), in both directions."""
    words = _paragraph(6)
    word = words.index("it")
    weights = np.full(len(words), 0.01)
    cands = [1, 20, word - 3, word + 2]
    weights[cands] = [0.4, 0.3, 0.2, 0.25]
    fig = coref_view(words, word, weights, candidates=cands, top_k=4, width="single",
                     direction=direction, context="all")
    boxes, _, _ = _geometry(fig)
    assert len(boxes) == len(words)
    assert boxes[1].y0 - boxes[word].y0 > 5 * (boxes[1].y1 - boxes[1].y0)  # lines up
    _check_arrows(fig, word, cands)


def test_a_long_text_is_drawn_as_an_excerpt_of_bounded_height() -> None:
    words = _paragraph()
    assert len(words) >= 300
    word = words.index("it")
    weights = np.random.default_rng(1).random(len(words)) * 0.05
    weights[words.index("ship")] = 0.6
    weights[words.index("bell")] = 0.3
    weights[40] = 0.2  # a ranked antecedent far back
    cands = [i for i in range(word) if words[i] != "."]
    ranked = _ranked(weights, word, cands)
    for width, limit in (("single", 9.0), (None, 6.5), ("double", 6.5)):
        kw = {} if width is None else {"width": width}
        fig = coref_view(words, word, weights, candidates=cands, **kw)
        assert fig.get_size_inches()[1] < limit
        boxes, _, _ = _geometry(fig)
        assert word in boxes and set(ranked) <= set(boxes)
        assert len(boxes) <= EXCERPT_WORDS + 3 * 9
        cuts = [t for t in fig.axes[0].texts if t.get_gid() == "cut"]
        assert [t.get_text() for t in cuts] == ["\u2026"] * len(cuts) and cuts
        assert any("excerpt of the" in t.get_text() for t in fig.texts)
        _check_arrows(fig, word, ranked)
        whole = coref_view(words, word, weights, candidates=cands, context="all", **kw)
        assert whole.get_size_inches()[1] > 2 * fig.get_size_inches()[1]
        boxes, _, _ = _geometry(whole)
        assert sorted(boxes) == list(range(len(words)))
        assert not [t for t in whole.axes[0].texts if t.get_gid() == "cut"]
        # only the drawing changes: the same ranks and weights are printed
        assert _ranks(whole) == _ranks(fig)


def test_a_short_text_is_never_cut() -> None:
    weights = np.linspace(0, 1, len(SHORT))
    fig = coref_view(SHORT, 7, weights)
    boxes, _, _ = _geometry(fig)
    assert sorted(boxes) == list(range(len(SHORT)))
    assert not [t for t in fig.axes[0].texts if t.get_gid() == "cut"]


def test_one_line_keeps_its_brackets() -> None:
    """When every antecedent is on the chosen word's line the arrows are the brackets the
    view always drew: up from the word at a rank-spaced start, across, down (4 vertices)."""
    weights = np.array([0.02, 0.5, 0.01, 0.1, 0.02, 0.3, 0.02, 0.0, 0.0, 0.0, 0.0, 0.0])
    fig = coref_view(SHORT, 7, weights, candidates=[1, 3, 5])
    _, _, arrows = _geometry(fig)
    assert all(len(path) == 4 for path in arrows.values())
    starts = [arrows[i][0][0] for i in (1, 5, 3)]  # ranks 1, 2, 3
    assert starts == sorted(starts)


def test_excerpt_rule() -> None:
    words = _paragraph()
    word = words.index("it")
    last = len(words) - 1
    spans = sentences(words)
    assert spans[-1] == (len(words) - 18, last)
    # antecedent in the same sentence: from its sentence's start to the end, one cut before
    drawn = excerpt(words, word, [words.index("ship")])
    assert drawn == [None, *range(len(words) - 18, len(words))]
    # one far back: the word's sentence, a few words around it, cuts between
    drawn = excerpt(words, word, [40, words.index("ship")])
    assert drawn[0] is None and 40 in drawn and word in drawn and drawn[-1] == last
    assert drawn.count(None) == 2
    assert excerpt(words, word, [40], "all") == list(range(len(words)))
    assert excerpt(SHORT, 7, [1]) == list(range(len(SHORT)))
    # a sentence that goes on: cut after the word too
    long_words = ["w"] * 100 + ["it"] + ["w"] * 100
    drawn = excerpt(long_words, 100, [90])
    assert drawn[0] is None and drawn[-1] is None and 100 in drawn and 90 in drawn
    with pytest.raises(ProbeError, match="context must be 'excerpt'"):
        excerpt(SHORT, 7, [1], "whole")  # type: ignore[arg-type]


_LONG_TEXT = " ".join(
    ["The keeper climbed the stairs every evening to light the old lamp."] * 22
    + ["One night he saw a ship near the rocks and rang the bell until it turned away."])


def test_render_coref_draws_an_excerpt_unless_context_all(tmp_path, capsys) -> None:
    """``probe render coref --width single`` on a long paragraph: a bounded figure by
    default, the whole text with ``--context all``; ``--context`` elsewhere is refused."""
    pytest.importorskip("torch")
    from PIL import Image

    from probe.cli import main

    heights = {}
    for context in ("excerpt", "all"):
        rc = main(["render", "coref", "--text", _LONG_TEXT, "--word", "it", "--width",
                   "single", "--dpi", "20", "--context", context, "--out", str(tmp_path),
                   "--quiet"])
        out, err = capsys.readouterr()
        assert rc == 0, err
        width, heights[context] = Image.open(out.strip()).size
        assert width == 70  # 3.5 in at 20 dpi
    assert heights["excerpt"] < 9 * 20 < 2 * heights["excerpt"] < heights["all"]
    for value in ("all", "excerpt"):  # the default spelled out is "given" too
        rc = main(["render", "links", "--text", "A cat.", "--context", value, "--out",
                   str(tmp_path), "--quiet"])
        _, err = capsys.readouterr()
        assert rc == 2 and err.strip().endswith(
            "--context does not apply to the links view: it is used by the coref view only; "
            "drop it")


def test_plot_passes_context_and_keeps_the_ranking() -> None:
    pytest.importorskip("torch")
    import probe

    model, tokenizer = probe.load_model("minilm")
    trace = probe.trace(model, _LONG_TEXT, tokenizer=tokenizer)
    short = probe.plot(trace, "coref", word="it")
    whole = probe.plot(trace, "coref", word="it", context="all")
    assert whole.get_size_inches()[1] > 2 * short.get_size_inches()[1]
    assert _ranks(short) == _ranks(whole) and len(_ranks(short)) == 3
    boxes, _, arrows = _geometry(short)
    assert len(arrows) == 3 and set(arrows) <= set(boxes)
