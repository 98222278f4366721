"""The shipped ``swin-shapes`` weights, its training recipe, its CLI default and its figures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import probe
from probe.models._swin_shapes import (
    SWIN_SHAPES_CONFIG,
    SWIN_WEIGHTS_PATH,
    build_swin_shapes,
    load_swin_shapes,
    read_swin_shapes_metadata,
)
from tests._shipped import assert_bad_weights_refused, assert_recipe_keeps_its_floor

# Held out from training (seeds >= 2_000_000) and from the recipe's own evaluation (10_000).
TEST_SEED = 20_000
ACCURACY_FLOOR = 0.94  # the shipped weights score 0.968 on this split (1000 images)


def test_weights_are_small_and_carry_their_recipe() -> None:
    assert SWIN_WEIGHTS_PATH.stat().st_size < 1_000_000
    meta = read_swin_shapes_metadata()
    assert meta["model"] == "swin-shapes" and meta["timm_base"] == "swin_tiny_patch4_window7_224"
    assert float(meta["accuracy"]) >= 0.95 and meta["eval_n"] == "5000"  # recipe floor
    assert meta["threads"] == "1" and meta["classes"] == ",".join(probe.SHAPE_CLASSES)
    assert meta["window_size"] == "4" and meta["patch_size"] == "4"


def test_load_model_gives_a_windowed_swin_with_shifted_blocks() -> None:
    model, processor = probe.load_model("swin-shapes")
    assert processor is None and not model.training and model.probe_name == "swin-shapes"
    assert "swin-shapes" in probe.list_models()
    tr = probe.trace(model, probe.make_shapes(2, seed=TEST_SEED).images)
    assert [b.stage for b in tr.windows] == [0, 0, 1, 1]
    assert [b.grid for b in tr.windows] == [(8, 8), (8, 8), (4, 4), (4, 4)]
    assert [b.layout.num_windows for b in tr.windows] == [4, 4, 1, 1]  # stage 1: one window
    assert [b.layout.shift for b in tr.windows] == [(0, 0), (2, 2), (0, 0), (0, 0)]
    assert tr.windows[1].mask is not None and tr.windows[3].mask is None
    heads = SWIN_SHAPES_CONFIG["num_heads"]
    assert [b.num_heads for b in tr.windows] == [heads[0], heads[0], heads[1], heads[1]]
    assert [b.token_size for b in tr.windows][::2] == [(4.0, 4.0), (8.0, 8.0)]


def test_shipped_weights_accuracy_on_a_held_out_split() -> None:
    model, _ = probe.load_model("swin-shapes")
    data = probe.make_shapes(1000, seed=TEST_SEED)
    with torch.no_grad():
        accuracy = float((model(data.images).argmax(-1) == data.labels).float().mean())
    assert accuracy >= ACCURACY_FLOOR, f"held-out accuracy {accuracy:.3f} (chance 0.25)"


def test_build_is_random_init_in_the_same_architecture() -> None:
    torch.manual_seed(0)
    fresh = build_swin_shapes().state_dict()
    shipped = load_swin_shapes().state_dict()
    assert fresh.keys() == shipped.keys()
    assert all(fresh[k].shape == shipped[k].shape for k in fresh)
    assert not torch.equal(fresh["head.fc.weight"], shipped["head.fc.weight"])


def test_missing_and_mismatched_weights_raise(tmp_path: Path) -> None:
    assert_bad_weights_refused(load_swin_shapes, tmp_path, "train_swin_shapes")


@pytest.mark.slow  # trains three tiny runs (determinism): several seconds on a shared CPU
def test_recipe_is_deterministic_and_keeps_the_accuracy_floor(tmp_path: Path) -> None:
    from probe.recipes import train_swin_shapes as recipe

    out = tmp_path / "w.safetensors"
    tiny = ["--steps", "2", "--batch-size", "8", "--n-eval", "16", "--quiet", "--out", str(out)]
    written = assert_recipe_keeps_its_floor(recipe, out, tiny, "accuracy")
    assert written.keys() == build_swin_shapes().state_dict().keys()


def test_probe_models_lists_it(capsys) -> None:
    from probe.cli import main

    assert main(["models"]) == 0
    [line] = [ln for ln in capsys.readouterr().out.splitlines() if "swin-shapes" in ln]
    assert "vision" in line and "Swin" in line


def test_render_window_defaults_to_swin_shapes(tmp_path: Path, capsys) -> None:
    from probe.cli import main

    rc = main(["render", "window", "--quiet", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    [path] = out.split()
    assert "swin-shapes" in path and "_L3_q10_" in path  # last block, 4x4 grid: (2, 2) = 10


def test_render_window_on_an_image_file(tmp_path: Path, capsys) -> None:
    from PIL import Image

    from probe.cli import main

    data = probe.make_shapes(1, seed=TEST_SEED, image_size=64)
    image = tmp_path / "shape.png"
    Image.fromarray((data.to_display(0) * 255).round().astype("uint8")).save(image)
    rc = main(["render", "window", "--model", "swin-shapes", "--image", str(image), "--layer",
               "1", "--quiet", "--out", str(tmp_path / "figs")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    [path] = out.split()
    assert "_L1_q36_" in path and Path(path).stat().st_size > 1000  # 8x8 grid: (4, 4)


def test_window_figures_and_object_token(tmp_path: Path) -> None:
    from probe.recipes.swin_demo import BLOCKS, object_token, window_figures

    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[8:13, 20:25] = True  # centroid (10, 22)
    assert object_token(mask, (2.0, 2.0)) == (5, 11) and object_token(mask, (4.0, 8.0)) == (2, 2)
    with pytest.raises(probe.ProbeError, match="mask is empty"):
        object_token(torch.zeros(4, 4, dtype=torch.bool), (2.0, 2.0))
    paths = window_figures(str(tmp_path))
    assert [Path(p).name for p in paths] == [f"swin_window_L{b}.png" for b in BLOCKS]
    assert all(Path(p).stat().st_size > 1000 for p in paths)


def test_render_compare_and_curves_on_swin_take_the_methods_that_apply(tmp_path: Path,
                                                                      capsys) -> None:
    """No whole-image attention to read: IG, saliency, GradCAM and random by default, and an
    attention method asked for is refused in one line."""
    from probe.cli import main
    from probe.commands._pages import curve_methods
    from probe.commands.render._args import DEFAULT_WINDOWED_METHODS
    from probe.evaluation._cnn_eval import SWIN_METHODS, default_methods

    model = probe.load_model("swin-shapes").model
    assert curve_methods(model, "vision", [], captures=True, has_target=True) == list(
        DEFAULT_WINDOWED_METHODS) == ["ig", "saliency", "gradcam", "random"]
    assert default_methods(model) == SWIN_METHODS
    rc = main(["render", "compare", "--model", "swin-shapes", "--quiet", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    [path] = out.split()
    assert "compare_swin-shapes_default" in path and Path(path).stat().st_size > 10_000
    rc = main(["render", "compare", "--model", "swin-shapes", "--method", "rollout",
               "--method", "gradcam", "--quiet", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "windowed attention (Swin)" in err[0]
