"""``probe render coref`` with ``--occurrence`` and ``--candidate`` (errors in the CLI's own
words), ``--pair`` on views that ignore it, and ``render compare`` on text without ``--pair``."""

from __future__ import annotations

from pathlib import Path

import pytest

import probe
from probe.cli import main
from probe.commands.render._args import PAIR_IGNORED_VIEWS, RenderArgs

TWICE = "The animal didn't cross the street because it was too tired and it slept."


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_occurrence_and_candidates_reach_the_analysis(minilm, tmp_path, capsys):
    from probe.commands.render._methods import _coref_report
    from probe.commands.render._session import _session

    s = _session(RenderArgs(view="coref", text=TWICE, word="it", occurrence=1,
                            candidates=("animal", "street")))
    report = _coref_report(s)
    model, tokenizer = minilm
    expected = probe.best_antecedents(probe.trace(model, TWICE, tokenizer=tokenizer), "it",
                                      candidates=["animal", "street"], occurrence=1)
    assert report.word_index == expected.word_index == 14  # the second "it"
    assert report.candidates == expected.candidates == (1, 7)
    assert [lk.antecedent_index for lk in report.per_head] == [
        lk.antecedent_index for lk in expected.per_head]

    base = ["render", "coref", "--text", TWICE, "--word", "it", "--out", str(tmp_path), "--quiet"]
    rc, out, err = _run(base + ["--occurrence", "1", "--candidate", "animal", "--candidate",
                                "street", "--format", "png", "--format", "html"], capsys)
    assert rc == 0, err
    names = [Path(line).name for line in out.split()]
    assert len(names) == 2 and all(
        n.startswith("coref_minilm_it-1-c-animal-street_") for n in names)
    rc, out, err = _run(base, capsys)  # defaults keep the plain name
    assert rc == 0 and Path(out.strip()).name.startswith("coref_minilm_it_")


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--word", "it", "--occurrence", "2"], "--occurrence 2 but 'it' occurs 2 time(s)"),
        (["--word", "The"], "pass --candidate WORD (repeatable)"),
        (["--word", "it", "--candidate", "zebra"], "--candidate 'zebra' is not a word"),
        (["--word", "giraffe"], "--word 'giraffe' is not a word of --text; use one of"),
        (["--word", "it", "--occurrence", "-3"],
         "--occurrence -3 but 'it' occurs 2 time(s); use -2..1 (0 is the first, -1 the last)"),
    ],
)
def test_coref_errors_name_the_cli_flags(extra, needle, tmp_path, capsys):
    rc, out, err = _run(["render", "coref", "--text", TWICE, *extra, "--out", str(tmp_path),
                         "--quiet"], capsys)
    assert rc == 2 and out == ""
    line = err.strip()
    assert len(line.splitlines()) == 1 and needle in line, line
    assert "candidates=" not in line and "occurrence=" not in line and "or an index" not in line
    assert not any(tmp_path.iterdir())


def test_the_python_api_keeps_its_keywords(minilm):
    model, tokenizer = minilm
    tr = probe.trace(model, TWICE, tokenizer=tokenizer)
    with pytest.raises(probe.ProbeError, match=r"occurrence=2 but"):
        probe.coref(tr, "it", occurrence=2)
    with pytest.raises(probe.ProbeError, match=r"pass candidates=\[\.\.\.\]"):
        probe.coref(tr, "The")


@pytest.mark.parametrize("view", [v for v in PAIR_IGNORED_VIEWS])
def test_ignored_options_are_errors(view, tmp_path, capsys):
    argv = ["render", view, "--text", TWICE, "--out", str(tmp_path), "--quiet"]
    if view == "coref":
        argv += ["--word", "it"]
    rc, _, err = _run(argv + ["--pair", "Something else."], capsys)
    assert rc == 2 and f"--pair does not apply to the {view} view" in err
    assert "it is used by the saliency, compare and curves views only" in err
    if view != "coref":
        for flag, readers in ((["--occurrence", "1"], "the coref and links views"),
                              (["--candidate", "animal"], "the coref view")):
            rc, _, err = _run(argv + flag, capsys)
            if view == "links" and flag[0] == "--occurrence":  # links reads it with --word
                assert rc == 2 and err == ("probe: error: --occurrence picks one of the repeats "
                                           "of --word: add --word, or drop --occurrence\n")
                continue
            assert rc == 2 and f"{flag[0]} does not apply to the {view} view: it is used by " \
                f"{readers} only" in err


def test_text_compare_without_pair_uses_the_methods_that_need_no_target(tmp_path, capsys):
    from probe.attribution._registry import method_spec
    from probe.commands.render._args import DEFAULT_TEXT_METHODS
    from probe.commands.render._methods import _methods
    from probe.commands.render._session import _session

    s = _session(RenderArgs(view="compare", text="A man is playing a guitar."))
    chosen = _methods(s)
    assert chosen == [m for m in DEFAULT_TEXT_METHODS if not method_spec(m).uses_gradients]
    assert "attention" in chosen and "rollout" in chosen and "ig" not in chosen
    rc, out, err = _run(["render", "compare", "--text", "A man is playing a guitar.",
                         "--format", "png", "--format", "html", "--out", str(tmp_path),
                         "--quiet"], capsys)
    assert rc == 0, err
    paths = [Path(p) for p in out.split()]
    assert [p.suffix for p in paths] == [".png", ".html"] and all(
        p.stat().st_size > 1000 for p in paths)
    # asking for a gradient method without a target is still an error naming the fix
    rc, _, err = _run(["render", "compare", "--text", "A man.", "--method", "ig", "--method",
                       "saliency", "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 2 and "--pair" in err


def test_coref_figure_points_to_the_eval():
    from probe.viewers import coref_view
    from probe.viewers._coref import COREF_NOTE

    words = ["The", "cup", "box", "it"]
    fig = coref_view(words, 3, [0.1, 0.5, 0.3, 0.1])
    texts = [t.get_text() for t in fig.texts]
    assert COREF_NOTE in texts and "probe eval coref" in COREF_NOTE
    bare = coref_view(words, 3, [0.1, 0.5, 0.3, 0.1], note="")
    assert COREF_NOTE not in [t.get_text() for t in bare.texts]
    assert bare.get_size_inches()[1] < fig.get_size_inches()[1]
