"""Odd values for ``probe eval``: each is one line on stderr, exit code 2, no traceback, no
file, and it comes before the model loads (``load_model`` is replaced by a function that
fails the test).

Found by an attack on the eval family (as ``test_cli_odd_inputs.py`` did for render): a
``--data`` file whose distractor is not in its sentence was refused only after MiniLM had
loaded; ``--seed 2**70`` reached the model load (and torch's generators); ``--json ""`` ran the
whole eval and wrote nothing, silently; ``--data ""`` read the current folder; ``--data
/dev/zero`` never ended.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from probe._errors import ProbeError
from probe.cli import main
from probe.evaluation.tasks._coref import MAX_DATA_BYTES, check_coref_item, load_coref_pairs

TASKS = ("faithfulness", "sanity", "text", "coref", "alignment")
GOOD = ("The cup did not fit in the box because it was big.|it|cup|box\n"
        "The cup did not fit in the box because it was small.|it|box|cup\n")


@pytest.fixture
def no_load(monkeypatch):
    from probe.models import _registry

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the model loaded before the options were checked")

    monkeypatch.setattr(_registry, "load_model", refuse)


def _refused(argv: list[str], capsys: Any, folder: Path, pattern: str) -> str:
    before = sorted(folder.rglob("*"))
    rc = main(["eval", *argv, "--quiet"])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and "Traceback" not in err, err
    assert len(lines) == 1 and re.search(pattern, lines[0]), err
    assert out == "" and sorted(folder.rglob("*")) == before
    return lines[0]


def _data(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


@pytest.mark.parametrize("lines, pattern", [
    ("The cup did not fit in the box because it was big.|it|cup|crate\n"
     "The cup did not fit in the box because it was small.|it|box|cup\n",
     r"line 1: the distractor 'crate' is not a word of 'The cup did not fit"),
    ("The cup did not fit in the box because it was big.|it|cup|box\n"
     "The cup did not fit in the box because it was small.|it|box|box\n",
     r"line 2: the correct antecedent and the distractor are the same word \('box'\)"),
    ("The cup did not fit in the box because it was big.|it|cup|box\n"
     "# a comment\n"
     "The cup did not fit in the box because it was small.|she|box|cup\n",
     r"line 3: the pronoun 'she' is not a word"),
    ("The cup did not fit in the box because it was big.|it|cup|box\n"
     "The cup did not fit in the box because it was small.|it|...|cup\n",
     r"line 2: the correct antecedent '\.\.\.' has no letter or digit"),
    # a line given twice made a "pair" the nearer-noun rule scored 1.000 (chance line: 0)
    ("The cup did not fit in the box because it was big.|it|cup|box\n" * 2,
     r"lines 1 and 2: the two sentences of the minimal pair are the same \('The cup did not"),
    ("The cup did not fit in the box because it was big.|it|cup|box\n"
     "The cup did not fit in the box because it was small.|it|cup|box\n",
     r"lines 1 and 2: a minimal pair swaps the antecedents \(the correct one of each sentence "
     r"is the distractor of the other\), got correct 'cup' / 'cup' and distractor 'box' / "
     r"'box': fix the pair$"),
], ids=["distractor", "same-word", "pronoun", "punctuation", "same-sentence", "no-swap"])
def test_a_bad_item_is_refused_before_the_model_loads(lines, pattern, tmp_path, capsys,
                                                       no_load):
    _refused(["coref", "--data", _data(tmp_path, "pairs.txt", lines)], capsys, tmp_path,
             pattern)


def test_a_bad_json_item_names_its_pair(tmp_path, capsys, no_load):
    item = {"sentence": "The cup fit in the box.", "pronoun": "it", "correct": "cup",
            "distractor": "box"}
    import json

    path = _data(tmp_path, "pairs.json", json.dumps({"pairs": [{"id": "p7", "items": [item]}]}))
    _refused(["coref", "--data", path], capsys, tmp_path,
             r"pairs\.json, pair 'p7' item 0: the pronoun 'it' is not a word")


@pytest.mark.parametrize("name, content, pattern", [
    ("empty.txt", "", r"holds no 'sentence\|pronoun\|correct\|distractor' lines"),
    ("blank.txt", "\n \n# only a comment\n", r"holds no 'sentence"),
    ("binary.txt", bytes(range(256)) * 4, r"is not UTF-8 .*save it as UTF-8"),
    ("list.json", "[1, 2, 3]", r"must hold \{'pairs'"),
    ("null.json", "null", r"must hold \{'pairs'"),
    ("empty-pairs.json", '{"pairs": []}', r"must hold \{'pairs'"),
    ("broken.json", '{"pairs": [', r"is not valid JSON"),
    ("three-fields.txt", "The cup.|it|cup\n", r"line 1: expected 'sentence\|pronoun"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 20 else "")
def test_odd_data_files(name, content, pattern, tmp_path, capsys, no_load):
    _refused(["coref", "--data", _data(tmp_path, name, content)], capsys, tmp_path, pattern)


def test_huge_endless_empty_and_folder_data(tmp_path, capsys, no_load):
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as fh:  # sparse: no disk used
        fh.truncate(MAX_DATA_BYTES + 1)
    _refused(["coref", "--data", str(huge)], capsys, tmp_path, r"holds more than 64 MiB")
    _refused(["coref", "--data", "/dev/zero"], capsys, tmp_path, r"/dev/zero holds more than")
    _refused(["coref", "--data", ""], capsys, tmp_path, r"^probe: error: --data is empty")
    _refused(["coref", "--data", str(tmp_path)], capsys, tmp_path, r"cannot read .*directory")


def test_the_checks_need_no_tokenizer():
    """Words are looked for as text: a tokenizer may split inside a run of letters (CJK) or
    keep a hyphenated word whole (SentencePiece), so neither is refused before it runs."""
    check_coref_item({"sentence": "猫追狗因为它饿了", "pronoun": "它", "correct": "猫",
                      "distractor": "狗"}, "x")
    check_coref_item({"sentence": "The ice-cream beat the cake because it was Cold.",
                      "pronoun": "IT", "correct": "ice-cream", "distractor": "cake."}, "x")
    with pytest.raises(ProbeError, match="the pronoun and the correct antecedent"):
        check_coref_item({"sentence": "It saw it.", "pronoun": "it", "correct": "It",
                          "distractor": "saw"}, "x")
    assert len(load_coref_pairs()) > 0  # the shipped pairs pass


@pytest.mark.parametrize("task", TASKS)
def test_odd_seed_n_json_and_device(task, tmp_path, capsys, no_load, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("in the way")
    for argv, pattern in (
        (["--seed", str(2**70)], r"--seed 1180591620717411303424 is out of range: use "
         r"0\.\.4294967295"),
        (["--seed", "-1"], r"--seed -1 is out of range: use 0\.\.4294967295"),
        (["--n", "0"], r"--n must be a positive integer, got 0"),
        (["--n", "-1"], r"--n must be a positive integer, got -1"),
        (["--json", ""], r"^probe: error: --json is empty: pass a file name, or drop --json"),
        (["--json", " "], r"--json is empty"),
        (["--json", str(tmp_path)], r"it is a folder; pass a file name"),
        (["--json", "/proc/probe-x.json"], r"cannot write /proc/probe-x\.json: .*choose another"),
        (["--json", str(tmp_path / "file" / "x.json")], r"a file is in the way"),
        (["--device", "gpu"], r"--device 'gpu' is not a device torch understands"),
        (["--device", ""], r"--device must be auto, cpu, cuda or cuda:N"),
        (["--device", "meta"], r"probe runs models on cpu or cuda"),
        (["--batch-size", "0"], r"--batch-size"),
    ):
        _refused([task, *argv], capsys, tmp_path, pattern)


@pytest.mark.parametrize("task", ["faithfulness", "sanity", "text"])
def test_an_unknown_method_is_refused_before_the_load(task, tmp_path, capsys, no_load):
    _refused([task, "--method", "nope"], capsys, tmp_path,
             r"^probe: error: --method: unknown method 'nope': use one of \[")
    _refused([task, "--method", "rolout"], capsys, tmp_path,
             r"--method: unknown method 'rolout': did you mean 'rollout'\?")
    _refused([task, "--method", ""], capsys, tmp_path, r"--method: unknown method ''")


@pytest.mark.parametrize("task", ["faithfulness", "sanity"])
def test_image_evals_refuse_training_seeds_before_the_load(task, tmp_path, capsys, no_load):
    """``--seed 980`` draws ``make_shapes`` seed 1,000,000: a training seed. vit-shapes
    refused it after loading; the CNN and Swin faithfulness evals not at all."""
    from probe.evaluation.tasks import EVAL_IMAGE_SEED, MAX_IMAGE_SEED

    assert EVAL_IMAGE_SEED + 1000 * (MAX_IMAGE_SEED + 1) == 1_000_000
    for model in ([], ["--model", "cnn-shapes"], ["--model", "swin-shapes"]):
        _refused([task, "--seed", "980", *model], capsys, tmp_path,
                 r"--seed 980 would draw images from the shapes models' training seeds; use "
                 r"--seed 0\.\.979")


def test_bench_empty_json_is_refused_before_the_bench(tmp_path, capsys, monkeypatch):
    """``probe bench --json ""`` ran the whole bench and wrote nothing, silently."""
    monkeypatch.chdir(tmp_path)
    rc = main(["bench", "--quick", "--part", "html", "--json", "", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and "Traceback" not in err
    assert err.strip() == "probe: error: --json is empty: pass a file name, or drop --json"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("json_path", ["results/", "results/.", ".."])
def test_a_json_path_written_as_a_folder_is_refused_before_the_load(json_path, tmp_path,
                                                                   capsys, no_load,
                                                                   monkeypatch):
    """``--json results/`` ran the whole eval and wrote a file named ``results`` (``Path``
    drops the trailing slash); ``probe bench`` did the same."""
    monkeypatch.chdir(tmp_path)
    line = _refused(["text", "--json", json_path], capsys, tmp_path,
                    rf"^probe: error: --json '{re.escape(json_path)}' names a folder \(.*\): "
                    r"pass a file name, e\.g\. '.*results\.json'$")
    assert "results.json" in line
    rc = main(["bench", "--quick", "--part", "html", "--json", "results/", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and "Traceback" not in err
    assert err.strip().startswith("probe: error: --json 'results/' names a folder")
    assert list(tmp_path.iterdir()) == []


def test_write_json_refuses_a_path_written_as_a_folder(tmp_path):
    from probe._report import write_json

    with pytest.raises(ProbeError, match=r"^cannot write JSON: '.*results/' names a folder"):
        write_json(f"{tmp_path}/results/", {"a": 1})
    assert list(tmp_path.iterdir()) == []
    assert write_json(tmp_path / "results.json", {"a": 1}).read_text() == '{\n  "a": 1\n}\n'


def test_a_json_pair_that_does_not_swap_is_refused(tmp_path):
    import json

    item = {"sentence": "The cup did not fit in the box because it was big.", "pronoun": "it",
            "correct": "cup", "distractor": "box"}
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps({"pairs": [{"id": "p1", "items": [item, dict(item)]}]}))
    with pytest.raises(ProbeError, match=r"pairs\.json, pair 'p1': the two sentences of the "
                                         r"minimal pair are the same"):
        load_coref_pairs(path)
    assert len(load_coref_pairs()) == 46  # the shipped pairs all swap


def test_text_eval_whose_only_method_fails_on_every_pair_is_one_line(tmp_path, capsys,
                                                                     monkeypatch):
    """``--method rollout --option rollout.query=999`` printed a table of the IG reference
    alone and exited 0 (rollout 'skipped', a line below the table): as the sanity eval does, a
    run where no asked-for method ran is an error, and no JSON is written."""
    monkeypatch.chdir(tmp_path)
    rc = main(["eval", "text", "--method", "rollout", "--option", "rollout.query=999", "--n",
               "1", "--option", "ig.n_steps=4", "--json", "out.json", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and "Traceback" not in err, err
    assert re.fullmatch(r"probe: error: no method but the IG reference could run the text eval "
                        r"\(rollout: query 999 is out of range for \d+ tokens; use 0\.\.\d+\); "
                        r"fix its options or pick methods that apply \(see 'probe models "
                        r"--methods'\)\n", err), err
    assert list(tmp_path.iterdir()) == []


def test_faithfulness_eval_whose_only_method_fails_is_one_line(tmp_path, capsys, monkeypatch):
    """The same run printed an empty table and exited 0."""
    monkeypatch.chdir(tmp_path)
    rc = main(["eval", "faithfulness", "--method", "rollout", "--option", "rollout.query=999",
               "--n", "2", "--json", "out.json", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and "Traceback" not in err, err
    assert err.startswith("probe: error: no method could run the faithfulness eval (rollout: "
                          "query 999 is out of range for 65 tokens") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
