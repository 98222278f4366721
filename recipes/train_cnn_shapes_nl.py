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
import time
from pathlib import Path

from probe.recipes._training import (
    below_floor,
    deterministic,
    evaluate,
    float_state,
    run_metadata,
    save_weights,
    training_parser,
    valid_args,
)

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
    from probe.models._shapes import SHAPE_CLASSES, make_shapes
    from probe.recipes.train_cnn_shapes import train
    from probe.recipes.train_vit_shapes import EVAL_SEED

    args = _parser().parse_args(argv)
    if not valid_args(args):
        return 2
    with deterministic(args.threads):
        start, cpu = time.perf_counter(), time.process_time()
        model = train(
            seed=args.seed, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
            weight_decay=args.weight_decay, quiet=args.quiet, build=build_cnn_shapes_nl,
        )
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        held_out = make_shapes(args.n_eval, seed=EVAL_SEED, image_size=CNN_SHAPES_IMAGE_SIZE)
        accuracy = evaluate(model, held_out.images, held_out.labels)
    print(
        f"held-out accuracy {accuracy:.4f} on {args.n_eval} images (seed {EVAL_SEED}); "
        f"{args.steps} steps in {seconds:.0f}s wall, {cpu:.0f}s CPU"
    )
    if below_floor("accuracy", accuracy, args.min_accuracy):
        return 1
    metadata = {
        "model": "cnn-shapes-nl",
        "timm_class": "timm.models.resnet.ResNet(BasicBlock)",
        "config": repr(CNN_NL_CONFIG),
        "nonlocal_stage": str(CNN_NL_STAGE),
        "image_size": str(CNN_SHAPES_IMAGE_SIZE),
        "classes": ",".join(SHAPE_CLASSES),
        **run_metadata(args, EVAL_SEED),
        "accuracy": f"{accuracy:.4f}",
    }
    save_weights(float_state(model), Path(args.out), metadata)
    if not args.quiet:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
