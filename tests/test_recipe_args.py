"""Bad options of every recipe end in one ``error:`` line and exit code 2, before any work.

Each recipe's work (loading a model, training) is replaced by a function that fails the test,
so an option checked too late shows up as a failure, not as a slow pass; and nothing may be
written (the temporary folder is compared before and after).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import probe
from probe.recipes import (
    alignment_demo,
    caption_demo,
    cnn_attention,
    coref_demo,
    demo,
    detr_attention,
    nonlocal_demo,
    similarity,
    swin_demo,
    train_caption_shapes,
    train_cnn_shapes,
    train_cnn_shapes_nl,
    train_detr_shapes,
    train_swin_shapes,
    train_toy_mt,
    train_vit_shapes,
    vit_saliency,
)

FIGURES = [alignment_demo, caption_demo, cnn_attention, coref_demo, demo, detr_attention,
           nonlocal_demo, similarity, swin_demo, vit_saliency]
TRAINING = [train_caption_shapes, train_cnn_shapes, train_cnn_shapes_nl, train_detr_shapes,
            train_swin_shapes, train_vit_shapes]


@pytest.fixture(autouse=True)
def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def started(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the recipe started working before checking its options")

    monkeypatch.setattr(probe, "load_model", started)
    for module in [*TRAINING, train_toy_mt]:  # train_cnn_shapes_nl uses train_cnn_shapes.train
        if hasattr(module, "train"):
            monkeypatch.setattr(module, "train", started)
    for module in (detr_attention, nonlocal_demo, cnn_attention, swin_demo, caption_demo):
        for name in ("query_figures", "nonlocal_figures", "gate_figures", "window_figures",
                     "caption_figures"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, started)


def _bad_outs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A file, a path under that file, and a folder that `os.access` reports read-only (the
    tests may run as root, for whom chmod locks nothing)."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access

    def access(path: object, mode: int, **kw: object) -> bool:
        if Path(os.fspath(path)) == locked and mode & os.W_OK:
            return False
        return real_access(path, mode, **kw)

    monkeypatch.setattr(os, "access", access)
    return {"file": a_file, "under a file": a_file / "sub", "read-only": locked / "new"}


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _one_error(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


@pytest.mark.parametrize("recipe", FIGURES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("case", ["file", "under a file", "read-only"])
def test_figure_recipes_refuse_an_unwritable_out(recipe, case, tmp_path, monkeypatch, capsys):
    out = _bad_outs(tmp_path, monkeypatch)[case]
    before = _tree(tmp_path)
    assert recipe.main(["--out", str(out)]) == 2
    _one_error(capsys, "--out", str(out))
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("recipe", FIGURES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("dpi", ["0", "-5", "100000"])
def test_figure_recipes_refuse_a_bad_dpi(recipe, dpi, tmp_path, capsys):
    assert recipe.main(["--out", str(tmp_path / "figs"), "--dpi", dpi]) == 2
    _one_error(capsys, "--dpi")
    assert _tree(tmp_path) == []


@pytest.mark.parametrize("recipe", [caption_demo, cnn_attention, detr_attention, nonlocal_demo],
                         ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_json_option_is_checked_up_front(recipe, tmp_path, monkeypatch, capsys):
    bad = _bad_outs(tmp_path, monkeypatch)
    before = _tree(tmp_path)
    for json_path in (bad["under a file"], tmp_path):  # under a file; a folder
        assert recipe.main(["--out", str(tmp_path / "figs"), "--json", str(json_path)]) == 2
        _one_error(capsys, "--json")
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("recipe, min_n", [(cnn_attention, 1), (detr_attention, 1),
                                           (nonlocal_demo, 2), (caption_demo, 2)],
                         ids=lambda m: getattr(m, "__name__", str(m)).rsplit(".", 1)[-1])
def test_evaluation_counts_are_checked_up_front(recipe, min_n, tmp_path, capsys):
    for bad in (["--n", str(min_n - 1)], ["--images", "-1"]):
        assert recipe.main(["--out", str(tmp_path / "figs"), *bad]) == 2
        _one_error(capsys, f"--n must be >= {min_n} and --images >= 0")
    assert list(tmp_path.iterdir()) == []


def test_vit_saliency_refuses_negative_images(tmp_path, capsys):
    assert vit_saliency.main(["--out", str(tmp_path), "--images", "-1"]) == 2
    _one_error(capsys, "--images must be >= 0")


@pytest.mark.parametrize("recipe", TRAINING, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("case", ["folder", "under a file", "read-only"])
def test_training_recipes_refuse_an_unwritable_out(recipe, case, tmp_path, monkeypatch, capsys):
    bad = _bad_outs(tmp_path, monkeypatch)
    out = {"folder": tmp_path, "under a file": bad["under a file"] / "w.safetensors",
           "read-only": bad["read-only"].parent / "w.safetensors"}[case]
    before = _tree(tmp_path)
    assert recipe.main(["--out", str(out), "--steps", "1"]) == 2
    _one_error(capsys, "--out", str(out))
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("recipe", TRAINING, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize(("argv", "words"), [
    (["--lr", "0"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--weight-decay", "-0.1"], "--weight-decay"),
])
def test_training_recipes_refuse_bad_numbers(recipe, argv, words, tmp_path, capsys):
    assert recipe.main([*argv, "--out", str(tmp_path / "w.safetensors")]) == 2
    _one_error(capsys, words)
    assert _tree(tmp_path) == []


@pytest.mark.parametrize(("argv", "words"), [
    (["--steps", "0"], ("--steps",)),
    (["--threads", "0"], ("--threads",)),
    (["--lr", "-1"], ("--lr",)),
    (["--weights", "{dir}"], ("--weights", "folder")),
    (["--tokenizer", "{file}/t.json"], ("--tokenizer", "not a folder")),
])
def test_train_toy_mt_refuses_bad_options(argv, words, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    defaults = [option for flag, path in (("--weights", "w.safetensors"), ("--tokenizer",
                                                                          "t.json"))
                if flag not in argv for option in (flag, str(tmp_path / path))]  # given once
    argv = [a.format(dir=tmp_path, file=a_file) for a in argv]
    assert train_toy_mt.main([*defaults, *argv]) == 2
    _one_error(capsys, *words)
    assert _tree(tmp_path) == ["a_file"]


def test_demo_command_line_exits_2_without_traceback(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    done = subprocess.run(
        [sys.executable, "-m", "probe.recipes.demo", "--out", str(a_file / "figures")],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"error: cannot create --out {str(a_file / 'figures')!r}: {str(a_file)!r} is a file; "
        "choose another output folder"
    ]
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


@pytest.mark.parametrize("recipe", FIGURES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_help_describes_the_recipe_in_a_whole_sentence(recipe, capsys) -> None:
    """``swin_demo --help`` ended mid-sentence ("... where a token on the shape"), with
    reST backticks: the description is the docstring's first line."""
    with pytest.raises(SystemExit) as exit_:
        recipe.main(["--help"])
    assert exit_.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    description = help_text.split("options:")[0].split("]")[-1].strip()
    assert description.endswith((".", "?")) and "``" not in description, description
