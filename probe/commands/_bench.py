"""``probe bench``: what capture and analysis cost, measured side by side in one process.

Every timing is the median of several repeats after a warm-up, and every comparison is a
ratio of variants measured *interleaved*: in each repeat all variants run once, round-robin,
in an order rotated from repeat to repeat, so that noise from a shared machine hits all of
them alike. A ratio is the median over repeats of the per-repeat ratio (paired). Absolute
times are recorded as context only.

Parts (``--part``; all by default):

* ``capture``: forward with :func:`probe.trace` against the plain forward of the same model
  as loaded (SDPA / fused attention), its eager forward, and its eager forward keeping the
  attention maps (``output_attentions=True``, what bertviz users run). MiniLM at 128 and 512
  tokens and a random-init ViT-S/16 at 224x224.
* ``memory``: peak memory a forward adds on long inputs (1024-4096 tokens, MiniLM-sized
  random BERT), one fresh process per measurement (:mod:`probe.commands._benchmem`): the plain SDPA
  forward, ``output_attentions=True`` and probe's streaming rollout; plus the check that the
  streaming rollout equals :func:`probe.rollout` of the full ``output_attentions``.
* ``analyzers``: :func:`probe.rollout` and :func:`probe.relevance_from_gradients` on a
  ViT-S trace against straightforward reference loops (as in the research code), against the
  forward that produced the trace and against one forward plus one backward; and the
  throughput (images per second) of every vision attribution method on ``vit-shapes`` and
  ViT-S at batch 1 and 32.
* ``cli``: cold start of ``probe --help`` and ``probe render coref`` end to end.

The results are one JSON document (machine, settings, raw medians, ratios, goals and whether
each is met); :func:`to_markdown` renders it as tables (``python -m probe.commands._bench --markdown
OUT.json``).

CPU timings run with one torch thread by default (``PROBE_BENCH_THREADS`` overrides it; 0
keeps torch's default): on a machine whose cores are shared, multi-threaded kernels spend
most of their time waiting for preempted threads and ratios become meaningless.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.cli import BenchArgs

__all__ = [
    "BenchSettings",
    "CaptureCase",
    "VisionCase",
    "bench_analyzers",
    "bench_capture",
    "bench_cli",
    "bench_memory",
    "evaluate_goals",
    "make_settings",
    "run_bench",
    "to_markdown",
]

SCHEMA = "probe-bench/1"
PARTS = ("capture", "memory", "analyzers", "cli", "html")
COREF_TEXT = "The animal didn't cross the street because it was too tired."

#: Capture variants, in the order they are reported.
VARIANTS: dict[str, str] = {
    "sdpa": "plain forward as loaded (SDPA / fused)",
    "eager": "eager forward",
    "eager_output_attentions": "eager + output_attentions",
    "trace": "probe.trace",
    "trace_average_heads": "probe.trace(average_heads=True)",
    "trace_stream": "probe.trace(stream=True)",
}
BASELINES = {
    "sdpa": "vs_sdpa",
    "eager": "vs_eager",
    "eager_output_attentions": "vs_eager_output_attentions",
}

GOALS = {
    "capture_vs_eager": 1.05,
    "memory_ratio_4096": 10.0,
    "memory_same_rollout": 1e-5,
    "rollout_vs_forward": 0.05,
    "relevance_vs_forward_backward": 1.3,
    "cli_help_s": 0.3,
}


# --------------------------------------------------------------------------- settings
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
    parts: tuple[str, ...] = PARTS
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


def make_settings(args: BenchArgs) -> BenchSettings:
    """Settings for the ``probe bench`` options ``args`` (``--quick``, ``--repeats``, ...)."""
    import torch

    repeats = args.repeats
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ProbeError(f"--repeats must be a positive integer, got {repeats!r}")
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        raise ProbeError(f"unknown bench part(s) {unknown}: use {list(PARTS)}")
    parts = tuple(p for p in PARTS if p in args.parts) if args.parts else PARTS
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
    if threads is None:
        raw = os.environ.get("PROBE_BENCH_THREADS", "1")
        try:
            threads = int(raw)
        except ValueError:
            raise ProbeError(f"PROBE_BENCH_THREADS must be an integer, got {raw!r}") from None
    if threads < 0:
        raise ProbeError(f"the number of threads must be >= 0 (0: torch's default), got {threads}")
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


# --------------------------------------------------------------------------- timing
def _sync(device: str) -> Callable[[], None]:
    if device == "cuda":
        import torch

        return torch.cuda.synchronize
    return lambda: None


def time_interleaved(
    fns: dict[str, Callable[[], Any]],
    repeats: int,
    warmup: int = 1,
    device: str = "cpu",
    min_sample_s: float = 0.0,
    on_repeat: Callable[[], None] | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of every function, measured round-robin.

    Each repeat runs every function once (``number`` calls when one call is shorter than
    ``min_sample_s``; the sample is then the mean per call), in an order rotated by one from
    repeat to repeat. The warm-up calls also calibrate ``number``.

    Returns:
        ``{name: [seconds per call of each repeat]}``.
    """
    sync = _sync(device)
    names = list(fns)
    number = dict.fromkeys(names, 1)
    for i in range(max(warmup, 1 if min_sample_s > 0 else 0)):
        for name in names:
            sync()
            start = time.perf_counter()
            out = fns[name]()
            sync()
            elapsed = time.perf_counter() - start
            del out
            if min_sample_s > 0 and i == 0:
                number[name] = max(1, min(1000, math.ceil(min_sample_s / max(elapsed, 1e-7))))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn, n = fns[name], number[name]
            sync()
            start = time.perf_counter()
            for _ in range(n):
                out = fn()
            sync()
            samples[name].append((time.perf_counter() - start) / n)
            del out
        if on_repeat is not None:
            on_repeat()
    return samples


