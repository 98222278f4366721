"""A word of several tokens is treated as one word everywhere a word is chosen: the link view
highlights every token of a grouped word ("马路" over 马 路) or of a word split into sub-word
pieces ("crossing" -> cross ##ing), and word matching folds compatibility forms (NFKC:
full-width "ＡＢＣ" is "ABC") and case, as the README says."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import probe  # noqa: E402
from probe.viewers import link_view  # noqa: E402


def _highlighted(fig) -> list[str]:
    """The query labels drawn highlighted (bold, with a box)."""
    return [t.get_text() for t in fig.axes[0].texts
            if t.get_bbox_patch() is not None and t.get_fontweight() == "bold"]


def test_links_highlight_every_token_of_a_grouped_word(minilm) -> None:
    model, tokenizer = minilm
    trace = probe.group_words(probe.trace(model, "小猫没有过马路。", tokenizer=tokenizer), ["马路"])
    fig = probe.plot(trace, "links", word="马路", layer=2)
    labels = _highlighted(fig)
    assert len(labels) == 2, labels  # both characters (MiniLM may label them [UNK])
    lines = [c for c in fig.axes[0].collections if c.get_gid() == "head 0 highlight"][0]
    assert {float(s[0][1]) for s in lines.get_segments()} == {6.0, 7.0}  # [CLS] 小 猫 没 有 过 马 路


def test_links_highlight_every_sub_word_piece(minilm) -> None:
    model, tokenizer = minilm
    trace = probe.trace(model, "The unbelievably tired dog slept.", tokenizer=tokenizer)
    pieces = tokenizer.tokenize("unbelievably")
    assert len(pieces) > 1 and any(p.startswith("##") for p in pieces)  # the case under test
    labels = _highlighted(probe.plot(trace, "links", word="unbelievably", layer=0))
    assert len(labels) == len(pieces)
    assert labels[0] == pieces[0]


def test_link_view_highlight_takes_positions_and_checks_them() -> None:
    attn = torch.softmax(torch.randn(2, 5, 5, generator=torch.Generator().manual_seed(0)), -1)
    tokens = ["a", "b", "c", "d", "e"]
    fig = link_view(attn, tokens, highlight=[1, 3], threshold=0.0)
    assert _highlighted(fig) == ["b", "d"]
    own = [c for c in fig.axes[0].collections if c.get_gid() == "head 0 highlight"][0]
    assert sorted({float(s[0][1]) for s in own.get_segments()}) == [1.0, 3.0]
    assert _highlighted(link_view(attn, tokens, highlight=2)) == ["c"]
    for bad in ([], [5], [True], "a"):
        with pytest.raises(probe.ProbeError, match="highlight must be a position"):
            link_view(attn, tokens, highlight=bad)


def test_coref_view_boxes_a_word_of_several_pieces_as_one_word(minilm) -> None:
    model, tokenizer = minilm
    trace = probe.trace(model, "The unbelievably tired dog slept because it was late.",
                        tokenizer=tokenizer)
    fig = probe.plot(trace, "coref", word="it", candidates=["unbelievably", "dog"])
    words = [t.get_text() for t in fig.axes[0].texts]
    assert "unbelievably" in words and "##ly" not in words


# ------------------------------------------------------------------ NFKC and case folding
FULL = "ＡＢＣ bought the firm because it was cheap."
HALF = "ABC bought the firm because it was cheap."


def test_word_key_folds_compatibility_forms_and_case() -> None:
    from probe.analysis._coref import word_key

    assert word_key("ＡＢＣ") == word_key("abc") == word_key(" ABC ")
    assert word_key("ﬁrm") == word_key("FIRM")  # the ligature fi
    assert word_key("STRASSE") == word_key("straße")
    assert word_key("cafe\u0301") == word_key("café")
    assert word_key("ABC") != word_key("ABD")


@pytest.mark.parametrize("text, word", [(FULL, "ABC"), (HALF, "ＡＢＣ"), (FULL, "abc")])
def test_coref_matches_full_width_and_half_width(minilm, text, word) -> None:
    model, tokenizer = minilm
    trace = probe.trace(model, text, tokenizer=tokenizer)
    links = probe.coref(trace, "it", candidates=[word, "firm"])
    assert {lk.antecedent_index for lk in links} <= {0, 3}
    assert 0 in {lk.antecedent_index for lk in probe.coref(trace, "it", candidates=[word])}
    assert probe.best_antecedents(trace, word, candidates=["firm"]).word_index == 0


def test_cli_word_in_full_width(tmp_path, capsys) -> None:
    from probe.cli import main

    rc = main(["render", "coref", "--text", HALF, "--word", "ｉｔ", "--candidate", "ＡＢＣ",
               "--out", str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.strip().endswith(".png")


def test_group_words_folds_full_width(minilm) -> None:
    model, tokenizer = minilm
    trace = probe.trace(model, "小猫没有过马路。", tokenizer=tokenizer)
    assert "马路" in probe.group_words(trace, "马路").words[0]
    grouped = probe.group_words(probe.trace(model, "New York is big.", tokenizer=tokenizer),
                                "ＮＥＷ ＹＯＲＫ")
    assert grouped.words[0][0] == "New York"
