"""Odd candidate antecedents for ``probe.coref`` and ``probe render coref --candidate``.

Found by an attack on the error promise: a candidate that is the followed word itself was
dropped silently (``--candidate it --candidate cat`` for ``--word it`` drew only ``cat`` under a
file name holding ``it``), and alone it gave "no candidate antecedents ...: the default
candidates are the content words before it", which names the default the user did not ask
for. ``candidates=[]`` said the same.
"""

from __future__ import annotations

import re

import pytest

import probe
from probe.cli import main

TEXT = "The cat sat because it was tired and it slept."


@pytest.fixture(scope="module")
def trace(minilm):
    model, tokenizer = minilm
    return probe.trace(model, TEXT, tokenizer=tokenizer)


@pytest.mark.parametrize("candidates, pattern", [
    (["was"], r"^candidate 'was' is the followed word itself \(word 5, 'was'\): a word is not "
              r"its own antecedent; name another word$"),
    (["cat", 5], r"^candidate 5 is the followed word itself"),
    (["cat", -6], r"^candidate -6 is the followed word itself"),
    ([], r"^candidates is empty: pass at least one word, or candidates=None for the default"),
], ids=["word", "index", "negative-index", "empty"])
def test_a_candidate_that_cannot_be_an_antecedent_is_named(trace, candidates, pattern):
    with pytest.raises(probe.ProbeError, match=pattern):
        probe.coref(trace, "was", candidates=candidates)


def test_another_occurrence_of_the_word_stays_a_candidate(trace):
    """``it`` ... ``it``: the first ``it`` is a fair antecedent of the second."""
    links = probe.coref(trace, "it", occurrence=1, candidates=["it"])
    assert {link.antecedent_index for link in links} == {4}


def test_cli_candidate_equal_to_the_word_is_one_line(tmp_path, capsys):
    rc = main(["render", "coref", "--text", TEXT, "--word", "tired", "--candidate", "cat",
               "--candidate", "tired", "--out", str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and out == "" and "Traceback" not in err
    assert len(lines) == 1 and re.fullmatch(
        r"probe: error: --candidate 'tired' is the followed word itself \(word 6, 'tired'\): a "
        r"word is not its own antecedent; name another word", lines[0]), err
    assert list(tmp_path.iterdir()) == []


def test_show_coref_takes_candidates_and_occurrence_as_plot_does(trace):
    """``probe.show(trace, "coref", word=..., candidates=[...])`` was ``TypeError:
    coref_view_html() got multiple values for keyword argument 'candidates'``."""
    page = probe.show(trace, "coref", word="it", occurrence=1, candidates=["cat", "it"])
    chosen = probe.best_antecedents(trace, "it", 0, ["cat", "it"], occurrence=1)
    assert chosen.word_index == 8 and list(chosen.candidates) == [1, 4]
    assert '"candidates":[1,4]' in page.html
    default = probe.show(trace, "coref", word="it", occurrence=1).html
    assert '"candidates":[1,4]' not in default and '"candidates":[' in default
    with pytest.raises(probe.ProbeError, match=r"^candidate 'was' is the followed word itself"):
        probe.show(trace, "coref", word="was", candidates=["was"])
    for kwargs in ({"candidates": ["cat"]}, {"occurrence": 1}):
        name = next(iter(kwargs))
        with pytest.raises(probe.ProbeError, match=rf"^{name}= belongs to a word: pass word="):
            probe.show(trace, "coref", **kwargs)


def test_cli_blank_candidate_is_named_before_the_load(tmp_path, capsys, monkeypatch):
    from probe.models import _registry

    monkeypatch.setattr(_registry, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    rc = main(["render", "coref", "--text", TEXT, "--word", "it", "--candidate", " ",
               "--out", str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and err == (
        "probe: error: --candidate is blank: pass a word of --text, e.g. --candidate animal\n")
