"""Train the ``detr-shapes`` model (a small HF DETR) and write its safetensors weights.

Run ``python -m probe.recipes.train_detr_shapes``. Every step draws a fresh batch of scenes
(``64x64``; one shape per scene for the first quarter of the steps, then one to three) from
:func:`probe.models._scenes.make_scenes` with a seed of at least two million; detection quality
is measured on the held-out scenes of seed :data:`EVAL_SEED` (every 400 steps on 100 of them,
at the end on ``--n-eval``), and weights are written only when the recall reaches
``--min-recall``.

The transformer is initialised as in the original DETR code (:func:`_detr_init`): with
transformers' default ``N(0, 0.02)`` init the same recipe learned nothing from the image in
2400 steps (held-out recall 0; see the README). The shipped weights (2400 steps of 32 scenes,
about 13 minutes of wall-clock time on one thread of a shared machine) find 44% of the
held-out objects (recall 0.442, precision 0.461 at score 0.5, mean IoU 0.795 of the found
ones; 1000 scenes, 1969 objects): a weak detector, reported as it is. The loss is DETR's own
(transformers' ``DetrForObjectDetection`` with ``labels``: Hungarian matching, cross-entropy with a
0.1 weight on "no object", L1 and generalised-IoU box losses, the same losses on every decoder
layer's output through ``auxiliary_loss``). Optimiser: AdamW (weight decay 1e-4 on weights), linear
warm-up then cosine decay, gradient clipping at 0.1 as in DETR. Determinism as for ``vit-shapes``:
the initialisation uses ``torch.manual_seed(seed)``, the thread count is fixed (``--threads``,
default 1), and the global RNG state and thread count of the caller are restored on return.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from probe.recipes._training import (
    Assessment,
    LossLog,
    adamw,
    lr_at,
    train_main,
    train_seed,
    training_parser,
)

if TYPE_CHECKING:
    from torch import nn

__all__ = ["EVAL_SEED", "SCORE_THRESHOLD", "WARMUP_STEPS", "detection_quality", "main", "train"]

EVAL_SEED = 30_000
"""Seed of the held-out scenes (training seeds start at two million)."""

WARMUP_STEPS = 200
"""Linear warm-up length of the learning rate."""

SCORE_THRESHOLD = 0.5
"""A query counts as a detection when its class probability is at least this."""

CURRICULUM_FRACTION = 0.25
"""The first quarter of the steps sees one object per scene, the rest one to three."""


def _detr_init(model: nn.Module) -> None:
    """Initialise as the original DETR code does (Carion et al. 2020, facebookresearch/detr):
    xavier-uniform for every weight matrix of the transformer, ``N(0, 1)`` query embeddings,
    PyTorch's default init for the input projection and the heads (transformers draws all of
    them from ``N(0, 0.02)``, which leaves the cross-attention uniform for a long time)."""
    import torch

    inner = model.model
    for stack in (inner.encoder, inner.decoder):
        for p in stack.parameters():
            if p.dim() > 1:
                torch.nn.init.xavier_uniform_(p)
    torch.nn.init.normal_(inner.query_position_embeddings.weight)
    inner.input_projection.reset_parameters()
    for module in (model.class_labels_classifier, *model.bbox_predictor.layers):
        module.reset_parameters()


def train(
    *, seed: int, steps: int, batch_size: int, lr: float, weight_decay: float, quiet: bool = False
) -> nn.Module:
    """Train a fresh ``detr-shapes`` model for ``steps`` optimiser steps; returns it in eval
    mode."""
    import torch

    from probe.models._detr_shapes import DETR_SHAPES_IMAGE_SIZE, build_detr_shapes
    from probe.models._scenes import make_scenes

    torch.manual_seed(seed)
    model = build_detr_shapes()
    _detr_init(model)
    optimizer = adamw(model, lr=lr, weight_decay=weight_decay)
    log = LossLog(steps, 100, quiet)
    model.train()
    for step in range(steps):
        objects = (1, 1) if step < CURRICULUM_FRACTION * steps else (1, 3)
        data = make_scenes(
            batch_size, seed=train_seed(seed, step), image_size=DETR_SHAPES_IMAGE_SIZE,
            objects=objects,
        )
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr, WARMUP_STEPS)
        loss = model(pixel_values=data.images, labels=data.targets()).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        if log.add(step, loss.item()):
            extra = ""
            if (step + 1) % 400 == 0:  # a quick look at held-out scenes (no effect on training)
                model.eval()
                q = detection_quality(model, 100)
                model.train()
                extra = f"  held-out recall {q['recall']:.3f} precision {q['precision']:.3f}"
            log.print(step, suffix=extra)
    return model.eval()


def detection_quality(model: nn.Module, n: int, seed: int = EVAL_SEED) -> dict[str, Any]:
    """Held-out detection quality on ``n`` scenes of ``seed``.

    An object is found when a query with score >= :data:`SCORE_THRESHOLD` has its class and
    an IoU above 0.5 with it (:func:`probe.analysis._detr.match_detections`). Returns the
    number of objects and detections, recall, precision, and the mean IoU of found objects.
    """
    import torch

    from probe.analysis._detr import box_iou, detr_predictions, match_detections
    from probe.models._detr_shapes import DETR_SHAPES_IMAGE_SIZE
    from probe.models._scenes import make_scenes

    data = make_scenes(n, seed=seed, image_size=DETR_SHAPES_IMAGE_SIZE)
    found = detections = objects = 0
    ious: list[float] = []
    with torch.no_grad():
        for start in range(0, n, 250):
            out = model(pixel_values=data.images[start : start + 250])
            classes, scores, boxes = detr_predictions(out.logits, out.pred_boxes)
            for i, target in enumerate(data.targets()[start : start + 250]):
                match = match_detections(
                    classes[i], scores[i], boxes[i], target["class_labels"], target["boxes"],
                    threshold=SCORE_THRESHOLD,
                )
                objects += len(match)
                detections += int((scores[i] >= SCORE_THRESHOLD).sum())
                for g, q in enumerate(match):
                    if q >= 0:
                        found += 1
                        ious.append(float(box_iou(boxes[i][q : q + 1], target["boxes"][g : g + 1])))
    return {
        "images": n,
        "objects": objects,
        "detections": detections,
        "recall": found / max(objects, 1),
        "precision": found / max(detections, 1),
        "mean_iou": sum(ious) / max(len(ious), 1),
    }


def _assessment(n_eval: int) -> Callable[[nn.Module], Assessment]:
    """Detection quality on ``n_eval`` held-out scenes; ``--min-recall`` guards the recall."""

    def assess(model: nn.Module) -> Assessment:
        q = detection_quality(model, n_eval)
        summary = (
            f"recall {q['recall']:.4f}, precision {q['precision']:.4f}, mean IoU "
            f"{q['mean_iou']:.3f} ({q['objects']} objects in {n_eval} images, seed "
            f"{EVAL_SEED})"
        )
        recorded = {k: (f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in q.items()}
        return Assessment(summary, "recall", q["recall"], recorded)

    return assess


def _parser() -> argparse.ArgumentParser:
    from probe.models._detr_shapes import DETR_WEIGHTS_PATH

    return training_parser(
        prog="python -m probe.recipes.train_detr_shapes",
        description="Train detr-shapes on generated scenes and write safetensors weights.",
        steps=2400,
        n_eval=1_000,
        batch_size=32,
        lr=1e-3,
        weight_decay=1e-4,
        out=DETR_WEIGHTS_PATH,
        floor="recall",
        floor_default=0.4,
        batch_unit="scenes",
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 1 recall too low, 2 bad args)."""
    from probe.models._detr_shapes import DETR_BACKBONE_CONFIG, DETR_SHAPES_CONFIG

    metadata = {
        "model": "detr-shapes",
        "class": "transformers.DetrForObjectDetection",
        "config": repr(DETR_SHAPES_CONFIG),
        "backbone_config": repr(DETR_BACKBONE_CONFIG),
        "curriculum": f"one object per scene for the first {CURRICULUM_FRACTION:g} of the steps",
    }
    return train_main(argv, _parser(), train, _assessment, metadata, EVAL_SEED)


if __name__ == "__main__":
    raise SystemExit(main())
