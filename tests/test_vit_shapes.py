"""The shapes generator, the shipped ``vit-shapes`` weights and their training recipe."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from probe._errors import ProbeError
from probe.models._shapes import SHAPE_CLASSES, ShapesBatch, denormalize, make_shapes, sample_image
from probe.models._vit_shapes import (
    VIT_SHAPES_CONFIG,
    WEIGHTS_PATH,
    build_vit_shapes,
    load_vit_shapes,
    read_vit_shapes_metadata,
)

# Held out from training (seeds >= 1_000_000) and from the recipe's own evaluation (10_000).
TEST_SEED = 20_000


def _recipe() -> ModuleType:
    """``probe.recipes.train_vit_shapes``, or the source file when probe is not installed yet."""
    try:
        return importlib.import_module("probe.recipes.train_vit_shapes")
    except ModuleNotFoundError:
        path = Path(__file__).resolve().parents[1] / "recipes" / "train_vit_shapes.py"
        spec = importlib.util.spec_from_file_location("_train_vit_shapes", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


# --- generator -----------------------------------------------------------------------------


def test_same_seed_identical_different_seed_different() -> None:
    a, b, c = make_shapes(64, seed=3), make_shapes(64, seed=3), make_shapes(64, seed=4)
    assert torch.equal(a.images, b.images)
    assert torch.equal(a.labels, b.labels)
    assert torch.equal(a.masks, b.masks)
    assert not torch.equal(a.images, c.images)
    assert not torch.equal(a.masks, c.masks)


def test_generator_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    make_shapes(8, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("image_size", [16, 32, 48])
def test_shapes_and_dtypes(image_size: int) -> None:
    batch = make_shapes(10, seed=0, image_size=image_size)
    assert isinstance(batch, ShapesBatch)
    assert len(batch) == 10
    assert batch.images.shape == (10, 3, image_size, image_size)
    assert batch.images.dtype == torch.float32
    assert batch.labels.shape == (10,) and batch.labels.dtype == torch.int64
    assert batch.masks.shape == (10, image_size, image_size) and batch.masks.dtype == torch.bool
    assert batch.images.min() >= -1.0 and batch.images.max() <= 1.0


def test_masks_non_empty_and_sized_inside_the_image() -> None:
    size = 32
    batch = make_shapes(200, seed=5, image_size=size)
    for mask in batch.masks:
        rows = mask.any(dim=1).nonzero().flatten()
        cols = mask.any(dim=0).nonzero().flatten()
        assert rows.numel() > 0 and cols.numel() > 0
        # The bounding box (at most image_size // 2) lies fully inside the image.
        assert int(rows[-1] - rows[0]) + 1 <= size // 2
        assert int(cols[-1] - cols[0]) + 1 <= size // 2
        assert int(mask.sum()) >= 10


def test_square_mask_fills_its_box_and_disk_does_not() -> None:
    batch = make_shapes(100, seed=6)
    for label, mask in zip(batch.labels.tolist(), batch.masks):
        rows = mask.any(dim=1).nonzero().flatten()
        cols = mask.any(dim=0).nonzero().flatten()
        box = (int(rows[-1] - rows[0]) + 1) * (int(cols[-1] - cols[0]) + 1)
        if SHAPE_CLASSES[label] == "square":
            assert int(mask.sum()) == box
        else:
            assert int(mask.sum()) < box


def test_foreground_contrasts_with_background() -> None:
    batch = make_shapes(100, seed=7)
    pixels = batch.images * 0.5 + 0.5  # [n, 3, h, w] in 0..1
    for image, mask in zip(pixels, batch.masks):
        fg = image[:, mask].mean(dim=1)
        bg = image[:, ~mask].mean(dim=1)
        # Per channel at least 0.3 apart before noise; clamping at 0/1 shrinks it a little.
        assert float((fg - bg).abs().min()) > 0.2


def test_all_classes_present_and_balanced() -> None:
    batch = make_shapes(200, seed=8)
    counts = torch.bincount(batch.labels, minlength=len(SHAPE_CLASSES))
    assert counts.tolist() == [50, 50, 50, 50]
    assert set(batch.class_names) == set(SHAPE_CLASSES)
    odd = torch.bincount(make_shapes(203, seed=8).labels, minlength=4)
    assert int(odd.min()) >= 50 and int(odd.max()) <= 51


def test_display_helpers() -> None:
    batch = sample_image(seed=2)
    assert len(batch) == 1
    shown = batch.to_display(0)
    assert isinstance(shown, np.ndarray)
    assert shown.shape == (32, 32, 3)
    assert shown.min() >= 0.0 and shown.max() <= 1.0
    np.testing.assert_allclose(shown, denormalize(batch.images[0]))
    np.testing.assert_allclose(
        shown.transpose(2, 0, 1) * 2 - 1, batch.images[0].numpy(), atol=1e-6
    )
    with pytest.raises(ProbeError):
        batch.to_display(1)
    with pytest.raises(ProbeError):
        denormalize(batch.images)


@pytest.mark.parametrize(
    "kwargs", [{"n": 0}, {"n": -3}, {"n": 4, "image_size": 8}, {"n": 4, "seed": -1}]
)
def test_bad_arguments_raise_probe_error(kwargs: dict[str, int]) -> None:
    with pytest.raises(ProbeError):
        make_shapes(**kwargs)


def test_size_range_controls_box_side() -> None:
    batch = make_shapes(40, seed=9, size_range=(12, 12))
    for label, mask in zip(batch.labels.tolist(), batch.masks):
        cols = mask.any(dim=0).nonzero().flatten()
        rows = mask.any(dim=1).nonzero().flatten()
        assert int(cols[-1] - cols[0]) + 1 == 12
        # The triangle's apex row can fall between pixel centres: 11 or 12 rows.
        heights = (11, 12) if SHAPE_CLASSES[label] == "triangle" else (12,)
        assert int(rows[-1] - rows[0]) + 1 in heights


@pytest.mark.parametrize("size_range", [(3, 8), (10, 8), (8, 40), (8,), (8.0, 9)])
def test_bad_size_range_raises_probe_error(size_range: tuple) -> None:
    with pytest.raises(ProbeError, match="size_range"):
        make_shapes(4, size_range=size_range)


# --- shipped weights -----------------------------------------------------------------------


def test_weights_file_is_small() -> None:
    assert WEIGHTS_PATH.is_file()
    assert WEIGHTS_PATH.stat().st_size < 5 * 1024 * 1024


def test_weights_metadata() -> None:
    meta = read_vit_shapes_metadata()
    assert meta["image_size"] == str(VIT_SHAPES_CONFIG["img_size"])
    assert meta["classes"] == ",".join(SHAPE_CLASSES)
    assert float(meta["accuracy"]) >= 0.97
    assert "seed" in meta


def test_loaded_model_structure() -> None:
    from timm.models.vision_transformer import VisionTransformer

    model = load_vit_shapes()
    assert isinstance(model, VisionTransformer)
    assert not model.training
    assert tuple(model.patch_embed.grid_size) == (8, 8)
    assert model.num_prefix_tokens == 1
    assert model.num_classes == len(SHAPE_CLASSES)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_shipped_weights_accuracy() -> None:
    model = load_vit_shapes()
    batch = make_shapes(1000, seed=TEST_SEED)
    with torch.no_grad():
        predictions = model(batch.images).argmax(dim=-1)
    accuracy = float((predictions == batch.labels).float().mean())
    assert accuracy >= 0.97, f"held-out accuracy {accuracy:.3f}"


def test_missing_weights_raise_probe_error(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="train_vit_shapes"):
        load_vit_shapes(tmp_path / "nope.safetensors")


def test_build_is_random_init_in_the_same_architecture() -> None:
    model = build_vit_shapes()
    shipped = load_vit_shapes()
    assert model.state_dict().keys() == shipped.state_dict().keys()
    out = model.eval()(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, len(SHAPE_CLASSES))


# --- training recipe -----------------------------------------------------------------------

_TINY = ["--steps", "2", "--batch-size", "32", "--n-eval", "64", "--quiet"]


@pytest.mark.slow  # trains and evaluates: several seconds on a shared CPU
def test_training_smoke_writes_loadable_file(tmp_path: Path) -> None:
    recipe = _recipe()
    threads = torch.get_num_threads()
    rng = torch.random.get_rng_state()
    out = tmp_path / "sub" / "w.safetensors"
    assert recipe.main([*_TINY, "--min-accuracy", "0", "--out", str(out)]) == 0
    assert torch.get_num_threads() == threads
    assert torch.equal(rng, torch.random.get_rng_state())
    model = load_vit_shapes(out)
    assert not model.training
    meta = read_vit_shapes_metadata(out)
    assert meta["seed"] == "0" and meta["steps"] == "2"
    assert [p.name for p in out.parent.iterdir()] == ["w.safetensors"]  # no temp file left


@pytest.mark.slow  # trains (twice for determinism): several seconds on a shared CPU
def test_training_is_deterministic(tmp_path: Path) -> None:
    recipe = _recipe()
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert recipe.main([*_TINY, "--seed", "1", "--min-accuracy", "0", "--out", str(a)]) == 0
    assert recipe.main([*_TINY, "--seed", "1", "--min-accuracy", "0", "--out", str(b)]) == 0
    sa, sb = load_vit_shapes(a).state_dict(), load_vit_shapes(b).state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_training_below_min_accuracy_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    assert _recipe().main([*_TINY, "--min-accuracy", "1.01", "--out", str(out)]) == 1
    assert not out.exists()
