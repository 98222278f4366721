"""``detr-shapes``: the model definition and its training recipe (no weights ship: the recipe
does not reach a usable detector within its CPU budget, see the README)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import probe
from probe.models._detr_shapes import build_detr_shapes, load_detr_shapes


def test_missing_and_mismatched_weights_raise(tmp_path: Path) -> None:
    with pytest.raises(probe.ProbeError, match="train_detr_shapes"):
        load_detr_shapes(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    bad = tmp_path / "bad.safetensors"
    save_file({"x": torch.zeros(1)}, str(bad))
    with pytest.raises(probe.ProbeError, match="do not match"):
        load_detr_shapes(bad)


def test_every_parameter_trains_and_the_grid_is_8x8() -> None:
    model = build_detr_shapes()
    assert all(p.requires_grad for p in model.parameters())
    tr = probe.trace(model.eval(), torch.zeros(1, 3, 64, 64))
    assert tr.grid == (8, 8) and tr.cross.attentions.shape == (2, 1, 4, 8, 64)


def test_recipe_is_deterministic_and_keeps_its_floor(tmp_path: Path) -> None:
    from probe.recipes import train_detr_shapes as recipe

    out = tmp_path / "w.safetensors"
    tiny = ["--steps", "2", "--batch-size", "4", "--n-eval", "8", "--quiet", "--out", str(out)]
    assert recipe.main(tiny) == 1 and not out.exists()  # two steps cannot reach the recall floor
    assert recipe.main([*tiny, "--min-recall", "0"]) == 0
    from safetensors.torch import load_file

    first = load_file(str(out))
    assert recipe.main([*tiny, "--min-recall", "0"]) == 0
    second = load_file(str(out))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert recipe.main(["--steps", "0"]) == 2
