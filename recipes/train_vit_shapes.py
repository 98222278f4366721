"""Train the ``vit-shapes`` model and write its safetensors weights.

Run ``python -m probe.recipes.train_vit_shapes`` (3000 steps, about 25 minutes on one CPU
core of this project's machines) to reproduce ``probe/models/weights/vit_shapes.safetensors``.

Data: every optimiser step draws a fresh batch from :func:`probe.models._shapes.make_shapes` with
seed ``2_000_000 + 1_000_000 * seed + step`` (the random size, position, colours and noise of the
generator are the augmentation). Curriculum: during the first quarter of the steps the shapes
are drawn with bounding boxes of 12..16 pixels, then over the full 8..16 range. Accuracy is
measured on a held-out split generated with seed :data:`EVAL_SEED` (below one million, so never
a training seed). Optimiser: AdamW (betas 0.9, 0.98; weight decay 0.05 on weight matrices,
none on biases, norms, position embedding and CLS token), linear warm-up over 150 steps then
cosine decay, gradient clipping at 1.0, no dropout.

Determinism: the model initialisation uses ``torch.manual_seed(seed)`` and everything else a
local generator; the thread count is fixed (``--threads``, default 1). Two runs with the same
arguments on the same machine and torch version give bit-identical weights; other CPUs, BLAS
builds or torch versions can differ in the last bits of floating-point sums, and so give
slightly different weights with the same accuracy to within a fraction of a percent. The global
RNG state and thread count of the calling process are restored on return.
"""

from __future__ import annotations

import argparse
import functools
from typing import TYPE_CHECKING

from probe.recipes._training import (
    adamw,
    evaluate,
    held_out_accuracy,
    train_classifier,
    train_main,
    training_parser,
)

if TYPE_CHECKING:
    from torch import nn

__all__ = ["EVAL_SEED", "main", "train", "evaluate"]

EVAL_SEED = 10_000
"""Seed of the held-out evaluation split."""


WARMUP_STEPS = 150
"""Linear warm-up length of the learning rate."""

CURRICULUM_FRACTION = 0.25
"""Fraction of the steps trained on larger shapes first."""

CURRICULUM_SIZES = (12, 16)
"""Bounding-box sides (pixels) of the shapes during the curriculum."""


def train(
    *,
    seed: int,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    quiet: bool = False,
) -> nn.Module:
    """Train a fresh ``vit-shapes`` model for ``steps`` optimiser steps; returns it in eval mode."""
    import timm
    import torch

    from probe.models._vit_shapes import VIT_SHAPES_BASE, VIT_SHAPES_CONFIG

    torch.manual_seed(seed)
    model = timm.create_model(VIT_SHAPES_BASE, **VIT_SHAPES_CONFIG)

    def decays(name: str, p: torch.Tensor) -> bool:
        return p.ndim >= 2 and "pos_embed" not in name and "cls_token" not in name

    optimizer = adamw(model, lr=lr, weight_decay=weight_decay, decays=decays, betas=(0.9, 0.98))
    return train_classifier(
        model, optimizer, seed=seed, steps=steps, batch_size=batch_size, lr=lr,
        warmup=WARMUP_STEPS, image_size=int(VIT_SHAPES_CONFIG["img_size"]),
        curriculum_fraction=CURRICULUM_FRACTION, curriculum_sizes=CURRICULUM_SIZES,
        log_every=250, log_lr=True, quiet=quiet,
    )


def _parser() -> argparse.ArgumentParser:
    from probe.models._vit_shapes import WEIGHTS_PATH

    return training_parser(
        prog="python -m probe.recipes.train_vit_shapes",
        description="Train vit-shapes on generated shape images and write safetensors weights.",
        steps=3000,
        n_eval=5_000,
        batch_size=128,
        lr=1.5e-3,
        weight_decay=0.05,
        out=WEIGHTS_PATH,
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 1 accuracy too low, 2 bad args)."""
    from probe.models._shapes import SHAPE_CLASSES
    from probe.models._vit_shapes import VIT_SHAPES_BASE, VIT_SHAPES_CONFIG

    metadata = {
        "model": "vit-shapes",
        "timm_base": VIT_SHAPES_BASE,
        "image_size": str(VIT_SHAPES_CONFIG["img_size"]),
        "patch_size": str(VIT_SHAPES_CONFIG["patch_size"]),
        "classes": ",".join(SHAPE_CLASSES),
    }
    assessment = functools.partial(held_out_accuracy, int(VIT_SHAPES_CONFIG["img_size"]), EVAL_SEED)
    return train_main(argv, _parser(), train, assessment, metadata, EVAL_SEED)


if __name__ == "__main__":
    raise SystemExit(main())
