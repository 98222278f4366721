"""Train the ``caption-shapes`` image-to-text model and write its weights and tokenizer.

Run ``python -m probe.recipes.train_caption_shapes`` to reproduce
``probe/models/weights/caption_shapes.safetensors`` and
``probe/models/data/caption_shapes_tokenizer.json`` (the shipped weights: ``--threads 2``).
The training scenes are a pool of ``--pool`` captioned scenes from
:func:`probe.models._captions.make_captions` (drawing a scene costs about as much as training
on it), made in chunks of :data:`CHUNK` with seeds of at least two million
(:func:`~probe.recipes._training.train_seed`); each step takes a batch from the pool with a
local generator. The caption exact match is measured on ``--n-eval`` held-out scenes of seed
:data:`EVAL_SEED`, and weights are written only when it
reaches ``--min-accuracy``.

Training: teacher-forced cross-entropy on the caption tokens (``</s>`` included), AdamW
(betas 0.9/0.98, weight decay on matrices), linear warm-up then cosine decay, gradient
clipping at 1.0, no dropout. Every weight matrix of the encoder's and decoder's layers starts
xavier-uniform (transformers' ``N(0, 0.02)`` leaves small attention nearly uniform for a long
time, as the DETR recipe found). Nothing in the objective mentions where the objects are: the
cross-attention learns whatever it learns. Determinism as for the other recipes: the
initialisation uses ``torch.manual_seed(seed)``, the thread count is fixed (``--threads``),
and the caller's RNG state and thread count are restored on return.

The shipped weights (2000 steps of 32 scenes, pool 12000, 2 threads; 2431 s wall-clock on a
CPU shared with other jobs) write 38.2% of 1000 held-out captions exactly right: a weak
captioner whose errors are mostly shape names; hence the low default ``--min-accuracy`` 0.3.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._atomic import atomic_write
from probe.recipes._training import (
    LossLog,
    adamw,
    below_floor,
    deterministic,
    float_state,
    lr_at,
    run_metadata,
    save_weights,
    train_seed,
    training_parser,
    valid_args,
    writable_files,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["EVAL_SEED", "WARMUP_STEPS", "caption_batch", "exact_match", "main", "train"]

EVAL_SEED = 40_000
"""Seed of the held-out scenes (training seeds start at two million)."""

WARMUP_STEPS = 100
"""Linear warm-up length of the learning rate."""

CHUNK = 500
"""Scenes per :func:`~probe.models._captions.make_captions` call when the pool is made."""

MAX_NEW_TOKENS = 12
"""Longest caption generated: three objects are eight words and ``</s>``."""


def caption_batch(tokenizer: Any, captions: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Teacher-forcing inputs of ``captions``: ``decoder_input_ids`` ``[batch, target]``
    (``<s>`` then the caption), ``decoder_attention_mask`` and ``labels`` (the caption then
    ``</s>``, ``-100`` on padding)."""
    import torch

    enc = tokenizer(list(captions), return_tensors="pt", padding=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    start = torch.full((ids.shape[0], 1), tokenizer.bos_token_id, dtype=ids.dtype)
    return {
        "decoder_input_ids": torch.cat([start, ids[:, :-1]], 1),
        "decoder_attention_mask": torch.cat([torch.ones_like(start), mask[:, :-1]], 1),
        "labels": ids.masked_fill(mask == 0, -100),
    }


def _xavier(model: nn.Module) -> None:
    """Xavier-uniform weight matrices in every encoder and decoder layer."""
    import torch

    for name, p in model.named_parameters():
        if p.dim() == 2 and (".layer." in name or ".h." in name):
            torch.nn.init.xavier_uniform_(p)


def training_pool(seed: int, pool: int) -> Any:
    """The ``pool`` training scenes of ``seed``: chunk ``c`` of :data:`CHUNK` scenes has seed
    ``train_seed(seed, c)`` (held-out seeds are below two million)."""
    import torch

    from probe.models._captions import CaptionsBatch, make_captions

    chunks = [make_captions(min(CHUNK, pool - start), seed=train_seed(seed, c))
              for c, start in enumerate(range(0, pool, CHUNK))]
    return CaptionsBatch(
        images=torch.cat([c.images for c in chunks]), labels=torch.cat([c.labels for c in chunks]),
        colours=torch.cat([c.colours for c in chunks]), masks=torch.cat([c.masks for c in chunks]),
        captions=tuple(t for c in chunks for t in c.captions),
    )


def train(
    *, seed: int, steps: int, batch_size: int, lr: float, weight_decay: float, pool: int = 12000,
    quiet: bool = False,
) -> tuple[nn.Module, Any]:
    """Train a fresh ``caption-shapes`` model on a pool of ``pool`` scenes; returns ``(model in
    eval mode, tokenizer)``."""
    import torch

    from probe.models._caption_shapes import build_caption_shapes, build_caption_tokenizer
    tokenizer = build_caption_tokenizer()
    data = training_pool(seed, pool)
    targets = caption_batch(tokenizer, data.captions)
    order = torch.Generator().manual_seed(train_seed(seed, 999_999))
    torch.manual_seed(seed)
    model = build_caption_shapes()
    _xavier(model)

    def decays(name: str, p: torch.Tensor) -> bool:
        return p.ndim >= 2 and "embed" not in name and "wpe" not in name and "wte" not in name

    optimizer = adamw(model, lr=lr, weight_decay=weight_decay, decays=decays, betas=(0.9, 0.98))
    log = LossLog(steps, 100, quiet)
    model.train()
    for step in range(steps):
        pick = torch.randint(0, len(data), (batch_size,), generator=order)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr, WARMUP_STEPS)
        loss = model(pixel_values=data.images[pick],
                     **{k: v[pick] for k, v in targets.items()}).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if log.add(step, loss.item()):
            log.print(step)
    return model.eval(), tokenizer


