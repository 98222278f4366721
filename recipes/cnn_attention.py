"""CNN attention on ``cnn-shapes``: figures and evaluation numbers for the README.

``python -m probe.recipes.cnn_attention --out docs/figures --json benchmarks/eval-cnn-shapes.json``
writes

* ``cnn_gates_<i>.png``: an image, CBAM's spatial gate of every stage and GradCAM, side by side;
* ``cnn_channel_profiles.png``: mean channel gate per class and stage (SENet's Fig. 6 question:
  are late-stage gates class-specific?);
* ``cnn_channel_gates.png``: what the CBAM channel gates do over 64 held-out images
  (:func:`probe.viewers.channel_gates_view`: which channels each stage shuts, passes, or
  switches with the input);
* the JSON of :func:`probe.evaluation._cnn_eval.eval_cnn_faithfulness` and
  :func:`~probe.evaluation._cnn_eval.eval_cnn_gates` (``--n`` images, default 500), and prints
  the markdown table.
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.recipes._common import eval_args, quiet, save, write_results


def gate_figures(out: str, formats: Sequence[str] = ("png",), dpi: int = 150,
                 images: int = 3) -> list[str]:
    """CBAM spatial gates of every stage beside GradCAM on ``images`` held-out shapes
    (``cnn_gates_<i>``; the demo draws these). Returns the written paths."""
    import probe
    from probe.evaluation.tasks import EVAL_IMAGE_SEED
    from probe.viewers import gate_maps

    model, _ = probe.load_model("cnn-shapes")
    data = probe.make_shapes(max(images, 1), seed=EVAL_IMAGE_SEED)
    written: list[str] = []
    for i in range(images):
        x = data.images[i : i + 1]
        gt = probe.trace_gates(model, x)
        maps = {f"stage {g.stage} spatial gate": g.values[0] for g in gt.select("spatial")}
        maps["GradCAM (last stage)"] = probe.attribute(model, x, "gradcam").as_grid()[0]
        pred = probe.SHAPE_CLASSES[int(gt.output.argmax(-1))]
        fig = gate_maps(data.to_display(i), maps,
                        title=f"cnn-shapes: CBAM spatial gates and GradCAM (predicted {pred})")
        written += save(fig, out, f"cnn_gates_{i}", formats, dpi)
    return written


def channel_gates_figure(out: str, formats: Sequence[str] = ("png",), dpi: int = 150,
                         n: int = 64) -> list[str]:
    """``cnn_channel_gates``: the CBAM channel gates of every stage over ``n`` held-out shapes
    (the images of the evaluation). Returns the written paths."""
    import probe
    from probe.evaluation.tasks import EVAL_IMAGE_SEED
    from probe.viewers import channel_gates_view

    model, _ = probe.load_model("cnn-shapes")
    gt = probe.trace_gates(model, probe.make_shapes(n, seed=EVAL_IMAGE_SEED).images)
    fig = channel_gates_view(
        {f"stage {g.stage} \u00b7 {g.name}": g.values for g in gt.select("channel")},
        title=f"cnn-shapes: CBAM channel gates over {n} held-out images "
        f"(seed {EVAL_IMAGE_SEED})",
    )
    return save(fig, out, "cnn_channel_gates", formats, dpi)


def main(argv: list[str] | None = None) -> int:
    args = eval_args("CBAM and SE gates of cnn-shapes: figures and evaluation.", argv,
                     what="images", images=3)
    if args is None:
        return 2
    quiet(args.quiet)
    import torch

    import probe
    from probe.evaluation._cnn_eval import (
        cnn_faithfulness_markdown,
        eval_cnn_faithfulness,
        eval_cnn_gates,
    )
    from probe.viewers import channel_profiles_view

    torch.set_num_threads(args.threads)
    model, _ = probe.load_model("cnn-shapes")
    written = gate_figures(args.out, args.formats, args.dpi, images=args.images)
    faith = eval_cnn_faithfulness(model, n=args.n)
    gates = eval_cnn_gates(model, n=args.n)
    profiles = {f"stage {s}": torch.tensor(v) for s, v in gates["profiles"].items()}
    ratios = {f"stage {s}": r["ratio"] for s, r in gates["stages"].items()}
    fig = channel_profiles_view(profiles, probe.SHAPE_CLASSES, specificity=ratios,
                                title="cnn-shapes: mean CBAM channel gate per class")
    written += save(fig, args.out, "cnn_channel_profiles", args.formats, args.dpi)
    written += channel_gates_figure(args.out, args.formats, args.dpi)
    print(cnn_faithfulness_markdown(faith))
    print("channel-gate class specificity (between/within):",
          ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    return write_results(args, written, {"faithfulness": faith, "gates": gates})


if __name__ == "__main__":
    raise SystemExit(main())
