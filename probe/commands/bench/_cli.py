"""``probe bench --part cli``: cold start of ``probe --help`` and of ``probe render coref`` end
to end, each in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.commands.bench._timing import median

if TYPE_CHECKING:
    from probe.commands.bench._settings import BenchSettings
    from probe.commands.bench._timing import Progress

__all__ = ["COREF_TEXT", "bench_cli"]

COREF_TEXT = "The animal didn't cross the street because it was too tired."


def _probe_command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "probe")
    if os.path.isfile(script) and os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "probe.cli"]


def _run(cmd: list[str], timeout: float = 600.0) -> tuple[float, subprocess.CompletedProcess]:
    # PROBE_SERVE_SOCKET at a path that is no socket: a cold start, even if a probe serve runs
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
           "MPLBACKEND": "Agg", "PROBE_SERVE_SOCKET": os.devnull}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    return time.perf_counter() - start, proc


def bench_cli(
    settings: BenchSettings, include_render: bool = True, progress: Progress | None = None
) -> dict[str, Any]:
    """Cold start of ``probe --help`` (with the bare interpreter as context) and of
    ``probe render coref`` on MiniLM, each in a fresh process, median of repeats."""
    import importlib.util
    import tempfile

    probe_cmd = _probe_command()
    cmds = {
        "probe --help": [*probe_cmd, "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    for cmd in cmds.values():  # warm the file cache
        _run(cmd)
    samples: dict[str, list[float]] = {k: [] for k in cmds}
    for r in range(settings.cli_repeats):
        names = list(cmds)[r % 2:] + list(cmds)[: r % 2]
        for name in names:
            seconds, proc = _run(cmds[name])
            if proc.returncode != 0:
                raise ProbeError(
                    f"{name!r} failed with exit code {proc.returncode}: {proc.stderr[-300:]}"
                )
            samples[name].append(seconds)
        if progress:
            progress.step("probe --help")
    heavy = ("torch", "transformers", "timm", "captum", "matplotlib")
    probe_imports = (
        "import sys, contextlib, io\nfrom probe.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['--help'])\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    _, proc = _run([sys.executable, "-c", probe_imports])
    result: dict[str, Any] = {
        "command": " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(probe_cmd)),
        "help": {
            "median_s": round(median(samples["probe --help"]), 4),
            "python_startup_median_s": round(median(samples["python -c pass"]), 4),
            "samples_s": [round(s, 4) for s in samples["probe --help"]],
            "heavy_modules_imported": [m for m in proc.stdout.strip().split(",") if m],
        },
    }
    render: dict[str, Any] = {"command": f'probe render coref --text "{COREF_TEXT}" --word it'}
    if not include_render:
        render["status"] = "not run"
    elif importlib.util.find_spec("probe.commands.render") is None:
        render["status"] = "not available"
        render["note"] = "probe/commands/render/ does not exist yet"
    else:
        times: list[float] = []
        with tempfile.TemporaryDirectory(prefix="probe-bench-") as out:
            cmd = [*probe_cmd, "render", "coref", "--text", COREF_TEXT, "--word", "it",
                   "--out", out, "--quiet"]
            _run(cmd)  # warm the file cache (and fail early)
            for _ in range(settings.render_repeats):
                seconds, proc = _run(cmd)
                if proc.returncode != 0:
                    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
                    render["status"] = f"failed: exit {proc.returncode}: {tail}"
                    break
                times.append(seconds)
                if progress:
                    progress.step("render coref")
            files = sorted(os.listdir(out)) if os.path.isdir(out) else []
        if times and "status" not in render:
            render.update({"status": "ok", "median_s": round(median(times), 3),
                           "samples_s": [round(t, 3) for t in times], "files": files})
    result["render_coref"] = render
    return result

