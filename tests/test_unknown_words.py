"""Words that reach the model as ``[UNK]``: the coreference analyzers warn, the coreference
figures (static and HTML, from ``probe.plot``, ``probe.show`` and ``probe render``) say so,
and one rule (every token of the word is the unknown token) serves them and the CLI note."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import probe
from probe.analysis._unknown import unknown_word_indices, unknown_words
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


def test_trace_records_the_unknown_token(zh, minilm):
    assert zh.unk_token == "[UNK]"
    assert [zh.words[0][i] for i in unknown_words(zh)] == [
        "猫", "没", "过", "马", "路", "因", "为", "它", "累", "了"]
    grouped = probe.group_words(zh, ["小猫", "马路"])  # 小猫 keeps a known token, 马路 none
    assert [grouped.words[0][i] for i in unknown_words(grouped)] == [
        "没", "过", "马路", "因", "为", "它", "累", "了"]
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
    assert "\n" not in message and "小猫" not in message


def test_word_attention_warns_for_its_word_only(zh):
    with pytest.warns(UserWarning, match=r"^probe.word_attention: 它 is not in minilm's "
                                         r"vocabulary and reaches the model as \[UNK\]"):
        probe.word_attention(zh, "它")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probe.word_attention(zh, "小")  # a known word: silent


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
    assert _texts(fig)["unknown"] == (
        "它, 马路 reach the model as [UNK]: their weights say nothing about these words")
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


def test_readme_chinese_example(minilm):
    """README "Coreference links": the showcased sentence reaches the model whole."""
    model, tokenizer = minilm
    trace = probe.trace(model, KNOWN, tokenizer=tokenizer)
    assert "[UNK]" not in trace.tokens[0]
    top = probe.coref(probe.group_words(trace, "王子"), "之", candidates=["王子", "犬"])[0]
    assert (top.layer, top.head, top.antecedent) == (5, 11, "犬")