def _median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def paired_ratio(samples: dict[str, list[float]], name: str, baseline: str) -> float:
    """Median over repeats of ``samples[name][r] / samples[baseline][r]``."""
    return _median([a / b for a, b in zip(samples[name], samples[baseline])])


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 4)


# --------------------------------------------------------------------------- progress
class _Progress:
    """One tqdm bar per part (nothing when quiet)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def start(self, desc: str, total: int) -> None:
        self.close()
        if not self.quiet:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=True, dynamic_ncols=True)

    def step(self, note: str = "", n: int = 1) -> None:
        if self.bar is not None:
            if note:
                self.bar.set_postfix_str(note, refresh=False)
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# --------------------------------------------------------------------------- capture
@dataclass
class CaptureCase:
    """One model and input of the capture benchmark.

    Attributes:
        name: key in the results, e.g. ``"minilm-128"``.
        model: the model as loaded (SDPA / fused attention), in eval mode.
        inputs: HF: a mapping of forward keyword arguments; timm: a pixel tensor.
        description: what the input is, e.g. ``"1 x 128 tokens"``.
    """

    name: str
    model: Any
    inputs: Any
    description: str = ""


def _is_hf(model: Any) -> bool:
    from probe.capture._sites import is_hf_model

    return is_hf_model(model)


def _eager_copies(model: nn.Module) -> tuple[nn.Module, nn.Module, list[Any]]:
    """Two deep copies switched to eager attention: plain, and one that keeps the maps.

    HF: ``set_attn_implementation("eager")`` (maps via ``output_attentions=True``). timm:
    ``fused_attn = False`` on every attention module; the second copy keeps the maps with
    forward hooks on ``attn_drop`` (what research code such as vit-explain does), returned in
    the list (cleared before every call).
    """
    import copy

    eager = copy.deepcopy(model)
    keeper = copy.deepcopy(model)
    kept: list[Any] = []
    if _is_hf(model):
        eager.set_attn_implementation("eager")
        keeper.set_attn_implementation("eager")
        return eager, keeper, kept
    for m in (eager, keeper):
        for module in m.modules():
            if hasattr(module, "fused_attn"):
                module.fused_attn = False
    for module in keeper.modules():
        if hasattr(module, "fused_attn") and hasattr(module, "attn_drop"):
            module.attn_drop.register_forward_hook(lambda _m, _i, out: kept.append(out))
    return eager, keeper, kept


def capture_variants(model: nn.Module, inputs: Any) -> dict[str, Callable[[], Any]]:
    """The six capture variants of :data:`VARIANTS` as zero-argument callables."""
    import torch

    import probe

    hf = _is_hf(model)
    eager, keeper, kept = _eager_copies(model)

    def call(m: nn.Module, **extra: Any) -> Any:
        with torch.no_grad():
            return m(**inputs, **extra) if hf else m(inputs)

    def keep_maps() -> Any:
        kept.clear()
        if hf:
            return call(keeper, output_attentions=True)
        out = call(keeper)
        maps = list(kept)
        kept.clear()
        return out, maps

    return {
        "sdpa": lambda: call(model),
        "eager": lambda: call(eager),
        "eager_output_attentions": keep_maps,
        "trace": lambda: probe.trace(model, inputs),
        "trace_average_heads": lambda: probe.trace(model, inputs, average_heads=True),
        "trace_stream": lambda: probe.trace(model, inputs, stream=True),
    }


def summarize(samples: dict[str, list[float]]) -> dict[str, Any]:
    """Medians, spread and paired ratios against every baseline present in ``samples``."""
    out: dict[str, Any] = {
        "median_ms": {k: _ms(_median(v)) for k, v in samples.items()},
        "min_ms": {k: _ms(min(v)) for k, v in samples.items()},
        "max_ms": {k: _ms(max(v)) for k, v in samples.items()},
        "repeats": len(next(iter(samples.values()))),
    }
    for base, key in BASELINES.items():
        if base in samples:
            out[key] = {k: round(paired_ratio(samples, k, base), 4) for k in samples}
    return out


def default_capture_cases(device: str, settings: BenchSettings) -> list[CaptureCase]:
    """MiniLM at ``settings.capture_tokens`` and a random-init ViT-S/16 at 224x224."""
    import timm
    import torch

    import probe

    model, tokenizer = probe.load_model("minilm")
    model = model.to(device)
    cases = []
    for n in settings.capture_tokens:
        cases.append(CaptureCase(f"minilm-{n}", model, _text_inputs(tokenizer, n, device),
                                 f"1 x {n} tokens"))
    torch.manual_seed(0)
    vit = timm.create_model(settings.vit_name, pretrained=False).eval().to(device)
    vit.probe_name = settings.vit_name
    size = settings.vit_image_size
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    cases.append(CaptureCase(f"vit_s16-{size}", vit, x, f"1 x 3 x {size} x {size}"))
    return cases


def _text_inputs(tokenizer: Any, n: int, device: str) -> dict[str, torch.Tensor]:
    """``[CLS] random word pieces [SEP]``, ``n`` tokens, as a tokenizer would return them."""
    import torch

    gen = torch.Generator().manual_seed(n)
    ids = torch.randint(1000, int(tokenizer.vocab_size), (1, n), generator=gen)
    ids[0, 0] = int(tokenizer.cls_token_id)
    ids[0, -1] = int(tokenizer.sep_token_id)
    return {
        "input_ids": ids.to(device),
        "token_type_ids": torch.zeros_like(ids).to(device),
        "attention_mask": torch.ones_like(ids).to(device),
    }


def bench_capture(
    settings: BenchSettings,
    device: str = "cpu",
    cases: Sequence[CaptureCase] | None = None,
    progress: _Progress | None = None,
) -> dict[str, Any]:
    """Capture overhead of every case: medians and paired ratios of :data:`VARIANTS`."""
    cases = list(cases) if cases is not None else default_capture_cases(device, settings)
    results: dict[str, Any] = {"variants": dict(VARIANTS), "cases": {}}
    for case in cases:
        fns = capture_variants(case.model, case.inputs)
        samples = time_interleaved(
            fns, settings.repeats, settings.warmup, device, settings.capture_min_sample_s,
            on_repeat=(lambda: progress.step(case.name)) if progress else None,
        )
        entry = {
            "model": _model_label(case.model),
            "input": case.description,
            **summarize(samples),
            "samples_ms": {k: [_ms(s) for s in v] for k, v in samples.items()},
        }
        results["cases"][case.name] = entry
        del fns
    return results


def _model_label(model: Any) -> str:
    name = getattr(model, "probe_name", None) or getattr(
        getattr(model, "config", None), "_name_or_path", None
    )
    return str(name or type(model).__name__)


# --------------------------------------------------------------------------- memory
def _memory_worker(
    mode: str, tokens: int, device: str, config: dict[str, Any] | None, threads: int,
    timeout_s: float, chunk_size: int | None = None,
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "probe.commands._benchmem", "--mode", mode, "--tokens", str(tokens),
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
    progress: _Progress | None = None,
) -> dict[str, Any]:
    """Peak memory added by a forward: SDPA, ``output_attentions`` and streaming rollout.

    Args:
        config: ``BertConfig`` keyword arguments; default the MiniLM-sized encoder
            (:data:`probe.commands._benchmem.MINILM_SIZED`).

    Returns:
        ``by_tokens[str(n)]``: ``{mode}_gb`` for each mode, ``ratio_output_attentions_over_stream``
        and, at the checked sizes, ``stream_vs_rollout_max_abs_diff``; ``raw`` the worker
        outputs.
    """
    from probe.commands._benchmem import MINILM_SIZED

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


# --------------------------------------------------------------------------- analyzers
def reference_rollout(attentions: torch.Tensor) -> torch.Tensor:
    """Attention rollout as the research code writes it (mean over heads, no discard).

    ``attentions`` ``[layer, batch, head, query, key]`` -> ``[batch, query, key]``.
    """
    import torch

    n = attentions.shape[-1]
    eye = torch.eye(n, dtype=attentions.dtype, device=attentions.device)
    result = eye.expand(attentions.shape[1], n, n)
    for attention in attentions:
        a = (attention.mean(dim=1) + eye) / 2
        a = a / a.sum(dim=-1, keepdim=True)
        result = torch.matmul(a, result)
    return result


def reference_relevance(attentions: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """Chefer et al. 2021 relevance as the research code writes it: ``R += mean((g*A)+) @ R``."""
    import torch

    n = attentions.shape[-1]
    result = torch.eye(n, dtype=attentions.dtype, device=attentions.device).repeat(
        attentions.shape[1], 1, 1
    )
    for attention, grad in zip(attentions, gradients):
        cam = (grad * attention).clamp(min=0).mean(dim=1)
        result = result + torch.bmm(cam, result)
    return result


@dataclass
class VisionCase:
    """A vision model for the analyzer benchmark: ``make_inputs(batch) -> pixels``."""

    name: str
    model: Any
    make_inputs: Callable[[int], Any]
    note: str = ""


def default_vision_cases(device: str, settings: BenchSettings) -> list[VisionCase]:
    """``vit-shapes`` (trained weights when shipped, else random init) and ViT-S/16."""
    import timm
    import torch

    from probe.models._shapes import make_shapes
    from probe.models._vit_shapes import WEIGHTS_PATH, build_vit_shapes, load_vit_shapes

    if WEIGHTS_PATH.is_file():
        shapes, note = load_vit_shapes(), "trained weights"
    else:
        torch.manual_seed(0)
        shapes = build_vit_shapes().eval()
        note = f"random init ({WEIGHTS_PATH.name} not found)"
    shapes.probe_name = "vit-shapes"
    torch.manual_seed(0)
    vit = timm.create_model(settings.vit_name, pretrained=False).eval()
    vit.probe_name = settings.vit_name
    size = settings.vit_image_size

    def vit_inputs(batch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(batch)
        return torch.randn(batch, 3, size, size, generator=gen).to(device)

    return [
        VisionCase("vit-shapes", shapes.to(device),
                   lambda b: make_shapes(b, seed=b).images.to(device), note),
        VisionCase(f"vit_s16-{size}", vit.to(device), vit_inputs, "random init"),
    ]


def _analyzer_ratios(model: nn.Module, x: torch.Tensor, settings: BenchSettings,
                     device: str) -> dict[str, Any]:
    """Rollout and relevance on one trace vs reference loops, forward and forward+backward."""
    import torch

    import probe

    with torch.no_grad():
        tr = probe.trace(model, x)
        logits = model(x)
    cls = int(logits[0].argmax())
    grad_trace = probe.trace(model, x, requires_grad=True)
    scalar = grad_trace.output[:, cls].sum()
    grads = torch.autograd.grad(scalar, grad_trace.layer_tensors)
    attentions = grad_trace.attentions
    gradients = torch.stack([g.detach() for g in grads])
    del grad_trace, grads, scalar

    def forward() -> Any:
        with torch.no_grad():
            return model(x)

    def forward_backward() -> Any:
        xg = x.detach().clone().requires_grad_(True)
        return torch.autograd.grad(model(xg)[:, cls].sum(), xg)

    fns = {
        "forward": forward,
        "trace": lambda: probe.trace(model, x),
        "rollout": lambda: probe.rollout(tr),
        "rollout_reference": lambda: reference_rollout(tr.attentions),
        "forward_backward": forward_backward,
        "relevance_method": lambda: probe.attribute(model, x, "relevance", target=cls),
        "relevance_from_gradients": lambda: probe.relevance_from_gradients(attentions, gradients),
        "relevance_reference": lambda: reference_relevance(attentions, gradients),
    }
    samples = time_interleaved(fns, settings.repeats, settings.warmup, device,
                               min_sample_s=settings.min_sample_s)
    r = lambda a, b: round(paired_ratio(samples, a, b), 4)  # noqa: E731
    rollout_diff = float((probe.rollout(tr) - reference_rollout(tr.attentions)).abs().max())
    rel_diff = float(
        (probe.relevance_from_gradients(attentions, gradients)
         - reference_relevance(attentions, gradients)).abs().max()
    )
    return {
        "input": f"{tuple(x.shape)}",
        "tokens": int(tr.seq_len),
        "layers": int(tr.num_layers),
        "median_ms": {k: _ms(_median(v)) for k, v in samples.items()},
        "ratios": {
            "rollout_vs_trace": r("rollout", "trace"),
            "rollout_vs_forward": r("rollout", "forward"),
            "rollout_vs_reference": r("rollout", "rollout_reference"),
            "relevance_method_vs_forward_backward": r("relevance_method", "forward_backward"),
            "relevance_from_gradients_vs_reference": r(
                "relevance_from_gradients", "relevance_reference"),
            "relevance_from_gradients_vs_forward_backward": r(
                "relevance_from_gradients", "forward_backward"),
            "trace_vs_forward": r("trace", "forward"),
        },
        "max_abs_diff": {"rollout_vs_reference": rollout_diff, "relevance_vs_reference": rel_diff},
        "definitions": {
            "trace": "probe.trace(model, x): the forward that produces the trace",
            "forward_backward": "fused forward + torch.autograd.grad of the class logit w.r.t. "
            "the input",
            "relevance_method": "probe.attribute(model, x, 'relevance'): capture with gradients, "
            "backward, Chefer rule",
        },
    }


def _throughput(
    case: VisionCase, methods: Sequence[str], batch_sizes: Sequence[int], settings: BenchSettings,
    device: str, progress: _Progress | None,
) -> dict[str, Any]:
    """Images per second of the plain forward and of every method at every batch size.

    One warm-up call per method at the smallest batch also estimates the cost of the larger
    batches: a measurement estimated over ``settings.measurement_budget_s`` is skipped (at the
    smallest batch the warm-up call itself is reported), and the number of repeats is cut to
    fit ``settings.throughput_sample_budget_s``. Calls shorter than
    ``settings.throughput_min_sample_s`` are repeated within one sample. Methods run
    round-robin; a method that raises is recorded with its error and the run goes on.
    """
    import torch

    import probe

    sync = _sync(device)

    def runner(method: str, x: Any) -> Callable[[], Any]:
        if method == "forward":
            def forward() -> Any:
                with torch.no_grad():
                    return case.model(x)
            return forward
        return lambda: probe.attribute(case.model, x, method)

    def timed(fn: Callable[[], Any], number: int = 1) -> float:
        sync()
        start = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        return (time.perf_counter() - start) / number

    names = ("forward", *methods)
    small = min(batch_sizes)
    x_small = case.make_inputs(small)
    warm: dict[str, float] = {}
    errors: dict[str, str] = {}
    for method in names:
        try:
            warm[method] = timed(runner(method, x_small))
        except Exception as exc:  # methods are plug-ins: record the error, do not abort
            errors[method] = _error(exc)

    out: dict[str, Any] = {}
    for batch in batch_sizes:
        x = x_small if batch == small else case.make_inputs(batch)
        rows: dict[str, Any] = {m: {"status": errors[m]} for m in names if m in errors}
        plan: dict[str, tuple[int, int]] = {}  # method -> (repeats, calls per sample)
        for method in names:
            if method in errors:
                continue
            estimate = warm[method] * batch / small
            if estimate > settings.measurement_budget_s:
                if batch == small:
                    rows[method] = {"status": "ok", "median_s": round(warm[method], 5),
                                    "images_per_s": round(batch / warm[method], 4), "repeats": 1,
                                    "note": "the warm-up call alone (over the time budget)"}
                else:
                    rows[method] = {
                        "status": f"skipped: estimated {estimate:.0f} s per call > budget "
                        f"{settings.measurement_budget_s:.0f} s",
                        "estimated_images_per_s": round(small / warm[method], 4),
                    }
                continue
            repeats = max(1, min(settings.throughput_repeats,
                                 int(settings.throughput_sample_budget_s // max(estimate, 1e-9))))
            number = math.ceil(settings.throughput_min_sample_s / max(estimate, 1e-9))
            number = max(1, min(100, number))
            plan[method] = (repeats, number)
        samples: dict[str, list[float]] = {m: [] for m in plan}
        for r in range(max((p[0] for p in plan.values()), default=0)):
            todo = [m for m in plan if r < plan[m][0] and m not in rows]
            k = r % max(len(todo), 1)
            for method in todo[k:] + todo[:k]:
                try:
                    samples[method].append(timed(runner(method, x), plan[method][1]))
                except Exception as exc:
                    rows[method] = {"status": _error(exc)}
        for method in plan:
            if method in rows:
                continue
            med = _median(samples[method])
            rows[method] = {"status": "ok", "median_s": round(med, 5),
                            "images_per_s": round(batch / med, 4), "repeats": len(samples[method]),
                            "calls_per_sample": plan[method][1]}
        out[str(batch)] = {m: rows[m] for m in names}
        if progress:
            progress.step(f"{case.name} batch {batch}")
    return out


def _error(exc: BaseException) -> str:
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return f"error: {type(exc).__name__}: {msg[:200]}"


def bench_analyzers(
    settings: BenchSettings,
    device: str = "cpu",
    cases: Sequence[VisionCase] | None = None,
    methods: Sequence[str] | None = None,
    progress: _Progress | None = None,
) -> dict[str, Any]:
    """Analyzer cost on the last case (ViT-S by default) and method throughput on every case."""
    import probe

    cases = list(cases) if cases is not None else default_vision_cases(device, settings)
    methods = tuple(methods) if methods is not None else tuple(probe.list_methods("vision"))
    main = cases[-1]
    costs = _analyzer_ratios(main.model, main.make_inputs(1), settings, device)
    if progress:
        progress.step("rollout/relevance")
    throughput = {
        case.name: {
            "note": case.note,
            "by_batch": _throughput(
                case, methods, settings.batch_sizes, settings, device, progress),
        }
        for case in cases
    }
    return {"model": main.name, "costs": costs, "methods": list(methods), "throughput": throughput}


# --------------------------------------------------------------------------- CLI
def _probe_command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "probe")
    if os.path.isfile(script) and os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "probe.cli"]


def _run(cmd: list[str], timeout: float = 600.0) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
           "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    return time.perf_counter() - start, proc


def bench_cli(
    settings: BenchSettings, include_render: bool = True, progress: _Progress | None = None
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
            "median_s": round(_median(samples["probe --help"]), 4),
            "python_startup_median_s": round(_median(samples["python -c pass"]), 4),
            "samples_s": [round(s, 4) for s in samples["probe --help"]],
            "heavy_modules_imported": [m for m in proc.stdout.strip().split(",") if m],
        },
    }
    render: dict[str, Any] = {"command": f'probe render coref --text "{COREF_TEXT}" --word it'}
    if not include_render:
        render["status"] = "not run"
    elif importlib.util.find_spec("probe.commands._render") is None:
        render["status"] = "not available"
        render["note"] = "probe/_render.py does not exist yet"
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
            render.update({"status": "ok", "median_s": round(_median(times), 3),
                           "samples_s": [round(t, 3) for t in times], "files": files})
    result["render_coref"] = render
    return result


# --------------------------------------------------------------------------- machine
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


# --------------------------------------------------------------------------- goals
def _goal(gid: str, device: str | None, description: str, target: str, measured: Any,
          met: bool | None, note: str = "") -> dict[str, Any]:
    return {"id": gid, "device": device, "description": description, "target": target,
            "measured": measured, "met": met, "note": note}


def evaluate_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every goal of the benchmark issue with its measurement and whether it is met
    (``met`` is ``None`` when the run did not measure it)."""
    goals = []
    for device, parts in results.get("results", {}).items():
        capture = parts.get("capture")
        if capture:
            measured = {
                name: {"trace_vs_eager": c["vs_eager"]["trace"],
                       "trace_vs_eager_output_attentions": c["vs_eager_output_attentions"]["trace"]}
                for name, c in capture["cases"].items()
            }
            worst = max(m["trace_vs_eager"] for m in measured.values())
            goals.append(_goal(
                "capture_vs_eager", device,
                "probe.trace costs at most 1.05x the eager forward (cheaper than "
                "output_attentions)",
                f"<= {GOALS['capture_vs_eager']}", measured, worst <= GOALS["capture_vs_eager"],
                f"worst case {worst:.3f}x",
            ))
        memory = parts.get("memory")
        if memory:
            rows = memory["by_tokens"]
            ratios = {k: r.get("ratio_output_attentions_over_stream") for k, r in rows.items()}
            at = rows.get("4096")
            ratio = at.get("ratio_output_attentions_over_stream") if at else None
            note = "" if at else "4096 tokens not measured in this run (--quick)"
            if at and ratio is None:
                note = "a 4096-token measurement failed"
            if at and at.get("stream_gb") is not None:
                note = (f"stream adds {at['stream_gb']:.3f} GB, output_attentions "
                        f"{_fmt(at.get('output_attentions_gb'), 3)} GB")
            goals.append(_goal(
                "memory_ratio_4096", device,
                "streaming rollout adds >= 10x less peak memory than output_attentions at 4096 "
                "tokens",
                f">= {GOALS['memory_ratio_4096']}", ratios,
                None if ratio is None else ratio >= GOALS["memory_ratio_4096"], note,
            ))
            diffs = {k: r["stream_vs_rollout_max_abs_diff"] for k, r in rows.items()
                     if "stream_vs_rollout_max_abs_diff" in r}
            goals.append(_goal(
                "memory_same_rollout", device,
                "streaming rollout equals probe.rollout of the full output_attentions",
                f"max abs diff <= {GOALS['memory_same_rollout']:g}", diffs,
                (all(d <= GOALS["memory_same_rollout"] for d in diffs.values()) if diffs else None),
            ))
        analyzers = parts.get("analyzers")
        if analyzers:
            ratios = analyzers["costs"]["ratios"]
            goals.append(_goal(
                "rollout_vs_forward", device,
                "rollout costs under 5% of the forward that produced the trace (ViT-S)",
                f"< {GOALS['rollout_vs_forward']}", ratios["rollout_vs_trace"],
                ratios["rollout_vs_trace"] < GOALS["rollout_vs_forward"],
            ))
            rel = ratios["relevance_method_vs_forward_backward"]
            goals.append(_goal(
                "relevance_vs_forward_backward", device,
                "relevance within 1.3x of one forward plus one backward (ViT-S)",
                f"<= {GOALS['relevance_vs_forward_backward']}", rel,
                rel <= GOALS["relevance_vs_forward_backward"],
                "the Chefer rule alone: "
                f"{ratios['relevance_from_gradients_vs_forward_backward']:.3f}x",
            ))
    cli = results.get("cli")
    if cli:
        t = cli["help"]["median_s"]
        goals.append(_goal("cli_help_s", None, "probe --help cold start under 0.3 s",
                           f"< {GOALS['cli_help_s']} s", t, t < GOALS["cli_help_s"],
                           f"bare interpreter start "
                           f"{cli['help']['python_startup_median_s']:.3f} s"))
    return goals


