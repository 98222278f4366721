"""``probe bench --part capture``: what :func:`probe.trace` costs over the forward it records.

The forward with :func:`probe.trace` against the plain forward of the same model as loaded
(SDPA / fused attention), its eager forward, and its eager forward keeping the attention maps
(``output_attentions=True``, what bertviz users run). A capture keeps the layers apart and
stacks them on the first read of ``trace.attentions``, so ``probe.trace`` is timed alone and
followed by that read (the cost when the stacked tensor is used). MiniLM at 128 and 512
tokens and a random-init ViT-S/16 at 224x224.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe.commands.bench._timing import Progress, median, ms, paired_ratio, time_interleaved

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.commands.bench._settings import BenchSettings

__all__ = ["BASELINES", "VARIANTS", "CaptureCase", "bench_capture", "capture_variants",
           "default_capture_cases", "model_label", "summarize"]

#: Capture variants, in the order they are reported.
VARIANTS: dict[str, str] = {
    "sdpa": "plain forward as loaded (SDPA / fused)",
    "eager": "eager forward",
    "eager_output_attentions": "eager + output_attentions",
    "trace": "probe.trace",
    "trace_attentions": "probe.trace then .attentions read",
    "trace_average_heads": "probe.trace(average_heads=True)",
    "trace_stream": "probe.trace(stream=True)",
}
BASELINES = {
    "sdpa": "vs_sdpa",
    "eager": "vs_eager",
    "eager_output_attentions": "vs_eager_output_attentions",
}



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
    from probe.capture.adapters._hf_sites import is_hf_model

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
    """The capture variants of :data:`VARIANTS` as zero-argument callables."""
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
        # the layers are stacked on the first read of .attentions: the cost of using them
        "trace_attentions": lambda: probe.trace(model, inputs).attentions,
        "trace_average_heads": lambda: probe.trace(model, inputs, average_heads=True),
        "trace_stream": lambda: probe.trace(model, inputs, stream=True),
    }


def summarize(samples: dict[str, list[float]]) -> dict[str, Any]:
    """Medians, spread and paired ratios against every baseline present in ``samples``."""
    out: dict[str, Any] = {
        "median_ms": {k: ms(median(v)) for k, v in samples.items()},
        "min_ms": {k: ms(min(v)) for k, v in samples.items()},
        "max_ms": {k: ms(max(v)) for k, v in samples.items()},
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
    progress: Progress | None = None,
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
            "model": model_label(case.model),
            "input": case.description,
            **summarize(samples),
            "samples_ms": {k: [ms(s) for s in v] for k, v in samples.items()},
        }
        results["cases"][case.name] = entry
        del fns
    return results


def model_label(model: Any) -> str:
    """The name the results show: ``probe_name``, the HF checkpoint path, or the class name."""
    name = getattr(model, "probe_name", None) or getattr(
        getattr(model, "config", None), "_name_or_path", None
    )
    return str(name or type(model).__name__)

