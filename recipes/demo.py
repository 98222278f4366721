"""The demo: every figure of the README, rendered on the embedded offline models.

Runs the coreference demo, the ViT patch saliency comparison on vit-shapes, the
attention-versus-gradients comparison on MiniLM sentence similarity, the toy-mt alignment
figures, the cnn-shapes CBAM gate figures, the cnn-shapes-nl non-local query-point
figures and the detr-shapes decoder-attention figures, plus the model view and
the link view of the coreference sentence, and the interactive HTML views (under
``OUT/html``). Everything is offline and deterministic.

Run: ``python -m probe.recipes.demo --out docs/figures``
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.recipes import (
    alignment_demo,
    cnn_attention,
    coref_demo,
    detr_attention,
    nonlocal_demo,
    similarity,
    vit_saliency,
)
from probe.recipes._common import parser, quiet, save, valid_outputs


def attention_views(out: str, formats: Sequence[str], dpi: int) -> list[str]:
    """Model view (every layer x head) and link view of the coreference sentence."""
    import probe

    model, tokenizer = probe.load_model("minilm")
    trace = probe.trace(model, coref_demo.SENTENCES[0], tokenizer=tokenizer)
    paths = save(probe.plot(trace, "model"), out, "model_view", formats, dpi)
    link = probe.coref(trace, "it")[0]
    # the coreference head, with "it" highlighted
    fig = probe.plot(trace, "links", layer=link.layer, head=link.head, word="it")
    paths += save(fig, out, f"links_L{link.layer}H{link.head}", formats, dpi)
    return paths


def html_views(out: str) -> list[str]:
    """The interactive HTML views (probe.show) of the coreference sentence and of a
    vit-shapes image, written under ``out/html``."""
    import os

    import probe

    folder = os.path.join(out, "html")
    os.makedirs(folder, exist_ok=True)
    lm = probe.load_model("minilm")
    text = coref_demo.SENTENCES[0]
    trace = probe.trace(lm.model, text, tokenizer=lm.processor)
    pages = {
        "heads": probe.show(trace, "heads"),
        "model": probe.show(trace, "model"),
        "coref": probe.show(trace, "coref"),
        "tokens": probe.show(lm, "tokens", text, methods=["attention", "rollout"]),
    }
    vit = probe.load_model("vit-shapes")
    image = probe.make_shapes(1, seed=0).images[:1]
    pages["image"] = probe.show(vit, "image", image)
    return [str(page.save(os.path.join(folder, f"html_{name}.html")))
            for name, page in pages.items()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0], default_out="docs/figures").parse_args(argv)
    if not valid_outputs(args):
        return 2
    quiet(args.quiet)
    formats = args.formats or ["png"]
    paths = coref_demo.run(args.out, formats, args.dpi)
    paths += attention_views(args.out, formats, args.dpi)
    paths += similarity.run(args.out, formats, args.dpi, quiet=args.quiet)
    paths += vit_saliency.run(args.out, formats, args.dpi, quiet=args.quiet)
    paths += alignment_demo.run(args.out, formats, args.dpi)
    paths += cnn_attention.gate_figures(args.out, formats, args.dpi)
    paths += nonlocal_demo.nonlocal_figures(args.out, formats, args.dpi)
    paths += detr_attention.query_figures(args.out, formats, args.dpi)
    paths += html_views(args.out)
    print("\nwrote:")
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
