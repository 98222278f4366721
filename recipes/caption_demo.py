"""caption-shapes: the caption of a held-out scene with each word's cross-attention, and how
often a word's attention lands on the object it names (grounding evaluation).

``python -m probe.recipes.caption_demo --out docs/figures --json
benchmarks/eval-caption-grounding.json`` draws ``caption_cross_<i>`` (``--images`` held-out
scenes, :func:`probe.plot` ``"cross"`` of :func:`probe.generate`) and scores ``--n`` held-out
scenes of seed :data:`GROUNDING_SEED` with
:func:`probe.evaluation._grounding.caption_grounding` (pointing game and mass on the object,
per decoder layer and averaged, bootstrap 95% intervals over scenes, the random-patch
baseline), printing a markdown table (the README's numbers).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from probe.recipes._common import eval_args, quiet, save, write_results

__all__ = ["FIGURE_SEED", "GROUNDING_SEED", "caption_figures", "grounding", "main"]

GROUNDING_SEED = 41_000
"""Seed of the scenes scored (training seeds start at two million; the recipe's caption
accuracy uses seed 40,000)."""

FIGURE_SEED = 40_000
"""Seed of the scenes drawn: the recipe's held-out scenes."""


def caption_figures(out: str, formats: Sequence[str] = ("png",), dpi: int = 150,
                    images: int = 1) -> list[str]:
    """``caption_cross_<i>``: the first ``images`` held-out scenes of two or more objects,
    each token's cross-attention (decoder layers averaged, heads averaged, CLS left out)."""
    import probe

    model, tokenizer = probe.load_model("caption-shapes")
    data = probe.make_captions(60, seed=FIGURE_SEED)
    written: list[str] = []
    shown = 0
    for i in range(len(data)):
        if shown >= images:
            break
        if int((data.labels[i] >= 0).sum()) < 2:
            continue
        gen = probe.generate(model, data.images[i : i + 1], tokenizer=tokenizer,
                             max_new_tokens=12)
        fig = probe.plot(gen, "cross", image=data.to_display(i), width="double",
                         title=f"caption-shapes, held-out scene {i} (truth: "
                               f"\u201c{data.captions[i]}\u201d) \u00b7 decoder layers "
                               "averaged \u00b7 heads mean \u00b7 CLS left out")
        written += save(fig, out, f"caption_cross_{shown}", formats, dpi)
        shown += 1
    return written


def grounding(n: int, seed: int = GROUNDING_SEED) -> dict:
    """:func:`~probe.evaluation._grounding.caption_grounding` of ``n`` scenes of ``seed``, with
    the run's seconds."""
    import probe
    from probe.evaluation._grounding import caption_grounding

    start = time.perf_counter()
    model, tokenizer = probe.load_model("caption-shapes")
    result = caption_grounding(model, tokenizer, probe.make_captions(n, seed=seed))
    result.update(seed=seed, run_time_s=round(time.perf_counter() - start, 1))
    return result


def main(argv: list[str] | None = None) -> int:
    args = eval_args("caption-shapes: cross-attention figures and grounding evaluation.", argv,
                     what="scenes", images=1, min_n=2)
    if args is None:
        return 2
    quiet(args.quiet)
    import torch

    from probe.evaluation._grounding import grounding_markdown

    previous = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        paths = caption_figures(args.out, args.formats or ["png"], args.dpi, args.images)
        result = grounding(args.n)
    finally:
        torch.set_num_threads(previous)
    print(grounding_markdown(result))
    print(f"\n{args.n} scenes (seed {result['seed']}) in {result['run_time_s']:.0f}s",
          file=sys.stderr)
    return write_results(args, paths, result)


if __name__ == "__main__":
    raise SystemExit(main())
