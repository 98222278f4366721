"""Train the ``vit-shapes`` model and write its safetensors weights.

Run ``python -m probe.recipes.train_vit_shapes`` (3000 steps, about 25 minutes on one CPU
core of this project's machines) to reproduce ``probe/models/weights/vit_shapes.safetensors``.

Data: every optimiser step draws a fresh batch from :func:`probe.models._shapes.make_shapes` with seed
``2_000_000 + 1_000_000 * seed + step`` (the random size, position, colours and noise of the
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
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
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


def _train_seed(seed: int, step: int) -> int:
    """Generator seed of the training batch of one step (always >= 2_000_000)."""
    return 2_000_000 + 1_000_000 * seed + step


def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 500
) -> float:
    """Accuracy of ``model`` in eval mode.

    Args:
        model: classifier; put in eval mode (and left there).
        images: ``[n, 3, height, width]`` normalised images.
        labels: ``[n]`` int64 class indices.
        batch: images per forward pass.

    Returns:
        Fraction of correctly classified images, in ``0..1``.
    """
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, images.shape[0], batch):
            logits = model(images[start : start + batch])
            correct += int((logits.argmax(-1) == labels[start : start + batch]).sum())
    return correct / images.shape[0]


def _lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine decay to zero."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


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
    import torch.nn.functional as F

    from probe.models._shapes import make_shapes
    from probe.models._vit_shapes import VIT_SHAPES_BASE, VIT_SHAPES_CONFIG

    torch.manual_seed(seed)
    model = timm.create_model(VIT_SHAPES_BASE, **VIT_SHAPES_CONFIG)

    def decays(name: str, p: torch.Tensor) -> bool:
        return p.ndim >= 2 and "pos_embed" not in name and "cls_token" not in name

    params = list(model.named_parameters())
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for n, p in params if decays(n, p)], "weight_decay": weight_decay},
            {"params": [p for n, p in params if not decays(n, p)], "weight_decay": 0.0},
        ],
        lr=lr,
        betas=(0.9, 0.98),
    )
    running, start = 0.0, time.perf_counter()
    for step in range(steps):
        sizes = CURRICULUM_SIZES if step < CURRICULUM_FRACTION * steps else None
        data = make_shapes(batch_size, seed=_train_seed(seed, step), size_range=sizes)
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, steps, lr, WARMUP_STEPS)
        model.train()
        loss = F.cross_entropy(model(data.images), data.labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running += loss.item()
        if not quiet and ((step + 1) % 250 == 0 or step + 1 == steps):
            window = 250 if (step + 1) % 250 == 0 else (step + 1) % 250
            print(
                f"step {step + 1}/{steps}  loss {running / window:.4f}  "
                f"lr {optimizer.param_groups[0]['lr']:.2e}  {time.perf_counter() - start:.0f}s",
                flush=True,
            )
            running = 0.0
    return model.eval()


def _save_atomic(model: nn.Module, out: Path, metadata: dict[str, str]) -> None:
    """Write the state dict to ``out`` via a temporary file in the same folder + ``os.replace``."""
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    state = {name: t.detach().contiguous().float() for name, t in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        save_file(state, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; ship a normally readable file
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _parser() -> argparse.ArgumentParser:
    from probe.models._vit_shapes import WEIGHTS_PATH

    parser = argparse.ArgumentParser(
        prog="python -m probe.recipes.train_vit_shapes",
        description="Train vit-shapes on generated shape images and write safetensors weights.",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--steps", type=int, default=3000, help="optimiser steps (default 3000)")
    parser.add_argument("--n-eval", type=int, default=5_000, help="held-out images")
    parser.add_argument("--batch-size", type=int, default=128, help="fresh images per step")
    parser.add_argument("--lr", type=float, default=1.5e-3, help="peak learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--min-accuracy",
        type=float,
        default=0.97,
        help="refuse to write weights below this held-out accuracy (default 0.97)",
    )
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH, help="output safetensors file")
    parser.add_argument("--quiet", action="store_true", help="print only the final result")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 1 accuracy too low, 2 bad args)."""
    import torch

    from probe.models._shapes import SHAPE_CLASSES, make_shapes
    from probe.models._vit_shapes import VIT_SHAPES_BASE, VIT_SHAPES_CONFIG

    parser = _parser()
    args = parser.parse_args(argv)
    for name in ("n_eval", "batch_size", "threads", "steps"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    if args.seed < 0:
        print("error: --seed must be >= 0", file=sys.stderr)
        return 2
    batch_size, steps = args.batch_size, args.steps

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            start = time.perf_counter()
            model = train(
                seed=args.seed,
                steps=steps,
                batch_size=batch_size,
                lr=args.lr,
                weight_decay=args.weight_decay,
                quiet=args.quiet,
            )
            seconds = time.perf_counter() - start
            held_out = make_shapes(
                args.n_eval, seed=EVAL_SEED, image_size=int(VIT_SHAPES_CONFIG["img_size"])
            )
            accuracy = evaluate(model, held_out.images, held_out.labels)
    finally:
        torch.set_num_threads(previous_threads)

    print(
        f"held-out accuracy {accuracy:.4f} on {args.n_eval} images (seed {EVAL_SEED}); "
        f"{steps} steps in {seconds:.0f}s"
    )
    if accuracy < args.min_accuracy:
        print(
            f"error: accuracy {accuracy:.4f} is below --min-accuracy {args.min_accuracy}; "
            "weights not written (train longer with --steps)",
            file=sys.stderr,
        )
        return 1
    metadata = {
        "model": "vit-shapes",
        "timm_base": VIT_SHAPES_BASE,
        "image_size": str(VIT_SHAPES_CONFIG["img_size"]),
        "patch_size": str(VIT_SHAPES_CONFIG["patch_size"]),
        "classes": ",".join(SHAPE_CLASSES),
        "normalize": "(pixels - 0.5) / 0.5",
        "seed": str(args.seed),
        "steps": str(steps),
        "batch_size": str(batch_size),
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