# --------------------------------------------------------------------------- markdown
def _fmt(x: Any, digits: int = 2, suffix: str = "") -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}{suffix}"
    return f"{x}{suffix}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def to_markdown(results: dict[str, Any]) -> str:
    """Markdown tables of a ``probe bench`` JSON document (the README table)."""
    m = results.get("machine", {})
    s = results.get("settings", {})
    threads = s.get("threads")
    lines = [
        f"**Machine**: {m.get('cpu_model')}, {m.get('usable_cores')} cores, "
        f"{m.get('ram_gb')} GB RAM"
        + (f", {m['cuda_device']}" if m.get("cuda_device") else "")
        + f"; torch {m.get('torch')}, transformers {m.get('transformers')}, timm {m.get('timm')}; "
        f"{'torch default' if not threads else threads} CPU thread(s); "
        f"load average {m.get('load_average_start')} at start. "
        f"{'Quick run' if s.get('quick') else 'Full run'}, median of {s.get('repeats')} "
        "interleaved "
        f"repeats, ratios are medians of per-repeat ratios"
        + (f"; run took {results['elapsed_s'] / 60:.1f} min." if results.get("elapsed_s") else "."),
        "",
    ]
    for device, parts in results.get("results", {}).items():
        capture = parts.get("capture")
        if capture:
            lines += [f"### Capture overhead ({device})", ""]
            rows = []
            for name, c in capture["cases"].items():
                for v, label in capture["variants"].items():
                    rows.append([
                        f"{c['model']} {c['input']}", label, _fmt(c["median_ms"][v], 1),
                        _fmt(c["vs_sdpa"][v], 2, "x"), _fmt(c["vs_eager"][v], 2, "x"),
                        _fmt(c["vs_eager_output_attentions"][v], 2, "x"),
                    ])
            lines += _table(["model / input", "variant", "median ms", "vs sdpa", "vs eager",
                             "vs eager+output_attentions"], rows) + [""]
        memory = parts.get("memory")
        if memory:
            lines += [f"### Peak memory added by one forward ({device}, {memory['model']} "
                      "6 x 12 heads, hidden 384)", ""]
            rows = []
            for n, r in memory["by_tokens"].items():
                diff = r.get("stream_vs_rollout_max_abs_diff")
                rows.append([
                    n, _fmt(r.get("sdpa_gb"), 3), _fmt(r.get("output_attentions_gb"), 3),
                    _fmt(r.get("stream_gb"), 3),
                    _fmt(r.get("ratio_output_attentions_over_stream"), 1, "x"),
                    "-" if diff is None else f"{diff:.1e}",
                ])
            lines += _table(["tokens", "SDPA GB", "output_attentions GB", "probe stream GB",
                             "output_attentions / stream", "stream vs rollout max abs diff"],
                            rows) + [""]
        analyzers = parts.get("analyzers")
        if analyzers:
            c = analyzers["costs"]
            med, rat = c["median_ms"], c["ratios"]
            lines += [f"### Analyzers on {analyzers['model']} ({device}, {c['tokens']} tokens, "
                      f"{c['layers']} layers, batch 1)", ""]
            rows = [
                ["forward (fused)", _fmt(med["forward"], 2), "1.00x forward"],
                ["probe.trace", _fmt(med["trace"], 2), f"{rat['trace_vs_forward']:.2f}x forward"],
                ["probe.rollout", _fmt(med["rollout"], 3),
                 f"{rat['rollout_vs_trace']:.4f}x trace, "
                 f"{rat['rollout_vs_reference']:.2f}x reference loop"],
                ["reference rollout loop", _fmt(med["rollout_reference"], 3), ""],
                ["forward + backward", _fmt(med["forward_backward"], 2), ""],
                ["relevance (attribute, end to end)", _fmt(med["relevance_method"], 2),
                 f"{rat['relevance_method_vs_forward_backward']:.2f}x forward+backward"],
                ["relevance_from_gradients", _fmt(med["relevance_from_gradients"], 3),
                 f"{rat['relevance_from_gradients_vs_reference']:.2f}x reference loop"],
                ["reference relevance loop", _fmt(med["relevance_reference"], 3), ""],
            ]
            lines += _table(["step", "median ms", "ratio"], rows) + [""]
            lines += [f"### Attribution throughput ({device}, images per second)", ""]
            batches = sorted(
                {b for t in analyzers["throughput"].values() for b in t["by_batch"]}, key=int
            )
            rows = []
            for model, t in analyzers["throughput"].items():
                for method in ["forward", *analyzers["methods"]]:
                    cells = []
                    for b in batches:
                        r = t["by_batch"].get(b, {}).get(method)
                        if r is None:
                            cells.append("-")
                        elif r["status"] == "ok":
                            cells.append(_fmt(r["images_per_s"], 3 if r["images_per_s"] < 1 else 1)
                                         + (" (1 call)" if r.get("note") else ""))
                        else:
                            cells.append(_short_status(r))
                    rows.append([model, method, *cells])
            lines += _table(["model", "method", *[f"batch {b}" for b in batches]], rows) + [""]
            lines += [f"{model}: {t['note']}." for model, t in analyzers["throughput"].items()
                      if t.get("note")] + [""]
    cli = results.get("cli")
    if cli:
        h, r = cli["help"], cli["render_coref"]
        rows = [
            ["probe --help", _fmt(h["median_s"], 3),
             f"interpreter alone {h['python_startup_median_s']:.3f} s; heavy imports: "
             f"{', '.join(h['heavy_modules_imported']) or 'none'}"],
            ["probe render coref (MiniLM)", _fmt(r.get("median_s"), 2), r.get("status", "")],
        ]
        lines += ["### CLI cold start", ""] + _table(["command", "median s", "note"], rows) + [""]
    goals = results.get("goals") or []
    if goals:
        rows = []
        for g in goals:
            met = {True: "met", False: "**missed**", None: "not measured"}[g["met"]]
            rows.append([g["id"] + (f" ({g['device']})" if g.get("device") else ""), g["target"],
                         _goal_measured(g), met])
        lines += ["### Goals", ""] + _table(["goal", "target", "measured", "status"], rows) + [""]
    return "\n".join(lines)