def generate_captions(model: nn.Module, tokenizer: Any, images: torch.Tensor,
                      batch: int = 250) -> list[str]:
    """Greedy captions of ``images`` ``[n, 3, 64, 64]`` (plain ``model.generate``)."""
    import torch

    texts: list[str] = []
    with torch.no_grad():
        for start in range(0, images.shape[0], batch):
            out = model.generate(pixel_values=images[start : start + batch],
                                 max_new_tokens=MAX_NEW_TOKENS, do_sample=False, num_beams=1)
            texts += [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]
    return texts


def exact_match(model: nn.Module, tokenizer: Any, n: int, seed: int = EVAL_SEED) -> float:
    """Fraction of ``n`` held-out scenes of ``seed`` whose greedy caption is exactly right."""
    from probe.models._captions import make_captions

    data = make_captions(n, seed=seed)
    texts = generate_captions(model, tokenizer, data.images)
    return sum(t == c for t, c in zip(texts, data.captions)) / n


def _parser() -> argparse.ArgumentParser:
    from probe.models._caption_shapes import CAPTION_TOKENIZER_PATH, CAPTION_WEIGHTS_PATH

    parser = training_parser(
        prog="python -m probe.recipes.train_caption_shapes",
        description="Train caption-shapes on generated captioned scenes and write its weights "
        "and tokenizer.",
        steps=2000, n_eval=1000, batch_size=32, lr=2e-3, weight_decay=0.01,
        out=CAPTION_WEIGHTS_PATH, floor_default=0.3, batch_unit="scenes",
    )
    parser.add_argument("--pool", type=int, default=12000, help="training scenes (default 12000)")
    parser.add_argument("--tokenizer", type=Path, default=CAPTION_TOKENIZER_PATH,
                        help="output tokenizer JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 1 accuracy too low, 2 bad args)."""
    from probe.models._caption_shapes import CAPTION_DECODER_CONFIG, CAPTION_ENCODER_CONFIG

    args = _parser().parse_args(argv)
    if not valid_args(args) or not writable_files(tokenizer=args.tokenizer):
        return 2
    if args.pool < args.batch_size:
        print("error: --pool must be >= --batch-size", file=sys.stderr)
        return 2
    with deterministic(args.threads):
        start, cpu = time.perf_counter(), time.process_time()
        model, tokenizer = train(seed=args.seed, steps=args.steps, batch_size=args.batch_size,
                                 lr=args.lr, weight_decay=args.weight_decay, pool=args.pool,
                                 quiet=args.quiet)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        accuracy = exact_match(model, tokenizer, args.n_eval)
    print(f"held-out caption exact match {accuracy:.4f} on {args.n_eval} scenes (seed "
          f"{EVAL_SEED}); {args.steps} steps in {seconds:.0f}s wall, {cpu:.0f}s CPU")
    if below_floor("accuracy", accuracy, args.min_accuracy):
        return 1
    metadata = {
        "model": "caption-shapes",
        "class": "transformers.VisionEncoderDecoderModel (ViT + GPT-2)",
        "encoder_config": repr(CAPTION_ENCODER_CONFIG),
        "decoder_config": repr(CAPTION_DECODER_CONFIG),
        **run_metadata(args, EVAL_SEED),
        "pool": str(args.pool),
        "accuracy": f"{accuracy:.4f}",
        "train_seconds": f"{seconds:.0f}",
    }
    state = {k: v for k, v in float_state(model).items() if k != "decoder.lm_head.weight"}
    save_weights(state, Path(args.out), metadata)  # the output layer is tied to the embeddings
    text = tokenizer.backend_tokenizer.to_str(pretty=True)
    args.tokenizer.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.tokenizer, lambda fh: fh.write(text), what="tokenizer", binary=False)
    if not args.quiet:
        print(f"wrote {args.out} and {args.tokenizer}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
