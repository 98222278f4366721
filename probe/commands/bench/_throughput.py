"""Attribution throughput of ``probe bench --part analyzers``: images per second of the plain
forward and of every method at every batch size, within a time budget."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from probe.commands.bench._timing import Progress, error_text, median, sync_for

if TYPE_CHECKING:
    from probe.commands.bench._analyzers import VisionCase
    from probe.commands.bench._settings import BenchSettings

__all__ = ["method_throughput"]


def method_throughput(
    case: VisionCase, methods: Sequence[str], batch_sizes: Sequence[int], settings: BenchSettings,
    device: str, progress: Progress | None,
) -> dict[str, Any]:
    """Images per second of the plain forward and of every method at every batch size.

    One warm-up call per method at the smallest batch also estimates the cost of the larger
    batches: a measurement estimated over ``settings.measurement_budget_s`` is skipped (at the
    smallest batch the warm-up call itself is reported), and the number of repeats is cut to
    fit ``settings.throughput_sample_budget_s``. Calls shorter than
    ``settings.throughput_min_sample_s`` are repeated within one sample. Methods run
    round-robin; a method that raises is recorded with its error and the run goes on.
    """
    import torch

    import probe

    sync = sync_for(device)

    def runner(method: str, x: Any) -> Callable[[], Any]:
        if method == "forward":
            def forward() -> Any:
                with torch.no_grad():
                    return case.model(x)
            return forward
        return lambda: probe.attribute(case.model, x, method)

    def timed(fn: Callable[[], Any], number: int = 1) -> float:
        sync()
        start = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        return (time.perf_counter() - start) / number

    names = ("forward", *methods)
    small = min(batch_sizes)
    x_small = case.make_inputs(small)
    warm: dict[str, float] = {}
    errors: dict[str, str] = {}
    for method in names:
        try:
            warm[method] = timed(runner(method, x_small))
        except Exception as exc:  # methods are plug-ins: record the error, do not abort
            errors[method] = error_text(exc)

    out: dict[str, Any] = {}
    for batch in batch_sizes:
        x = x_small if batch == small else case.make_inputs(batch)
        rows: dict[str, Any] = {m: {"status": errors[m]} for m in names if m in errors}
        plan: dict[str, tuple[int, int]] = {}  # method -> (repeats, calls per sample)
        for method in names:
            if method in errors:
                continue
            estimate = warm[method] * batch / small
            if estimate > settings.measurement_budget_s:
                if batch == small:
                    rows[method] = {"status": "ok", "median_s": round(warm[method], 5),
                                    "images_per_s": round(batch / warm[method], 4), "repeats": 1,
                                    "note": "the warm-up call alone (over the time budget)"}
                else:
                    rows[method] = {
                        "status": f"skipped: estimated {estimate:.0f} s per call > budget "
                        f"{settings.measurement_budget_s:.0f} s",
                        "estimated_images_per_s": round(small / warm[method], 4),
                    }
                continue
            repeats = max(1, min(settings.throughput_repeats,
                                 int(settings.throughput_sample_budget_s // max(estimate, 1e-9))))
            number = math.ceil(settings.throughput_min_sample_s / max(estimate, 1e-9))
            number = max(1, min(100, number))
            plan[method] = (repeats, number)
        samples: dict[str, list[float]] = {m: [] for m in plan}
        for r in range(max((p[0] for p in plan.values()), default=0)):
            todo = [m for m in plan if r < plan[m][0] and m not in rows]
            k = r % max(len(todo), 1)
            for method in todo[k:] + todo[:k]:
                try:
                    samples[method].append(timed(runner(method, x), plan[method][1]))
                except Exception as exc:
                    rows[method] = {"status": error_text(exc)}
        for method in plan:
            if method in rows:
                continue
            med = median(samples[method])
            rows[method] = {"status": "ok", "median_s": round(med, 5),
                            "images_per_s": round(batch / med, 4), "repeats": len(samples[method]),
                            "calls_per_sample": plan[method][1]}
        out[str(batch)] = {m: rows[m] for m in names}
        if progress:
            progress.step(f"{case.name} batch {batch}")
    return out


