"""The shipped ``detr-shapes`` weights, its training recipe and its attention recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import probe
from probe.models._detr_shapes import (
    DETR_WEIGHTS_PATH,
    build_detr_shapes,
    load_detr_shapes,
    read_detr_shapes_metadata,
)
from tests._shipped import assert_bad_weights_refused, assert_recipe_keeps_its_floor

MIN_RECALL = 0.35  # floor on 200 held-out scenes (the shipped weights: 0.44 on 1000, README)


def test_weights_are_small_and_carry_their_recipe() -> None:
    assert DETR_WEIGHTS_PATH.stat().st_size < 2_000_000
    meta = read_detr_shapes_metadata()
    assert meta["model"] == "detr-shapes" and meta["threads"] == "1"
    assert float(meta["recall"]) >= MIN_RECALL


def test_shipped_weights_detect_held_out_scenes() -> None:
    from probe.recipes.train_detr_shapes import detection_quality

    model, processor = probe.load_model("detr-shapes")
    assert processor is None and not model.training
    assert model.config._attn_implementation == "sdpa"
    quality = detection_quality(model, 200)
    assert quality["recall"] >= MIN_RECALL and quality["precision"] >= MIN_RECALL, quality


def test_missing_and_mismatched_weights_raise(tmp_path: Path) -> None:
    assert_bad_weights_refused(load_detr_shapes, tmp_path, "train_detr_shapes")


def test_every_parameter_trains_and_the_grid_is_8x8() -> None:
    model = build_detr_shapes()
    assert all(p.requires_grad for p in model.parameters())
    tr = probe.trace(model.eval(), torch.zeros(1, 3, 64, 64))
    assert tr.grid == (8, 8) and tr.cross.attentions.shape == (2, 1, 4, 8, 64)


def test_recipe_is_deterministic_and_keeps_its_floor(tmp_path: Path) -> None:
    from probe.recipes import train_detr_shapes as recipe

    out = tmp_path / "w.safetensors"
    tiny = ["--steps", "2", "--batch-size", "4", "--n-eval", "8", "--quiet", "--out", str(out)]
    assert_recipe_keeps_its_floor(recipe, out, tiny, "recall")


def test_attention_recipe_figures_and_numbers(tmp_path: Path) -> None:
    from probe.recipes import detr_attention

    [path] = detr_attention.query_figures(str(tmp_path), images=1)
    assert Path(path).stat().st_size > 1000
    result = detr_attention.evaluate(6)
    assert result["found_objects"] >= 1
    for row in result["attention_in_box"].values():
        assert 0 <= row["mean"] <= 1
    assert 0 < result["box_area_baseline"]["mean"] < 1


def test_box_mass_by_hand() -> None:
    from probe.recipes.detr_attention import _box_mass

    cells = torch.zeros(8, 8)
    cells[2, 3] = 0.75
    cells[0, 0] = 0.25
    cell = torch.tensor([3.5 / 8, 2.5 / 8, 1 / 8, 1 / 8])  # exactly cell (2, 3) of a 64x64 image
    assert _box_mass(cells, cell, 64) == pytest.approx(0.75)
    half = torch.tensor([3.75 / 8, 2.5 / 8, 0.5 / 8, 1 / 8])  # its right half
    assert _box_mass(cells, half, 64) == pytest.approx(0.375)
    mass = _box_mass(torch.full((8, 8), 1 / 64), torch.tensor([0.5, 0.5, 0.5, 0.25]), 64)
    assert mass == pytest.approx(0.125)
