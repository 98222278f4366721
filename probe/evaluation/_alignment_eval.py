"""``probe eval alignment``: how well cross-attention aligns words, on ground truth.

The held-out pairs of the toy language pair (:mod:`probe.models._translation`) are
translated by the model with :func:`probe.generate` (greedy, attention captured); on every
sentence whose translation is exactly the reference, the gold alignment applies and each
candidate is scored with the corpus alignment error rate (argmax links, Och & Ney 2003):
every cross-attention head of every layer, the mean over a layer's heads, the mean over all
heads, input-gradient saliency and gradient x input, and a uniformly random alignment.
Argmax gives one link per target word, so a source compound (two source words, one target
word) always misses a sure link: the ``argmax_floor`` row (one gold link per target word) is
the best AER any argmax alignment can reach.
Uncertainty: a 95% bootstrap interval over sentences (1000 resamples, seeded).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["alignment_markdown", "eval_alignment", "select_pairs"]

DEFAULT_N = 200
QUICK_N = 24
BOOTSTRAP = 1000


def _counts(links: frozenset, sure: frozenset, possible: frozenset) -> tuple[int, int]:
    a = set(links)
    return len(a & sure) + len(a & possible), len(a) + len(sure)


def _aer_with_interval(counts: list[tuple[int, int]], seed: int) -> dict[str, float]:
    import torch

    c = torch.tensor(counts, dtype=torch.float64)
    point = 1.0 - float(c[:, 0].sum() / c[:, 1].sum())
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, c.shape[0], (BOOTSTRAP, c.shape[0]), generator=g)
    sums = c[idx].sum(1)
    boot = 1.0 - sums[:, 0] / sums[:, 1]
    low, high = torch.quantile(boot, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return {"aer": point, "ci_low": low, "ci_high": high}


def _shaped_like(target: Sequence[str], source: Sequence[str]) -> Any:
    """An attention-free :class:`Alignment` with the words of one pair (the shape
    :func:`random_alignment` draws for)."""
    import torch

    from probe.analysis._alignment import Alignment

    scores = torch.zeros((1, 1, len(target), len(source)), dtype=torch.float64)
    return Alignment(scores, tuple(target), tuple(source), (0,), (0,))


def _progress(items: list[int], quiet: bool) -> Any:
    if quiet:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="alignment (batches)", leave=False)


def select_pairs(n: Any) -> list[Any]:
    """The first ``n`` held-out toy pairs; an ``n`` beyond the 500 of the split is an error
    (:func:`~probe.evaluation.tasks._common.take_first`: it silently ran on fewer)."""
    from probe.evaluation.tasks._common import take_first
    from probe.models._translation import toy_split

    return take_first(toy_split()[1], n, "held-out pairs of the toy language pair")


def eval_alignment(
    model: nn.Module,
    tokenizer: Any,
    *,
    n: int = DEFAULT_N,
    seed: int = 0,
    batch_size: int = 50,
    model_name: str | None = None,
    quiet: bool = True,
) -> dict[str, Any]:
    """AER of every alignment candidate on ``n`` held-out toy sentence pairs.

    Args:
        model: an encoder-decoder trained on the toy language pair (``toy-mt``).
        tokenizer: its tokenizer.
        n: held-out pairs to translate (at most the held-out split's 500).
        seed: seed of the random baseline and of the bootstrap.
        batch_size: sentences generated at once; the unit of work split between processes
            under ``torchrun``/``accelerate launch`` (:mod:`probe.evaluation._distributed`),
            which gives the one-process result: the random baseline is drawn after gathering,
            in sentence order.
        quiet: no progress bar.

    Returns:
        A JSON-able dict: ``n``, ``n_exact`` (sentences translated exactly, the ones scored),
        ``exact_match``, ``heads`` (per layer and head), ``layers`` (heads fused by mean),
        ``fused``, ``saliency``, ``grad_x_input``, ``random``, ``argmax_floor`` (each ``aer``,
        ``ci_low``, ``ci_high``), ``best_head``.
    """
    import torch

    from probe.analysis._alignment import alignment, random_alignment
    from probe.attribution._alignment_grad import gradient_alignment
    from probe._text import with_article
    from probe.capture import adapter_for
    from probe.capture._generate import generate
    from probe.evaluation._distributed import gather, shard
    pairs = select_pairs(n)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ProbeError(f"batch_size must be a positive integer, got {batch_size!r}")
    family = adapter_for(model).family
    if family != "encoder-decoder":  # before the first batch and its progress bar
        raise ProbeError(
            f"the alignment eval needs a translation model (encoder-decoder), got "
            f"{with_article(family)} model: use --model toy-mt (the default)"
        )
    counts: dict[str, list[tuple[int, int]]] = {}
    exact: list[int] = []  # global indices of the sentences translated exactly
    layers: list[int] = []
    heads: list[int] = []
    # the unit of work split between processes (torchrun / accelerate launch) is a batch
    starts = shard(list(range(0, len(pairs), batch_size)))
    for start in _progress(starts, quiet):
        chunk = pairs[start : start + batch_size]
        gen = generate(model, [p.source_text for p in chunk], tokenizer=tokenizer,
                       max_new_tokens=32, do_sample=False)
        for b, pair in enumerate(chunk):
            if gen.text is None or gen.text[b].strip() != pair.target_text:
                continue
            exact.append(start + b)
            al = alignment(gen, b)
            if al.target_words != pair.target or al.source_words != pair.source:
                raise ProbeError(
                    "the tokenizer's words differ from the toy pair's words: evaluate with the "
                    "toy-mt tokenizer"
                )
            layers, heads = list(al.layer_indices), list(al.head_indices or (0,))
            gold = (pair.sure, pair.possible)
            for layer in layers:
                for head in heads:
                    key = f"L{layer}H{head}"
                    counts.setdefault(key, []).append(_counts(al.links(layer, head), *gold))
                counts.setdefault(f"L{layer}", []).append(_counts(al.links(layer), *gold))
            counts.setdefault("fused", []).append(_counts(al.links(), *gold))
            for method in ("saliency", "grad_x_input"):
                grad = gradient_alignment(model, gen, b, method=method)
                counts.setdefault(method, []).append(_counts(grad.links(), *gold))
            counts.setdefault("argmax_floor", []).append(_counts(
                frozenset((t, min(s for t2, s in pair.sure if t2 == t)) for t, _ in pair.sure),
                *gold))
    merged = gather({"counts": counts, "exact": exact, "geometry": [(layers, heads)]})
    counts, exact = merged["counts"], merged["exact"]
    layers, heads = next(((la, he) for la, he in merged["geometry"] if la), ([], []))
    # the random baseline after gathering: one generator over the exactly translated
    # sentences in order, whatever the number of processes (a random alignment depends only
    # on the sentence's word counts)
    rng = torch.Generator().manual_seed(seed)
    for index in exact:
        pair = pairs[index]
        like = _shaped_like(pair.target, pair.source)
        counts.setdefault("random", []).append(
            _counts(random_alignment(like, rng).links(), pair.sure, pair.possible)
        )
    exact_count = len(exact)
    if exact_count == 0:
        raise ProbeError(
            "the model translated none of the held-out sentences exactly: nothing to score "
            "(is this the toy-mt model?)"
        )
    scored = {k: _aer_with_interval(v, seed) for k, v in counts.items()}
    head_table = {k: v for k, v in scored.items() if k.startswith("L") and "H" in k}
    best = min(head_table, key=lambda k: head_table[k]["aer"])
    return {
        "task": "alignment",
        "model": model_name or getattr(model, "probe_name", type(model).__name__),
        "n": len(pairs),
        "n_exact": exact_count,
        "exact_match": exact_count / len(pairs),
        "rule": "argmax",
        "seed": seed,
        "bootstrap": BOOTSTRAP,
        "layers": {f"L{layer}": scored[f"L{layer}"] for layer in layers},
        "heads": head_table,
        "fused": scored["fused"],
        "saliency": scored["saliency"],
        "grad_x_input": scored["grad_x_input"],
        "random": scored["random"],
        "argmax_floor": scored["argmax_floor"],
        "best_head": {"name": best, **head_table[best]},
        "batch_size": batch_size,
        "num_layers": len(layers),
        "num_heads": len(heads),
    }


def _cell(r: dict[str, float]) -> str:
    return f"{r['aer']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def alignment_markdown(result: dict[str, Any]) -> str:
    """The result of :func:`eval_alignment` as markdown tables."""
    lines = [
        f"Alignment on the toy language pair: {result['model']}, {result['n_exact']} of "
        f"{result['n']} held-out sentences translated exactly (scored), argmax links, corpus "
        f"AER with a 95% bootstrap interval ({result['bootstrap']} resamples). Lower is better.",
        "",
        "| alignment | AER [95% CI] |",
        "|---|---|",
        f"| best head ({result['best_head']['name']}) | {_cell(result['best_head'])} |",
    ]
    for name, r in result["layers"].items():
        lines.append(f"| layer {name[1:]}, heads averaged | {_cell(r)} |")
    lines += [
        f"| all heads averaged | {_cell(result['fused'])} |",
        f"| gradient saliency | {_cell(result['saliency'])} |",
        f"| gradient x input | {_cell(result['grad_x_input'])} |",
        f"| random | {_cell(result['random'])} |",
        f"| floor of argmax links (one gold link per target word) | "
        f"{_cell(result['argmax_floor'])} |",
        "",
        "| layer | " + " | ".join(f"head {h}" for h in range(result["num_heads"])) + " |",
        "|---|" + "---|" * result["num_heads"],
    ]
    for name in result["layers"]:
        cells = [
            f"{result['heads'][f'{name}H{h}']['aer']:.3f}" for h in range(result["num_heads"])
        ]
        lines.append(f"| {name[1:]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
