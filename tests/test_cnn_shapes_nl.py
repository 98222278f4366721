"""The shipped ``cnn-shapes-nl`` weights (a timm ResNet with one non-local block), its recipe,
its query-point numbers and its ``probe render gates`` view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import probe
from probe.models._cnn_shapes_nl import (
    CNN_NL_WEIGHTS_PATH,
    build_cnn_shapes_nl,
    load_cnn_shapes_nl,
    read_cnn_shapes_nl_metadata,
)
from tests._shipped import assert_bad_weights_refused, assert_recipe_keeps_its_floor


def test_weights_are_small_and_carry_their_recipe() -> None:
    assert CNN_NL_WEIGHTS_PATH.stat().st_size < 1_000_000
    meta = read_cnn_shapes_nl_metadata()
    assert meta["model"] == "cnn-shapes-nl" and float(meta["accuracy"]) >= 0.97
    assert meta["threads"] == "1" and meta["nonlocal_stage"] == "1"


def test_shipped_weights_accuracy_and_attention() -> None:
    model, processor = probe.load_model("cnn-shapes-nl")
    assert processor is None and not model.training
    data = probe.make_shapes(1000, seed=10_000)
    with torch.no_grad():
        accuracy = float((model(data.images).argmax(-1) == data.labels).float().mean())
    assert accuracy >= 0.97, f"held-out accuracy {accuracy:.3f}"
    gt = probe.trace_gates(model, data.images[:3])
    [gate] = gt.gates
    assert gt.kinds == ("nonlocal",) and gate.name == "layer2.0.se" and gate.stage == 1
    assert gate.feature_size == (8, 8) and gate.stride == (4.0, 4.0)
    assert gate.values.shape == (3, 64, 64)
    torch.testing.assert_close(gate.values.sum(-1), torch.ones(3, 64))


def test_missing_and_mismatched_weights_raise(tmp_path: Path) -> None:
    assert_bad_weights_refused(load_cnn_shapes_nl, tmp_path, "train_cnn_shapes_nl")


def test_recipe_is_deterministic_and_keeps_the_accuracy_floor(tmp_path: Path) -> None:
    from probe.recipes import train_cnn_shapes_nl as recipe

    out = tmp_path / "w.safetensors"
    tiny = ["--steps", "2", "--batch-size", "8", "--n-eval", "16", "--quiet", "--out", str(out)]
    written = assert_recipe_keeps_its_floor(recipe, out, tiny, "accuracy")
    assert written.keys() == set(build_cnn_shapes_nl().state_dict())


def test_query_points_on_a_hand_made_mask() -> None:
    from probe.recipes.nonlocal_demo import query_points

    cov = torch.zeros(4, 4)
    cov[0, 0], cov[0, 1], cov[1, 0] = 1.0, 0.5, 0.25
    on, off = query_points(cov)
    assert on == (0, 0) and off == (3, 3)


def test_nonlocal_stats_are_consistent() -> None:
    from probe.recipes.nonlocal_demo import nonlocal_stats, stats_markdown

    stats = nonlocal_stats(n=12)
    assert stats["module"] == "layer2.0.se" and stats["feature_size"] == [8, 8]
    obj = stats["object_queries"]
    assert 0 < obj["mass"]["mean"] < 1 and 0 < obj["baseline"]["mean"] < 1
    assert obj["mass"]["n"] == 12  # every image has a cell at least half covered
    assert stats["entropy"]["mean"] <= stats["entropy"]["uniform"] + 1e-6
    assert stats["accuracy"]["trained"] >= stats["accuracy"]["block_removed"]
    json.dumps(stats)
    assert "| on the object |" in stats_markdown(stats)


def test_render_gates_on_the_nonlocal_model(tmp_path: Path, capsys) -> None:
    from probe.cli import main

    rc = main(["render", "gates", "--model", "cnn-shapes-nl", "--seed", "1", "--out",
               str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    [path] = [Path(line) for line in out.strip().splitlines()]
    assert path.name.startswith("gates_cnn-shapes-nl_") and path.stat().st_size > 1000
    assert "_spatial-gradcam_" in path.name  # the non-local query map is drawn


def test_render_gates_names_what_it_draws_for_branch_gates(tmp_path: Path, capsys) -> None:
    """skresnet18 has only branch gates (one weight per kernel and channel): no map over the
    image, so the first figure is GradCAM alone and its file name says so; the branch gates get
    a figure of their own."""
    from probe.cli import main

    rc = main(["render", "gates", "--model", "timm:skresnet18", "--out", str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    cam, branch = [Path(line) for line in out.strip().splitlines()]
    assert cam.name.startswith("gates_skresnet18_gradcam_") and cam.stat().st_size > 1000
    assert branch.name.startswith("gates_skresnet18_branch_") and branch.stat().st_size > 1000


@pytest.mark.slow
def test_nonlocal_recipe_figures(tmp_path: Path) -> None:
    from probe.recipes import nonlocal_demo

    out = tmp_path / "figs"
    assert nonlocal_demo.main(["--out", str(out), "--n", "10", "--images", "1", "--quiet",
                               "--json", str(tmp_path / "s.json")]) == 0
    assert (out / "cnn_nonlocal_0.png").exists()
    assert json.loads((tmp_path / "s.json").read_text())["n"] == 10
