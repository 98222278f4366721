"""DETR decoder attention on ``detr-shapes``: figures and numbers for the README.

``python -m probe.recipes.detr_attention --out docs/figures --json JSON`` (the README's JSON
is ``benchmarks/eval-detr-shapes.json``) writes

* ``detr_queries_<i>.png``: a held-out scene and, for every gold object, the query matched to
  it (its predicted box, class and score) with its cross-attention over the image, as in the
  decoder-attention figure of the DETR paper (Carion et al. 2020, Fig. 6);
* the JSON of :func:`evaluate` (``--n`` held-out scenes, default 500) and prints it: detection
  quality, and how much of each matched query's cross-attention falls inside its object's box
  against the box's share of the image (what a uniform map would put there).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probe.recipes._common import eval_args, quiet, save

if TYPE_CHECKING:
    import torch


def _matched(model: Any, scenes: Any, index: int) -> tuple[Any, list[int], Any, Any, Any]:
    """Trace scene ``index``; the queries matched to its gold objects (``-1``: missed)."""
    import probe
    from probe.analysis._detr import detr_predictions, match_detections
    from probe.recipes.train_detr_shapes import SCORE_THRESHOLD

    tr = probe.trace(model, scenes.images[index : index + 1])
    classes, scores, boxes = detr_predictions(tr.output.logits, tr.output.pred_boxes)
    target = scenes.targets()[index]
    match = match_detections(classes[0], scores[0], boxes[0], target["class_labels"],
                             target["boxes"], threshold=SCORE_THRESHOLD)
    return tr, match, classes[0], scores[0], boxes[0]


def _box_mass(cells: torch.Tensor, box: torch.Tensor, size: int) -> float:
    """Attention mass inside ``box`` (``cx, cy, w, h`` relative) of a ``[rows, cols]`` map on a
    ``size x size`` image, each cell's mass spread evenly over its pixels."""
    import torch

    rows, cols = cells.shape
    pixels = torch.kron(cells.float(), torch.ones(size // rows, size // cols)) / (
        (size // rows) * (size // cols)
    )
    cx, cy, w, h = (box * size).tolist()
    x0, x1 = max(0, round(cx - w / 2)), min(size, round(cx + w / 2))
    y0, y1 = max(0, round(cy - h / 2)), min(size, round(cy + h / 2))
    return float(pixels[y0:y1, x0:x1].sum())


def _mean_se(values: list[float]) -> dict[str, float]:
    m = sum(values) / len(values)
    var = sum((v - m) ** 2 for v in values) / max(len(values) - 1, 1)
    return {"mean": m, "se": math.sqrt(var / len(values)), "n": len(values)}


def evaluate(n: int = 500) -> dict[str, Any]:
    """Detection quality and in-box attention of ``detr-shapes`` on ``n`` held-out scenes.

    For every gold object found (a query with score >= 0.5, its class and IoU > 0.5), the
    fraction of that query's cross-attention (heads averaged) inside the object's gold box,
    per decoder layer, against the box's area fraction (the uniform-attention baseline);
    mean and standard error over found objects.
    """
    import probe
    from probe.analysis._detr import query_maps
    from probe.models._detr_shapes import DETR_SHAPES_IMAGE_SIZE
    from probe.models._scenes import make_scenes
    from probe.recipes.train_detr_shapes import EVAL_SEED, detection_quality

    model, _ = probe.load_model("detr-shapes")
    quality = detection_quality(model, n, EVAL_SEED)
    scenes = make_scenes(n, seed=EVAL_SEED, image_size=DETR_SHAPES_IMAGE_SIZE)
    inside: dict[int, list[float]] = {}
    area: list[float] = []
    for i in range(n):
        tr, match, *_ = _matched(model, scenes, i)
        gold = scenes.targets()[i]["boxes"]
        for g, q in enumerate(match):
            if q < 0:
                continue
            area.append(float(gold[g, 2] * gold[g, 3]))
            for layer in tr.cross.layer_indices:  # the model's decoder layers
                cells = query_maps(tr, layer)[0, q]
                inside.setdefault(layer, []).append(
                    _box_mass(cells, gold[g], DETR_SHAPES_IMAGE_SIZE))
    return {
        "model": "detr-shapes",
        "eval_seed": EVAL_SEED,
        "detection": quality,
        "found_objects": len(area),
        "box_area_baseline": _mean_se(area) if area else None,
        "attention_in_box": {f"decoder layer {k}": _mean_se(v) for k, v in inside.items()},
    }


def query_figures(out: str, formats: Sequence[str] = ("png",), dpi: int = 150,
                  images: int = 2) -> list[str]:
    """The queries matched to gold objects, each with its box, class and last-layer
    cross-attention (``detr_queries_<i>``; the demo draws these), on the first ``images``
    held-out scenes where at least two objects are found (the model finds 43% of objects:
    a scene with fewer would show one panel or none)."""
    import probe
    from probe.analysis._detr import query_maps
    from probe.models._scenes import make_scenes
    from probe.recipes.train_detr_shapes import EVAL_SEED
    from probe.viewers import detr_queries_view

    model, _ = probe.load_model("detr-shapes")
    scenes = make_scenes(200, seed=EVAL_SEED)
    written: list[str] = []
    for i in range(len(scenes)):
        if len(written) >= images * len(formats or ("png",)):
            break
        tr, match, classes, scores, boxes = _matched(model, scenes, i)
        shown = [q for q in match if q >= 0]
        if len(shown) < 2:
            continue
        maps = query_maps(tr)[0]
        labels = [f"q{q} {probe.SHAPE_CLASSES[int(classes[q])]}" for q in shown]
        fig = detr_queries_view(
            scenes.to_display(i), maps[shown], boxes[shown], labels,
            scores=[float(scores[q]) for q in shown],
            title=f"detr-shapes, scene {i}: matched queries (last layer)",
            colorbar_label="cross-attention weight\n(last layer, heads averaged)",
        )
        written += save(fig, out, f"detr_queries_{len(written) // len(formats or ('png',))}",
                        formats, dpi)
    return written


def main(argv: list[str] | None = None) -> int:
    args = eval_args("DETR decoder attention on detr-shapes: figures and evaluation.", argv,
                     what="scenes", images=2)
    if args is None:
        return 2
    quiet(args.quiet)
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        paths = query_figures(args.out, args.formats or ["png"], args.dpi, args.images)
        result = evaluate(args.n)
    finally:
        torch.set_num_threads(previous)
    print(json.dumps(result, indent=2))
    if args.json:
        from probe._report import jsonable, write_json

        write_json(args.json, jsonable(result), indent=1)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
