"""Train the ``swin-shapes`` model (a small timm Swin) and write its safetensors weights.

Run ``python -m probe.recipes.train_swin_shapes`` (one thread) to reproduce
``probe/models/weights/swin_shapes.safetensors`` (3000 steps of 64 images; the run time and
held-out accuracy are in the README's Embedded models table).

The data, curriculum, held-out split and learning-rate schedule are those of
:mod:`probe.recipes.train_vit_shapes`: every step draws a fresh batch from
:func:`probe.models._shapes.make_shapes` with a seed of at least two million, the first quarter
of the steps uses 12..16-pixel shapes, accuracy is measured on the split of seed
:data:`~probe.recipes.train_vit_shapes.EVAL_SEED`. Optimiser: AdamW (weight decay 0.05 on
weight matrices, none on biases, norms and the relative position bias tables), linear warm-up
over 100 steps then cosine decay, gradient clipping at 1.0, no dropout. Determinism as for
``vit-shapes``: the initialisation uses ``torch.manual_seed(seed)``, the thread count is fixed
(``--threads``, default 1), the global RNG state and thread count of the calling process are
restored on return.
"""

from __future__ import annotations

import argparse
import functools
from typing import TYPE_CHECKING

from probe.recipes._training import (
    adamw,
    held_out_accuracy,
    train_classifier,
    train_main,
    training_parser,
)
from probe.recipes.train_vit_shapes import CURRICULUM_FRACTION, CURRICULUM_SIZES, EVAL_SEED

if TYPE_CHECKING:
    from torch import nn

__all__ = ["WARMUP_STEPS", "main", "train"]

WARMUP_STEPS = 100
"""Linear warm-up length of the learning rate."""


def train(
    *, seed: int, steps: int, batch_size: int, lr: float, weight_decay: float, quiet: bool = False,
) -> nn.Module:
    """Train a fresh ``swin-shapes`` model for ``steps`` optimiser steps; returns it in eval
    mode."""
    import torch

    from probe.models._swin_shapes import SWIN_SHAPES_CONFIG, build_swin_shapes

    torch.manual_seed(seed)
    model = build_swin_shapes()

    def decays(name: str, p: torch.Tensor) -> bool:
        return p.ndim >= 2 and "relative_position_bias_table" not in name

    optimizer = adamw(model, lr=lr, weight_decay=weight_decay, decays=decays)
    return train_classifier(
        model, optimizer, seed=seed, steps=steps, batch_size=batch_size, lr=lr,
        warmup=WARMUP_STEPS, image_size=int(SWIN_SHAPES_CONFIG["img_size"]),
        curriculum_fraction=CURRICULUM_FRACTION, curriculum_sizes=CURRICULUM_SIZES,
        log_every=100, log_lr=True, quiet=quiet,
    )


def _parser() -> argparse.ArgumentParser:
    from probe.models._swin_shapes import SWIN_WEIGHTS_PATH

    return training_parser(
        prog="python -m probe.recipes.train_swin_shapes",
        description="Train swin-shapes on generated shape images and write safetensors weights.",
        steps=3000,
        n_eval=5_000,
        batch_size=64,
        lr=1.5e-3,
        weight_decay=0.05,
        out=SWIN_WEIGHTS_PATH,
        floor_default=0.95,
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 1 accuracy too low, 2 bad args)."""
    from probe.models._shapes import SHAPE_CLASSES
    from probe.models._swin_shapes import SWIN_SHAPES_BASE, SWIN_SHAPES_CONFIG

    config = SWIN_SHAPES_CONFIG
    metadata = {
        "model": "swin-shapes",
        "timm_base": SWIN_SHAPES_BASE,
        "image_size": str(config["img_size"]),
        "patch_size": str(config["patch_size"]),
        "window_size": str(config["window_size"]),
        "classes": ",".join(SHAPE_CLASSES),
    }
    assessment = functools.partial(held_out_accuracy, int(config["img_size"]), EVAL_SEED)
    return train_main(argv, _parser(), train, assessment, metadata, EVAL_SEED)


if __name__ == "__main__":
    raise SystemExit(main())
