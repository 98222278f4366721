"""``probe bench --part memory``: the peak memory a forward adds on long inputs.

1024-4096 tokens on a MiniLM-sized random BERT, one fresh process per measurement
(:mod:`probe.commands.bench._memory_worker`): the plain SDPA forward,
``output_attentions=True`` and probe's streaming rollout; plus the check that the streaming
rollout equals :func:`probe.rollout` of the full ``output_attentions``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probe.commands.bench._settings import BenchSettings
    from probe.commands.bench._timing import Progress

__all__ = ["bench_memory"]

#: ``python -m`` module of the worker that measures one forward in a fresh process.
WORKER = "probe.commands.bench._memory_worker"


def _memory_worker(
    mode: str, tokens: int, device: str, config: dict[str, Any] | None, threads: int,
    timeout_s: float, chunk_size: int | None = None,
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", WORKER, "--mode", mode, "--tokens", str(tokens),
           "--device", device, "--threads", str(threads)]
    if config is not None:
        cmd += ["--config", json.dumps(config)]
    if chunk_size is not None:
        cmd += ["--chunk-size", str(chunk_size)]
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {"mode": mode, "tokens": tokens, "status": f"timed out after {timeout_s:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
        killed = proc.returncode in (-9, 137)
        why = "killed (out of memory?)" if killed else f"exit {proc.returncode}"
        return {"mode": mode, "tokens": tokens, "status": f"failed: {why}: {tail}"}
    result = json.loads(lines[-1])
    result["status"] = "ok"
    return result


def bench_memory(
    settings: BenchSettings,
    device: str = "cpu",
    config: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Peak memory added by a forward: SDPA, ``output_attentions`` and streaming rollout.

    Args:
        config: ``BertConfig`` keyword arguments; default the MiniLM-sized encoder
            (:data:`probe.commands.bench._memory_worker.MINILM_SIZED`).

    Returns:
        ``by_tokens[str(n)]``: ``{mode}_gb`` for each mode, ``ratio_output_attentions_over_stream``
        and, at the checked sizes, ``stream_vs_rollout_max_abs_diff``; ``raw`` the worker
        outputs.
    """
    from probe.commands.bench._memory_worker import MINILM_SIZED

    modes = ("sdpa", "output_attentions", "stream")
    raw: list[dict[str, Any]] = []
    by_tokens: dict[str, dict[str, Any]] = {}
    for n in settings.memory_tokens:
        row: dict[str, Any] = {}
        for mode in modes:
            res = _memory_worker(mode, n, device, config, settings.threads,
                                 settings.memory_timeout_s)
            raw.append(res)
            if res["status"] == "ok":
                row[f"{mode}_gb"] = round(res["peak_increase_bytes"] / 1e9, 4)
            else:
                row[f"{mode}_gb"] = None
                row[f"{mode}_status"] = res["status"]
            if progress:
                progress.step(f"{mode} {n}")
        if row.get("output_attentions_gb") and row.get("stream_gb"):
            row["ratio_output_attentions_over_stream"] = round(
                row["output_attentions_gb"] / row["stream_gb"], 3
            )
        if row.get("sdpa_gb") and row.get("stream_gb"):
            row["ratio_stream_over_sdpa"] = round(row["stream_gb"] / row["sdpa_gb"], 3)
        if n in settings.check_tokens:
            res = _memory_worker("check", n, device, config, settings.threads,
                                 settings.memory_timeout_s)
            raw.append(res)
            if res["status"] == "ok":
                row["stream_vs_rollout_max_abs_diff"] = res["max_abs_diff"]
                row["stream_vs_rollout_assert_close"] = res["assert_close"]
            else:
                row["check_status"] = res["status"]
            if progress:
                progress.step(f"check {n}")
        by_tokens[str(n)] = row
    method = next((r.get("method") for r in raw if r.get("method")), None)
    return {
        "model": "random-init BertModel",
        "config": dict(MINILM_SIZED if config is None else config),
        "method": method,
        "modes": {
            "sdpa": "plain forward as loaded (SDPA)",
            "output_attentions": "eager forward with output_attentions=True",
            "stream": "probe.trace(stream=True) (streaming rollout, default chunk size)",
        },
        "by_tokens": by_tokens,
        "raw": raw,
    }

