"""Coreference demo: which word does "it" refer to, according to each head of MiniLM?

"The animal didn't cross the street because it was too tired." -> "it" is the animal;
"...because it was too wide." -> "it" is the street. This recipe captures both sentences,
ranks the heads by how strongly "it" links to a candidate antecedent (:func:`probe.coref`),
reports the best antecedent per head and by attention rollout (:func:`probe.best_antecedents`),
and renders one coreference figure per sentence.

Run: ``python -m probe.recipes.coref_demo --out probe-out``
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.recipes._common import figures_main, parser, save

SENTENCES = (
    "The animal didn't cross the street because it was too tired.",
    "The animal didn't cross the street because it was too wide.",
)


def run(out: str, formats: Sequence[str] = ("png",), dpi: int = 150, word: str = "it") -> list[str]:
    """Render the coreference figure of each sentence; print the ranking. Returns file paths."""
    import probe
    model, tokenizer = probe.load_model("minilm")
    paths = []
    for i, sentence in enumerate(SENTENCES):
        trace = probe.trace(model, sentence, tokenizer=tokenizer)
        links = probe.coref(trace, word)
        best = probe.best_antecedents(trace, word)
        top = links[0]
        print(f"\n{sentence}")
        print(f"  top head: layer {top.layer} head {top.head}: {word!r} -> {top.antecedent!r} "
              f"(weight {top.weight:.2f})")
        print(f"  by rollout: {word!r} -> {best.rollout_antecedent!r} "
              f"(weight {best.rollout_weight:.2f})")
        votes: dict[str, int] = {}
        for link in best.per_head:
            votes[link.antecedent] = votes.get(link.antecedent, 0) + 1
        print(f"  best antecedent per head (votes over {len(best.per_head)} heads): {votes}")
        # marks, ranking and table all follow probe.coref's candidates
        fig = probe.plot(trace, "coref", word=word)
        paths += save(fig, out, f"coref_{'tired' if i == 0 else 'wide'}", formats, dpi)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    return figures_main(
        argv, parser(__doc__.splitlines()[0]), lambda a: run(a.out, a.formats, a.dpi)
    )


if __name__ == "__main__":
    raise SystemExit(main())
