"""``probe bench --part startup``: where the start-up time of ``probe render coref`` on
MiniLM goes, in fresh processes.

Each repeat runs, in this order rotated by one per repeat (so no command always runs first):

* ``probe render coref ... --quiet`` end to end (wall clock and the child's CPU time,
  user + system, which the load of a shared machine distorts less);
* the same steps in one process, timed one by one (``_startup_worker.py``);
* the import floor: ``python -c "import torch, <the BERT code of transformers>"``, what
  any way of loading MiniLM as a transformers model pays before doing anything;
* the interpreter alone;
* ``probe render coref`` served by ``probe serve`` (started once for the part, stopped at
  its end): wall clock of the client, CPU of the client plus that of the server's worker
  (which the server reports from ``os.wait4``).

The last two leave with ``os._exit`` as the ``probe`` console script does
(:func:`probe.cli.run`), so none of the three pays the interpreter's teardown.

Medians over the repeats, and the best (smallest) wall time, are reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.commands.bench._cli import COREF_TEXT, _probe_command
from probe.commands.bench._startup_worker import IMPORT_GROUPS
from probe.commands.bench._timing import median

if TYPE_CHECKING:
    from probe.commands.bench._settings import BenchSettings
    from probe.commands.bench._timing import Progress

__all__ = ["bench_startup", "startup_steps", "to_markdown"]

_FLOOR_MODULES = [m for _, modules in IMPORT_GROUPS for m in modules]

#: four more sentences for the batch row: ``--text`` repeated, one start-up for all five
_MORE_TEXTS = (
    "The trophy didn't fit in the suitcase because it was too big.",
    "The city council refused the demonstrators a permit because it feared violence.",
    "The ball broke the table because it was made of steel.",
    "The man couldn't lift his son because it was too heavy for him.",
)


def startup_steps(settings: BenchSettings) -> int:
    """Progress steps of the part: one per repeat."""
    return settings.render_repeats


def _child_cpu() -> float | None:
    try:
        import resource
    except ImportError:  # Windows: no per-child CPU time
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float | None, str]:
    """``(wall s, CPU s of the child or None, stdout)`` of one fresh process."""
    cpu0 = _child_cpu()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    wall = time.perf_counter() - start
    cpu1 = _child_cpu()
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
        raise ProbeError(f"{' '.join(cmd[:4])} ... failed with exit code {proc.returncode}: {tail}")
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return wall, cpu, proc.stdout


@contextlib.contextmanager
def _server(folder: str, env: dict[str, str]) -> Iterator[tuple[dict[str, str], str, float]]:
    """A ``probe serve`` of its own for the part: ``(client env, its log, start-up wall s)``;
    stopped (SIGTERM) on the way out."""
    sock, log = os.path.join(folder, "serve", "serve.sock"), os.path.join(folder, "serve.log")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*_probe_command(), "serve", "--idle-timeout", "30"], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, env={**env, "PROBE_SERVE_SOCKET": sock, "PROBE_SERVE_LOG": log})
    try:
        line = proc.stderr.readline().decode(errors="replace") if proc.stderr else ""
        if not line.startswith("probe serve: ready"):
            raise ProbeError(f"probe serve did not start: {line.strip() or 'no output'}")
        yield {**env, "PROBE_SERVE_SOCKET": sock}, log, time.perf_counter() - start
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def _timed_served(cmd: list[str], env: dict[str, str], log: str) -> tuple[float, float | None,
                                                                            float]:
    """``(wall s, CPU s of client + worker or None, worker CPU s)`` of one served run."""
    cpu0 = _child_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        _, err = proc.communicate(timeout=900)
    except BaseException:  # as subprocess.run: no client left behind
        proc.kill()
        proc.wait()
        raise
    wall = time.perf_counter() - start
    cpu1 = _child_cpu()
    with open(log, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    served = [r for r in records if r.get("client") == proc.pid and "cpu_s" in r]
    if proc.returncode != 0 or not served:
        tail = (err.decode(errors="replace").strip().splitlines() or ["(no output)"])[-1]
        raise ProbeError(f"served {' '.join(cmd[:4])} ... failed (exit code {proc.returncode}, "
                         f"served: {bool(served)}): {tail[:300]}")
    worker = float(served[-1]["cpu_s"])
    return wall, None if cpu0 is None or cpu1 is None else cpu1 - cpu0 + worker, worker


def _summary(walls: list[float], cpus: list[float | None]) -> dict[str, Any]:
    known = [c for c in cpus if c is not None]
    return {
        "wall_median_s": round(median(walls), 3), "wall_min_s": round(min(walls), 3),
        "cpu_median_s": round(median(known), 3) if known else None,
        "wall_samples_s": [round(w, 3) for w in walls],
        "cpu_samples_s": [round(c, 3) for c in known],
    }


def bench_startup(settings: BenchSettings, progress: Progress | None = None) -> dict[str, Any]:
    """The start-up of ``probe render coref`` on MiniLM: end to end, per step, and the floor
    of importing torch and transformers' BERT code, ``settings.render_repeats`` times each in
    fresh processes.

    Returns:
        ``{"command", "repeats", "load_average", "cpus", "end_to_end", "import_floor",
        "interpreter", "served", "phases": [{"name", "wall_median_s", "wall_min_s",
        "cpu_median_s"}]}`` (``served`` adds ``worker_cpu_median_s`` and ``server_start_s``)
        (CPU times are ``None`` where the OS gives no per-child CPU time).
    """
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="probe-bench-startup-") as out, \
            _server(out, _env(out)) as (served_env, log, server_start_s):
        env = _env(out)
        render = [*_probe_command(), "render", "coref", "--model", "minilm", "--text",
                  COREF_TEXT, "--word", "it", "--out", os.path.join(out, "cli"), "--quiet"]
        batch = [*render[: render.index("--out")], *(a for t in _MORE_TEXTS for a in ("--text", t)),
                 "--out", os.path.join(out, "batch"), "--quiet"]
        commands = {
            "end_to_end": render,
            "batch": batch,
            "worker": [sys.executable, "-m", "probe.commands.bench._startup_worker",
                       os.path.join(out, "worker")],
            # leaving with os._exit, as the console script does (no interpreter teardown)
            "import_floor": [sys.executable, "-c",
                             f"import os, {', '.join(_FLOOR_MODULES)}; os._exit(0)"],
            "interpreter": [sys.executable, "-c", "import os; os._exit(0)"],
        }
        served = [*render[: render.index("--out")], "--out", os.path.join(out, "served"),
                  "--quiet"]
        commands["served"] = served
        _timed(render, env)  # warm the file cache (and fail early)
        _timed_served(served, served_env, log)
        walls: dict[str, list[float]] = {k: [] for k in commands}
        cpus: dict[str, list[float | None]] = {k: [] for k in commands}
        worker_cpus: list[float] = []
        phases: list[list[list[Any]]] = []
        names = list(commands)
        for r in range(settings.render_repeats):
            for name in names[r % len(names):] + names[: r % len(names)]:
                if name == "served":
                    wall, cpu, worker_cpu = _timed_served(served, served_env, log)
                    walls[name].append(wall)
                    cpus[name].append(cpu)
                    worker_cpus.append(worker_cpu)
                    continue
                wall, cpu, stdout = _timed(commands[name], env)
                walls[name].append(wall)
                cpus[name].append(cpu)
                if name == "worker":
                    phases.append(json.loads(stdout.strip().splitlines()[-1])["phases"])
            if progress:
                progress.step("render coref start-up")
    load_end = os.getloadavg() if hasattr(os, "getloadavg") else None
    steps = []
    for i, (name, _, _) in enumerate(phases[0]):
        step_walls = [run[i][1] for run in phases]
        steps.append({"name": name, "wall_median_s": round(median(step_walls), 3),
                      "wall_min_s": round(min(step_walls), 3),
                      "cpu_median_s": round(median([run[i][2] for run in phases]), 3)})
    display = " ".join(f'"{c}"' if " " in c else c for c in render[render.index("render"):])
    return {
        "command": "probe " + display.replace(os.path.join(out, "cli"), "OUT"),
        "repeats": settings.render_repeats,
        "load_average": [round(x, 2) for x in (load_start or ())[:1] + (load_end or ())[:1]],
        "cpus": os.cpu_count(),
        "end_to_end": _summary(walls["end_to_end"], cpus["end_to_end"]),
        "batch": {**_summary(walls["batch"], cpus["batch"]), "sentences": 1 + len(_MORE_TEXTS)},
        "worker": _summary(walls["worker"], cpus["worker"]),
        "import_floor": {**_summary(walls["import_floor"], cpus["import_floor"]),
                         "modules": _FLOOR_MODULES},
        "interpreter": _summary(walls["interpreter"], cpus["interpreter"]),
        "served": {**_summary(walls["served"], cpus["served"]),
                   "worker_cpu_median_s": round(median(worker_cpus), 3),
                   "server_start_s": round(server_start_s, 3)},
        "phases": steps,
    }


def _env(out: str) -> dict[str, str]:
    """The cold runs' environment: offline, Agg, and no server of the user's in reach."""
    return {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
            "MPLBACKEND": "Agg", "PROBE_SERVE_SOCKET": os.path.join(out, "no-server.sock")}


def _extra(one: dict[str, Any], batch: dict[str, Any], key: str) -> float | None:
    """What each sentence after the first adds: ``(batch - one) / (sentences - 1)``."""
    if one[key] is None or batch[key] is None:
        return None
    return (batch[key] - one[key]) / (batch["sentences"] - 1)


def _served_rows(result: dict[str, Any]) -> list[str]:
    served = result.get("served")
    if not served:
        return []
    cpu = "-" if served["cpu_median_s"] is None else f"{served['cpu_median_s']:.2f}"
    return [f"| the same, served by `probe serve` (client + worker; the server started once "
            f"in {served['server_start_s']:.1f} s) | {served['wall_median_s']:.2f} "
            f"({served['wall_min_s']:.2f}) | {cpu} |"]


def to_markdown(result: dict[str, Any]) -> str:
    """The part's tables: end to end against the floors, then the steps."""

    def cell(x: float | None, digits: int = 2) -> str:
        return "-" if x is None else f"{x:.{digits}f}"

    e, f, i = result["end_to_end"], result["import_floor"], result["interpreter"]
    b = result["batch"]
    lines = [
        f"`{result['command']}`, {result['repeats']} fresh processes per row, load average "
        f"{' -> '.join(str(x) for x in result['load_average']) or '-'} on {result['cpus']} "
        "CPUs (CPU = user + system of the process; wall = median, best in brackets):",
        "",
        "| what | wall s | CPU s |",
        "|---|---:|---:|",
        f"| probe render coref, end to end | {cell(e['wall_median_s'])} "
        f"({cell(e['wall_min_s'])}) | {cell(e['cpu_median_s'])} |",
        *_served_rows(result),
        f"| the same with {b['sentences']} sentences (--text repeated) | "
        f"{cell(b['wall_median_s'])} ({cell(b['wall_min_s'])}) | {cell(b['cpu_median_s'])} |",
        f"| each sentence after the first | {cell(_extra(e, b, 'wall_median_s'))} | "
        f"{cell(_extra(e, b, 'cpu_median_s'))} |",
        f"| import floor: torch + transformers' BERT code | {cell(f['wall_median_s'])} "
        f"({cell(f['wall_min_s'])}) | {cell(f['cpu_median_s'])} |",
        f"| python interpreter alone | {cell(i['wall_median_s'])} ({cell(i['wall_min_s'])}) | "
        f"{cell(i['cpu_median_s'])} |",
        "",
        "| step (one process, in order) | wall s | CPU s |",
        "|---|---:|---:|",
    ]
    for step in result["phases"]:
        lines.append(f"| {step['name']} | {cell(step['wall_median_s'])} "
                     f"({cell(step['wall_min_s'])}) | {cell(step['cpu_median_s'])} |")
    total_cpu = sum(s["cpu_median_s"] for s in result["phases"])
    total_wall = sum(s["wall_median_s"] for s in result["phases"])
    lines.append(f"| sum of the steps | {cell(total_wall)} | {cell(total_cpu)} |")
    return "\n".join(lines)