def _short_status(row: dict[str, Any]) -> str:
    status = row["status"]
    if status.startswith("skipped"):
        est = row.get("estimated_images_per_s")
        return "skipped: over time budget" + (f" (~{est:.2g} at the smallest batch)" if est else "")
    if len(status) > 90:
        status = status[:87] + "..."
    return status.replace("|", "/")


def _goal_measured(g: dict[str, Any]) -> str:
    m = g["measured"]
    if isinstance(m, dict):
        parts = []
        for k, v in m.items():
            if isinstance(v, dict):
                parts.append(f"{k}: " + ", ".join(f"{_fmt(x, 3)}" for x in v.values()))
            elif isinstance(v, float) and abs(v) < 1e-3:
                parts.append(f"{k}: {v:.1e}")
            else:
                parts.append(f"{k}: {_fmt(v, 2)}")
        text = "; ".join(parts) or "-"
    elif isinstance(m, float):
        text = f"{m:.4g}"
    else:
        text = _fmt(m)
    return text + (f" ({g['note']})" if g.get("note") else "")


# --------------------------------------------------------------------------- entry points
def run_bench(args: BenchArgs) -> int:
    """``probe bench``: run the selected parts, print the markdown tables, write the JSON."""
    import torch

    settings = make_settings(args)
    if args.json:
        directory = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(directory):
            raise ProbeError(f"cannot write {args.json}: the folder {directory} does not exist")
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
    progress = _Progress(args.quiet)
    try:
        for device in settings.devices:
            parts: dict[str, Any] = {}
            results["results"][device] = parts
            if "capture" in settings.parts:
                progress.start(f"capture ({device})",
                               settings.repeats * (len(settings.capture_tokens) + 1))
                parts["capture"] = bench_capture(settings, device, progress=progress)
            if "memory" in settings.parts:
                progress.start(f"memory ({device})",
                               3 * len(settings.memory_tokens) + len(settings.check_tokens))
                parts["memory"] = bench_memory(settings, device, progress=progress)
            if "analyzers" in settings.parts:
                progress.start(f"analyzers ({device})", 1 + 2 * len(settings.batch_sizes))
                parts["analyzers"] = bench_analyzers(settings, device, progress=progress)
        if "cli" in settings.parts:
            progress.start("cli", settings.cli_repeats + settings.render_repeats)
            results["cli"] = bench_cli(settings, progress=progress)
        if "html" in settings.parts:
            from probe.commands._bench_html import bench_html, to_markdown as html_markdown

            results["html"] = bench_html(settings.repeats, settings.quick)
            print(html_markdown(results["html"]))
    finally:
        progress.close()
        torch.set_num_threads(previous_threads)
    results["machine"]["load_average_end"] = _load_average()
    results["elapsed_s"] = round(time.perf_counter() - start, 1)
    results["goals"] = evaluate_goals(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, allow_nan=False)
            f.write("\n")
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m probe.commands._bench --markdown OUT.json``: print the tables of a saved run."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m probe.commands._bench",
                                     description="Render a probe bench JSON file as markdown.")
    parser.add_argument("--markdown", metavar="JSON", required=True,
                        help="results of probe bench --json")
    ns = parser.parse_args(list(argv) if argv is not None else None)
    try:
        with open(ns.markdown) as f:
            results = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"python -m probe.commands._bench: error: cannot read {ns.markdown}: {exc}", file=sys.stderr)
        return 2
    if results.get("schema") != SCHEMA:
        print(f"python -m probe.commands._bench: error: {ns.markdown} is not a {SCHEMA} document",
              file=sys.stderr)
        return 2
    print(to_markdown(results))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
