"""Words that reach the model as ``[UNK]``: the coreference analyzers warn, the coreference
figures (static and HTML, from ``probe.plot``, ``probe.show`` and ``probe render``) say so,
and one rule (every token of the word is the unknown token) serves them and the CLI note; a
word only part of which is the unknown token (``小猫`` as ``小`` ``[UNK]``) is named too, with
that part (``小猫 (猫)``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import probe
from probe.analysis._unknown import (
    partly_unknown_words,
    unknown_parts,
    unknown_word_indices,
    unknown_words,
)
from probe.cli import main
from probe.commands.render._args import RenderArgs

ZH = "小猫没有过马路，因为它太累了。"  # MiniLM: 它 猫 马 路 ... are [UNK]; 小 is not
KNOWN = "王子有一犬，王子愛之。"  # every character is in MiniLM's vocabulary
EN = "The animal didn't cross the street because it was too tired."


@pytest.fixture(scope="module")
def zh(minilm):
    model, tokenizer = minilm
    return probe.trace(model, ZH, tokenizer=tokenizer)


def test_the_rule_is_every_token_unknown():
    tokens = ["[CLS]", "小", "[UNK]", "[UNK]", "[UNK]", "x", "[SEP]"]
    word_ids = [None, 0, 0, 1, 2, 2, None]  # 小猫 half known, 它 unknown, a mixed word
    assert unknown_word_indices(tokens, word_ids, "[UNK]") == [1]
    assert unknown_word_indices(tokens, word_ids, None) == []


def test_partly_unknown_words_name_their_unknown_part():
    tokens = ["[CLS]", "小", "[UNK]", "[UNK]", "[UNK]", "x", "[SEP]"]
    word_ids = [None, 0, 0, 1, 2, 2, None]
    assert unknown_parts(tokens, word_ids, "[UNK]") == {0: ["token 2 of 2"],
                                                       2: ["token 1 of 2"]}
    spans = [None, (0, 1), (1, 2), (0, 1), (0, 2), (2, 3), None]
    assert unknown_parts(tokens, word_ids, "[UNK]", ["小猫", "它", "€€x"], spans) == {
        0: ["猫"], 2: ["€€"]}
    # two separate unknown runs of one word: two parts
    assert unknown_parts(["a", "<unk>", "b", "<unk>"], [0, 0, 0, 0], "<unk>",
                         ["a€b£"], [(0, 1), (1, 2), (2, 3), (3, 4)]) == {0: ["€", "£"]}
    assert unknown_parts(tokens, word_ids, None) == {}


def test_a_bare_word_marker_does_not_make_a_word_known():
    """SentencePiece spells an unknown first letter ``▁`` ``<unk>``: the ``▁`` spells none of
    the word, so ``€`` is unknown (not partly), and ``Zebra`` (``▁`` ``<unk>`` ``e`` ...) is
    partly unknown."""
    tokens = ["\u2581", "<unk>", "\u2581", "<unk>", "e", "b", "r", "a"]
    word_ids = [0, 0, 1, 1, 1, 1, 1, 1]
    spans = [(0, 0), (0, 1), (0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    assert unknown_word_indices(tokens, word_ids, "<unk>") == [0]
    assert unknown_parts(tokens, word_ids, "<unk>", ["€", "Zebra"], spans) == {1: ["Z"]}


def test_trace_records_the_unknown_token(zh, minilm):
    assert zh.unk_token == "[UNK]"
    assert [zh.words[0][i] for i in unknown_words(zh)] == [
        "猫", "没", "过", "马", "路", "因", "为", "它", "累", "了"]
    grouped = probe.group_words(zh, ["小猫", "马路"])  # 小猫 keeps a known token, 马路 none
    assert [grouped.words[0][i] for i in unknown_words(grouped)] == [
        "没", "过", "马路", "因", "为", "它", "累", "了"]
    assert {grouped.words[0][i]: p for i, p in partly_unknown_words(grouped).items()} == {
        "小猫": ["猫"]}
    model, tokenizer = minilm
    assert unknown_words(probe.trace(model, KNOWN, tokenizer=tokenizer)) == []


@pytest.mark.parametrize("call", ["coref", "best_antecedents"])
def test_coref_analyzers_warn_once_naming_the_unknown_words(zh, call):
    grouped = probe.group_words(zh, ["小猫", "马路"])
    with pytest.warns(UserWarning) as caught:
        getattr(probe, call)(grouped, "它", candidates=["小猫", "马路"])
    assert len(caught) == 1 and Path(caught[0].filename).name == Path(__file__).name
    message = str(caught[0].message)
    assert message.startswith(f"probe.{call}: 它, 马路 are not in minilm's vocabulary and "
                              "reach the model as [UNK]: their weights")
    assert "; part of 小猫 (猫) reaches the model as [UNK] too: its weights are partly a " \
           "placeholder's; use words" in message
    assert "\n" not in message


def test_word_attention_warns_for_its_word_only(zh):
    with pytest.warns(UserWarning, match=r"^probe.word_attention: 它 is not in minilm's "
                                         r"vocabulary and reaches the model as \[UNK\]"):
        probe.word_attention(zh, "它")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probe.word_attention(zh, "小")  # a known word: silent


def test_a_partly_unknown_word_warns_naming_its_part(zh):
    grouped = probe.group_words(zh, ["小猫"])
    with pytest.warns(UserWarning) as caught:
        probe.word_attention(grouped, "小猫")
    assert len(caught) == 1 and str(caught[0].message) == (
        "probe.word_attention: part of 小猫 (猫) is not in minilm's vocabulary and reaches "
        "the model as [UNK]: its weights are partly a placeholder's; use words the model's "
        "vocabulary holds")
    with pytest.warns(UserWarning, match=r"^probe.best_antecedents: part of 小猫 \(猫\)"):
        probe.best_antecedents(grouped, "有", candidates=["小猫"])


def test_known_words_do_not_warn(minilm):
    model, tokenizer = minilm
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probe.coref(probe.trace(model, EN, tokenizer=tokenizer), "it")
        known = probe.group_words(probe.trace(model, KNOWN, tokenizer=tokenizer), "王子")
        probe.best_antecedents(known, "之", candidates=["王子", "犬"])


def _texts(fig):
    return {t.get_gid(): t.get_text() for t in fig.texts}


def test_plot_names_the_unknown_words_on_the_figure(zh):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the figure says it; no warning on top
        fig = probe.plot(zh, "coref", word="它", candidates=["小猫", "马路"])
    assert _texts(fig)["unknown"].replace("\n", " ") == (
        "它, 马路 reach the model as [UNK]: their weights say nothing about these words; "
        "part of 小猫 (猫) reaches the model as [UNK]: its weights are partly a placeholder's")
    fig = probe.plot(zh, "coref", word="小", candidates=["没", "有"])  # 没 only
    assert _texts(fig)["unknown"] == (
        "没 reaches the model as [UNK]: its weights say nothing about it")
    fig = probe.plot(zh, "coref", word="小", candidates=["有"])
    assert "unknown" not in _texts(fig)


def test_coref_view_refuses_bad_unknown():
    from probe.viewers import coref_view

    with pytest.raises(probe.ProbeError, match="unknown must be a list of word indices"):
        coref_view(["a", "b"], 1, [0.5, 0.5], unknown=[5])


def test_render_coref_figure_and_page_name_them(zh, tmp_path, capsys):
    from probe.commands.render._figures import _coref
    from probe.commands.render._session import _session

    s = _session(RenderArgs(view="coref", text=ZH, word="它", candidates=("小猫", "马路")))
    [(_, fig)] = _coref(s)
    assert _texts(fig)["unknown"].startswith("它, 马路 reach the model as [UNK]")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rc = main(["render", "coref", "--text", ZH, "--word", "它", "--candidate", "小猫",
                   "--candidate", "马路", "--format", "html", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    page = Path(out.strip()).read_text(encoding="utf-8")
    assert '"unknown":[' in page and '"unk":"[UNK]"' in page
    assert "Warning" not in err and "reach the model as [UNK]" in err  # the note only


def test_show_coref_page_names_them(zh):
    import json
    import re

    page = probe.show(zh, "coref", word="它", candidates=["小猫", "马路"]).html
    data = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', page,
                                re.S).group(1))
    grouped = probe.group_words(zh, ["小猫", "马路"])
    assert [grouped.words[0][i] for i in data["choices"][0]["unknown"]] == ["它", "马路"]
    assert [grouped.words[0][i] for i in data["choices"][0]["partly"]] == ["小猫"]
    assert data["choices"][0]["note"] == (
        "它, 马路 reach the model as [UNK]: their weights say nothing about these words; "
        "part of 小猫 (猫) reaches the model as [UNK]: its weights are partly a placeholder's")


def test_show_coref_page_shows_the_partly_unknown_note_in_the_browser(zh, tmp_path):
    from _browser import open_clean, start_browser

    grouped = probe.group_words(zh, ["小猫"])
    view = probe.show(grouped, "coref", word="有", candidates=["小猫"])
    driver = start_browser()
    try:
        open_clean(driver, view, tmp_path, "partly")
        note = driver.execute_script(
            "const n = document.querySelector('.p-unknown'); return [n.hidden, n.textContent]")
    finally:
        driver.quit()
    assert note == [False, "part of 小猫 (猫) reaches the model as [UNK]: its weights are "
                           "partly a placeholder's"]


def test_render_note_names_the_unknown_part_of_a_word():
    from _tokenizers import sentencepiece_unigram

    from probe.commands.render._notes import unknown_words_note

    tok = sentencepiece_unigram()  # cat€: ▁ca t <unk>; Zebra: ▁ <unk> e b r a; €: ▁ <unk>
    assert unknown_words_note(tok, "The cat€ sat on Zebra", "sp") == (
        "probe: note: parts of 2 words of --text reach the model as <unk> (not in sp's "
        "vocabulary): 'cat€' ('€'), 'Zebra' ('Z')")
    assert unknown_words_note(tok, "The cat€ sat €", "sp") == (
        "probe: note: 1 word of --text is not in sp's vocabulary and reaches the model as "
        "<unk>: '€'; part of 1 word of --text reaches the model as <unk>: 'cat€' ('€')")
    assert unknown_words_note(tok, "The cat sat", "sp") is None


def test_readme_chinese_example(minilm):
    """README "Coreference links": the showcased sentence reaches the model whole."""
    model, tokenizer = minilm
    trace = probe.trace(model, KNOWN, tokenizer=tokenizer)
    assert "[UNK]" not in trace.tokens[0]
    top = probe.coref(probe.group_words(trace, "王子"), "之", candidates=["王子", "犬"])[0]
    assert (top.layer, top.head, top.antecedent) == (5, 11, "犬")


def test_several_partly_unknown_words_take_a_plural_verb(zh):
    """``part of 小猫 (猫), 大狗 (狗) reaches the model as [UNK] too`` read as one word."""
    from probe.analysis._unknown import partly_listed, unknown_phrase

    listed = partly_listed(["小猫", "大狗"], [["猫"], ["狗"]])
    assert unknown_phrase([], "[UNK]", listed) == (
        "parts of 小猫 (猫), 大狗 (狗) reach the model as [UNK]: their weights are partly a "
        "placeholder's")
    assert unknown_phrase([], "[UNK]", partly_listed(["小猫"], [["猫"]])) == (
        "part of 小猫 (猫) reaches the model as [UNK]: its weights are partly a placeholder's")
    grouped = probe.group_words(zh, ["小猫", "没有"])
    with pytest.warns(UserWarning) as caught:
        probe.best_antecedents(grouped, "它", candidates=["小猫", "没有"])
    assert "; parts of 小猫 (猫), 没有 (没) reach the model as [UNK] too: their weights" in str(
        caught[0].message)
