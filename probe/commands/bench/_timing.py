"""Timing and progress of ``probe bench``: interleaved repeats, paired ratios, one bar per part.

Every comparison is a ratio of variants measured *interleaved*: in each repeat all variants
run once, round-robin, in an order rotated from repeat to repeat, so that noise from a shared
machine hits all of them alike. A ratio is the median over repeats of the per-repeat ratio
(paired).
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Progress", "error_text", "median", "ms", "paired_ratio", "sync_for",
           "time_interleaved"]


def sync_for(device: str) -> Callable[[], None]:
    """What waits for the device's queued work: ``torch.cuda.synchronize`` or nothing."""
    if device == "cuda":
        import torch

        return torch.cuda.synchronize
    return lambda: None


def time_interleaved(
    fns: dict[str, Callable[[], Any]],
    repeats: int,
    warmup: int = 1,
    device: str = "cpu",
    min_sample_s: float = 0.0,
    on_repeat: Callable[[], None] | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of every function, measured round-robin.

    Each repeat runs every function once (``number`` calls when one call is shorter than
    ``min_sample_s``; the sample is then the mean per call), in an order rotated by one from
    repeat to repeat. The warm-up calls also calibrate ``number``.

    Returns:
        ``{name: [seconds per call of each repeat]}``.
    """
    sync = sync_for(device)
    names = list(fns)
    number = dict.fromkeys(names, 1)
    for i in range(max(warmup, 1 if min_sample_s > 0 else 0)):
        for name in names:
            sync()
            start = time.perf_counter()
            out = fns[name]()
            sync()
            elapsed = time.perf_counter() - start
            del out
            if min_sample_s > 0 and i == 0:
                number[name] = max(1, min(1000, math.ceil(min_sample_s / max(elapsed, 1e-7))))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn, n = fns[name], number[name]
            sync()
            start = time.perf_counter()
            for _ in range(n):
                out = fn()
            sync()
            samples[name].append((time.perf_counter() - start) / n)
            del out
        if on_repeat is not None:
            on_repeat()
    return samples


def median(xs: Sequence[float]) -> float:
    """The median as a plain float."""
    return float(statistics.median(xs))


def paired_ratio(samples: dict[str, list[float]], name: str, baseline: str) -> float:
    """Median over repeats of ``samples[name][r] / samples[baseline][r]``."""
    return median([a / b for a, b in zip(samples[name], samples[baseline])])


def ms(seconds: float) -> float:
    """Seconds to milliseconds, 4 decimals (as the JSON records them)."""
    return round(seconds * 1e3, 4)


class Progress:
    """One tqdm bar per part (nothing when quiet)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def start(self, desc: str, total: int) -> None:
        self.close()
        if not self.quiet:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=True, dynamic_ncols=True)

    def step(self, note: str = "", n: int = 1) -> None:
        if self.bar is not None:
            if note:
                self.bar.set_postfix_str(note, refresh=False)
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def error_text(exc: BaseException) -> str:
    """``"error: Type: first line of the message"`` (at most 200 characters of it)."""
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return f"error: {type(exc).__name__}: {msg[:200]}"


