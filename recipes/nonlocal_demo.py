"""Non-local attention of ``cnn-shapes-nl``: query-point figures and numbers for the README.

``python -m probe.recipes.nonlocal_demo --out docs/figures`` writes ``cnn_nonlocal_<i>.png``
(an image, where a query on the object attends, where a background query attends: Wang et al.
2018's figures, on one shared colour scale) and prints :func:`nonlocal_stats` on ``--n``
held-out images (default 500; ``--json`` writes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probe.recipes._common import eval_args, quiet, save, write_results

if TYPE_CHECKING:
    import torch

__all__ = ["main", "nonlocal_figures", "nonlocal_stats", "query_points"]


def _coverage(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Fraction of object pixels in each feature-map cell: ``[n, h, w]`` from ``[n, H, W]``."""
    import torch.nn.functional as F

    return F.adaptive_avg_pool2d(masks.float()[:, None], size)[:, 0]


def query_points(coverage: torch.Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
    """A query on the object (the cell most covered by it, first in raster order on ties) and
    one on the background (the object-free cell farthest from the object's centre)."""
    import torch

    h, w = coverage.shape
    flat = int(coverage.flatten().argmax())
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    weight = coverage / coverage.sum()
    cy, cx = float((weight * rows).sum()), float((weight * cols).sum())
    dist = ((rows - cy) ** 2 + (cols - cx) ** 2).masked_fill(coverage > 0, -1.0)
    far = int(dist.flatten().argmax())
    return (flat // w, flat % w), (far // w, far % w)


def nonlocal_figures(out: str, formats: Sequence[str] = ("png",), dpi: int = 150,
                     images: int = 2) -> list[str]:
    """Query-point maps of ``images`` held-out shapes (``cnn_nonlocal_<i>``; the demo draws
    these). Returns the written paths."""
    import torch

    import probe
    from probe.evaluation.tasks import EVAL_IMAGE_SEED
    from probe.viewers import query_point_view

    model, _ = probe.load_model("cnn-shapes-nl")
    data = probe.make_shapes(max(images, 1), seed=EVAL_IMAGE_SEED)
    written: list[str] = []
    for i in range(images):
        gt = probe.trace_gates(model, data.images[i : i + 1])
        gate = gt.select("nonlocal")[0]
        on, off = query_points(_coverage(data.masks[i : i + 1], gate.feature_size)[0])
        maps = [probe.query_point_map(gate.values, gate.feature_size, p)[0] for p in (on, off)]
        h, w = gate.feature_size
        pred = probe.SHAPE_CLASSES[int(gt.output.argmax(-1))]
        fig = query_point_view(
            data.to_display(i), torch.stack(maps), [on, off],
            labels=[f"query on the {pred}", "query on background"],
            title=f"cnn-shapes-nl: non-local attention, stage {gate.stage} ({h}x{w}; "
                  f"uniform = 1/{h * w})",
        )
        written += save(fig, out, f"cnn_nonlocal_{i}", formats, dpi)
    return written


def _mean_se(values: torch.Tensor) -> dict[str, float]:
    n = int(values.numel())
    return {"mean": float(values.mean()),
            "se": float(values.std(unbiased=True) / n ** 0.5) if n > 1 else float("nan"), "n": n}


def nonlocal_stats(n: int = 500, seed: int | None = None) -> dict[str, Any]:
    """Where the non-local block of ``cnn-shapes-nl`` attends, on ``n`` held-out images.

    * ``object_queries`` / ``background_queries``: per image, the attention mass on object
      pixels (``sum_k A[q, k] * coverage[k]``) averaged over the queries on the object (cells
      at least half covered) or on the background (object-free cells); ``baseline``: the
      object's area fraction (the mass of uniform attention). Mean and standard error over
      images.
    * ``entropy``: mean entropy of the attention rows (nats) and the uniform ``log(HW)``.
    * ``query_spread``: per image, the mean total-variation distance between each query's
      attention and the image's mean attention over queries (0: every query attends alike,
      as GCNet, Cao et al. 2019, reported for trained non-local blocks).
    * ``accuracy``: the model as trained, with the block's attention replaced by uniform
      weights (global average of its values), and with the block removed.
    """
    import torch

    import probe
    from probe.evaluation.tasks import EVAL_IMAGE_SEED

    model, _ = probe.load_model("cnn-shapes-nl")
    seed = EVAL_IMAGE_SEED if seed is None else seed
    data = probe.make_shapes(n, seed=seed)
    gt = probe.trace_gates(model, data.images)
    gate = gt.select("nonlocal")[0]
    a = gate.values.float()  # [n, HW, HW]
    cov = _coverage(data.masks, gate.feature_size).flatten(1)  # [n, HW]
    mass = torch.einsum("nqk,nk->nq", a, cov)
    baseline = data.masks.float().mean((1, 2))
    result: dict[str, Any] = {"n": n, "seed": seed, "module": gate.name,
                              "feature_size": list(gate.feature_size)}
    for key, sel in (("object_queries", cov >= 0.5), ("background_queries", cov == 0)):
        keep = sel.any(1)
        per = (mass * sel).sum(1)[keep] / sel.sum(1)[keep]
        result[key] = {"mass": _mean_se(per), "baseline": _mean_se(baseline[keep]),
                       "ratio": _mean_se(per / baseline[keep])}
    entropy = -(a * a.clamp_min(1e-30).log()).sum(-1).mean(1)
    uniform = float(torch.log(torch.tensor(float(a.shape[-1]))))
    result["entropy"] = {**_mean_se(entropy), "uniform": uniform}
    result["query_spread"] = _mean_se(0.5 * (a - a.mean(1, keepdim=True)).abs().sum(-1).mean(1))
    result["accuracy"] = _ablations(model, gate.name, data)
    return result


def _ablations(model: Any, name: str, data: Any) -> dict[str, float]:
    """Accuracy as trained, with uniform attention, and without the block (hooks removed)."""
    import torch

    block = model.get_submodule(name)

    def uniform(_m: Any, args: tuple[Any, ...], _out: Any) -> torch.Tensor:
        x = args[0]
        v = block.g(x)
        return block.norm(block.z(v.mean((2, 3), keepdim=True).expand_as(v))) + x

    def removed(_m: Any, args: tuple[Any, ...], _out: Any) -> torch.Tensor:
        return args[0]

    accuracy: dict[str, float] = {}
    variants = (("trained", None), ("uniform_attention", uniform), ("block_removed", removed))
    for label, hook in variants:
        handle = block.register_forward_hook(hook) if hook is not None else None
        try:
            with torch.no_grad():
                pred = model(data.images).argmax(-1)
        finally:
            if handle is not None:
                handle.remove()
        accuracy[label] = float((pred == data.labels).float().mean())
    return accuracy


def stats_markdown(stats: dict[str, Any]) -> str:
    """The numbers of :func:`nonlocal_stats` as a markdown table."""
    def f(d: dict[str, float], pct: bool = True) -> str:
        if pct:
            return f"{100 * d['mean']:.1f} ± {100 * d['se']:.1f}"
        return f"{d['mean']:.3f} ± {d['se']:.3f}"

    o, b = stats["object_queries"], stats["background_queries"]
    acc = stats["accuracy"]
    return "\n".join([
        "| query | mass on object (%) | object area (%) | ratio | images |",
        "|---|---|---|---|---|",
        f"| on the object | {f(o['mass'])} | {f(o['baseline'])} | {f(o['ratio'], False)} | "
        f"{o['mass']['n']} |",
        f"| on background | {f(b['mass'])} | {f(b['baseline'])} | {f(b['ratio'], False)} | "
        f"{b['mass']['n']} |",
        "",
        f"entropy {f(stats['entropy'], False)} nats (uniform {stats['entropy']['uniform']:.3f}); "
        f"query spread (TV to the mean map) {f(stats['query_spread'], False)}; accuracy "
        f"{100 * acc['trained']:.1f}% as trained, {100 * acc['uniform_attention']:.1f}% with "
        f"uniform attention, {100 * acc['block_removed']:.1f}% without the block",
    ])


def main(argv: list[str] | None = None) -> int:
    args = eval_args("Non-local attention of cnn-shapes-nl: query-point figures and numbers.",
                     argv, what="images", images=2, min_n=2,
                     json_help="write the numbers as JSON here")
    if args is None:
        return 2
    quiet(args.quiet)
    import torch

    torch.set_num_threads(args.threads)
    written = nonlocal_figures(args.out, args.formats, args.dpi, images=args.images)
    stats = nonlocal_stats(args.n)
    print(stats_markdown(stats))
    return write_results(args, written, stats)


if __name__ == "__main__":
    raise SystemExit(main())
