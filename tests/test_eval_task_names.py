"""The ``"task"`` of a grid-scored faithfulness eval names the model family: Swin models said
``"cnn-faithfulness"`` (``benchmarks/eval-faithfulness-swin-shapes.json``), and
``probe eval`` prints both with the grid table."""

from __future__ import annotations

import json
from pathlib import Path

import probe
from probe.commands import _eval
from probe.evaluation._cnn_eval import GRID_TASKS, grid_task

ROOT = Path(__file__).resolve().parents[1]


def test_task_name_follows_the_model_family():
    swin, _ = probe.load_model("swin-shapes")
    cnn, _ = probe.load_model("cnn-shapes")
    assert grid_task(swin) == "swin-faithfulness"
    assert grid_task(cnn) == "cnn-faithfulness"
    assert set(GRID_TASKS) == {"swin-faithfulness", "cnn-faithfulness"}


def test_committed_results_say_which_family():
    swin = json.loads((ROOT / "benchmarks/eval-faithfulness-swin-shapes.json").read_text())
    cnn = json.loads((ROOT / "benchmarks/eval-cnn-shapes.json").read_text())
    assert (swin["task"], swin["model"]) == ("swin-faithfulness", "swin-shapes")
    assert cnn["faithfulness"]["task"] == "cnn-faithfulness"


def test_both_names_print_the_grid_table(monkeypatch, capsys):
    row = {f"{k}{s}": 0.5 for k in ("pointing_game", "mass_on_object", "deletion_auc",
                                    "insertion_auc") for s in ("", "_se")}
    for task in GRID_TASKS:
        result = {"task": task, "model": "m", "n": 2, "image_seed": 20000, "grid": [8, 8],
                  "accuracy": 1.0, "chance": 0.2,
                  "methods": {"ig": {**row, "seconds_per_image": 0.1}}}
        monkeypatch.setattr(_eval, "_run_task", lambda *a, **k: (dict(result), "cpu"))
        rc = _eval.run_eval(_eval.EvalArgs(task="faithfulness", quiet=True, device="cpu"))
        out = capsys.readouterr().out
        assert rc == 0 and "| ig | 0.500 ± 0.500 |" in out and "grid 8x8" in out, out
