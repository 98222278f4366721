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
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING

from probe.recipes.train_vit_shapes import (
    CURRICULUM_FRACTION,
    CURRICULUM_SIZES,
    EVAL_SEED,
    _lr_at,
    _save_atomic,
    _train_seed,
    evaluate,
)

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
    import torch.nn.functional as F

    from probe.models._cnn_shapes import CNN_SHAPES_IMAGE_SIZE, build_cnn_shapes
    from probe.models._shapes import make_shapes

    torch.manual_seed(seed)
    model = (build or build_cnn_shapes)()
    params = list(model.named_parameters())
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for _, p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for _, p in params if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=lr,
    )
    running, start = 0.0, time.perf_counter()
    for step in range(steps):
        sizes = CURRICULUM_SIZES if step < CURRICULUM_FRACTION * steps else None
        data = make_shapes(
            batch_size, seed=_train_seed(seed, step), image_size=CNN_SHAPES_IMAGE_SIZE,
            size_range=sizes,
        )
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, steps, lr, WARMUP_STEPS)
        model.train()
        loss = F.cross_entropy(model(data.images), data.labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running += loss.item()
        if not quiet and ((step + 1) % 100 == 0 or step + 1 == steps):
            window = 100 if (step + 1) % 100 == 0 else (step + 1) % 100
            print(
                f"step {step + 1}/{steps}  loss {running / window:.4f}  "
                f"{time.perf_counter() - start:.0f}s",
                flush=True,
            )
            running = 0.0
    return model.eval()


def _parser() -> argparse.ArgumentParser:
    from probe.models._cnn_shapes import CNN_WEIGHTS_PATH

    parser = argparse.ArgumentParser(
        prog="python -m probe.recipes.train_cnn_shapes",
        description="Train cnn-shapes on generated shape images and write safetensors weights.",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--steps", type=int, default=900, help="optimiser steps (default 900)")
    parser.add_argument("--n-eval", type=int, default=5_000, help="held-out images")
    parser.add_argument("--batch-size", type=int, default=96, help="fresh images per step")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--min-accuracy", type=float, default=0.97,
        help="refuse to write weights below this held-out accuracy (default 0.97)",
    )
    parser.add_argument("--out", type=Path, default=CNN_WEIGHTS_PATH, help="output safetensors file")
    parser.add_argument("--quiet", action="store_true", help="print only the final result")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 1 accuracy too low, 2 bad args)."""
    import torch

    from probe.models._cnn_shapes import CNN_SHAPES_CONFIG, CNN_SHAPES_IMAGE_SIZE
    from probe.models._shapes import SHAPE_CLASSES, make_shapes

    args = _parser().parse_args(argv)
    for name in ("n_eval", "batch_size", "threads", "steps"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    if args.seed < 0:
        print("error: --seed must be >= 0", file=sys.stderr)
        return 2
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            start = time.perf_counter()
            model = train(
                seed=args.seed, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                weight_decay=args.weight_decay, quiet=args.quiet,
            )
            seconds = time.perf_counter() - start
            held_out = make_shapes(args.n_eval, seed=EVAL_SEED, image_size=CNN_SHAPES_IMAGE_SIZE)
            accuracy = evaluate(model, held_out.images, held_out.labels)
    finally:
        torch.set_num_threads(previous_threads)
    print(
        f"held-out accuracy {accuracy:.4f} on {args.n_eval} images (seed {EVAL_SEED}); "
        f"{args.steps} steps in {seconds:.0f}s"
    )
    if accuracy < args.min_accuracy:
        print(
            f"error: accuracy {accuracy:.4f} is below --min-accuracy {args.min_accuracy}; "
            "weights not written (train longer with --steps)",
            file=sys.stderr,
        )
        return 1
    metadata = {
        "model": "cnn-shapes",
        "timm_class": "timm.models.resnet.ResNet(BasicBlock)",
        "config": repr(CNN_SHAPES_CONFIG),
        "image_size": str(CNN_SHAPES_IMAGE_SIZE),
        "classes": ",".join(SHAPE_CLASSES),
        "normalize": "(pixels - 0.5) / 0.5",
        "seed": str(args.seed),
        "steps": str(args.steps),
        "batch_size": str(args.batch_size),
        "lr": str(args.lr),
        "threads": str(args.threads),
        "eval_seed": str(EVAL_SEED),
        "eval_n": str(args.n_eval),
        "accuracy": f"{accuracy:.4f}",
        "torch": torch.__version__,
    }
    _save_atomic(model, Path(args.out), metadata)
    if not args.quiet:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
