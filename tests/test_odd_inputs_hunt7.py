"""Odd command-line inputs found by a seventh hunt on the error promise (``probe render``,
``probe eval``, ``probe bench``): each bad input is one ``probe: error:`` line, in the command
line's words (flags, not keywords), exit code 2 and nothing written; each gap between the CLI
and the API it calls is closed.
"""

from __future__ import annotations

import pytest

from probe.cli import main

TEXT = "The cat sat because it was tired and it slept."


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _error(argv, capsys, tmp_path=None):
    """``(rc, the one error line)``; asserts nothing else was printed nor written."""
    rc, out, err = _run(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert out == "" and "Traceback" not in err and len(lines) == 1, err
    if tmp_path is not None:
        assert list(tmp_path.iterdir()) == []
    return rc, lines[0]


# ------------------------------------------------------------------ links --word
def test_links_word_highlights_the_word_as_probe_plot_does(minilm, tmp_path, capsys,
                                                           monkeypatch):
    """``probe.plot(trace, "links", word=..., occurrence=...)`` highlights a word's tokens;
    ``probe render links`` refused ``--word`` ("used by the coref view only")."""
    import probe.viewers as viewers

    seen = []
    original = viewers.link_view

    def spy(attn, tokens, **kwargs):
        seen.append((list(tokens), kwargs.get("highlight")))
        return original(attn, tokens, **kwargs)

    monkeypatch.setattr(viewers, "link_view", spy)
    base = ["render", "links", "--text", TEXT, "--layer", "2", "--out", str(tmp_path), "--quiet"]
    rc, out, err = _run(base + ["--word", "it", "--occurrence", "-1"], capsys)
    assert rc == 0 and err == "", err
    ((tokens, rows),) = seen
    assert rows == [tokens.index("slept") - 1] and tokens[rows[0]] == "it"  # the second "it"
    (path,) = out.split()
    assert "_L2_it--1_" in path and path.endswith(".png")
    rc, out, _ = _run(base, capsys)  # without --word: nothing highlighted, the plain name
    assert rc == 0 and seen[1][1] is None and "_L2_the-cat-sat-" in out
    # a string over several words is grouped first, as probe.plot groups it: both tokens lit
    rc, out, err = _run(["render", "links", "--text", "The ice cream melted.", "--layer", "0",
                         "--word", "ice cream", "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 0 and err == "", err
    tokens, rows = seen[2]
    assert [tokens[r] for r in rows] == ["ice", "cream"]


@pytest.mark.parametrize("extra, message", [
    (["--word", "it", "--occurrence", "2"],
     "--occurrence 2 but 'it' occurs 2 time(s); use -2..1 (0 is the first, -1 the last)"),
    (["--occurrence", "1"],
     "--occurrence picks one of the repeats of --word: add --word, or drop --occurrence"),
    (["--word", "it", "--format", "html"],
     "--word highlights a word in the links figure of --text's own attention (png/svg/pdf, "
     "no --stack): drop --word, or --stack and --format html"),
    (["--word", "it", "--candidate", "cat"],
     "--candidate does not apply to the links view: it is used by the coref view only; drop "
     "it"),
], ids=["occurrence-range", "occurrence-alone", "html", "candidate"])
def test_links_word_refusals_are_one_line(minilm, tmp_path, capsys, extra, message):
    rc, line = _error(["render", "links", "--text", TEXT, "--layer", "2", "--out",
                       str(tmp_path), "--quiet", *extra], capsys, tmp_path)
    assert rc == 2 and line.startswith(f"probe: error: {message}"), line


# ------------------------------------------------------------------ --word / --candidate
@pytest.mark.parametrize("extra, message", [
    (["--word", "zebra"],
     "--word 'zebra' is not a word of --text; use one of ['The', 'cat', 'sat', 'because', "),
    (["--word", "ca"], "--word 'ca' is not a word of --text and cannot be made one: it ends "
                       "inside the token 'cat'"),
    (["--word", "it", "--candidate", "zebra"], "--candidate 'zebra' is not a word of --text: "),
    (["--word", "it", "--candidate", "ca"],
     "--candidate 'ca' is not a word of --text and cannot be made one: it ends inside"),
], ids=["word", "word-inside-a-token", "candidate", "candidate-inside-a-token"])
@pytest.mark.parametrize("view", ["coref", "links"])
def test_a_word_not_in_the_text_is_named_by_its_flag(minilm, tmp_path, capsys, extra, message,
                                                      view):
    """``'zebra' is not a word of this sentence`` did not say whether ``--word`` or a
    ``--candidate`` was meant."""
    if view == "links" and "--candidate" in extra:
        return  # links takes no --candidate (refused above)
    rc, line = _error(["render", view, "--text", TEXT, "--out", str(tmp_path), "--quiet",
                       *extra], capsys, tmp_path)
    assert rc == 2 and line.startswith(f"probe: error: {message}"), line
    assert "or an index" not in line and "this sentence" not in line


# ------------------------------------------------------------------ coref on one word
@pytest.mark.parametrize("text", ["it", "it.", "马路"])
def test_coref_of_a_one_word_text_asks_for_a_sentence(minilm, tmp_path, capsys, text):
    """A one-word --text was told "the default candidates are the content words before it;
    pass --candidate WORD": there is no other word to pass."""
    word = text.rstrip(".")
    rc, line = _error(["render", "coref", "--text", text, "--word", word, "--out",
                       str(tmp_path), "--quiet"], capsys, tmp_path)
    assert rc == 2 and line == (
        f"probe: error: no candidate antecedents for {word!r}: --text has no other word "
        "(punctuation aside); pass a --text that holds the antecedent too, e.g. 'The cat sat "
        "because it was tired.'")


def test_coref_api_of_a_one_word_sentence_and_of_a_first_word(minilm):
    import probe

    model, tokenizer = minilm
    with pytest.raises(probe.ProbeError, match=r"^no candidate antecedents for 'it': the "
                       r"sentence has no other word \(punctuation aside\); pass a sentence"):
        probe.coref(probe.trace(model, "it.", tokenizer=tokenizer), "it")
    with pytest.raises(probe.ProbeError, match=r"^no candidate antecedents for 'it': the "
                       r"default candidates are the content words before 'it'; pass "
                       r"candidates=\[\.\.\.\] to choose them$"):
        probe.coref(probe.trace(model, "it barked at the dog.", tokenizer=tokenizer), "it")


# ------------------------------------------------------------------ eval --n
@pytest.mark.parametrize("task, message", [
    ("coref", "--n 200000 is more than the 46 minimal pairs of the shipped data: use --n "
              "1..46, or drop --n to use all of them"),
    ("text", "--n 200000 is more than the 25 sentence pairs shipped: use --n 1..25, or drop "
             "--n to use all of them"),
    ("faithfulness", "--n 200000 is more than the 100000 inputs an eval holds in memory: use "
                     "--n 1..100000"),
])
def test_eval_n_beyond_the_data_names_the_bound_that_applies(capsys, monkeypatch, task,
                                                             message):
    """``--n 200000`` on coref said "out of range: use 1..100000 (the eval holds its inputs in
    memory)", the fix first and its reason last, and a bound the 46 pairs never reach (--n
    100000 was then refused again, with 1..46)."""
    from probe.models import _registry

    monkeypatch.setattr(_registry, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    rc, line = _error(["eval", task, "--n", "200000", "--quiet"], capsys)
    assert rc == 2 and line == f"probe: error: {message}"


# ------------------------------------------------------------------ bench --threads
def test_bench_threads_zero_is_torchs_default_in_the_generation_worker(monkeypatch, capsys):
    """``probe bench --threads 0`` (documented: torch's default) made every generation memory
    worker fail (``set_num_threads expects a positive integer``), reported as rows 'failed:
    exit 1' in the results."""
    import torch

    from probe.commands.bench import _generation

    monkeypatch.setattr(_generation, "_measure", lambda *a: {"mode": a[0], "ok": True})
    before = torch.get_num_threads()
    assert _generation.main(["--mode", _generation.MEMORY_MODES[0], "--tokens", "8",
                             "--threads", "0"]) == 0
    assert torch.get_num_threads() == before and '"ok": true' in capsys.readouterr().out


@pytest.mark.parametrize("threads", ["-1", "-100"])
def test_bench_negative_threads_is_one_line_naming_the_flag(capsys, threads):
    """Was "the number of threads must be >= 0", which named no flag."""
    import os

    cpus = len(os.sched_getaffinity(0))
    rc, line = _error(["bench", "--threads", threads, "--quiet"], capsys)
    assert rc == 2 and line == (f"probe: error: --threads {threads} is negative: use 0..{cpus} "
                                "(0: torch's default)")


# ------------------------------------------------------------------ probe.show heads, layer=
@pytest.mark.parametrize("view", ["heads", "model"])
def test_show_layer_on_the_heads_view_points_at_layers(minilm, view):
    """``probe.show(trace, "heads", layer=0)`` was told "layer= ... is used by the detr and
    window views only; drop it": the heads view picks its layers with ``layers=``."""
    import probe

    model, tokenizer = minilm
    trace = probe.trace(model, "The cat sat.", tokenizer=tokenizer, layers=[0, 1])
    with pytest.raises(probe.ProbeError) as info:
        probe.show(trace, view, layer=0)
    assert str(info.value) == (
        f"layer= does not apply to the {view} view (it picks the page's layer in the detr and "
        "window views only): pick this view's layers with layers=[...], e.g. layers=[0]")
    assert probe.show(trace, view, layers=[0]).html  # the fix named works


# ------------------------------------------------------------------ render --discard
@pytest.mark.parametrize("value", ["1", "-0.5", "inf", "nan"])
def test_render_discard_out_of_range_speaks_the_command_line(tmp_path, capsys, monkeypatch,
                                                             value):
    """Was "--discard: option 'discard_ratio' of method 'rollout' must be < 1, got 1.0"."""
    from probe.models import _registry

    monkeypatch.setattr(_registry, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    rc, line = _error(["render", "rollout", "--text", TEXT, "--discard", value, "--out",
                       str(tmp_path / "o"), "--quiet"], capsys)
    assert rc == 2 and line == (
        f"probe: error: --discard {float(value):g} is out of range: use a fraction in [0, 1) "
        "of each row's weakest weights to drop, e.g. --discard 0.9")
    assert not (tmp_path / "o").exists()


def test_render_discard_minus_zero_is_zero(minilm, tmp_path, capsys):
    """``--discard -0.0`` named its file ``mean-d-0``, apart from the default's ``mean-d0``."""
    base = ["render", "rollout", "--text", TEXT, "--out", str(tmp_path), "--quiet"]
    names = [_run(base + extra, capsys)[1] for extra in ([], ["--discard", "-0.0"])]
    assert names[0] == names[1] and "_mean-d0_" in names[0]


# ------------------------------------------------------------------ --max-values
@pytest.mark.parametrize("view, extra, what", [
    ("heads", ["--text", "The cat."], "the heads page's attention has 1,800 values "
                                      "(6 x 12 x 5 x 5)"),
    ("links", ["--text", "The cat."], "the links page's attention has 1,800 values"),
    ("rollout", [], "the rollout page's attention has 65,536 values (4 x 4 x 64 x 64)"),
])
def test_html_budget_refusal_names_no_python_argument(tmp_path, capsys, view, extra, what):
    """The page's size refusal began with the viewer's argument name: "attn has 1,800
    values", "patch_attn has 65,536 values"."""
    rc, line = _error(["render", view, *extra, "--format", "html", "--max-values", "10",
                       "--out", str(tmp_path), "--quiet"], capsys, tmp_path)
    assert rc == 2 and line.startswith(f"probe: error: {what}"), line
    assert "attn" not in line and line.endswith("raise --max-values N")


def test_links_word_on_an_image_model_is_refused_before_the_load(tmp_path, capsys,
                                                                 monkeypatch):
    """``probe render links --model vit-shapes --word a`` was "probe: internal error:
    TypeError: 'NoneType' object is not subscriptable" (exit 1)."""
    from probe.models import _registry

    monkeypatch.setattr(_registry, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    rc, line = _error(["render", "links", "--model", "vit-shapes", "--word", "a", "--out",
                       str(tmp_path / "o"), "--quiet"], capsys)
    assert rc == 2 and line == (
        "probe: error: --word highlights a word of --text; vit-shapes is an image model and "
        "has no words: drop --word, or pass a text model with --model")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ eval --option
@pytest.mark.parametrize("assignment, rest", [
    ("ig.n_steps=-1", "option 'n_steps' of method 'ig' must be >= 1, got -1"),
    ("nosuch.x=1", "unknown method 'nosuch': use one of ['attention', "),
    ("ig.nsteps=4", "method 'ig' does not take option 'nsteps': did you mean 'n_steps'?"),
])
def test_eval_option_refusal_names_the_assignment(capsys, monkeypatch, assignment, rest):
    """With several --option, "unknown method 'nosuch'" did not say which one (nor that it
    came from --option rather than --method)."""
    from probe.models import _registry

    monkeypatch.setattr(_registry, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    rc, line = _error(["eval", "text", "--option", "rollout.discard_ratio=0.5", "--option",
                       assignment, "--quiet"], capsys)
    assert rc == 2 and line.startswith(f"probe: error: --option {assignment}: {rest}"), line
