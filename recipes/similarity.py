"""Attention versus gradients on MiniLM sentence similarity.

Which words make two sentences similar? The target is the cosine similarity between the
mean-pooled MiniLM embeddings of the sentence and of its pair
(:func:`probe.similarity_target`). Gradient methods (Integrated Gradients, saliency,
input x gradient, gradient-weighted relevance) explain that target; attention methods
(last-layer attention, rollout) only show where the model looks. The recipe prints the
Spearman agreement table and the ERASER comprehensiveness/sufficiency of every method next to
a random baseline, and renders a comparison panel.

Run: ``python -m probe.recipes.similarity --out probe-out``
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.recipes._common import figures_main, parser, save

PAIR = ("A man is playing a guitar on the stage.", "Someone performs music for an audience.")
METHODS = ("attention", "rollout", "relevance", "ig", "saliency", "inputxgrad", "random")


def run(out: str, formats: Sequence[str] = ("png",), dpi: int = 150,
        quiet: bool = False) -> list[str]:
    """Render the comparison panel of every method; print agreement and ERASER scores."""
    from tqdm.auto import tqdm

    import probe
    from probe.viewers import comparison_panel

    model, tokenizer = probe.load_model("minilm")
    sentence, other = PAIR
    target = probe.similarity_target(model, tokenizer, other)
    trace = probe.trace(model, sentence, tokenizer=tokenizer)
    attrs = {
        m: probe.attribute(model, sentence, m, tokenizer=tokenizer, target=target, trace=trace)
        for m in tqdm(METHODS, desc="methods", disable=quiet, leave=False)
    }
    table = probe.compare(list(attrs.values()), metric="spearman", mask=trace)
    eraser = probe.eraser(model, sentence, attrs, tokenizer=tokenizer, target=target)
    print(f"{sentence!r} vs {other!r}\n\nSpearman agreement (real non-special tokens):\n{table}")
    print(f"\nERASER (higher comprehensiveness and lower sufficiency are better):\n{eraser}")
    # strips show the real, non-special tokens ([CLS]/[SEP] dominate attention-based maps)
    real = trace.attention_mask[0] & ~trace.special_tokens_mask[0]
    keep = [i for i, k in enumerate(real.tolist()) if k]
    tokens = [trace.tokens[0][i] for i in keep]
    # one random row: the registered "random" method, scored like every other method (the
    # table's random orders are printed above)
    faith = {
        m: {"comprehensiveness": float(c), "sufficiency": float(s)}
        for m, c, s in zip(eraser.methods, eraser.comprehensiveness, eraser.sufficiency)
    }
    fig = comparison_panel(
        tokens, {m: a.scores[0, keep] for m, a in attrs.items()}, agreement=table.values,
        methods=list(table.methods), faithfulness=faith, model_name="minilm",
        title=f"minilm · similarity to {other!r} · attention vs gradients",
    )
    return save(fig, out, "similarity_compare", formats, dpi)


def main(argv: Sequence[str] | None = None) -> int:
    return figures_main(
        argv, parser(__doc__.splitlines()[0]),
        lambda a: run(a.out, a.formats, a.dpi, quiet=a.quiet),
    )


if __name__ == "__main__":
    raise SystemExit(main())
