"""Shared scaffolding of the training recipes (``train_*``): options, checks, determinism, saving.

Every recipe that trains an embedded model parses the same options (:func:`training_parser`),
rejects bad values with one line on stderr and exit code 2 (:func:`valid_args`), trains inside
:func:`deterministic` (fixed thread count, the caller's RNG state and thread count restored
on return), refuses to write weights below its quality floor with exit code 1
(:func:`below_floor`), and writes the weights atomically (:func:`save_weights`). The
optimiser, learning-rate schedule, per-step data seeds and loss log are shared too
(:func:`adamw`, :func:`lr_at`, :func:`train_seed`, :class:`LossLog`), and so are the training
loop and the accuracy of the shape classifiers (:func:`train_classifier`, :func:`evaluate`),
and what every recipe's ``main`` does: parse and check, train, assess on the held-out split,
refuse or save (:func:`train_main`, :func:`train_and_save`, :func:`held_out_accuracy`).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from probe._atomic import atomic_write
from probe.recipes._common import recipe_parser

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "Assessment",
    "LossLog",
    "adamw",
    "below_floor",
    "deterministic",
    "evaluate",
    "float_state",
    "held_out_accuracy",
    "lr_at",
    "run_metadata",
    "save_weights",
    "train_and_save",
    "train_classifier",
    "train_main",
    "train_seed",
    "training_parser",
    "valid_args",
    "writable_files",
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
    parser = recipe_parser(prog=prog, description=description)
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--steps", type=int, default=steps,
                        help=f"optimiser steps (default {steps})")
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
    """``False`` (after one ``error:`` line on stderr) when a count is below 1, the seed < 0,
    the learning rate not > 0, the weight decay not >= 0, or ``--out`` cannot be written.

    Checked before any training, creating nothing.
    """
    for name in ("n_eval", "batch_size", "threads", "steps"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return False
    if args.seed < 0:
        print("error: --seed must be >= 0", file=sys.stderr)
        return False
    if not (math.isfinite(args.lr) and args.lr > 0):
        print(f"error: --lr must be a number > 0, not {args.lr}", file=sys.stderr)
        return False
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        print(
            f"error: --weight-decay must be a number >= 0, not {args.weight_decay}",
            file=sys.stderr,
        )
        return False
    return writable_files(out=args.out)


def writable_files(**options: Path) -> bool:
    """``False`` (after one ``error:`` line on stderr naming the option) when a file option
    (``out=path`` for ``--out``) is a folder, lies under a file, or is in a read-only folder."""
    from probe._errors import ProbeError
    from probe._report import check_output_file

    for name, path in options.items():
        try:
            check_output_file(path, option=f"--{name.replace('_', '-')}", json_file=False)
        except ProbeError as exc:
            print(f"error: --{name.replace('_', '-')}: {exc}", file=sys.stderr)
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


def adamw(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    decays: Callable[[str, torch.Tensor], bool] | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.AdamW:
    """AdamW over two groups: ``weight_decay`` on the parameters ``decays(name, p)`` selects
    (default: matrices and kernels, ``p.ndim >= 2``), none on the others."""
    import torch

    def matrices(_name: str, p: torch.Tensor) -> bool:
        return p.ndim >= 2

    chosen = decays or matrices
    params = list(model.named_parameters())
    return torch.optim.AdamW(
        [
            {"params": [p for n, p in params if chosen(n, p)], "weight_decay": weight_decay},
            {"params": [p for n, p in params if not chosen(n, p)], "weight_decay": 0.0},
        ],
        lr=lr,
        betas=betas,
    )


class LossLog:
    """Mean training loss over windows of ``every`` steps, printed at the end of each window and
    at the last step (never when ``quiet``); the clock starts when the log is made."""

    def __init__(self, steps: int, every: int, quiet: bool) -> None:
        self.steps, self.every, self.quiet = steps, every, quiet
        self.running = 0.0
        self.start = time.perf_counter()

    def add(self, step: int, loss: float) -> bool:
        """Count the loss of ``step`` (0-based); ``True`` when a line is due after it."""
        self.running += loss
        return not self.quiet and ((step + 1) % self.every == 0 or step + 1 == self.steps)

    def print(self, step: int, middle: str = "", suffix: str = "") -> None:
        """Print ``step n/N  loss x  <middle><seconds>s<suffix>`` and start a new window."""
        window = self.every if (step + 1) % self.every == 0 else (step + 1) % self.every
        print(
            f"step {step + 1}/{self.steps}  loss {self.running / window:.4f}  "
            f"{middle}{time.perf_counter() - self.start:.0f}s{suffix}",
            flush=True,
        )
        self.running = 0.0


def train_classifier(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    seed: int,
    steps: int,
    batch_size: int,
    lr: float,
    warmup: int,
    image_size: int,
    curriculum_fraction: float,
    curriculum_sizes: tuple[int, int],
    log_every: int,
    log_lr: bool,
    quiet: bool,
) -> nn.Module:
    """The training loop of the shape classifiers (``vit-shapes``, ``cnn-shapes``, ``-nl``).

    Every step draws a fresh batch of ``batch_size`` images from
    :func:`probe.models._shapes.make_shapes` with seed :func:`train_seed` (bounding boxes of
    ``curriculum_sizes`` pixels during the first ``curriculum_fraction`` of the steps, the full
    range after), sets the learning rate :func:`lr_at` (peak ``lr``, ``warmup`` steps), and
    takes one cross-entropy step with gradient clipping at 1.0. Logs every ``log_every`` steps
    (with the learning rate when ``log_lr``). Returns ``model`` in eval mode.
    """
    import torch
    import torch.nn.functional as F

    from probe.models._shapes import make_shapes

    log = LossLog(steps, log_every, quiet)
    for step in range(steps):
        sizes = curriculum_sizes if step < curriculum_fraction * steps else None
        data = make_shapes(
            batch_size, seed=train_seed(seed, step), image_size=image_size, size_range=sizes
        )
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        model.train()
        loss = F.cross_entropy(model(data.images), data.labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if log.add(step, loss.item()):
            log.print(step, middle=f"lr {optimizer.param_groups[0]['lr']:.2e}  " if log_lr else "")
    return model.eval()


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


def run_metadata(args: argparse.Namespace, eval_seed: int) -> dict[str, str]:
    """What every shape recipe records in its weights file about the run: the input
    normalisation, the options, the held-out split (``eval_seed``, ``--n-eval``) and torch."""
    import torch

    return {
        "normalize": "(pixels - 0.5) / 0.5",
        "seed": str(args.seed),
        "steps": str(args.steps),
        "batch_size": str(args.batch_size),
        "lr": str(args.lr),
        "threads": str(args.threads),
        "eval_seed": str(eval_seed),
        "eval_n": str(args.n_eval),
        "torch": torch.__version__,
    }


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


@dataclass(frozen=True)
class Assessment:
    """How good a trained model is on the held-out split.

    Attributes:
        summary: what the recipe prints after "held-out ", e.g. ``"accuracy 0.9950 on 5000
            images (seed 10000)"``.
        floor: the quality ``--min-accuracy`` or ``--min-recall`` guards.
        value: that quality, in ``0..1``.
        metadata: what the weights file records about it.
    """

    summary: str
    floor: Literal["accuracy", "recall"]
    value: float
    metadata: dict[str, str] = field(default_factory=dict)


def held_out_accuracy(
    image_size: int, eval_seed: int, n_eval: int
) -> Callable[[nn.Module], Assessment]:
    """The assessment of the shape classifiers: accuracy on ``make_shapes(n_eval,
    seed=eval_seed, image_size=image_size)``."""

    def assess(model: nn.Module) -> Assessment:
        from probe.models._shapes import make_shapes

        held_out = make_shapes(n_eval, seed=eval_seed, image_size=image_size)
        accuracy = evaluate(model, held_out.images, held_out.labels)
        return Assessment(
            f"accuracy {accuracy:.4f} on {n_eval} images (seed {eval_seed})", "accuracy",
            accuracy, {"accuracy": f"{accuracy:.4f}"},
        )

    return assess


def train_and_save(
    args: argparse.Namespace,
    train: Callable[[], nn.Module],
    assess: Callable[[nn.Module], Assessment],
    metadata: Mapping[str, str],
    eval_seed: int,
) -> int:
    """A training recipe's ``main`` after its options were checked: train and assess inside
    :func:`deterministic`, print one line (the assessment, wall and CPU seconds), and write the
    weights with ``metadata``, :func:`run_metadata` and the assessment's own, unless the
    quality is below the floor.

    Returns:
        The exit code: 0 written, 1 below ``--min-accuracy`` / ``--min-recall`` (nothing
        written).
    """
    with deterministic(args.threads):
        start, cpu = time.perf_counter(), time.process_time()
        model = train()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        quality = assess(model)
    print(f"held-out {quality.summary}; {args.steps} steps in {seconds:.0f}s wall, "
          f"{cpu:.0f}s CPU")
    if below_floor(quality.floor, quality.value, getattr(args, f"min_{quality.floor}")):
        return 1
    everything = {**metadata, **run_metadata(args, eval_seed), **quality.metadata}
    save_weights(float_state(model), Path(args.out), everything)
    if not args.quiet:
        print(f"wrote {args.out}")
    return 0


def train_main(
    argv: list[str] | None,
    parser: argparse.ArgumentParser,
    train: Callable[..., nn.Module],
    assessment: Callable[[int], Callable[[nn.Module], Assessment]],
    metadata: Mapping[str, str],
    eval_seed: int,
) -> int:
    """A training recipe's ``main``: parse ``argv`` with ``parser`` and check the options
    (:func:`valid_args`, exit code 2), then :func:`train_and_save` what ``train(seed=, steps=,
    batch_size=, lr=, weight_decay=, quiet=)`` returns for the parsed options, assessed by
    ``assessment(n_eval)``.

    Returns:
        The exit code: 0 written, 1 below the quality floor, 2 bad options.
    """
    args = parser.parse_args(argv)
    if not valid_args(args):
        return 2
    return train_and_save(
        args,
        lambda: train(seed=args.seed, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      weight_decay=args.weight_decay, quiet=args.quiet),
        assessment(args.n_eval),
        metadata,
        eval_seed,
    )
