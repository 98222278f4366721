"""``probe eval text``: agreement with Integrated Gradients and ERASER scores of every text
method on the shipped sentence pairs."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._report import format_value, markdown_table
from probe.evaluation.tasks._common import (
    _check_options,
    _mean_se,
    _model_name,
    _progress,
    _select_methods,
    take_first,
)

if TYPE_CHECKING:
    from torch import nn

__all__ = ["eval_text", "load_sentence_pairs", "select_sentence_pairs", "text_markdown"]


# --------------------------------------------------------------------------- text
def load_sentence_pairs(path: str | Path | None = None) -> list[dict[str, str]]:
    """The sentence pairs of ``probe/models/data/sentence_pairs.json`` (or of ``path``).

    Returns:
        A list of ``{"id", "kind", "first", "second"}`` dicts (coreference pairs also carry
        ``"pronoun"`` and ``"antecedent"``).
    """
    default = Path(__file__).resolve().parents[2] / "models" / "data" / "sentence_pairs.json"
    file = Path(path) if path is not None else default
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProbeError(f"cannot read sentence pairs from {file}: {exc}") from None
    pairs = data.get("pairs") if isinstance(data, dict) else None
    if not isinstance(pairs, list) or not all(
        isinstance(p, dict) and isinstance(p.get("first"), str) and isinstance(p.get("second"), str)
        for p in pairs
    ):
        raise ProbeError(f"{file} must hold {{'pairs': [{{'first': str, 'second': str}}, ...]}}")
    return pairs


def select_sentence_pairs(n: int | None, pairs: Sequence[dict[str, str]] | None = None,
                          ) -> list[dict[str, str]]:
    """The first ``n`` sentence pairs (all when ``None``) of ``pairs``, else of the shipped
    ones; an ``n`` beyond them is an error (:func:`~probe.evaluation.tasks._common.take_first`)."""
    return take_first(list(pairs) if pairs is not None else load_sentence_pairs(), n,
                      "sentence pairs " + ("given" if pairs is not None else "shipped"))


def eval_text(
    model: nn.Module,
    tokenizer: Any,
    *,
    n: int | None = None,
    seed: int = 0,
    methods: Sequence[str] = (),
    pairs: Sequence[dict[str, str]] | None = None,
    quiet: bool = True,
    model_name: str | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Agreement with Integrated Gradients and ERASER scores of every text method.

    For each sentence pair the first sentence is explained with the target "cosine similarity
    of its embedding to the second sentence's"
    (:func:`probe.attribution._targets.similarity_target`). Agreement is measured over the real,
    non-special tokens against ``|IG|`` (and signed IG); ERASER comprehensiveness/sufficiency
    replace removed tokens by ``[MASK]`` and come with the mean of 3 random orders per pair.

    Args:
        model: a sentence-embedding text model (e.g. ``minilm``), left unchanged.
        tokenizer: its tokenizer.
        n: use the first ``n`` pairs (default: all; more than there are is an error).
        seed: seed of the random method and the random orders.
        methods: restrict to these methods (Integrated Gradients always runs: it is the reference).
        pairs: sentence pairs (default: :func:`load_sentence_pairs`).
        quiet: no progress bar.
        model_name: name recorded in the result.
        options: method -> keyword options for :func:`probe.attribute`.

    Returns:
        A JSON-ready dict.
    """
    import torch

    from probe.evaluation._agreement import kendall, spearman, unit_mask
    from probe.attribution._registry import attribute, method_spec
    from probe.capture._capture import trace as capture
    from probe.evaluation._distributed import gather, shard
    from probe.evaluation._eraser import eraser
    from probe.attribution._targets import similarity_target

    if tokenizer is None:
        raise ProbeError("the text eval needs a text model with a tokenizer: use --model minilm")
    all_pairs = select_sentence_pairs(n, pairs)
    if not all_pairs:
        raise ProbeError("no sentence pairs to evaluate")
    names = _select_methods("text", methods)
    if "ig" not in names:
        names = (*names, "ig")
    opts = _check_options(options, names)
    others = [m for m in names if m != "ig"]
    started = time.perf_counter()
    per: dict[str, dict[str, list[float]]] = {
        m: {k: [] for k in ("spearman", "kendall", "spearman_signed", "kendall_signed",
                             "comprehensiveness", "sufficiency")}
        for m in names
    }
    kinds: dict[str, dict[str, list[float]]] = {}
    random_orders: dict[str, list[float]] = {"comprehensiveness": [], "sufficiency": []}
    ig_delta: list[float] = []
    failed: dict[str, dict[str, str]] = {}  # method -> pair id -> reason
    mine = shard(list(enumerate(all_pairs)))  # (global pair index, pair): seeds per pair
    for index, pair in _progress(mine, quiet, "text", len(mine)):
        target = similarity_target(model, tokenizer, pair["second"])
        tr = capture(model, [pair["first"]], tokenizer=tokenizer)
        valid = unit_mask(tr)
        attrs = {}
        for name in names:
            try:
                attrs[name] = attribute(
                    model, [pair["first"]], name, tokenizer=tokenizer, target=target,
                    seed=1000 * seed + index, trace=tr, **dict(opts.get(name, {})),
                )
            except ProbeError as exc:
                if name == "ig":
                    raise
                failed.setdefault(name, {})[str(pair.get("id", index))] = str(exc)
        delta = attrs["ig"].info.get("delta")
        if isinstance(delta, torch.Tensor):
            ig_delta += delta.abs().double().tolist()
        ig = attrs["ig"].scores
        for name in others:
            if name not in attrs:
                continue
            s = attrs[name].scores
            s = s.abs() if method_spec(name).signed else s
            values = {
                "spearman": float(spearman(s, ig.abs(), valid)),
                "kendall": float(kendall(s, ig.abs(), valid)),
                "spearman_signed": float(spearman(attrs[name].scores, ig, valid)),
                "kendall_signed": float(kendall(attrs[name].scores, ig, valid)),
            }
            for key, v in values.items():
                per[name][key].append(v)
            kind = f"{pair.get('kind', 'all')}/{name}"
            kinds.setdefault(kind, {"spearman": []})["spearman"].append(values["spearman"])
        table = eraser(model, [pair["first"]], attrs, target=target, tokenizer=tokenizer,
                       n_random=3, seed=1000 * seed + index)
        for name, (comp, suff) in table.per_item.items():
            per[name]["comprehensiveness"] += comp.tolist()
            per[name]["sufficiency"] += suff.tolist()
        random_orders["comprehensiveness"].append(table.random_comprehensiveness)
        random_orders["sufficiency"].append(table.random_sufficiency)
    merged = gather({"per": per, "kinds": kinds, "random_orders": random_orders,
                     "ig_delta": ig_delta, "failed": failed})
    per, kinds, random_orders = merged["per"], merged["kinds"], merged["random_orders"]
    ig_delta, failed = merged["ig_delta"], merged["failed"]

    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in names:
        if len(failed.get(name, {})) == len(all_pairs):
            skipped[name] = next(iter(failed[name].values()))
    if others and all(name in skipped for name in others):  # nothing asked for to report
        raise ProbeError(
            f"no method but the IG reference could run the text eval ({others[0]}: "
            f"{skipped[others[0]]}); fix its options or pick methods that apply (see 'probe "
            "models --methods')"
        )
    for name in names:
        if name in skipped:
            continue
        spec = method_spec(name)
        entry: dict[str, Any] = {
            "signed": spec.signed,
            "uses_gradients": spec.uses_gradients,
            "n": len(all_pairs) - len(failed.get(name, {})),
        }
        for key, values in per[name].items():
            if name == "ig" and key in ("spearman", "kendall", "spearman_signed", "kendall_signed"):
                entry[f"{key}_vs_ig"] = 1.0
                continue
            mean, se, _ = _mean_se(values)
            label = f"{key}_vs_ig" if key.startswith(("spearman", "kendall")) else key
            entry[label] = mean
            entry[f"{label}_se"] = se
        results[name] = entry
    by_kind: dict[str, dict[str, float]] = {}
    for key, values in kinds.items():
        kind, name = key.split("/", 1)
        by_kind.setdefault(kind, {})[name] = _mean_se(values["spearman"])[0]
    return {
        "task": "text",
        "model": _model_name(model, model_name),
        "n": len(all_pairs),
        "seed": seed,
        "pairs": [p.get("id", str(i)) for i, p in enumerate(all_pairs)],
        "protocol": {
            "target": "cosine similarity of the first sentence's mean-pooled, normalised "
            "embedding to the second sentence's (probe.similarity_target)",
            "agreement": "Spearman and Kendall tau-b over the real, non-special tokens between "
            "each method and Integrated Gradients (captum, 50 steps, [PAD] baseline); *_vs_ig "
            "compares with |IG| (and |scores| of signed methods), *_signed_vs_ig with signed "
            "values; mean over pairs",
            "eraser": "ERASER AOPC comprehensiveness (higher is better) and sufficiency (lower "
            "is better) over the top 1/5/10/20/50% tokens, removed tokens replaced by [MASK], "
            "score = the similarity target; random_orders = mean of 3 random orders per pair",
            "data": "probe/models/data/sentence_pairs.json",
            "method_options": opts,
        },
        "methods": results,
        "spearman_vs_ig_by_kind": by_kind,
        "random_orders": {k: _mean_se(v)[0] for k, v in random_orders.items()},
        "ig_abs_convergence_delta_mean": _mean_se(ig_delta)[0],
        "skipped": skipped,
        "failed_pairs": {m: f for m, f in failed.items() if m not in skipped},
        "run_time_s": time.perf_counter() - started,
    }


def text_markdown(result: dict[str, Any]) -> str:
    """The printed table of :func:`eval_text`."""
    rows = [
        [m, r["spearman_vs_ig"], r["kendall_vs_ig"], r["comprehensiveness"], r["sufficiency"]]
        for m, r in result["methods"].items()
    ]
    header = ["method", "Spearman vs abs(IG)", "Kendall vs abs(IG)", "comprehensiveness ↑",
              "sufficiency ↓"]
    rnd = result["random_orders"]
    lines = [
        (
            f"probe eval text: {result['model']}, {result['n']} sentence pairs, target = cosine "
            "similarity to the second sentence"
        ),
        "",
        markdown_table(header, rows),
        "",
        (
            "Random orders (3 per pair): comprehensiveness "
            f"{format_value(rnd['comprehensiveness'])}, sufficiency "
            f"{format_value(rnd['sufficiency'])}. Mean |IG convergence delta| "
            f"{float(result['ig_abs_convergence_delta_mean']):.1e}."
        ),
    ]
    for name, reason in result["skipped"].items():
        lines.append(f"Skipped {name}: {reason}")
    return "\n".join(lines)
