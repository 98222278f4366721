"""Alignment demo: toy-mt translates a held-out sentence while probe records its attention.

The sentence is generated with :func:`probe.generate` (greedy, KV cache on); the recipe
prints the translation and the AER of the last layer's fused cross-attention, the best head,
gradient saliency and a random alignment against the gold links, and renders one alignment
figure per method with gold links marked.

Run: ``python -m probe.recipes.alignment_demo --out probe-out``
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.recipes._common import figures_main, parser, save

SENTENCE_INDEX = 3
"""Which held-out pair to show (one with a compound noun, a one-to-many word and reordering)."""


def run(out: str, formats: Sequence[str] = ("png",), dpi: int = 150) -> list[str]:
    """Render the alignment figures of one held-out sentence. Returns file paths."""
    import torch

    import probe
    from probe.models._translation import toy_split
    from probe.viewers import alignment_view

    model, tokenizer = probe.load_model("toy-mt")
    pair = toy_split()[1][SENTENCE_INDEX]
    gen = probe.generate(model, pair.source_text, tokenizer=tokenizer, max_new_tokens=24)
    print(f"\nsource:      {pair.source_text}\ngenerated:   {gen.text[0]}\nreference:   "
          f"{pair.target_text}")
    attention = probe.alignment(gen)
    last = attention.layer_indices[-1]
    best_head = min(
        attention.head_indices or (0,),
        key=lambda h: probe.alignment_error_rate(attention.links(last, h), pair.sure,
                                                 pair.possible),
    )
    panels = {
        f"layer {last}, heads averaged": (attention.matrix(last), attention.links(last)),
        f"layer {last}, head {best_head}": (
            attention.matrix(last, best_head), attention.links(last, best_head)
        ),
    }
    saliency = probe.gradient_alignment(model, gen, method="saliency")
    grad = saliency.matrix()
    # gradient magnitudes differ by orders of magnitude between rows (confident steps have
    # tiny gradients): shown with each row normalised to sum to 1; the links are unchanged
    panels["gradient saliency"] = (grad / grad.sum(-1, keepdim=True).clamp_min(1e-30),
                                   saliency.links())
    rand = probe.random_alignment(attention, torch.Generator().manual_seed(0))
    panels["random"] = (rand.matrix(), rand.links())
    paths = []
    for name, (matrix, links) in panels.items():
        aer = probe.alignment_error_rate(links, pair.sure, pair.possible)
        print(f"  {name:28s} AER {aer:.3f}")
        stem = "alignment_" + name.replace(",", "").replace(" ", "_")
        fig = alignment_view(
            matrix, attention.target_words, attention.source_words, gold=pair.sure,
            predicted=links, title=f"toy-mt · {name} · AER {aer:.2f}",
        )
        paths += save(fig, out, stem, formats, dpi)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    return figures_main(
        argv, parser(__doc__.splitlines()[0]), lambda a: run(a.out, a.formats, a.dpi)
    )


if __name__ == "__main__":
    raise SystemExit(main())
