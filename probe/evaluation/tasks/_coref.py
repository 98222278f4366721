"""``probe eval coref``: do attention heads resolve pronouns, or only point by position?

One sentence where a head links "it" to "animal" is no evidence of a coreference head: the
head may simply attend to a word at some distance. Winograd-style minimal pairs (Levesque,
Davis and Morgenstern 2012, "The Winograd Schema Challenge") separate the two: the sentences
of a pair differ in one word, which flips the antecedent between two candidate nouns, so any
rule that reads only positions (the nearer noun, the first noun, a fixed offset) gets exactly
one sentence of each pair right: 50% accuracy and 0% pair accuracy.

For each item the pronoun's word-level attention (Clark et al. 2019 merge rule, as in
:func:`probe.word_attention`) to the correct antecedent is compared with its attention to the
distractor; the item is right when the correct one is weighted strictly higher (ties are
wrong). Scored the same way: every head, the attention rollout (Abnar & Zuidema 2020, mean
fusion, all layers) and the majority vote of all heads (right when more than half of the
heads are right), next to the "nearer candidate" positional rule.

Significance: an exact two-sided binomial test against 50% (``scipy.stats.binomtest``) over
the items. With 72 heads, the best one reaching p < 0.05 is expected by chance, so the best
head is also reported (a) with a Bonferroni-corrected p-value and (b) selected on one half of
the pairs and scored on the other half (both ways round; halves drawn with ``seed``, a pair's
two sentences always in the same half).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._report import markdown_table
from probe._text import not_utf8
from probe.evaluation.tasks._common import _model_name, _progress, take_first

if TYPE_CHECKING:
    from torch import nn

    from probe.capture._trace import Trace

__all__ = [
    "check_coref_item", "coref_markdown", "eval_coref", "load_coref_pairs", "parse_coref_lines",
    "score_trace", "select_coref_pairs",
]

_FIELDS = ("sentence", "pronoun", "correct", "distractor")
_DEFAULT_DATA = Path(__file__).resolve().parents[2] / "models" / "data" / "coref_pairs.json"
#: the largest pairs file read (the shipped one is 20 KB; a mistaken --data of gigabytes would
#: be read whole before any check)
MAX_DATA_BYTES = 64 * 2**20


# --------------------------------------------------------------------------- data
def parse_coref_lines(text: str, source: str = "<text>") -> list[dict[str, Any]]:
    """Pairs from lines ``sentence|pronoun|correct|distractor``.

    Blank lines and lines starting with ``#`` are skipped; the remaining lines pair up in
    order (lines 1-2 are the first minimal pair, 3-4 the second, ...), so an odd number of
    items is an error. Every item is checked as far as no tokenizer is needed
    (:func:`check_coref_item`).

    Returns:
        ``[{"id", "items": [{"sentence", "pronoun", "correct", "distractor"}, ...]}]``.
    """
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 4 or not all(parts):
            raise ProbeError(
                f"{source}, line {number}: expected 'sentence|pronoun|correct|distractor' "
                f"(4 non-empty fields), got {line.strip()!r}"
            )
        items.append((number, dict(zip(_FIELDS, parts))))
    if not items:
        raise ProbeError(f"{source} holds no 'sentence|pronoun|correct|distractor' lines")
    if len(items) % 2:
        raise ProbeError(
            f"{source} holds {len(items)} items, an odd number: consecutive lines form minimal "
            "pairs, so add the other sentence of the last pair"
        )
    for number, item in items:
        check_coref_item(item, f"{source}, line {number}")
    for i in range(0, len(items), 2):
        check_coref_pair([items[i][1], items[i + 1][1]],
                         f"{source}, lines {items[i][0]} and {items[i + 1][0]}")
    check_repeated_items(source, [(f"line {number}", item) for number, item in items])
    return [
        {"id": f"line-{items[i][0]}", "items": [items[i][1], items[i + 1][1]]}
        for i in range(0, len(items), 2)
    ]


def load_coref_pairs(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The minimal pairs shipped in ``probe/models/data/coref_pairs.json``, or a user file.

    Args:
        path: a ``.json`` file of the shipped form (``{"pairs": [{"id", "items": [...]}]}``)
            or a text file of ``sentence|pronoun|correct|distractor`` lines
            (:func:`parse_coref_lines`); default: the shipped pairs.

    Returns:
        ``[{"id", "items": [{"sentence", "pronoun", "correct", "distractor"}, ...]}]``.
    """
    file = Path(path) if path is not None else _DEFAULT_DATA
    try:
        with open(file, "rb") as fh:  # at most the limit: /dev/zero never ends
            data = fh.read(MAX_DATA_BYTES + 1)
        if len(data) > MAX_DATA_BYTES:
            raise ProbeError(
                f"coreference pairs file {file} holds more than {MAX_DATA_BYTES // 2**20} MiB, "
                "the limit for minimal pairs: split it or pass a smaller file"
            )
        text = data.decode("utf-8-sig")
    except OSError as exc:
        raise ProbeError(f"cannot read coreference pairs from {file} ({exc.strerror}): pass a "
                         "readable file") from None
    except UnicodeDecodeError as exc:
        raise ProbeError(f"coreference pairs file {file} {not_utf8(data, exc)}: save it as "
                         "UTF-8") from None
    if file.suffix.lower() != ".json":
        return parse_coref_lines(text, str(file))
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProbeError(f"{file} is not valid JSON ({exc})") from None
    pairs = _json_pairs(data, str(file))
    out = [{"id": str(p.get("id", i)), "items": list(p["items"])} for i, p in enumerate(pairs)]
    for pair in out:
        for k, item in enumerate(pair["items"]):
            check_coref_item(item, f"{file}, pair {pair['id']!r} item {k}")
        check_coref_pair(pair["items"], f"{file}, pair {pair['id']!r}")
    check_repeated_items(str(file), [(f"pair {pair['id']!r} item {k}", item)
                                     for pair in out for k, item in enumerate(pair["items"])])
    return out


