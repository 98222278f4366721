"""Settings of one ``probe bench`` run: sizes, repeat counts, devices and parts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from probe._errors import ProbeError
from probe.commands.bench._parts import PARTS

if TYPE_CHECKING:
    from probe.commands.bench._command import BenchArgs

__all__ = ["MAX_REPEATS", "PART_NAMES", "SCHEMA", "BenchSettings", "make_settings"]

#: The ``schema`` of the JSON document.
SCHEMA = "probe-bench/1"
#: The parts in the order they run (the keys of :data:`probe.commands.bench._parts.PARTS`).
PART_NAMES: tuple[str, ...] = tuple(PARTS)


@dataclass(frozen=True)
class BenchSettings:
    """Sizes and repeat counts of one benchmark run (see :func:`make_settings`).

    Attributes:
        repeats, warmup: interleaved timed repeats and untimed warm-up rounds (capture and
            analyzer costs).
        threads: torch CPU threads (0: torch's default).
        capture_tokens: MiniLM input lengths; ``vit_name`` / ``vit_image_size`` the ViT.
        memory_tokens: lengths of the memory part; ``check_tokens`` those where the
            streaming rollout is compared with ``probe.rollout`` of ``output_attentions``.
        batch_sizes: throughput batch sizes; ``throughput_repeats`` their repeats, cut to fit
            ``throughput_sample_budget_s`` seconds per method and batch; a call estimated over
            ``measurement_budget_s`` is skipped.
        min_sample_s, capture_min_sample_s, throughput_min_sample_s: shorter calls are
            repeated within one sample (analyzer costs, capture, throughput).
        cli_repeats, render_repeats: fresh-process runs of ``probe --help`` and ``probe
            render coref``.
        memory_timeout_s: limit of one memory worker process.
    """

    quick: bool = False
    repeats: int = 5
    warmup: int = 1
    devices: tuple[str, ...] = ("cpu",)
    parts: tuple[str, ...] = PART_NAMES
    threads: int = 1
    capture_tokens: tuple[int, ...] = (128, 512)
    vit_name: str = "vit_small_patch16_224"
    vit_image_size: int = 224
    memory_tokens: tuple[int, ...] = (1024, 2048, 4096)
    check_tokens: tuple[int, ...] = (1024, 2048)
    batch_sizes: tuple[int, ...] = (1, 32)
    throughput_repeats: int = 3
    measurement_budget_s: float = 240.0
    throughput_sample_budget_s: float = 60.0
    throughput_min_sample_s: float = 0.2
    cli_repeats: int = 7
    render_repeats: int = 3
    min_sample_s: float = 0.02
    capture_min_sample_s: float = 0.3
    memory_timeout_s: float = 900.0


#: the most ``--repeats`` taken: a median of 100 is already steady, and one repeat of the
#: heavier measurements takes seconds
MAX_REPEATS = 100


def make_settings(args: BenchArgs) -> BenchSettings:
    """Settings for the ``probe bench`` options ``args`` (``--quick``, ``--repeats``, ...)."""
    import torch

    repeats = args.repeats
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ProbeError(f"--repeats must be a positive integer, got {repeats!r}")
    if repeats > MAX_REPEATS:  # --repeats 100000000 ran as asked: days of timing
        raise ProbeError(f"--repeats {repeats} is more than {MAX_REPEATS}, the most probe bench "
                         f"takes (each repeat times every measurement again; default 5): use "
                         f"1..{MAX_REPEATS}")
    names = tuple(PARTS)  # read now: a part registered after import is known too
    unknown = [p for p in args.parts if p not in names]
    if unknown:
        raise ProbeError(f"unknown bench part(s) {unknown}: use {list(names)}")
    twice = [p for i, p in enumerate(args.parts) if p in args.parts[:i]]
    if twice:  # was run once, silently: as render's --format / --method given twice
        raise ProbeError(f"--part {twice[0]} is given twice: pass each part once")
    parts = tuple(p for p in names if p in args.parts) if args.parts else names
    if args.device == "auto":
        devices: tuple[str, ...] = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
    elif args.device == "cpu":
        devices = ("cpu",)
    elif args.device == "cuda":
        if not torch.cuda.is_available():
            raise ProbeError(
                "--device cuda asked for but no CUDA device is available; use --device cpu"
            )
        devices = ("cuda",)
    else:
        raise ProbeError(f"--device must be auto, cpu or cuda, got {args.device!r}")
    threads = getattr(args, "threads", None)
    named = "--threads"
    if threads is None:
        named = "PROBE_BENCH_THREADS"
        raw = os.environ.get("PROBE_BENCH_THREADS", "1")
        try:
            threads = int(raw)
        except ValueError:
            raise ProbeError(f"PROBE_BENCH_THREADS must be an integer, got {raw!r}") from None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if threads < 0:
        raise ProbeError(f"{named} {threads} is negative: use 0..{cpus or 'the CPUs'} (0: "
                         "torch's default)")
    if cpus and threads > cpus:  # --threads 100000 ended in an internal error (out of memory)
        raise ProbeError(f"{named} {threads} is more than the {cpus} CPUs this process may use: "
                         f"use 0..{cpus} (0: torch's default)")
    if args.quick:
        return BenchSettings(
            quick=True, repeats=min(repeats, 3), devices=devices, parts=parts, threads=threads,
            memory_tokens=(1024, 2048), check_tokens=(1024,), batch_sizes=(1, 8),
            capture_min_sample_s=0.1,
            throughput_repeats=2, measurement_budget_s=30.0, throughput_sample_budget_s=10.0,
            cli_repeats=3, render_repeats=1,
        )
    return BenchSettings(
        repeats=repeats, devices=devices, parts=parts, threads=threads,
        throughput_repeats=min(repeats, 3),
    )

