"""``probe bench``: run the selected parts, assemble the JSON document (machine, settings, raw
medians, ratios, goals), print its markdown tables and write it."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._report import check_output_file, write_json
from probe.commands.bench._goals import evaluate_goals
from probe.commands.bench._markdown import to_markdown
from probe.commands.bench._parts import PARTS
from probe.commands.bench._settings import SCHEMA, make_settings
from probe.commands.bench._timing import Progress

if TYPE_CHECKING:
    from probe.commands.bench._command import BenchArgs

__all__ = ["machine_info", "run_bench"]


def machine_info(devices: Sequence[str]) -> dict[str, Any]:
    """CPU model, cores, RAM, library versions and accelerators of this machine."""
    import importlib.metadata as md

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram_gb = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    ram_gb = round(int(line.split()[1]) / 1024**2, 1)
                    break
    except OSError:
        pass

    def version(pkg: str) -> str | None:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    from probe._version import __version__

    info: dict[str, Any] = {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "usable_cores": (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                         else os.cpu_count()),
        "ram_gb": ram_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "probe": __version__,
        "torch": torch.__version__,
        "transformers": version("transformers"),
        "timm": version("timm"),
        "captum": version("captum"),
        "devices": list(devices),
        "cuda_device": torch.cuda.get_device_name(0) if "cuda" in devices else None,
        # CPU timings of large tensors depend on the allocator (see benchmarks/README.md)
        "allocator_env": {k: v for k, v in os.environ.items()
                          if k.startswith("MALLOC_") or k == "LD_PRELOAD"},
        "load_average_start": _load_average(),
    }
    return info


def _load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None



def run_bench(args: BenchArgs) -> int:
    """``probe bench``: run the selected parts, print the markdown tables, write the JSON.

    Args:
        args: the options (``json``, ``quick``, ``device``, ``repeats``, ``quiet``,
            ``parts``, ``threads``), see :func:`make_settings`.
    """
    import torch

    settings = make_settings(args)
    if args.json is not None:  # "" too: it ran the bench and wrote nothing, silently
        check_output_file(args.json)  # -, a folder, a file in the way: before the bench
        directory = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(directory):
            raise ProbeError(f"cannot write {args.json}: the folder {directory} does not "
                             "exist: create it first or pass another path")
    previous_threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "probe bench " + " ".join(_argv_of(args)),
        "machine": machine_info(settings.devices),
        "settings": {**asdict(settings), "torch_threads": torch.get_num_threads()},
        "results": {},
    }
    selected = [(name, part) for name, part in PARTS.items() if name in settings.parts]
    progress = Progress(args.quiet)
    try:
        for device in settings.devices:
            parts: dict[str, Any] = {}
            results["results"][device] = parts
            for name, part in selected:
                if part.per_device:
                    progress.start(f"{name} ({device})", part.steps(settings))
                    parts[name] = part.run(settings, device, progress)
        for name, part in selected:
            if not part.per_device:
                progress.start(name, part.steps(settings))
                results[name] = part.run(settings, None, progress)
    finally:
        progress.close()
        torch.set_num_threads(previous_threads)
    results["machine"]["load_average_end"] = _load_average()
    results["elapsed_s"] = round(time.perf_counter() - start, 1)
    results["goals"] = evaluate_goals(results)
    if args.json:
        write_json(args.json, results, indent=1)
    print(to_markdown(results))
    if args.json:
        print(f"results written to {args.json}")
    return 0


def _argv_of(args: BenchArgs) -> list[str]:
    argv = []
    if args.quick:
        argv.append("--quick")
    if args.device != "auto":
        argv += ["--device", args.device]
    argv += ["--repeats", str(args.repeats)]
    for part in args.parts:
        argv += ["--part", part]
    if args.json:
        argv += ["--json", args.json]
    return argv

