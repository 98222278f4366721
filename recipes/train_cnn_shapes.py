"""Train the ``cnn-shapes`` model (a timm ResNet with CBAM) and write its safetensors weights.

Run ``python -m probe.recipes.train_cnn_shapes`` (900 steps of 96 images: about 8 minutes of
CPU time on one core; the shipped weights took 25 minutes of wall-clock time on a shared,
loaded machine) to reproduce ``probe/models/weights/cnn_shapes.safetensors`` (99.9% held-out
accuracy on 5000 images).

The data, curriculum, held-out split and learning-rate schedule are those of
:mod:`probe.recipes.train_vit_shapes`: every step draws a fresh batch from
:func:`probe.models._shapes.make_shapes` with a seed of at least two million, the first quarter
of the steps uses 12..16-pixel shapes, accuracy is measured on the split of seed
:data:`~probe.recipes.train_vit_shapes.EVAL_SEED`. Optimiser: AdamW (weight decay 0.05 on
convolution and linear weights, none on biases and norms), linear warm-up over 100 steps then
cosine decay, gradient clipping at 1.0. Determinism as for ``vit-shapes``: the initialisation
uses ``torch.manual_seed(seed)``, the thread count is fixed (``--threads``, default 1), the
global RNG state and thread count of the calling process are restored on return.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
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
    build: Callable[[], nn.Module] | None = None,
) -> nn.Module:
    """Train a fresh ``cnn-shapes`` model for ``steps`` optimiser steps; returns it in eval mode.

    ``build`` makes the untrained network (default ``build_cnn_shapes``; ``cnn-shapes-nl``
    passes its own); it runs right after ``torch.manual_seed(seed)``.
    """
    import torch

    from probe.models._cnn_shapes import CNN_SHAPES_IMAGE_SIZE, build_cnn_shapes

    torch.manual_seed(seed)
    model = (build or build_cnn_shapes)()
    optimizer = adamw(model, lr=lr, weight_decay=weight_decay)
    return train_classifier(
        model, optimizer, seed=seed, steps=steps, batch_size=batch_size, lr=lr,
        warmup=WARMUP_STEPS, image_size=CNN_SHAPES_IMAGE_SIZE,
        curriculum_fraction=CURRICULUM_FRACTION, curriculum_sizes=CURRICULUM_SIZES,
        log_every=100, log_lr=False, quiet=quiet,
    )


def _parser() -> argparse.ArgumentParser:
    from probe.models._cnn_shapes import CNN_WEIGHTS_PATH

    return training_parser(
        prog="python -m probe.recipes.train_cnn_shapes",
        description="Train cnn-shapes on generated shape images and write safetensors weights.",
        steps=900,
        n_eval=5_000,
        batch_size=96,
        lr=3e-3,
        weight_decay=0.05,
        out=CNN_WEIGHTS_PATH,
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 1 accuracy too low, 2 bad args)."""
    from probe.models._cnn_shapes import CNN_SHAPES_CONFIG, CNN_SHAPES_IMAGE_SIZE
    from probe.models._shapes import SHAPE_CLASSES

    metadata = {
        "model": "cnn-shapes",
        "timm_class": "timm.models.resnet.ResNet(BasicBlock)",
        "config": repr(CNN_SHAPES_CONFIG),
        "image_size": str(CNN_SHAPES_IMAGE_SIZE),
        "classes": ",".join(SHAPE_CLASSES),
    }
    assessment = functools.partial(held_out_accuracy, CNN_SHAPES_IMAGE_SIZE, EVAL_SEED)
    return train_main(argv, _parser(), train, assessment, metadata, EVAL_SEED)


if __name__ == "__main__":
    raise SystemExit(main())