_SHAPE = ("{'pairs': [{'id': str, 'items': [{'sentence', 'pronoun', 'correct', "
          "'distractor'}, {...}]}, ...]}")


def _json_pairs(data: Any, file: str) -> list[dict[str, Any]]:
    """The ``pairs`` list of a coref JSON document, its shape checked: the first thing out of
    place is named by its pair index, item index and field (a generic "must hold ..." left the
    user to search a file of 46 pairs).

    Raises:
        ProbeError: naming the place and what it should be.
    """
    def kind(value: Any) -> str:
        return {dict: "an object", list: "a list", str: "a string", type(None): "null",
                bool: "a boolean", int: "a number", float: "a number"}.get(type(value), "?")

    if not isinstance(data, dict) or not isinstance(data.get("pairs"), list):
        got = (f"an object without 'pairs' (keys {sorted(data)[:5]})" if isinstance(data, dict)
               and "pairs" not in data else f"'pairs' as {kind(data['pairs'])}"
               if isinstance(data, dict) else kind(data))
        raise ProbeError(f"{file} must hold {_SHAPE}, got {got}: fix the file")
    pairs = data["pairs"]
    if not pairs:
        raise ProbeError(f"{file} must hold {_SHAPE}, got an empty 'pairs': add minimal pairs")
    for i, pair in enumerate(pairs):
        items = pair.get("items") if isinstance(pair, dict) else None
        if not isinstance(items, list) or not items:
            got = kind(pair) if not isinstance(pair, dict) else (
                "no 'items'" if "items" not in pair else "'items' empty"
                if isinstance(items, list) else f"'items' as {kind(items)}")
            raise ProbeError(f"{file}, pairs[{i}]: a pair is {{'id': str, 'items': [item, "
                             f"item]}}, got {got}: fix the pair")
        for k, item in enumerate(items):
            where = f"{file}, pairs[{i}].items[{k}]"
            if not isinstance(item, dict):
                raise ProbeError(f"{where}: an item is {{'sentence', 'pronoun', 'correct', "
                                 f"'distractor'}} (strings), got {kind(item)}: fix the item")
            for field in _FIELDS:
                if field not in item:
                    raise ProbeError(f"{where} has no {field!r} (it has {sorted(item)}): "
                                     f"add it")
                if not isinstance(item[field], str) or not item[field].strip():
                    got = "blank" if isinstance(item[field], str) else kind(item[field])
                    raise ProbeError(f"{where}: {field!r} must be a non-empty string, got "
                                     f"{got}: fix the item")
    return pairs


