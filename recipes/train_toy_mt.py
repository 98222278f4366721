"""Train the ``toy-mt`` translation model and write its weights and tokenizer.

Run ``python -m probe.recipes.train_toy_mt`` to reproduce
``probe/models/weights/toy_mt.safetensors`` and ``probe/models/data/toy_mt_tokenizer.json``.

Data: :func:`probe.models._translation.split_pairs` with seed 0: :data:`N_TRAIN` training
pairs and :data:`N_TEST` held-out pairs whose source sentence never occurs in training.
Training: teacher-forced cross-entropy on the target tokens, AdamW (lr 3e-3, betas 0.9/0.98,
weight decay 0.01), linear warm-up over 200 steps then cosine decay, batch 64 drawn from the
training pairs with a local generator, gradient clipping at 1.0, no dropout, one thread.
Nothing in the objective mentions alignment: the cross-attention learns whatever it learns.

Determinism: ``torch.manual_seed(seed)`` for the initialisation, a local generator for the
batches, a fixed thread count; the global RNG state and thread count are restored on return.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._atomic import atomic_write
from probe.recipes._common import recipe_parser
from probe.recipes._training import deterministic, save_weights, writable_files

if TYPE_CHECKING:
    from torch import nn

__all__ = ["N_TEST", "N_TRAIN", "encode_pairs", "exact_match", "main", "train"]

from probe.models._translation import HELDOUT_PAIRS as N_TEST
from probe.models._translation import TRAIN_PAIRS as N_TRAIN

WARMUP_STEPS = 200


def encode_pairs(tokenizer: Any, pairs: list) -> tuple[Any, Any, Any]:
    """``(input_ids, attention_mask, labels)`` of ``pairs`` (labels padded with -100)."""
    src = tokenizer([p.source_text for p in pairs], return_tensors="pt", padding=True)
    tgt = tokenizer([p.target_text for p in pairs], return_tensors="pt", padding=True)
    labels = tgt["input_ids"].masked_fill(tgt["attention_mask"] == 0, -100)
    return src["input_ids"], src["attention_mask"], labels


def exact_match(model: nn.Module, tokenizer: Any, pairs: list, batch: int = 250) -> float:
    """Fraction of ``pairs`` whose greedy translation equals the reference exactly."""
    import torch

    model.eval()
    tokenizer.padding_side = "right"
    hits = 0
    with torch.no_grad():
        for start in range(0, len(pairs), batch):
            chunk = pairs[start : start + batch]
            enc = tokenizer([p.source_text for p in chunk], return_tensors="pt", padding=True)
            out = model.generate(**enc, max_new_tokens=24, do_sample=False, num_beams=1)
            texts = tokenizer.batch_decode(out, skip_special_tokens=True)
            hits += sum(t.strip() == p.target_text for t, p in zip(texts, chunk))
    return hits / len(pairs)


def train(
    steps: int = 3000, seed: int = 0, threads: int = 1, lr: float = 3e-3, log: Any = print
) -> tuple[Any, Any, dict]:
    """Train ``toy-mt``; returns ``(model, tokenizer, metadata)``."""
    import torch

    from probe.models._toy_mt import build_toy_mt, build_toy_tokenizer
    from probe.models._translation import toy_split

    with deterministic(threads):
        tokenizer = build_toy_tokenizer()
        train_pairs, test_pairs = toy_split()
        ids, mask, labels = encode_pairs(tokenizer, train_pairs)
        torch.manual_seed(seed)
        model = build_toy_mt(len(tokenizer))
        model.train()
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and p.requires_grad]
        other = [p for n, p in model.named_parameters() if p.dim() < 2 and p.requires_grad]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": 0.01}, {"params": other, "weight_decay": 0.0}],
            lr=lr, betas=(0.9, 0.98),
        )

        def lr_at(step: int) -> float:
            if step < WARMUP_STEPS:
                return (step + 1) / WARMUP_STEPS
            done = (step - WARMUP_STEPS) / max(1, steps - WARMUP_STEPS)
            return 0.5 * (1 + math.cos(math.pi * done))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
        gen = torch.Generator().manual_seed(seed + 1)
        start = time.time()
        for step in range(steps):
            idx = torch.randint(0, ids.shape[0], (64,), generator=gen)
            b_ids, b_mask, b_labels = ids[idx], mask[idx], labels[idx]
            keep = int(b_mask.sum(-1).max())
            keep_t = int((b_labels != -100).sum(-1).max())
            loss = model(input_ids=b_ids[:, :keep].contiguous(),
                         attention_mask=b_mask[:, :keep].contiguous(),
                         labels=b_labels[:, :keep_t].contiguous()).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if step % 250 == 0 or step == steps - 1:
                log(f"step {step:5d}  loss {loss.item():.4f}  {time.time() - start:.0f}s")
        model.eval()
        accuracy = exact_match(model, tokenizer, test_pairs)
        log(f"held-out exact match: {accuracy:.4f} on {len(test_pairs)} pairs")
        metadata = {
            "steps": str(steps), "seed": str(seed), "lr": str(lr), "threads": str(threads),
            "n_train": str(N_TRAIN), "n_test": str(N_TEST),
            "heldout_exact_match": f"{accuracy:.4f}", "torch": torch.__version__,
            "train_seconds": f"{time.time() - start:.0f}",
        }
        return model, tokenizer, metadata


def save(model: nn.Module, tokenizer: Any, metadata: dict, weights: Path,
         tokenizer_path: Path) -> None:
    """Write weights (tied copies once) and tokenizer atomically."""
    seen: set[int] = set()
    state = {}
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        state[name] = tensor.detach().contiguous().clone()
    save_weights(state, weights, metadata)
    tokenizer_path.parent.mkdir(parents=True, exist_ok=True)
    text = tokenizer.backend_tokenizer.to_str(pretty=True)  # what ``Tokenizer.save`` writes
    atomic_write(tokenizer_path, lambda fh: fh.write(text), what="tokenizer", binary=False)


def main(argv: list[str] | None = None) -> int:
    from probe.models._toy_mt import TOKENIZER_PATH, WEIGHTS_PATH

    parser = recipe_parser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weights", type=Path, default=WEIGHTS_PATH)
    parser.add_argument("--tokenizer", type=Path, default=TOKENIZER_PATH)
    args = parser.parse_args(argv)
    for name in ("steps", "threads"):
        if getattr(args, name) < 1:
            print(f"error: --{name} must be >= 1", file=sys.stderr)
            return 2
    if args.seed < 0 or not (math.isfinite(args.lr) and args.lr > 0):
        print("error: --seed must be >= 0 and --lr a number > 0", file=sys.stderr)
        return 2
    if not writable_files(weights=args.weights, tokenizer=args.tokenizer):
        return 2
    model, tokenizer, metadata = train(args.steps, args.seed, args.threads, args.lr)
    save(model, tokenizer, metadata, args.weights, args.tokenizer)
    print(f"wrote {args.weights} and {args.tokenizer}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
