"""Odd inputs found by a fifth hunt, on the command line (``probe render``, ``eval``, ``bench``,
``serve``, ``models`` and the recipes): bad input is one line on stderr naming the problem and
the fix, exit code 2, nothing written; nothing silently does something else than asked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import probe
from probe.cli import main

SENTENCE = "The animal didn't cross the street because it was too tired."
ITEM = {"sentence": "The cup fell off the table because it was round.", "pronoun": "it",
        "correct": "cup", "distractor": "table"}
OTHER = {"sentence": "The cup fell off the table because it was tilted.", "pronoun": "it",
         "correct": "table", "distractor": "cup"}


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int, pattern: str) -> str:
    """Exit code 2, one ``probe: error:`` line matching ``pattern``, nothing on stdout."""
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("probe: error: "), err
    assert re.search(pattern, err), err
    assert "Traceback" not in err
    return err


def _no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that must come before the model loads fails the test if it comes after."""
    from probe.models import _registry

    def loaded(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the model loaded before the options were checked")

    # probe.load_model is resolved once and cached: patch it too (first, so the real one is
    # what is cached and restored), or a first look-up during this test caches the patch for
    # the rest of the session
    monkeypatch.setattr(probe, "load_model", loaded)
    monkeypatch.setattr(_registry, "load_model", loaded)


# ----------------------------------------------------------------------------- --out
@pytest.mark.parametrize("name", ["fig.png", "Fig.PDF", "page.html", "sub/fig.svg", "r.json"])
def test_render_out_named_like_a_file_is_refused(name, tmp_path, capsys, monkeypatch):
    """``--out fig.png`` made a folder fig.png holding coref_minilm_...png: a file name taken
    for the folder it is documented to be. Refused before the model loads, nothing made."""
    monkeypatch.chdir(tmp_path)
    _no_model_load(monkeypatch)
    code = main(["render", "coref", "--text", SENTENCE, "--word", "it", "--out", name])
    stem = name.rsplit(".", 1)[0]
    _one_line_error(capsys, code, rf"--out '{re.escape(name)}' looks like a file name, but "
                    rf"--out is the folder .* e\.g\. --out '{re.escape(stem)}'")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_or_a_folder_syntax_named_like_a_file_is_kept(tmp_path):
    """An existing folder ``figs.png`` (made on purpose), ``fig.png/`` (written as a folder)
    and a suffix probe does not write (``run.v2``) stay valid ``--out`` folders."""
    from probe._report import check_output_dir

    (tmp_path / "figs.png").mkdir()
    check_output_dir(tmp_path / "figs.png")
    check_output_dir(str(tmp_path / "fig.png") + "/")
    check_output_dir(tmp_path / "run.v2")
    with pytest.raises(probe.ProbeError, match=r"--out '.*fig\.png' looks like a file name"):
        check_output_dir(tmp_path / "fig.png")


def test_a_recipe_out_named_like_a_file_is_refused(tmp_path, capsys, monkeypatch):
    """The recipes share the check (their ``--out`` is a folder too)."""
    from probe.recipes import coref_demo

    monkeypatch.chdir(tmp_path)
    _no_model_load(monkeypatch)
    monkeypatch.setattr(probe, "load_model", lambda *a, **k: pytest.fail("worked first"))
    code = coref_demo.main(["--out", "fig.png"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert re.fullmatch(r"error: --out 'fig\.png' looks like a file name.*\n", err), err
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- eval --data
def _pairs_file(tmp_path: Path, document: object) -> str:
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("document, pattern", [
    ({"pair": []}, r"got an object without 'pairs' \(keys \['pair'\]\)"),
    ({"pairs": "x"}, r"got 'pairs' as a string"),
    ({"pairs": [[ITEM, OTHER]]}, r"pairs\[0\]: a pair is .*, got a list"),
    ({"pairs": [{"items": [ITEM, OTHER]}, {"id": "b"}]}, r"pairs\[1\]: .* got no 'items'"),
    ({"pairs": [{"items": {"a": ITEM}}]}, r"pairs\[0\]: .* got 'items' as an object"),
    ({"pairs": [{"items": [ITEM, 3]}]}, r"pairs\[0\]\.items\[1\]: an item is .* got a number"),
    ({"pairs": [{"items": [ITEM, {**OTHER, "pronoun": 5}]}]},
     r"pairs\[0\]\.items\[1\]: 'pronoun' must be a non-empty string, got a number"),
    ({"pairs": [{"items": [ITEM, {k: v for k, v in OTHER.items() if k != "correct"}]}]},
     r"pairs\[0\]\.items\[1\] has no 'correct' \(it has \['distractor', 'pronoun', "
     r"'sentence'\]\): add it"),
    ({"pairs": [{"items": [ITEM, {**OTHER, "distractor": None}]}]},
     r"pairs\[0\]\.items\[1\]: 'distractor' must be a non-empty string, got null"),
])
def test_coref_json_shape_errors_name_the_pair_item_and_field(document, pattern, tmp_path,
                                                             capsys, monkeypatch):
    """Every shape error was the same 'must hold {...} with non-empty strings', leaving the
    user to search a file of many pairs for the one out of place."""
    _no_model_load(monkeypatch)
    code = main(["eval", "coref", "--data", _pairs_file(tmp_path, document)])
    _one_line_error(capsys, code, pattern)


# ----------------------------------------------------------------------------- eval --n
@pytest.mark.parametrize("argv, pattern", [
    (["coref", "--n", "1000"], r"--n 1000 is more than the 46 minimal pairs of the shipped "
     r"data: use --n 1\.\.46, or drop --n"),
    (["text", "--n", "26"], r"--n 26 is more than the 25 sentence pairs shipped: use --n 1\.\.25"),
    (["alignment", "--n", "501"], r"--n 501 is more than the 500 held-out pairs of the toy "
     r"language pair: use --n 1\.\.500"),
])
def test_eval_n_beyond_the_data_is_refused_before_the_model_loads(argv, pattern, capsys,
                                                                   monkeypatch):
    """``probe eval coref --n 1000`` scored the 46 shipped pairs (text: 25 pairs, alignment: the
    500 held-out pairs) and exited 0, as if 1000 had been asked and answered."""
    _no_model_load(monkeypatch)
    _one_line_error(capsys, main(["eval", *argv]), pattern)


def test_eval_n_beyond_a_data_file_names_the_file(tmp_path, capsys, monkeypatch):
    _no_model_load(monkeypatch)
    data = _pairs_file(tmp_path, {"pairs": [{"id": "a", "items": [ITEM, OTHER]}]})
    code = main(["eval", "coref", "--data", data, "--n", "2"])
    _one_line_error(capsys, code, rf"--n 2 is more than the 1 minimal pairs of "
                    rf"'{re.escape(data)}': use --n 1, or drop --n")


def test_the_api_refuses_n_beyond_the_pairs_too():
    from probe.evaluation.tasks import eval_coref, eval_text

    with pytest.raises(probe.ProbeError, match=r"^n=2 is more than the 1 minimal pairs of the "
                       r"pairs given: use n=1, or n=None to use all of them$"):
        eval_coref(object(), object(), n=2, pairs=[{"id": "a", "items": [ITEM, OTHER]}])
    with pytest.raises(probe.ProbeError, match=r"^n=9 is more than the 1 sentence pairs given"):
        eval_text(object(), object(), n=9, pairs=[{"id": "a", "first": "A.", "second": "B."}])


def test_quick_on_a_short_pairs_file_runs_on_its_pairs(tmp_path, capsys, monkeypatch):
    """``--quick`` (10 pairs) on a file of one pair runs on that pair: --quick asks for a
    small run, not for 10 pairs (the eval itself is replaced: only its ``n`` is looked at)."""
    import torch

    from probe.evaluation import tasks
    from probe.models import _registry

    data = tmp_path / "pairs.txt"
    data.write_text("\n".join("|".join(i[f] for f in ("sentence", "pronoun", "correct",
                                                      "distractor")) for i in (ITEM, OTHER)),
                    encoding="utf-8")
    seen = []

    def eval_coref(*_args, n, **_kwargs):
        seen.append(n)
        raise probe.ProbeError("stopped here")

    monkeypatch.setattr(_registry, "load_model", lambda *a, **k: (torch.nn.Linear(1, 1), None))
    monkeypatch.setattr(tasks, "eval_coref", eval_coref)
    code = main(["eval", "coref", "--quick", "--quiet", "--device", "cpu", "--data", str(data)])
    _one_line_error(capsys, code, "stopped here")
    assert seen == [1]


# ----------------------------------------------------------------------------- seeds
def test_a_negative_attribution_seed_is_refused_as_the_message_says(capsys):
    """``seed=-1`` was taken (torch reads it as 2**64 - 1: two names for one stream) while the
    message of ``seed=2**64`` said [0, 2**64)."""
    from tests._tiny import bert

    model, inputs = bert()
    for seed in (-1, 2**64):
        with pytest.raises(probe.ProbeError, match=rf"seed {seed} is out of range: pass an "
                           r"integer in \[0, 2\*\*64\)"):
            probe.attribute(model, inputs, "random", seed=seed)
    top = probe.attribute(model, inputs, "random", seed=2**64 - 1).scores
    assert top.shape[0] == 2


def test_generated_scenes_take_every_seed_probe_render_takes():
    """``probe render detr --seed 2**63`` passed the command's check (0..2**64-1) and was then
    refused by the scene generator (0..2**63-1), after the model had loaded."""
    from probe.models._scenes import make_scenes

    assert make_scenes(1, seed=2**64 - 1).images.shape[0] == 1
    with pytest.raises(probe.ProbeError, match=r"seed must be an integer in 0\.\.2\*\*64-1"):
        make_scenes(1, seed=2**64)


# ----------------------------------------------------------------------------- more options
@pytest.mark.parametrize("argv", [
    ["eval", "coref", "--json", "out/results.png"],
    ["bench", "--part", "cli", "--json", "results.HTML"],
])
def test_a_json_file_named_like_a_figure_is_refused(argv, tmp_path, capsys, monkeypatch):
    """``--json results.png`` wrote JSON under a name image viewers fail to open (the mirror of
    ``--out fig.png``)."""
    monkeypatch.chdir(tmp_path)
    _no_model_load(monkeypatch)
    name = argv[-1]
    stem = name.rsplit(".", 1)[0]
    _one_line_error(capsys, main(argv), rf"--json '{re.escape(name)}' ends with "
                    rf"'\.\w+', but --json writes JSON: name it '{re.escape(stem)}\.json'")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_word_is_named_as_blank(capsys, monkeypatch):
    """``--word ""`` said 'the coref view needs --word', of a command line that has one."""
    _no_model_load(monkeypatch)
    code = main(["render", "coref", "--text", SENTENCE, "--word", ""])
    _one_line_error(capsys, code, r"--word is blank: pass a word of --text, e\.g\. --word it")


def test_serve_names_a_socket_path_too_long_for_a_unix_socket(tmp_path, capsys):
    """A --socket over 107 bytes failed after the imports as 'cannot listen on ...: None'."""
    path = tmp_path / "deeper" / ("s" * 110 + ".sock")
    code = main(["serve", "--socket", str(path)])
    _one_line_error(capsys, code, rf"the socket path .* is {len(str(path))} bytes; a Unix socket "
                    r"path holds at most 107: pass a shorter --socket PATH")
    assert not path.parent.exists()


@pytest.mark.parametrize("argv, pattern", [
    (["--dpi", "abc"], r"error: argument --dpi: invalid int value: 'abc' \(see --help\)"),
    (["--out", "a", "--out", "b"], r"error: argument --out: given twice \('a' and 'b'\): pass "
     r"it once \(see --help\)"),
    (["--nosuch"], r"error: unrecognized arguments: --nosuch \(see --help\)"),
])
def test_recipe_option_errors_are_one_line_and_repeats_are_refused(argv, pattern, tmp_path,
                                                                   capsys, monkeypatch):
    """argparse printed its usage line above the error, and ``--out a --out b`` wrote into b
    (the recipes' own checks print one ``error:`` line; ``probe`` refuses a repeat)."""
    from probe.recipes import coref_demo, train_toy_mt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(probe, "load_model", lambda *a, **k: pytest.fail("worked first"))
    for recipe in (coref_demo, train_toy_mt):
        if recipe is train_toy_mt and argv[0] != "--nosuch":
            argv = [a.replace("--out", "--weights").replace("--dpi", "--steps") for a in argv]
            pattern = pattern.replace("--out", "--weights").replace("--dpi", "--steps")
        with pytest.raises(SystemExit) as exit_:
            recipe.main(argv)
        out, err = capsys.readouterr()
        assert exit_.value.code == 2 and out == ""
        assert re.fullmatch(pattern + "\n", err), err
    assert list(tmp_path.iterdir()) == []


def test_eval_alignment_refuses_data(capsys, monkeypatch):
    """``probe eval alignment --data pairs.txt`` ignored the file (even a missing one) and
    evaluated the toy pairs; the other evals refused it."""
    _no_model_load(monkeypatch)
    code = main(["eval", "alignment", "--data", "pairs.txt", "--n", "1"])
    _one_line_error(capsys, code, r"--data only applies to the coref eval, not alignment: drop it")


def test_compare_with_one_method_is_refused_before_the_model_loads(capsys, monkeypatch):
    """``render compare --method random`` loaded the model, started the progress bar and ended
    with 'compare needs at least two attributions, got 1', naming no fix."""
    _no_model_load(monkeypatch)
    code = main(["render", "compare", "--text", SENTENCE, "--method", "random"])
    _one_line_error(capsys, code, r"the compare view sets methods side by side and --method "
                    r"names one \('random'\): add another --method, drop --method for the "
                    r"default set, or use the saliency view")


def test_a_png_too_large_to_draw_is_refused_before_drawing(tmp_path):
    """``probe render head --width 40 --dpi 2400`` (96000 x 94800 pixels) ended in 'internal
    error: MemoryError: std::bad_alloc'; the limit is named with the dpi that fits."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from probe.viewers import save_figure

    fig = Figure(figsize=(40, 39.5))
    with pytest.raises(probe.ProbeError, match=r"the figure would be 96000x94800 pixels at dpi "
                       r"2400 \(a PNG holds at most 65535 a side and 268 million in all\): lower "
                       r"dpi to at most 412 or make the figure narrower \(probe render: --dpi, "
                       r"--width\)"):
        save_figure(fig, tmp_path / "big.png", dpi=2400)
    assert list(tmp_path.iterdir()) == []
    small = Figure(figsize=(2, 1))
    assert save_figure(small, tmp_path / "ok.png", dpi=2400).stat().st_size > 0  # 4800x2400
