"""ViT patch saliency on vit-shapes: every method side by side, against the object mask.

For a few held-out generated images, this recipe scores the patches with every vision method
registered in probe (attention, rollout with each head fusion, flow, gradient-weighted
relevance, Integrated Gradients, saliency, input x gradient, GradCAM, random), and renders per
image a comparison panel (overlays, Spearman agreement matrix, deletion/insertion AUC), the
per-head CLS attention of the last layer, and the deletion/insertion curves averaged over the
images.

Run: ``python -m probe.recipes.vit_saliency --out probe-out``
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from probe.recipes._common import figures_main, parser, save

HELD_OUT_SEED = 20_261_121


def run(
    out: str,
    formats: Sequence[str] = ("png",),
    dpi: int = 150,
    n_images: int = 2,
    n_curves: int = 16,
    quiet: bool = False,
) -> list[str]:
    """Render the saliency figures; print per-method agreement. Returns file paths."""
    import torch
    from tqdm.auto import tqdm

    import probe
    from probe.viewers import cls_head_grid, comparison_panel, curves_view

    model, _ = probe.load_model("vit-shapes")
    data = probe.make_shapes(max(n_images, n_curves), seed=HELD_OUT_SEED)
    methods = [m for m in probe.list_methods("vision") if m != "flow"]
    images = data.images[:n_curves]
    attrs = {
        m: probe.attribute(model, images, m)
        for m in tqdm(methods, desc="methods", disable=quiet, leave=False)
    }
    # the same number of steps as `probe eval faithfulness`, so figures and tables agree
    from probe.evaluation.tasks import eval_faithfulness

    steps = inspect.signature(eval_faithfulness).parameters["steps"].default
    curves = {
        m: (probe.deletion_curve(model, images, a, steps=steps),
            probe.insertion_curve(model, images, a, steps=steps))
        for m, a in tqdm(attrs.items(), desc="curves", disable=quiet, leave=False)
    }
    paths = []
    with torch.no_grad():
        predicted = model(data.images[:n_images]).argmax(-1)
    for i in range(n_images):
        single = {m: a.as_grid()[i] for m, a in attrs.items()}
        table = probe.compare({m: a.scores[i] for m, a in attrs.items()}, metric="spearman")
        faith = {
            m: {"deletion AUC": float(c[0].auc[i]), "insertion AUC": float(c[1].auc[i])}
            for m, c in curves.items()
        }
        label = probe.SHAPE_CLASSES[int(data.labels[i])]
        guess = probe.SHAPE_CLASSES[int(predicted[i])]
        image_title = f"input · true {label}\npredicted {guess}"
        fig = comparison_panel(
            data.to_display(i), single, agreement=table.values, methods=list(table.methods),
            faithfulness=faith, model_name="vit-shapes", image_title=image_title,
            title=f"vit-shapes · true {label}, predicted {guess} · every method",
        )
        paths += save(fig, out, f"vit_saliency_compare_{i}", formats, dpi)
        trace = probe.trace(model, data.images[i : i + 1])
        maps = probe.patch_maps(trace)[-1, 0]  # last layer, [head, rows, cols]
        fig = cls_head_grid(data.to_display(i), maps, model_name="vit-shapes",
                            layer=trace.layer_indices[-1], image_title=image_title,
                            title=f"vit-shapes · layer {trace.layer_indices[-1]} · CLS attention"
                                  f" · true {label}, predicted {guess}")
        paths += save(fig, out, f"vit_saliency_cls_heads_{i}", formats, dpi)
    for kind, k in (("deletion", 0), ("insertion", 1)):
        mean_curves = {m: (c[k].fractions, c[k].values.mean(0)) for m, c in curves.items()}
        auc = {m: float(c[k].auc.mean()) for m, c in curves.items()}
        fig = curves_view(mean_curves, kind=kind, auc=auc, model_name="vit-shapes",
                          n=len(images), unit="images",
                          title=f"vit-shapes · {kind} curves · mean of {len(images)} images, "
                                f"{steps} steps")
        paths += save(fig, out, f"vit_saliency_{kind}", formats, dpi)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=2, help="comparison panels to render")
    return figures_main(
        argv, p, lambda a: run(a.out, a.formats, a.dpi, n_images=a.images, quiet=a.quiet),
        counts=("images",),
    )


if __name__ == "__main__":
    raise SystemExit(main())
