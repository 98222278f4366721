"""The demo: every figure of the README, rendered on the embedded offline models.

Runs the coreference demo, the ViT patch saliency comparison on vit-shapes, the
attention-versus-gradients comparison on MiniLM sentence similarity, the toy-mt alignment
figures, the cnn-shapes CBAM gate figures, the cnn-shapes-nl non-local query-point
figures, the detr-shapes decoder-attention figures, the swin-shapes window figures and the
caption-shapes cross-attention figure,
plus the model view and the link view of the coreference sentence, and the interactive HTML
views (under ``OUT/html``). Everything is offline and deterministic.

Run: ``python -m probe.recipes.demo --out docs/figures``
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.recipes import (
    alignment_demo,
    caption_demo,
    cnn_attention,
    coref_demo,
    detr_attention,
    nonlocal_demo,
    similarity,
    swin_demo,
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
    """The interactive HTML views (probe.show) of the coreference sentence, a vit-shapes
    image (image view, deletion and insertion curves), a toy-mt translation (cross-attention,
    word alignment), a detr-shapes scene, the cnn-shapes-nl gates and the swin-shapes
    windows, written under
    ``out/html``."""
    import os

    import probe
    from probe.models._scenes import make_scenes
    from probe.models._translation import toy_split

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
    pages["curves"] = probe.show(vit, "curves", image)  # the CLI's methods, random included
    mt = probe.load_model("toy-mt")
    source = toy_split()[1][alignment_demo.SENTENCE_INDEX].source_text  # the alignment figures'
    gen = probe.generate(mt.model, source, tokenizer=mt.processor, max_new_tokens=24)
    pages["cross"] = probe.show(gen.to_trace(), "cross")
    pages["alignment"] = probe.show(probe.alignment(gen), "alignment")
    pages["detr"] = probe.show(probe.load_model("detr-shapes"), "detr",
                               make_scenes(1, seed=0).images)
    pages["gates"] = probe.show(probe.load_model("cnn-shapes-nl"), "gates", image)
    pages["window"] = probe.show(probe.load_model("swin-shapes"), "window", image)
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
    paths += swin_demo.window_figures(args.out, formats, args.dpi)
    paths += caption_demo.caption_figures(args.out, formats, args.dpi)
    paths += html_views(args.out)
    print("\nwrote:")
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
