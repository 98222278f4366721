"""Shared scaffolding of the training recipes (``train_*``): options, checks, determinism, saving.

Every recipe that trains an embedded model parses the same options (:func:`training_parser`),
rejects bad values with one line on stderr and exit code 2 (:func:`valid_args`), trains inside
:func:`deterministic` (fixed thread count, the caller's RNG state and thread count restored
on return), refuses to write weights below its quality floor with exit code 1
(:func:`below_floor`), and writes the weights atomically (:func:`save_weights`). The
learning-rate schedule, the per-step data seeds and the accuracy of the shape classifiers are
shared too (:func:`lr_at`, :func:`train_seed`, :func:`evaluate`).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from probe._atomic import atomic_write

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "below_floor",
    "deterministic",
    "evaluate",
    "float_state",
    "lr_at",
    "save_weights",
    "train_seed",
    "training_parser",
    "valid_args",
]


def training_parser(
    *,
    prog: str,
    description: str,
    steps: int,
    n_eval: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    out: Path,
    floor: Literal["accuracy", "recall"] = "accuracy",
    floor_default: float = 0.97,
    batch_unit: str = "images",
) -> argparse.ArgumentParser:
    """The command line of a training recipe, with that recipe's defaults.

    Options: ``--seed --steps --n-eval --batch-size --lr --weight-decay --threads
    --min-<floor> --out --quiet`` (in this order in ``--help``).
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--steps", type=int, default=steps, help=f"optimiser steps (default {steps})")
    parser.add_argument("--n-eval", type=int, default=n_eval, help="held-out images")
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help=f"fresh {batch_unit} per step"
    )
    parser.add_argument("--lr", type=float, default=lr, help="peak learning rate")
    parser.add_argument("--weight-decay", type=float, default=weight_decay)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        f"--min-{floor}",
        type=float,
        default=floor_default,
        help=f"refuse to write weights below this held-out {floor} (default {floor_default})",
    )
    parser.add_argument("--out", type=Path, default=out, help="output safetensors file")
    parser.add_argument("--quiet", action="store_true", help="print only the final result")
    return parser


def valid_args(args: argparse.Namespace) -> bool:
    """``False`` (after one ``error:`` line on stderr) when a count is below 1 or the seed < 0."""
    for name in ("n_eval", "batch_size", "threads", "steps"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return False
    if args.seed < 0:
        print("error: --seed must be >= 0", file=sys.stderr)
        return False
    return True


@contextmanager
def deterministic(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads and a forked global RNG.

    The caller's thread count and global (CPU) RNG state are restored on exit, also when the
    block raises.
    """
    import torch

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(previous_threads)


def below_floor(what: Literal["accuracy", "recall"], value: float, floor: float) -> bool:
    """``True`` (after one ``error:`` line on stderr) when ``value`` is below ``--min-<what>``."""
    if value >= floor:
        return False
    print(
        f"error: {what} {value:.4f} is below --min-{what} {floor}; "
        "weights not written (train longer with --steps)",
        file=sys.stderr,
    )
    return True


def train_seed(seed: int, step: int) -> int:
    """Generator seed of the training batch of one step (always >= 2_000_000)."""
    return 2_000_000 + 1_000_000 * seed + step


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine decay to zero."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


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


def float_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of ``model`` as detached, contiguous float32 tensors."""
    return {name: t.detach().contiguous().float() for name, t in model.state_dict().items()}


def save_weights(
    state: Mapping[str, torch.Tensor], out: Path, metadata: Mapping[str, str]
) -> None:
    """Write ``state`` as safetensors to ``out`` atomically (creating its folder).

    Raises:
        ProbeError: the folder is not writable or the write fails (``out`` is left as it was).
    """
    from safetensors.torch import save

    out.parent.mkdir(parents=True, exist_ok=True)
    data = save(dict(state), metadata=dict(metadata))
    atomic_write(out, lambda fh: fh.write(data), what="weights", binary=True)