def select_coref_pairs(n: int | None, *, data: str | Path | None = None,
                       pairs: Sequence[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The first ``n`` minimal pairs (all when ``None``) of ``pairs``, else of the file
    ``data`` (default: the shipped pairs); an ``n`` beyond them is an error
    (:func:`~probe.evaluation.tasks._common.take_first`)."""
    source = "the pairs given" if pairs is not None else (
        repr(str(data)) if data is not None else "the shipped data")
    return take_first(list(pairs) if pairs is not None else load_coref_pairs(data), n,
                      f"minimal pairs of {source}")


def check_repeated_items(source: str, items: Sequence[tuple[str, dict[str, str]]]) -> None:
    """No item is given twice (up to case, spacing and the punctuation around the words): a
    repeated pair counted its sentences twice in every accuracy and binomial p-value.

    Raises:
        ProbeError: naming both places.
    """
    seen: dict[tuple[str, ...], str] = {}
    for where, item in items:
        key = (" ".join(item["sentence"].casefold().split()),
               *(_norm(item[f]) for f in _FIELDS[1:]))
        if key in seen:
            raise ProbeError(
                f"{source}, {where} repeats {seen[key]} ({item['sentence']!r}): every item "
                "would count twice in the accuracies and p-values; drop the repeat"
            )
        seen[key] = where


def check_coref_pair(items: Sequence[dict[str, str]], where: str) -> None:
    """A minimal pair of two items swaps the antecedents: the correct antecedent of each is
    the distractor of the other, in two different sentences. Otherwise a positional rule can
    get both right and the chance line (pair accuracy 0 for any positional rule) is false: a
    line given twice made a "pair" that the nearer-noun rule scored 1.000.

    Raises:
        ProbeError: naming ``where`` and what to fix.
    """
    if len(items) != 2:  # a JSON pair of 1 or 3 items passed unchecked
        raise ProbeError(
            f"{where}: a minimal pair is two sentences, got {len(items)} item(s): give each "
            "pair the two sentences whose antecedents swap"
        )
    first, second = items
    if first["sentence"].strip() == second["sentence"].strip():
        raise ProbeError(f"{where}: the two sentences of the minimal pair are the same "
                         f"({first['sentence']!r}): a pair's sentences differ in the word that "
                         "flips the antecedent")
    swapped = (_norm(first["correct"]) == _norm(second["distractor"])
               and _norm(second["correct"]) == _norm(first["distractor"]))
    if not swapped:
        raise ProbeError(
            f"{where}: a minimal pair swaps the antecedents (the correct one of each sentence is "
            f"the distractor of the other), got correct {first['correct']!r} / "
            f"{second['correct']!r} and distractor {first['distractor']!r} / "
            f"{second['distractor']!r}: fix the pair"
        )


def check_coref_item(item: dict[str, str], where: str) -> None:
    """What can be checked of one item before a model (and its tokenizer) loads: the
    pronoun, the correct antecedent and the distractor each have a letter or digit, occur in
    the sentence (case-insensitively, not inside a longer run of letters: "it" is not a word
    of "fit" for any tokenizer, while a Chinese character inside a run is one for BERT's), and
    are three different words. :func:`score_trace` checks them again as the tokenizer splits
    the sentence.

    Raises:
        ProbeError: naming ``where`` (the file and line or pair) and the field.
    """
    sentence = item["sentence"]
    roles = (("pronoun", "pronoun"), ("correct", "correct antecedent"),
             ("distractor", "distractor"))
    keys = {}
    for field, role in roles:
        key = _norm(item[field])
        if not key:
            raise ProbeError(f"{where}: the {role} {item[field]!r} has no letter or digit: "
                             "fix the item")
        if not _occurs(key, sentence):
            raise ProbeError(f"{where}: the {role} {item[field]!r} is not a word of "
                             f"{sentence!r}: fix the item")
        keys[field] = key
    for a, b in (("pronoun", "correct"), ("pronoun", "distractor"), ("correct", "distractor")):
        if keys[a] == keys[b]:
            raise ProbeError(f"{where}: the {dict(roles)[a]} and the {dict(roles)[b]} are the "
                             f"same word ({item[a]!r}): the three must differ")


def _occurs(key: str, sentence: str) -> bool:
    """``key`` occurs in ``sentence`` (casefolded) where some tokenizer could make it a word:
    not joined to a letter before or after it (:func:`_joined`)."""
    key, text = key.casefold(), sentence.casefold()
    start = text.find(key)
    while start >= 0:
        end = start + len(key)
        if not (start and _joined(text[start - 1], key[0])) and not (
                end < len(text) and _joined(key[-1], text[end])):
            return True
        start = text.find(key, start + 1)
    return False


def _joined(a: str, b: str) -> bool:
    """Adjacent characters that every tokenizer keeps in one word: letters of a script
    written with spaces (not wide CJK characters, which BERT splits one by one), or a letter
    and the combining mark after it."""
    import unicodedata

    def wide(c: str) -> bool:
        return unicodedata.east_asian_width(c) in ("W", "F")

    if a.isalpha() and unicodedata.category(b).startswith("M"):
        return True
    return a.isalpha() and b.isalpha() and not wide(a) and not wide(b)


def _norm(word: str) -> str:
    """Lower case without leading/trailing punctuation ("box." and "Box" are "box")."""
    start, end = 0, len(word)
    while start < end and not word[start].isalnum():
        start += 1
    while end > start and not word[end - 1].isalnum():
        end -= 1
    return word[start:end].lower()


def _positions(words: Sequence[str], word: str, sentence: str, role: str) -> list[int]:
    key = _norm(word)
    hits = [i for i, w in enumerate(words) if _norm(w) == key and key]
    if not hits:
        raise ProbeError(
            f"the {role} {word!r} is not a word of {sentence!r} as the tokenizer splits it "
            f"({list(words)}): fix the item"
        )
    return hits


# --------------------------------------------------------------------------- scoring
def _score_item(model: nn.Module, tokenizer: Any, item: dict[str, str]) -> dict[str, Any]:
    from probe.capture._capture import trace as capture

    return score_trace(capture(model, item["sentence"], tokenizer=tokenizer), item)


def score_trace(tr: Trace, item: dict[str, str]) -> dict[str, Any]:
    """One item scored on its trace: is the correct antecedent weighted above the distractor?

    Args:
        tr: the trace of ``item["sentence"]`` (batch item 0 is read).
        item: ``{"sentence", "pronoun", "correct", "distractor"}``; words are matched
            case-insensitively without surrounding punctuation, the pronoun at its first
            occurrence, a candidate at every occurrence (its largest weight counts).

    Returns:
        ``{"heads": [bool] and "margin": [float]`` (correct minus distractor weight) in
        (layer, head) order, ``"rollout"``, ``"nearest"`` (bool each), ``"layers"``,
        ``"head_indices"}``.
    """
    from probe.analysis._coref import merge_to_words, word_attention, word_membership
    from probe.analysis._rollout import rollout

    sentence = item["sentence"]
    if tr.words is None:
        raise ProbeError("the coref eval needs word boundaries: use a model with a fast tokenizer")
    words = list(tr.words[0])
    member = word_membership(tr, 0)
    pronoun = _positions(words, item["pronoun"], sentence, "pronoun")[0]
    correct = _positions(words, item["correct"], sentence, "correct antecedent")
    distractor = _positions(words, item["distractor"], sentence, "distractor")
    if set(correct) & set(distractor) or pronoun in correct + distractor:
        raise ProbeError(
            f"{sentence!r}: the pronoun, correct antecedent and distractor must differ")
    weights = word_attention(tr, pronoun)  # [layer, head, word]
    c, d = weights[..., correct].amax(-1), weights[..., distractor].amax(-1)
    roll = merge_to_words(rollout(tr)[0], member)[pronoun]  # [word]
    nearest_c = min(abs(pronoun - i) for i in correct)
    nearest_d = min(abs(pronoun - i) for i in distractor)
    return {
        "heads": (c > d).flatten().tolist(),  # (layer, head) order
        "margin": (c - d).flatten().tolist(),
        "rollout": bool(roll[correct].max() > roll[distractor].max()),
        "nearest": nearest_c < nearest_d,
        "layers": list(tr.layer_indices),
        "head_indices": list(tr.head_indices) if tr.head_indices is not None else [-1],
    }


def _binom(k: int, n: int) -> float:
    from scipy.stats import binomtest

    return float(binomtest(k, n, 0.5, alternative="two-sided").pvalue) if n else float("nan")


def _chance_below_0_05(n: int) -> float:
    """P(p < 0.05) of :func:`_binom` when every item is a fair coin: the binomial test is
    discrete, so this is below 0.05 (0.047 at n = 92, 0 at n = 2, where no outcome reaches it).
    """
    from scipy.stats import binom

    return float(sum(binom.pmf(k, n, 0.5) for k in range(n + 1) if _binom(k, n) < 0.05))


def _summary(right: Sequence[Sequence[bool]]) -> dict[str, Any]:
    """``right[pair][item]`` -> accuracy, pair accuracy, k, n and the binomial p-value."""
    flat = [r for pair in right for r in pair]
    k, n = sum(flat), len(flat)
    both = sum(all(pair) for pair in right)
    return {
        "accuracy": k / n if n else float("nan"),
        "correct": k,
        "n": n,
        "pair_accuracy": both / len(right) if right else float("nan"),
        "pairs_both_right": both,
        "n_pairs": len(right),
        "p_value": _binom(k, n),
    }


def _held_out(
    per_head: list[list[list[bool]]], labels: list[tuple[int, int]], seed: int
) -> list[dict[str, Any]]:
    """Select the best head on one half of the pairs, score it on the other (both ways)."""
    import random

    n_pairs = len(per_head[0])
    order = list(range(n_pairs))
    random.Random(seed).shuffle(order)
    halves = [sorted(order[: n_pairs // 2]), sorted(order[n_pairs // 2:])]
    folds = []
    for select, test in (halves, halves[::-1]):
        if not select or not test:
            continue
        scores = [_summary([per_head[h][p] for p in select]) for h in range(len(labels))]
        best = max(range(len(labels)), key=lambda h: (
            scores[h]["accuracy"], scores[h]["pair_accuracy"], -h))
        held = _summary([per_head[best][p] for p in test])
        folds.append({
            "layer": labels[best][0], "head": labels[best][1],
            "selection_pairs": len(select), "selection_accuracy": scores[best]["accuracy"],
            "test": held,
        })
    return folds


def eval_coref(
    model: nn.Module,
    tokenizer: Any,
    *,
    n: int | None = None,
    seed: int = 0,
    pairs: Sequence[dict[str, Any]] | None = None,
    data: str | Path | None = None,
    quiet: bool = True,
    model_name: str | None = None,
) -> dict[str, Any]:
    """Score every head, the rollout and the majority of heads on coreference minimal pairs.

    Args:
        model: a text model (e.g. ``minilm``), left unchanged.
        tokenizer: its (fast) tokenizer.
        n: use the first ``n`` pairs (default: all; more than there are is an error).
        seed: seed of the held-out split of the pairs.
        pairs: the pairs (default: :func:`load_coref_pairs` of ``data``).
        data: a pairs file (``.json`` or ``sentence|pronoun|correct|distractor`` lines);
            default: the shipped pairs.
        quiet: no progress bar.
        model_name: name recorded in the result.

    Under ``torchrun``/``accelerate launch`` (:mod:`probe.evaluation._distributed`) each
    process scores a contiguous block of the sentences and every process gets the whole
    result back, equal to the one-process result.

    Returns:
        A JSON-ready dict: ``heads`` (one summary per head: accuracy, pair accuracy, binomial
        p-value), ``rollout``, ``majority``, ``nearest`` (the positional rule), ``best_head``
        (in-sample, with its Bonferroni p-value) and ``held_out`` (two folds).
    """
    from probe.evaluation._distributed import gather, shard

    if tokenizer is None:
        raise ProbeError("the coref eval needs a text model with a tokenizer: use --model minilm")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ProbeError(f"--seed must be a non-negative integer, got {seed!r}")
    all_pairs = select_coref_pairs(n, data=data, pairs=pairs)
    if not all_pairs:
        raise ProbeError("no coreference pairs to evaluate")
    started = time.perf_counter()
    items = [(p, item) for p in range(len(all_pairs)) for item in all_pairs[p]["items"]]
    # under several processes each scores a contiguous block of the sentences (deterministic:
    # no seeds involved); the blocks come back in sentence order
    mine = shard(items)
    mine_scored = [
        (p, _score_item(model, tokenizer, item))
        for p, item in _progress(mine, quiet, "coref", len(mine))
    ]
    scored: list[list[dict[str, Any]]] = [[] for _ in all_pairs]
    for p, score in gather(mine_scored):
        scored[p].append(score)
    first = scored[0][0]
    labels = [(layer, head) for layer in first["layers"] for head in first["head_indices"]]
    per_head = [[[s["heads"][h] for s in pair] for pair in scored] for h in range(len(labels))]
    heads = []
    for h, (layer, head) in enumerate(labels):
        margins = [s["margin"][h] for pair in scored for s in pair]
        heads.append({"layer": layer, "head": head, **_summary(per_head[h]),
                      "mean_margin": sum(margins) / len(margins)})
    majority = [[sum(s["heads"]) * 2 > len(labels) for s in pair] for pair in scored]
    best = max(heads, key=lambda r: (r["accuracy"], r["pair_accuracy"], -r["layer"], -r["head"]))
    significant = sum(r["p_value"] < 0.05 for r in heads)
    return {
        "task": "coref",
        "model": _model_name(model, model_name),
        "n": len(items),
        "n_pairs": len(all_pairs),
        "seed": seed,
        "data": str(data) if data is not None else "probe/models/data/coref_pairs.json",
        "pairs": [p["id"] for p in all_pairs],
        "protocol": {
            "item": "right when the pronoun's word-level attention (mean over its sub-tokens of "
            "the sum over the candidate's sub-tokens; the largest over a candidate's "
            "occurrences) to the correct antecedent is strictly above its attention to the "
            "distractor; ties are wrong",
            "pair_accuracy": "fraction of pairs with every sentence right (a coin: 25%; any "
            "positional rule: 0%)",
            "p_value": "exact two-sided binomial test of the item accuracy against 50% "
            "(scipy.stats.binomtest); the two sentences of a pair are treated as independent",
            "rollout": "attention rollout (mean head fusion, all layers), same comparison",
            "majority": "right when more than half of all heads are right",
            "nearest": "positional rule: the candidate nearer to the pronoun",
            "multiple_comparisons": "best head with a Bonferroni-corrected p-value (p x number "
            "of heads), and held out: best head chosen on one half of the pairs (seeded split), "
            "scored on the other half, both ways round",
        },
        "heads": heads,
        "rollout": _summary([[s["rollout"] for s in pair] for pair in scored]),
        "majority": _summary(majority),
        "nearest": _summary([[s["nearest"] for s in pair] for pair in scored]),
        "best_head": {**best, "bonferroni_p": min(1.0, best["p_value"] * len(heads))},
        "heads_p_below_0_05": significant,
        "heads_expected_p_below_0_05_by_chance": _chance_below_0_05(heads[0]["n"]) * len(heads),
        "held_out": _held_out(per_head, labels, seed),
        "run_time_s": time.perf_counter() - started,
    }


# --------------------------------------------------------------------------- printing
def _row(name: str, r: dict[str, Any]) -> list[Any]:
    return [name, f"{r['accuracy']:.3f} ({r['correct']}/{r['n']})",
            f"{r['pair_accuracy']:.3f} ({r['pairs_both_right']}/{r['n_pairs']})",
            f"{r['p_value']:.3g}"]


def _pairs(n: int) -> str:
    return f"{n} pair" if n == 1 else f"{n} pairs"


def coref_markdown(result: dict[str, Any], top: int = 5) -> str:
    """The printed report of :func:`eval_coref`: the top heads, rollout, majority, the
    positional rule, and the multiple-comparisons-aware statements."""
    heads = sorted(result["heads"], key=lambda r: (-r["accuracy"], -r["pair_accuracy"],
                                                   r["layer"], r["head"]))
    rows = [_row(f"head L{r['layer']} H{r['head']}", r) for r in heads[:top]]
    rows += [_row("rollout", result["rollout"]), _row("majority of heads", result["majority"]),
             _row("nearer candidate (position)", result["nearest"])]
    header = ["scorer", "accuracy", "pair accuracy", "p (binomial vs 50%)"]
    best = result["best_head"]
    lines = [
        f"probe eval coref: {result['model']}, {result['n_pairs']} minimal pairs "
        f"({result['n']} sentences); chance: accuracy 0.5, pair accuracy 0.25 (coin) or 0 "
        "(any positional rule)",
        "",
        markdown_table(header, rows),
        "",
        f"Top {min(top, len(heads))} of {len(heads)} heads shown (all in the JSON). "
        f"{result['heads_p_below_0_05']} heads reach p < 0.05; "
        f"{result['heads_expected_p_below_0_05_by_chance']:.1f} would by chance. Best head "
        f"L{best['layer']} H{best['head']}: p = {best['p_value']:.3g}, Bonferroni over "
        f"{len(heads)} heads p = {best['bonferroni_p']:.3g}.",
    ]
    folds = result["held_out"]
    if folds:  # one line: the two folds read alike ("Held out: ..." twice was one line twice)
        halves = ("half A", "half B")
        parts = []
        for k, fold in enumerate(folds):
            t = fold["test"]
            chosen, scored = (halves[k], halves[1 - k]) if len(folds) == 2 else ("one half",
                                                                                 "the other")
            parts.append(
                f"L{fold['layer']} H{fold['head']} chosen on {chosen} "
                f"({_pairs(fold['selection_pairs'])}, accuracy "
                f"{fold['selection_accuracy']:.3f}) scores {t['accuracy']:.3f} "
                f"({t['correct']}/{t['n']}, pair accuracy {t['pair_accuracy']:.3f}, "
                f"p = {t['p_value']:.3g}) on {scored} ({_pairs(t['n_pairs'])})"
            )
        lines.append("Held out: " + "; ".join(parts) + ".")
    return "\n".join(lines)
