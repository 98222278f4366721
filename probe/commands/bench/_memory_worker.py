"""Memory worker of ``probe bench``: one measurement per fresh process.

``python -m probe.commands.bench._memory_worker --mode MODE --tokens N [--device cpu|cuda]
[--config JSON]`` builds a random-init BERT-style encoder (MiniLM-sized by default), runs one
forward pass on ``N`` tokens in the given mode and prints one JSON line on stdout with the peak
memory the forward added on top of the loaded model.

Modes:

* ``sdpa``: the plain forward of the model as loaded (SDPA attention);
* ``output_attentions``: the eager forward with ``output_attentions=True`` (what bertviz
  users run);
* ``trace``: ``probe.trace`` keeping every layer;
* ``stream``: ``probe.trace(..., stream=True)``, the streaming attention rollout;
* ``check``: not a memory measurement: the streaming rollout against ``probe.rollout`` of the
  eager ``output_attentions`` of the same input (maximum absolute difference).

On CPU the peak is read from the kernel: the resident-set high-water mark is reset just
before the forward (``/proc/self/clear_refs``), and the increase is the high-water mark
after the forward (``VmHWM`` of ``/proc/self/status``; ``ru_maxrss`` where there is no
``/proc``) minus the resident size read from ``/proc/self/statm`` just before it. torch's
CPU allocations bypass ``tracemalloc``, and one process per measurement keeps allocator
caches and earlier peaks out of the number. ``ru_maxrss`` is not used on Linux because the
kernel carries it over ``execve``: in a worker forked by a process holding 1.6 GB it never
reads below 1.6 GB. On CUDA the increase is ``max_memory_allocated`` minus
``memory_allocated`` before the forward, after ``reset_peak_memory_stats``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["MEMORY_MODES", "MINILM_SIZED", "build_encoder", "measure", "main"]

MemoryMode = Literal["sdpa", "output_attentions", "trace", "stream", "check"]
MEMORY_MODES: tuple[str, ...] = ("sdpa", "output_attentions", "trace", "stream", "check")

#: BertConfig keyword arguments of the MiniLM-sized encoder (6 layers x 12 heads, hidden 384).
MINILM_SIZED: dict[str, Any] = {
    "vocab_size": 30522,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "max_position_embeddings": 4096,
}

_WARMUP_TOKENS = 16


def build_encoder(config: dict[str, Any], seed: int = 0) -> nn.Module:
    """A random-init ``BertModel`` from ``BertConfig(**config)`` in eval mode (SDPA attention)."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    return BertModel(BertConfig(**config)).eval()


