"""Train ``cnn-shapes-nl`` (a timm ResNet with one non-local block) and write its weights.

Run ``python -m probe.recipes.train_cnn_shapes_nl`` to reproduce
``probe/models/weights/cnn_shapes_nl.safetensors``. Data, curriculum, held-out split, optimiser
and schedule are those of :mod:`probe.recipes.train_cnn_shapes` (its ``train`` loop runs with
:func:`probe.models._cnn_shapes_nl.build_cnn_shapes_nl`); only the number of steps differs.
Determinism as there: fixed seed, fixed thread count (``--threads``, default 1), the calling
process's RNG state and thread count restored on return.
"""

from __future__ import annotations

import argparse
import functools

from probe.recipes._training import held_out_accuracy, train_main, training_parser

__all__ = ["DEFAULT_STEPS", "main"]

DEFAULT_STEPS = 700
"""Optimiser steps of the shipped weights."""


def _parser() -> argparse.ArgumentParser:
    from probe.models._cnn_shapes_nl import CNN_NL_WEIGHTS_PATH

    return training_parser(
        prog="python -m probe.recipes.train_cnn_shapes_nl",
        description="Train cnn-shapes-nl on generated shape images and write safetensors weights.",
        steps=DEFAULT_STEPS,
        n_eval=5_000,
        batch_size=96,
        lr=3e-3,
        weight_decay=0.05,
        out=CNN_NL_WEIGHTS_PATH,
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 1 accuracy too low, 2 bad args)."""
    from probe.models._cnn_shapes import CNN_SHAPES_IMAGE_SIZE
    from probe.models._cnn_shapes_nl import CNN_NL_CONFIG, CNN_NL_STAGE, build_cnn_shapes_nl
    from probe.models._shapes import SHAPE_CLASSES
    from probe.recipes.train_cnn_shapes import train
    from probe.recipes.train_vit_shapes import EVAL_SEED

    metadata = {
        "model": "cnn-shapes-nl",
        "timm_class": "timm.models.resnet.ResNet(BasicBlock)",
        "config": repr(CNN_NL_CONFIG),
        "nonlocal_stage": str(CNN_NL_STAGE),
        "image_size": str(CNN_SHAPES_IMAGE_SIZE),
        "classes": ",".join(SHAPE_CLASSES),
    }
    return train_main(
        argv,
        _parser(),
        functools.partial(train, build=build_cnn_shapes_nl),
        functools.partial(held_out_accuracy, CNN_SHAPES_IMAGE_SIZE, EVAL_SEED),
        metadata,
        EVAL_SEED,
    )


if __name__ == "__main__":
    raise SystemExit(main())
