"""``probe bench --part parallel``: one ``probe eval`` in one process and in two (torchrun).

The same command line (``probe eval sanity`` on ``vit-shapes``: ``n`` images in batches of 2,
three methods) runs once as a plain process and once under ``torchrun --standalone
--nproc_per_node 2`` (gloo on CPU), one after the other, each in fresh processes with
``OMP_NUM_THREADS=1``. Reported side by side: the evaluation time of the main process
(``run_time_s`` of its JSON: the split work plus gathering), the wall clock of the whole
command (start-up of every process included), the CPU time of all processes (user + sys), the
speed-ups (one process / two) and whether the two JSONs agree to float tolerance (timings,
versions and the process split aside). On a shared machine the load average is recorded next
to them: a speed-up near 2 needs two idle cores.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    from probe.commands.bench._settings import BenchSettings
    from probe.commands.bench._timing import Progress

__all__ = ["TIMING_KEYS", "bench_parallel", "json_differences", "parallel_markdown"]

TIMING_KEYS = frozenset({"run_time_s", "seconds_per_image", "seconds", "versions", "processes"})
"""Keys of an eval JSON that differ between runs by nature (times, versions, the split)."""

METHODS = ("attention", "rollout", "gradcam")


def json_differences(
    a: Any, b: Any, path: str = "", skip: frozenset[str] = TIMING_KEYS,
    rel_tol: float = 1e-6, abs_tol: float = 1e-9,
) -> list[str]:
    """Where two eval JSON documents differ beyond float tolerance (``skip`` keys aside).

    Returns:
        One line per difference (``".methods.rollout.spearman[2]: 0.5 != 0.51"``); empty when
        they agree.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) - skip != set(b) - skip:
            return [f"{path}: keys {sorted((set(a) ^ set(b)) - skip)}"]
        return [d for k in a if k not in skip
                for d in json_differences(a[k], b[k], f"{path}.{k}", skip, rel_tol, abs_tol)]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b))
                for d in json_differences(x, y, f"{path}[{i}]", skip, rel_tol, abs_tol)]
    if isinstance(a, float) and isinstance(b, float):
        same = math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol) or (
            math.isnan(a) and math.isnan(b)
        )
        return [] if same else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _eval_args(n: int, out: Path) -> list[str]:
    methods = [f"--method={m}" for m in METHODS]
    return ["eval", "sanity", "--n", str(n), "--batch-size", "2", *methods, "--quiet",
            "--json", str(out)]


def _timed(cmd: list[str], timeout: float) -> dict[str, Any]:
    """Wall clock and CPU time (user + sys of every process it started) of one command."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
        raise ProbeError(f"{' '.join(cmd[:6])} ... failed with exit {proc.returncode}: {tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def bench_parallel(settings: BenchSettings, progress: Progress | None = None) -> dict[str, Any]:
    """One sanity eval in one process and in two (torchrun), side by side (see the module)."""
    n = 4 if settings.quick else 8
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="probe-bench-parallel-") as tmp:
        out = {k: Path(tmp) / f"{k}.json" for k in ("one", "two")}
        commands = {
            "one": [sys.executable, "-m", "probe.cli", *_eval_args(n, out["one"])],
            "two": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", "2", "--no-python", "--", sys.executable, "-m",
                    "probe.cli", *_eval_args(n, out["two"])],
        }
        load = [_load()]
        for key, cmd in commands.items():
            runs[key] = _timed(cmd, timeout=600.0)
            result = json.loads(out[key].read_text())
            runs[key]["run_time_s"] = round(float(result["run_time_s"]), 2)
            runs[key]["items_per_process"] = result["processes"]["items_per_process"]
            runs[key]["json"] = result
            load.append(_load())
            if progress:
                progress.step(f"parallel eval ({key})")
    differences = json_differences(runs["one"].pop("json"), runs["two"].pop("json"))
    one, two = runs["one"], runs["two"]
    return {
        "eval": " ".join(["probe", *_eval_args(n, Path("OUT.json"))]),
        "launcher": "torchrun --standalone --nproc_per_node 2 (gloo), OMP_NUM_THREADS=1",
        "images": n,
        "batches": math.ceil(n / 2),
        "one_process": one,
        "two_processes": two,
        "speedup_eval": _ratio(one["run_time_s"], two["run_time_s"]),
        "speedup_wall": _ratio(one["wall_s"], two["wall_s"]),
        "cpu_ratio_two_over_one": _ratio(two["cpu_s"], one["cpu_s"]),
        "identical": not differences,
        "differences": differences[:10],
        "load_average": load,
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else
        os.cpu_count(),
        "definitions": {
            "run_time_s": "the main process's evaluation time (its JSON's run_time_s: its "
            "share of the batches, then the gathering, which waits for the other process)",
            "wall_s": "the whole command, start-up of every process and model loading included",
            "cpu_s": "user + sys CPU seconds of every process the command started",
            "speedup": "one process / two processes (above 1: two are faster)",
            "identical": "the two JSONs agree to rel 1e-6 (timings, versions, split aside)",
        },
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b > 0 else None


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # not available on this platform
        return None


def parallel_markdown(result: dict[str, Any]) -> list[str]:
    """The README table of :func:`bench_parallel`."""
    one, two = result["one_process"], result["two_processes"]
    rows = [
        ["1", f"{one['run_time_s']:.2f}", f"{one['wall_s']:.1f}", f"{one['cpu_s']:.1f}",
         str(one["items_per_process"])],
        ["2 (torchrun)", f"{two['run_time_s']:.2f} ({result['speedup_eval']}x)",
         f"{two['wall_s']:.1f} ({result['speedup_wall']}x)", f"{two['cpu_s']:.1f}",
         str(two["items_per_process"])],
    ]
    header = "| processes | eval s (speed-up) | wall s (speed-up) | CPU s | batches per process |"
    load = ", ".join("-" if x is None else f"{x:.1f}" for x in result["load_average"])
    return [
        f"### Evaluation over processes (`{result['eval']}`)",
        "",
        header,
        "|---|---|---|---|---|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        f"JSONs identical to float tolerance: {'yes' if result['identical'] else 'NO'}; "
        f"{result['usable_cores']} usable cores, load average {load} (before, after each run).",
        "",
    ]
