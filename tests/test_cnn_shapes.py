"""The shipped ``cnn-shapes`` weights, its training recipe and its evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import probe
from probe.evaluation._cnn_eval import (
    cnn_faithfulness_markdown,
    eval_cnn_faithfulness,
    eval_cnn_gates,
)
from probe.models._cnn_shapes import (
    CNN_WEIGHTS_PATH,
    build_cnn_shapes,
    load_cnn_shapes,
    read_cnn_shapes_metadata,
)
from tests._shipped import assert_bad_weights_refused, assert_recipe_keeps_its_floor


def test_weights_are_small_and_carry_their_recipe() -> None:
    assert CNN_WEIGHTS_PATH.stat().st_size < 2_000_000
    meta = read_cnn_shapes_metadata()
    assert meta["model"] == "cnn-shapes" and float(meta["accuracy"]) >= 0.97
    assert meta["threads"] == "1" and meta["classes"] == ",".join(probe.SHAPE_CLASSES)


def test_shipped_weights_accuracy_and_gates() -> None:
    model, processor = probe.load_model("cnn-shapes")
    assert processor is None and not model.training
    data = probe.make_shapes(1000, seed=10_000)
    with torch.no_grad():
        accuracy = float((model(data.images).argmax(-1) == data.labels).float().mean())
    assert accuracy >= 0.97, f"held-out accuracy {accuracy:.3f}"
    gt = probe.trace_gates(model, data.images[:4])
    assert gt.kinds == ("channel", "spatial") and gt.stages == (0, 1, 2, 3)
    assert [g.feature_size for g in gt.select("spatial")] == [(16, 16), (8, 8), (8, 8), (8, 8)]
    assert [g.stride for g in gt.select("spatial")][0] == (2.0, 2.0)


def test_missing_and_mismatched_weights_raise(tmp_path: Path) -> None:
    assert_bad_weights_refused(load_cnn_shapes, tmp_path, "train_cnn_shapes")


def test_recipe_writes_weights_only_above_the_accuracy_floor(tmp_path: Path, capsys) -> None:
    from probe.recipes import train_cnn_shapes as recipe

    out = tmp_path / "w.safetensors"
    tiny = ["--steps", "2", "--batch-size", "8", "--n-eval", "16", "--quiet", "--out", str(out)]
    assert_recipe_keeps_its_floor(recipe, out, tiny, "accuracy")


def test_eval_on_a_random_model_is_near_chance() -> None:
    torch.manual_seed(0)
    model = build_cnn_shapes().eval()
    result = eval_cnn_faithfulness(
        model, n=8, batch_size=8, methods=(("cbam-spatial", {"stage": None}), ("random", {}))
    )
    assert set(result["methods"]) == {"cbam-spatial[stage=None]", "random"}
    row = result["methods"]["random"]
    assert row["pointing_game_n"] == 8 and 0 <= row["pointing_game"] <= 1
    assert 0 < result["chance"] < 1 and result["grid"] == [8, 8]
    json.dumps(result)
    assert "| random |" in cnn_faithfulness_markdown(result)
    gates = eval_cnn_gates(model, n=12)
    assert set(gates["stages"]) == {"0", "1", "2", "3"}
    assert len(gates["profiles"]["3"]) == 4 and len(gates["profiles"]["3"][0]) == 96


@pytest.mark.slow
def test_cnn_recipe_figures(tmp_path: Path) -> None:
    from probe.recipes import cnn_attention

    out = tmp_path / "figs"
    assert cnn_attention.main(["--out", str(out), "--n", "20", "--images", "1", "--quiet",
                               "--json", str(tmp_path / "e.json")]) == 0
    assert (out / "cnn_gates_0.png").exists() and (out / "cnn_channel_profiles.png").exists()
    assert json.loads((tmp_path / "e.json").read_text())["faithfulness"]["n"] == 20


def test_probe_eval_faithfulness_on_the_cnn(tmp_path: Path, capsys) -> None:
    from probe.cli import main

    out = tmp_path / "cnn.json"
    rc = main(["eval", "faithfulness", "--model", "cnn-shapes", "--n", "4", "--method",
               "cbam-spatial", "--method", "random", "--option", "cbam-spatial.stage=0",
               "--json", str(out), "--quiet"])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["task"] == "cnn-faithfulness" and result["accuracy"] == 1.0
    assert set(result["methods"]) == {"cbam-spatial[stage=0]", "random"}
    assert "| cbam-spatial[stage=0] |" in capsys.readouterr().out


def test_eval_faithfulness_refuses_a_one_cell_grid(tmp_path: Path, capsys) -> None:
    """resnet18 pools 32x32 images to one cell: every map would rank it first and score 1.0
    against a chance of 1.0; refused in one line, nothing written."""
    from probe.cli import main

    out = tmp_path / "r18.json"
    rc = main(["eval", "faithfulness", "--model", "timm:resnet18", "--n", "2", "--json",
               str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "on a 1x1 grid" in err[0] and "cnn-shapes" in err[0]
    assert not out.exists()