def _inputs(config: dict[str, Any], tokens: int, device: str) -> dict[str, torch.Tensor]:
    import torch

    gen = torch.Generator().manual_seed(tokens)
    vocab = int(config.get("vocab_size", 30522))
    low = 1000 if vocab > 2000 else 1  # skip the special tokens at the start of BERT's vocab
    ids = torch.randint(low, vocab, (1, tokens), generator=gen)
    return {
        "input_ids": ids.to(device),
        "token_type_ids": torch.zeros_like(ids).to(device),
        "attention_mask": torch.ones_like(ids).to(device),
    }


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> tuple[int, str]:
    """The resident-set high-water mark of this process and where it was read.

    ``VmHWM`` of ``/proc/self/status`` first: ``ru_maxrss`` is floored by the resident size
    the process had *before* ``execve`` (Linux carries ``maxrss`` over an exec), i.e. by the
    size of the parent that forked it, which is useless in a worker started by a big process.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024, "VmHWM"
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) * (1 if sys.platform == "darwin" else 1024), "ru_maxrss"


def _forward(model: nn.Module, eager: nn.Module | None, mode: str, inputs: dict[str, Any],
             chunk_size: int | None) -> Any:
    import torch

    import probe

    with torch.no_grad():
        if mode == "sdpa":
            return model(**inputs)
        if mode == "output_attentions":
            assert eager is not None
            return eager(**inputs, output_attentions=True)
        if mode == "trace":
            return probe.trace(model, inputs, chunk_size=chunk_size)
        if mode == "stream":
            return probe.trace(model, inputs, stream=True, chunk_size=chunk_size)
    raise ProbeError(f"unknown memory mode {mode!r}: use one of {list(MEMORY_MODES)}")


def _check(model: nn.Module, eager: nn.Module, inputs: dict[str, Any],
           chunk_size: int | None) -> dict[str, Any]:
    """Streaming rollout vs ``probe.rollout`` of the eager ``output_attentions``."""
    import torch

    import probe

    with torch.no_grad():
        streamed = probe.trace(model, inputs, stream=True, chunk_size=chunk_size).rollout_result
        out = eager(**inputs, output_attentions=True)
    attentions = torch.stack(out.attentions)  # [layer, batch, head, query, key]
    del out
    layers, batch, heads, n, _ = attentions.shape
    reference_trace = probe.Trace(
        attentions=attentions,
        layer_names=tuple(f"encoder.layer.{i}.attention" for i in range(layers)),
        layer_indices=tuple(range(layers)),
        head_indices=tuple(range(heads)),
        model_name="bert-random",
        family="encoder",
        attention_mask=inputs["attention_mask"].to(torch.bool).cpu(),
        special_tokens_mask=torch.zeros(batch, n, dtype=torch.bool),
        num_heads=heads,
        num_model_layers=layers,
    )
    reference = probe.rollout(reference_trace)
    assert streamed is not None
    diff = float((streamed.float() - reference.float()).abs().max())
    try:
        torch.testing.assert_close(streamed, reference)
        close = True
    except AssertionError:
        close = False
    return {"max_abs_diff": diff, "assert_close": close, "shape": list(reference.shape)}


def measure(
    mode: MemoryMode,
    tokens: int,
    device: str = "cpu",
    config: dict[str, Any] | None = None,
    chunk_size: int | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """One measurement in the current process (run it in a fresh process for clean peaks).

    Args:
        mode: one of :data:`MEMORY_MODES`.
        tokens: sequence length (batch 1).
        device: ``"cpu"`` or ``"cuda"``.
        config: ``BertConfig`` keyword arguments; default :data:`MINILM_SIZED`.
        chunk_size: ``probe.trace`` chunk size (``None``: probe's default).
        threads: ``torch.set_num_threads`` (``None`` or 0: torch's default).

    Returns:
        A JSON-ready dict: ``peak_increase_bytes`` (memory modes) or ``max_abs_diff``
        (``check``), plus how it was measured.
    """
    import copy

    import torch

    if mode not in MEMORY_MODES:
        raise ProbeError(f"unknown memory mode {mode!r}: use one of {list(MEMORY_MODES)}")
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 2:
        raise ProbeError(f"tokens must be an integer >= 2, got {tokens!r}")
    if device not in ("cpu", "cuda"):
        raise ProbeError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ProbeError("device 'cuda' asked for but torch.cuda.is_available() is False")
    if threads:
        torch.set_num_threads(int(threads))
    config = dict(MINILM_SIZED if config is None else config)
    limit = int(config.get("max_position_embeddings", 512))
    if tokens > limit:
        raise ProbeError(f"tokens={tokens} exceeds max_position_embeddings={limit} of the config")

    model = build_encoder(config).to(device)
    eager = None
    if mode in ("output_attentions", "check"):
        eager = copy.deepcopy(model)
        eager.set_attn_implementation("eager")
        if mode == "output_attentions":
            model = eager  # only the eager copy is resident during the measurement
    result: dict[str, Any] = {
        "mode": mode, "tokens": tokens, "device": device, "chunk_size": chunk_size,
        "threads": torch.get_num_threads(),
    }
    # warm-up on a few tokens: loads kernels and lazily initialised libraries
    _forward(model, eager, "sdpa" if mode == "check" else mode,
             _inputs(config, _WARMUP_TOKENS, device), chunk_size)
    inputs = _inputs(config, tokens, device)
    if mode == "check":
        start = time.perf_counter()
        result.update(_check(model, eager, inputs, chunk_size))  # type: ignore[arg-type]
        result["seconds"] = time.perf_counter() - start
        return result

    import gc

    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        start = time.perf_counter()
        out = _forward(model, eager, mode, inputs, chunk_size)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated()
        method = "torch.cuda.max_memory_allocated - memory_allocated before the forward"
    else:
        reset = _reset_peak()
        before = _rss_bytes()
        start = time.perf_counter()
        out = _forward(model, eager, mode, inputs, chunk_size)
        seconds = time.perf_counter() - start
        peak, source = _peak_rss_bytes()
        method = (
            f"{source} after the forward - RSS (/proc/self/statm) before it; "
            + ("high-water mark reset with /proc/self/clear_refs just before the forward" if reset
               else "high-water mark NOT reset (process lifetime; clear_refs not writable)")
        )
    del out
    result.update({
        "peak_increase_bytes": max(0, peak - before),
        "before_bytes": before,
        "peak_bytes": peak,
        "seconds": seconds,
        "method": method,
    })
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m probe.commands.bench._memory_worker``: print one measurement as a JSON line."""
    parser = argparse.ArgumentParser(prog="python -m probe.commands.bench._memory_worker",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", required=True, choices=MEMORY_MODES)
    parser.add_argument("--tokens", required=True, type=int)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--config", default=None, help="BertConfig kwargs as JSON")
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    ns = parser.parse_args(list(argv) if argv is not None else None)
    try:
        config = json.loads(ns.config) if ns.config else None
        result = measure(ns.mode, ns.tokens, ns.device, config, ns.chunk_size, ns.threads)
    except (ProbeError, json.JSONDecodeError) as exc:
        print(f"probe.commands.bench._memory_worker: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
