"""The cases of ``probe bench --part html`` for the views beyond the attention matrices (detr,
curves, gates, window), on synthetic data of real models' shapes, as the attention cases are:
each is ``(name, build)``, ``build()`` returning the page.

Full shapes: DETR-R50 at 800 x 1066 (6 decoder layers x 8 heads x 100 queries over a 25 x 34
feature grid); 7 methods' curves over 14 x 14 patches at 20 steps; a CBAM ResNet-50 at 224
(16 spatial gates, one non-local block at 28 x 28); Swin-T at 224 (12 blocks, 2.2 M window
weights, no shift masks). Quick: 2 decoder layers on a 200 x 266 image; 4 spatial gates and
a 14 x 14 non-local block; Swin-T's two stage-0 blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["view_cases"]

Case = tuple[str, Callable[[], Any]]


def _softmax(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Peaked softmax over the last axis (a few strong keys per row, like a trained model)."""
    x = rng.standard_normal(shape, dtype=np.float32) * 2.5
    x -= x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def _image(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx / w, yy / h, 0.5 + 0 * xx], -1)


def _detr(quick: bool, rng: np.random.Generator) -> Case:
    from probe.viewers.html import detr_view_html

    layers, heads, queries, (gh, gw) = (2 if quick else 6), 8, 100, (25, 34)
    image = _image(200, 266) if quick else _image(800, 1066)
    maps = _softmax((layers, heads, queries, gh * gw), rng).reshape(layers, heads, queries, gh, gw)
    boxes = np.column_stack([rng.uniform(0.2, 0.8, (queries, 2)), rng.uniform(0.05, 0.4,
                                                                              (queries, 2))])
    scores = rng.uniform(0, 1, queries).tolist()
    classes = [f"class{i % 91}" for i in range(queries)]
    kept = sorted(range(queries), key=lambda q: -scores[q])[:6]
    return (f"detr {layers}x{heads} heads x {queries} queries, {gh}x{gw} grid",
            lambda: detr_view_html(image, maps, boxes, classes, scores, kept=kept))


def _curves(rng: np.random.Generator) -> Case:
    from probe.viewers.html import curves_view_html

    methods, grid, steps = ("attention", "rollout", "relevance", "ig", "saliency", "gradcam",
                            "random"), (14, 14), 20
    fractions = np.arange(steps + 1) / steps
    deletion = {m: (fractions, np.sort(rng.random(steps + 1))[::-1]) for m in methods}
    insertion = {m: (fractions, np.sort(rng.random(steps + 1))) for m in methods}
    scores = {m: rng.random(grid[0] * grid[1]) for m in methods if m != "random"}
    image = _image(224, 224)
    return (f"curves {len(methods)} methods x {grid[0]}x{grid[1]} patches x {steps} steps",
            lambda: curves_view_html(deletion, insertion, scores, image=image, grid=grid))


def _gates(quick: bool, rng: np.random.Generator) -> Case:
    from probe.viewers.html import gates_view_html

    per_stage = (1, 1, 1, 1) if quick else (3, 4, 6, 3)  # CBAM ResNet-50's bottlenecks
    blocks: dict[str, dict[str, Any]] = {}
    for stage, (count, side) in enumerate(zip(per_stage, (56, 28, 14, 7))):
        for b in range(count):
            blocks[f"layer{stage + 1}.{b}.attn"] = {
                "kind": "spatial", "stage": stage, "type": "CbamModule",
                "values": rng.random((side, side), dtype=np.float32)}
    side = 14 if quick else 28
    blocks["layer2.nonlocal"] = {
        "kind": "nonlocal", "stage": 1, "type": "NonLocalAttn",
        "values": _softmax((side * side, side * side), rng).reshape(side, side, side, side)}
    spatial = len(blocks) - 1
    image, cam = _image(224, 224), rng.random((7, 7))
    return (f"gates {spatial} spatial + 1 non-local ({side}x{side})",
            lambda: gates_view_html(image, blocks, cam=cam))


def _window(quick: bool, rng: np.random.Generator) -> Case:
    from probe import WindowLayout
    from probe.viewers.html import window_view_html

    # Swin-T at 224: (stage, blocks, token grid, heads); 7 x 7 windows of 4-pixel tokens
    stages = ((0, 2, 56, 3),) if quick else ((0, 2, 56, 3), (1, 2, 28, 6), (2, 6, 14, 12),
                                             (3, 2, 7, 24))
    blocks = []
    for stage, count, side, heads in stages:
        for b in range(count):
            shift = 3 if b % 2 and side > 7 else 0
            layout = WindowLayout((side, side), (7, 7), (shift, shift))
            blocks.append({
                "weights": _softmax((layout.num_windows, heads, 49, 49), rng),
                "layout": layout, "token_size": (224 // side, 224 // side),
                "layer": len(blocks), "stage": stage})
    total = sum(int(b["weights"].size) for b in blocks)
    image = _image(224, 224)
    return (f"window Swin-T 224, {len(blocks)} blocks ({total / 1e6:.1f} M weights)",
            lambda: window_view_html(image, blocks))


def view_cases(quick: bool, seed: int = 2) -> list[Case]:
    """The detr, curves, gates and window cases (one each), data drawn once per case."""
    rng = np.random.default_rng(seed)
    return [_detr(quick, rng), _curves(rng), _gates(quick, rng), _window(quick, rng)]
