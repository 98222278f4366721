"""``probe bench --part generation``: generating with capture, time and memory.

* **time**: :func:`probe.generate` against plain ``model.generate`` of the same tokens with eager
  attention (the attention probe routes through) and with SDPA (as loaded), on a random-init
  Llama-style decoder (grouped-query attention) and on ``toy-mt``; interleaved repeats,
  medians, the ratio capture / eager (goal at most 1.10).
* **memory**: the peak resident memory one generation adds on a long prompt, one fresh
  process per measurement (``python -m probe.commands.bench._generation``), on a 6-layer
  random-init Llama-style model (loaded with SDPA): plain generation, full capture (the
  prompt's ``P x P`` rows per head and layer kept) and ``keep_prompt=False`` (only the
  generated rows: the prompt step's output comes from SDPA and only its last row is computed
  eagerly; goal at least 20x less than full capture).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probe.commands.bench._settings import BenchSettings
    from probe.commands.bench._timing import Progress

__all__ = ["bench_generation", "generation_steps", "main"]

WORKER = "probe.commands.bench._generation"
TIME_CONFIG = dict(vocab_size=512, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                   num_key_value_heads=2, intermediate_size=256, max_position_embeddings=512)
MEMORY_CONFIG = dict(vocab_size=512, hidden_size=256, num_hidden_layers=6, num_attention_heads=4,
                     num_key_value_heads=2, intermediate_size=512,
                     max_position_embeddings=8192 + 16)
MEMORY_MODES = ("plain", "full", "rows")
NEW_TOKENS = 32


def _memory_tokens(quick: bool) -> tuple[int, ...]:
    return (1024,) if quick else (2048, 4096, 8192)


def generation_steps(settings: BenchSettings) -> int:
    return 2 * settings.repeats + len(MEMORY_MODES) * len(_memory_tokens(settings.quick))


def _llama(config: dict[str, Any], attn: str, device: str) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(**config, attn_implementation=attn)
    return LlamaForCausalLM(cfg).eval().to(device)


def _time_pair(model: Any, eager: Any, inputs: dict[str, Any], repeats: int,
               progress: Progress | None, **kwargs: Any) -> dict[str, Any]:
    import torch

    import probe

    def plain(m: Any) -> Any:
        with torch.no_grad():
            return m.generate(**inputs, **kwargs)

    def captured() -> Any:
        return probe.generate(model, dict(inputs), **kwargs).sequences

    same = torch.equal(plain(eager).cpu(), captured().cpu())  # also the warm-up
    plain(model)
    times: dict[str, list[float]] = {"eager": [], "sdpa": [], "capture": []}
    for _ in range(repeats):  # interleaved
        for name, fn in (("eager", lambda: plain(eager)), ("sdpa", lambda: plain(model)),
                         ("capture", captured)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
        if progress is not None:
            progress.step()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "median_s": med, "same_tokens": same, "repeats": repeats,
        "capture_vs_eager": med["capture"] / med["eager"],
        "capture_vs_sdpa": med["capture"] / med["sdpa"],
        "goal_capture_vs_eager": 1.10,
    }


def bench_generation(
    settings: BenchSettings, device: str = "cpu", progress: Progress | None = None
) -> dict[str, Any]:
    """Time and memory of :func:`probe.generate` (see the module docstring)."""
    import copy

    import torch

    new = dict(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False,
               eos_token_id=None, pad_token_id=0)
    model = _llama(TIME_CONFIG, "sdpa", device)
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    ids = torch.randint(3, TIME_CONFIG["vocab_size"], (1, 64),
                        generator=torch.Generator().manual_seed(0))
    inputs = {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}
    out: dict[str, Any] = {
        "llama": _time_pair(model, eager, inputs, settings.repeats, progress, **new)}
    out["llama"]["setup"] = {"config": TIME_CONFIG, "prompt": 64, "new_tokens": NEW_TOKENS}
    try:
        from probe.models._registry import load_model

        mt, tok = load_model("toy-mt")
        mt = mt.to(device)
        mt_eager = copy.deepcopy(mt)
        mt_eager.set_attn_implementation("eager")
        enc = tok(["the big dog sees a red ice cream today"] * 8, return_tensors="pt")
        enc = {k: v.to(device) for k, v in enc.items()}
        out["toy_mt"] = _time_pair(mt, mt_eager, enc, settings.repeats, progress,
                                   max_new_tokens=16, do_sample=False)
        out["toy_mt"]["setup"] = {"batch": 8, "new_tokens": "until EOS (<= 16)"}
    except Exception as exc:  # the shipped model missing must not stop the bench
        out["toy_mt"] = {"status": f"skipped: {type(exc).__name__}: {exc}"}
    out["memory"] = _bench_memory(settings, device, progress)
    return out


def _bench_memory(settings: BenchSettings, device: str,
                  progress: Progress | None) -> dict[str, Any]:
    rows = []
    for tokens in _memory_tokens(settings.quick):
        for mode in MEMORY_MODES:
            rows.append(_run_worker(mode, tokens, device, settings.threads))
            if progress is not None:
                progress.step()
    ratios, overheads = {}, {}
    for tokens in _memory_tokens(settings.quick):
        by = {r["mode"]: r for r in rows if r.get("tokens") == tokens and r.get("status") == "ok"}
        if "full" in by and "rows" in by and by["rows"]["added_bytes"] > 0:
            ratios[str(tokens)] = by["full"]["added_bytes"] / by["rows"]["added_bytes"]
        if {"full", "rows", "plain"} <= set(by):
            plain = by["plain"]["added_bytes"]
            extra = by["rows"]["added_bytes"] - plain
            if extra > 0:
                overheads[str(tokens)] = (by["full"]["added_bytes"] - plain) / extra
    return {"rows": rows, "full_vs_rows": ratios, "capture_overhead_full_vs_rows": overheads,
            "goal_full_vs_rows": 20.0, "config": MEMORY_CONFIG, "new_tokens": 4}


def _run_worker(mode: str, tokens: int, device: str, threads: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", WORKER, "--mode", mode, "--tokens", str(tokens),
           "--device", device, "--threads", str(threads)]
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    except subprocess.TimeoutExpired:
        return {"mode": mode, "tokens": tokens, "status": "timed out after 900 s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
        why = (
            "killed (out of memory?)" if proc.returncode in (-9, 137)
            else f"exit {proc.returncode}"
        )
        return {"mode": mode, "tokens": tokens, "status": f"failed: {why}: {tail}"}
    result = json.loads(lines[-1])
    result["status"] = "ok"
    return result


def _measure(mode: str, tokens: int, device: str) -> dict[str, Any]:
    import torch

    import probe
    from probe.commands.bench._memory_worker import _peak_rss_bytes, _reset_peak, _rss_bytes

    model = _llama(MEMORY_CONFIG, "sdpa", device)
    ids = torch.randint(3, MEMORY_CONFIG["vocab_size"], (1, tokens),
                        generator=torch.Generator().manual_seed(tokens)).to(device)
    kwargs = dict(max_new_tokens=4, min_new_tokens=4, do_sample=False, eos_token_id=None,
                  pad_token_id=0)
    probe.generate(model, ids[:, :16], **kwargs)  # warm-up: code paths, allocator
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        _reset_peak()
        base = _rss_bytes()
    kept = 0
    with torch.no_grad():
        if mode == "plain":
            model.generate(ids, **kwargs)
        elif mode == "full":
            gen = probe.generate(model, ids, **kwargs)
            kept = gen.attentions.numel() + gen.prompt_attentions.numel()
        else:
            gen = probe.generate(model, ids, keep_prompt=False, **kwargs)
            kept = gen.attentions.numel()
    if cuda:
        torch.cuda.synchronize()
        peak, source = torch.cuda.max_memory_allocated(), "cuda.max_memory_allocated"
    else:
        peak, source = _peak_rss_bytes()
    return {"mode": mode, "tokens": tokens, "added_bytes": max(0, peak - base),
            "kept_attention_values": kept, "peak_source": source}


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description="one generation memory measurement")
    parser.add_argument("--mode", choices=MEMORY_MODES, required=True)
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="0: torch's default")
    args = parser.parse_args(argv)
    if args.threads:  # 0 (--threads 0): torch's default; set_num_threads(0) raises
        torch.set_num_threads(args.threads)
    print(json.dumps(_measure(args.mode, args.tokens, args.device)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def to_markdown(result: dict[str, Any]) -> str:
    """The ``generation`` part's results as markdown tables."""
    lines = ["| model | plain eager s | plain SDPA s | probe.generate s | capture / eager | "
             "capture / SDPA | same tokens |", "|---|---|---|---|---|---|---|"]
    for name in ("llama", "toy_mt"):
        r = result.get(name, {})
        if "median_s" not in r:
            lines.append(f"| {name} | {r.get('status', '-')} | | | | | |")
            continue
        m = r["median_s"]
        lines.append(
            f"| {name} | {m['eager']:.4f} | {m['sdpa']:.4f} | {m['capture']:.4f} | "
            f"{r['capture_vs_eager']:.2f}x | {r['capture_vs_sdpa']:.2f}x | {r['same_tokens']} |"
        )
    mem = result.get("memory", {})
    lines += ["", "| prompt tokens | mode | added peak MB | attention values kept | status |",
              "|---|---|---|---|---|"]
    for row in mem.get("rows", []):
        added = row.get("added_bytes")
        mb = "-" if added is None else f"{added / 2**20:.1f}"
        lines.append(f"| {row['tokens']} | {row['mode']} | {mb} | "
                     f"{row.get('kept_attention_values', '-')} | {row['status'][:60]} |")
    overheads = mem.get("capture_overhead_full_vs_rows", {})
    for tokens, ratio in mem.get("full_vs_rows", {}).items():
        extra = overheads.get(tokens)
        over = "" if extra is None else (
            f"; over plain generation, full capture costs {extra:.0f}x what row capture costs"
        )
        lines.append(f"\n{tokens} tokens: full capture adds {ratio:.1f}x the peak memory of "
                     f"keep_prompt=False (goal: at least 20x){over}")
    return "\n".join(lines)
