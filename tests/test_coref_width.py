"""The coreference view at paper widths: its two notes (the chosen-word line and the note
under the figure) wrap when the width is too narrow for one line, so a single column
(``width="single"``, 3.5 in) fits; at the default 8 in they stay one line each as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from probe.viewers import coref_view
from probe.viewers._coref import COREF_NOTE
from probe.viewers._style import MIN_FONT_PT
from probe.viewers._width import smallest_font, text_clashes, wrap_text

WORDS = ["The", "animal", "didn't", "cross", "the", "street", "because", "it", "was", "too",
         "tired", "."]
TOP = [(3, 1, "animal", 0.677), (5, 11, "animal", 0.673), (5, 5, "street", 0.222)]


def _view(**kw):
    weights = np.random.default_rng(0).random(len(WORDS))
    return coref_view(WORDS, 7, weights, top=TOP, model_name="minilm", layer=3, head=1, **kw)


def _notes(fig) -> tuple[str, str]:
    texts = [t.get_text() for t in fig.texts]
    chosen = next(t for t in texts if t.startswith("chosen word"))
    note = next(t for t in texts if t.startswith("One sentence"))
    return chosen, note


@pytest.mark.parametrize("width", ["single", 3.5, 5.0, 6.0])
def test_narrow_coref_view_wraps_its_notes_and_fits(width) -> None:
    fig = _view(width=width)
    assert fig.get_size_inches()[0] == pytest.approx(3.5 if width == "single" else width)
    assert smallest_font(fig) >= MIN_FONT_PT
    assert text_clashes(fig) == []
    chosen, note = _notes(fig)
    assert "\n" in note and note.replace("\n", " ") == COREF_NOTE
    assert "layers, heads and words count from 0" in chosen


def test_default_coref_view_keeps_one_line_notes() -> None:
    fig = _view()
    assert fig.get_size_inches()[0] == pytest.approx(8.0)
    chosen, note = _notes(fig)
    assert note == COREF_NOTE
    assert chosen == ("chosen word: \u201cit\u201d (word 7) \u2192 top 3 candidate antecedents"
                      " \u00b7 layers, heads and words count from 0")


def test_wrap_text_breaks_at_the_caption_separator_then_spaces() -> None:
    text = "alpha beta \u00b7 gamma delta"
    assert wrap_text(text, 10, 1000) == text  # fits: unchanged
    assert wrap_text(text, 10, 75) == "alpha beta\ngamma delta"  # the line break replaces " · "
    assert wrap_text("alpha beta gamma", 10, 40) == "alpha\nbeta\ngamma"
    assert wrap_text("unbreakable", 10, 5) == "unbreakable"  # not even two letters fit


def test_wrap_text_breaks_a_piece_with_no_spaces_between_characters() -> None:
    """Chinese has no spaces and a long word none: they stayed one line wider than the line
    (a Chinese heads title at one column was refused, or touched the canvas edge)."""
    from probe.viewers._fonts import text_width_pt

    zh = "小猫没有过马路，因为它太累了。小猫没有过马路，因为它太累了。"
    lines = wrap_text(zh, 10, 120).split("\n")
    assert len(lines) > 1 and "".join(lines) == zh  # no hyphens in Chinese
    assert all(text_width_pt(line, 10) <= 120 for line in lines)
    word = "Supercalifragilisticexpialidocious"
    lines = wrap_text(word, 10, 60).split("\n")
    assert len(lines) > 1 and all(text_width_pt(line, 10) <= 60 for line in lines)
    assert all(line.endswith("-") for line in lines[:-1])  # the cut is marked
    assert "".join(line.rstrip("-") for line in lines) == word
    assert wrap_text("a-b-c-d-e-f-g-h-i-j-k", 10, 30).split("\n")[0].endswith("-")


def test_render_coref_single_column(tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    from PIL import Image

    from probe.cli import main

    rc = main(["render", "coref", "--text", "The animal didn't cross the street because it "
               "was too tired.", "--word", "it", "--width", "single", "--dpi", "40",
               "--out", str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert Image.open(Path(out.strip())).size[0] == 140  # 3.5 in at 40 dpi
