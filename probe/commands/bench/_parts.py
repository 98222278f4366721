"""The parts of ``probe bench`` (``--part``): one registry entry per part.

A new part plugs in with one entry in :data:`PARTS`: a function that runs it and returns its
JSON-ready results, the number of progress steps it reports, and whether it runs once per
device (results under ``results[device][name]``) or once per run (results under ``name``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe.commands.bench._analyzers import bench_analyzers
from probe.commands.bench._capture import bench_capture
from probe.commands.bench._cli import bench_cli
from probe.commands.bench._flow import bench_flow
from probe.commands.bench._generation import bench_generation, generation_steps
from probe.commands.bench._memory import bench_memory
from probe.commands.bench._startup import bench_startup, startup_steps

if TYPE_CHECKING:
    from probe.commands.bench._settings import BenchSettings
    from probe.commands.bench._timing import Progress

__all__ = ["PARTS", "BenchPart"]


@dataclass(frozen=True)
class BenchPart:
    """One part of ``probe bench``.

    Attributes:
        run: ``run(settings, device, progress) -> results``; ``device`` is ``None`` for a
            part that runs once per run.
        steps: ``steps(settings) -> int``, the length of the part's progress bar.
        per_device: run once on every device of the run (else once, after them).
        description: one line for the documentation.
    """

    run: Callable[[BenchSettings, str | None, Progress], dict[str, Any]]
    steps: Callable[[BenchSettings], int]
    per_device: bool = True
    description: str = ""


#: Part name -> part, in the order they run (per-device parts first, on each device).
PARTS: dict[str, BenchPart] = {
    "capture": BenchPart(
        run=lambda s, device, progress: bench_capture(s, device, progress=progress),
        steps=lambda s: s.repeats * (len(s.capture_tokens) + 1),
        description="probe.trace against the plain, eager and output_attentions forwards",
    ),
    "memory": BenchPart(
        run=lambda s, device, progress: bench_memory(s, device, progress=progress),
        steps=lambda s: 3 * len(s.memory_tokens) + len(s.check_tokens),
        description="peak memory of one forward on long inputs, one process per measurement",
    ),
    "analyzers": BenchPart(
        run=lambda s, device, progress: bench_analyzers(s, device, progress=progress),
        steps=lambda s: 1 + 2 * len(s.batch_sizes),
        description="rollout and relevance vs the forward and reference loops; throughput",
    ),
    "flow": BenchPart(
        run=lambda s, device, progress: bench_flow(s, device or "cpu", progress=progress),
        steps=lambda s: 1,
        description="attention flow on the vit-shapes CLS row next to rollout, per image",
    ),
    "generation": BenchPart(
        run=lambda s, device, progress: bench_generation(s, device, progress=progress),
        steps=generation_steps,
        description="probe.generate vs plain eager generation; long-prompt memory, full vs rows",
    ),
    "cli": BenchPart(
        run=lambda s, _device, progress: bench_cli(s, progress=progress),
        steps=lambda s: s.cli_repeats + s.render_repeats,
        per_device=False,
        description="cold start of probe --help and probe render coref",
    ),
    "parallel": BenchPart(
        run=lambda s, _device, progress: _bench_parallel(s, progress),
        steps=lambda s: 2,
        per_device=False,
        description="probe eval sanity in one process and in two (torchrun), JSONs compared",
    ),
    "startup": BenchPart(
        run=lambda s, _device, progress: bench_startup(s, progress=progress),
        steps=startup_steps,
        per_device=False,
        description="where the start-up of probe render coref goes: imports, load, capture, "
        "figure, save",
    ),
    "html": BenchPart(
        run=lambda s, _device, _progress: _bench_html(s.repeats, s.quick),
        steps=lambda s: 0,
        per_device=False,
        description="HTML view size and time until interactive in headless Chromium",
    ),
}


def _bench_parallel(settings: BenchSettings, progress: Progress) -> dict[str, Any]:
    from probe.commands.bench._parallel import bench_parallel

    return bench_parallel(settings, progress=progress)


def _bench_html(repeats: int, quick: bool) -> dict[str, Any]:
    from probe.commands.bench._html import bench_html

    return bench_html(repeats, quick)
