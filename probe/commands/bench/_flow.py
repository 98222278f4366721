"""``probe bench --part flow``: attention flow on the CLS row next to rollout, per image.

``vit-shapes`` (65 tokens: CLS + 8x8 patches, 4 layers): one image is traced once; then
:func:`probe.attention_flow` with ``rows=[0]`` (the CLS row, 65 max-flow problems on a graph
of 5 x 65 nodes, scipy's Dinic solver) and :func:`probe.rollout` are timed on that trace,
interleaved. The goal is under 2 s per image for the flow row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe.commands.bench._timing import Progress, median, ms, paired_ratio, time_interleaved

if TYPE_CHECKING:
    from probe.commands.bench._settings import BenchSettings

__all__ = ["bench_flow"]


def bench_flow(
    settings: BenchSettings, device: str = "cpu", progress: Progress | None = None
) -> dict[str, Any]:
    """Seconds per image of the CLS-row attention flow and of rollout on ``vit-shapes``."""
    import torch

    import probe
    from probe.models._shapes import make_shapes
    from probe.models._vit_shapes import WEIGHTS_PATH, build_vit_shapes, load_vit_shapes

    if WEIGHTS_PATH.is_file():
        model, note = load_vit_shapes(), "trained weights"
    else:
        torch.manual_seed(0)
        model, note = build_vit_shapes().eval(), "random init (weights not found)"
    model = model.to(device)
    images = make_shapes(1, seed=0).images.to(device)
    with torch.no_grad():
        tr = probe.trace(model, images)
    fns = {
        "flow_cls_row": lambda: probe.attention_flow(tr, rows=[0]),
        "rollout": lambda: probe.rollout(tr),
    }
    samples = time_interleaved(fns, settings.repeats, settings.warmup, device)
    if progress:
        progress.step("flow")
    flow_row = probe.attention_flow(tr, rows=[0])[0, 0]
    rollout_row = probe.rollout(tr)[0, 0]
    return {
        "model": "vit-shapes",
        "note": note,
        "tokens": int(tr.seq_len),
        "layers": int(tr.num_layers),
        "median_s": {k: round(median(v), 4) for k, v in samples.items()},
        "median_ms": {k: ms(median(v)) for k, v in samples.items()},
        "flow_vs_rollout": round(paired_ratio(samples, "flow_cls_row", "rollout"), 2),
        "flow_row_sum": float(flow_row.sum()),
        "spearman_flow_vs_rollout_cls_row": _spearman(flow_row[1:], rollout_row[1:]),
        "definitions": {
            "flow_cls_row": "probe.attention_flow(trace, rows=[0]): the CLS row, heads mean",
            "rollout": "probe.rollout(trace): the full matrix, heads mean",
        },
    }


def _spearman(a: Any, b: Any) -> float:
    import torch

    ra = a.double().argsort().argsort().double()
    rb = b.double().argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])
