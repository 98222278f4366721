"""``probe bench --part analyzers``: rollout and relevance against the forward and against the
loops of the research code, and the throughput of every vision attribution method.

:func:`probe.rollout` and :func:`probe.relevance_from_gradients` on a ViT-S trace against
straightforward reference loops (as in the research code), against the forward that produced
the trace and against one forward plus one backward; and the throughput (images per second)
of every vision attribution method on ``vit-shapes`` and ViT-S at batch 1 and 32
(:mod:`probe.commands.bench._throughput`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe.commands.bench._throughput import method_throughput
from probe.commands.bench._timing import Progress, median, ms, paired_ratio, time_interleaved

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.commands.bench._settings import BenchSettings

__all__ = ["VisionCase", "bench_analyzers", "default_vision_cases", "reference_relevance",
           "reference_rollout"]


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
        "median_ms": {k: ms(median(v)) for k, v in samples.items()},
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


def bench_analyzers(
    settings: BenchSettings,
    device: str = "cpu",
    cases: Sequence[VisionCase] | None = None,
    methods: Sequence[str] | None = None,
    progress: Progress | None = None,
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
            "by_batch": method_throughput(
                case, methods, settings.batch_sizes, settings, device, progress),
        }
        for case in cases
    }
    return {"model": main.name, "costs": costs, "methods": list(methods), "throughput": throughput}


