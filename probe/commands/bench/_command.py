"""``probe bench`` on the command line: its arguments and the entry point."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

__all__ = ["BenchArgs", "add_parser", "run"]


@dataclass(frozen=True)
class BenchArgs:
    """Options of ``probe bench``."""

    json: str | None = None
    quick: bool = False
    device: str = "auto"
    repeats: int = 5
    quiet: bool = False
    parts: tuple[str, ...] = ()
    threads: int | None = None


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``probe bench`` to the top-level subparsers."""
    from probe.commands.bench._parts import PARTS
    from probe.commands.bench._settings import MAX_REPEATS

    bench = subparsers.add_parser(
        "bench",
        help="benchmark capture overhead, memory, analyzer speed and CLI start-up",
        description="Side-by-side timings in one process (warm-up, median of repeats), "
        "reported as ratios; CPU, plus CUDA when available.",
    )
    bench.add_argument("--json", help="write the results to this JSON file")
    bench.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    bench.add_argument("--device", default="auto", help="auto, cpu or cuda")
    bench.add_argument("--repeats", type=int, default=5,
                       help=f"timed runs per measurement, median reported (default 5, at most "
                       f"{MAX_REPEATS}; --quick uses at most 3)")
    bench.add_argument(
        "--part", action="append", dest="parts", default=[], choices=tuple(PARTS),
        metavar="PART", help=f"run only this part (repeatable, each part once): "
        f"{', '.join(PARTS)}",
    )
    bench.add_argument(
        "--threads", type=int,
        help="torch CPU threads (default 1, or PROBE_BENCH_THREADS; 0: torch's default)"
    )
    bench.add_argument("--quiet", action="store_true", help="no progress bars")
    bench.set_defaults(run=run)
    return bench


def run(ns: argparse.Namespace) -> int:
    """Run ``probe bench`` from parsed arguments."""
    from probe._progress import silence_library_bars, silence_progress
    from probe.commands.bench._run import run_bench

    silence_library_bars()
    if ns.quiet:
        silence_progress()
    return run_bench(BenchArgs(
        json=ns.json, quick=ns.quick, device=ns.device, repeats=ns.repeats, quiet=ns.quiet,
        parts=tuple(ns.parts), threads=ns.threads,
    ))
