"""A toy language pair whose word alignment is known by construction (for ``toy-mt``).

Source ("English-like", subject-verb-object, adjectives before nouns)::

    the big dog sees a red ice cream today

Target (verb-final, adjectives after nouns, adverbs before the verb)::

    la kane grana un glaso roza hodie vidas

What makes the alignment non-trivial:

* **reordering**: adjective-noun swap inside each noun phrase; the verb moves to the end
  and the adverb before it (object and adverb cross the verb);
* **many-to-one**: compound nouns are two source words and one target word
  (``ice cream`` -> ``glaso``);
* **one-to-many**: some verbs and adjectives are one source word and two target words
  (``visits`` -> ``ka vizita``, ``tiny`` -> ``tre mala``);
* **repeated words**: determiners recur (``the ... the`` -> ``la ... la``), so only the
  position, not the word, tells which one a target word translates.

Every link of the gold alignment is *sure* (the dictionary decides it); the possible links
are the sure links (Och & Ney 2003 allow ``S ⊆ P``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from probe._errors import ProbeError
from probe._index import is_int

__all__ = [
    "Pair",
    "SPECIAL_TOKENS",
    "make_pairs",
    "make_translation_pairs",
    "split_pairs",
    "toy_split",
    "toy_vocabulary",
]

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "</s>", "<unk>")
"""Pad (also the decoder start), end of sentence and unknown: ids 0, 1, 2."""

DETERMINERS = {"the": ("la",), "a": ("un",)}
ADJECTIVES = {
    "big": ("grana",), "small": ("mala",), "red": ("roza",), "old": ("vecha",),
    "young": ("juna",), "happy": ("gaja",), "blue": ("blua",), "quiet": ("kvieta",),
    "tiny": ("tre", "mala"), "huge": ("tre", "grana"),
}
NOUNS = {
    ("dog",): "kane", ("cat",): "gato", ("bird",): "ucelo", ("child",): "info",
    ("teacher",): "docisto", ("farmer",): "kampisto", ("apple",): "pomo", ("book",): "libro",
    ("house",): "domo", ("tree",): "arbo", ("river",): "rivo", ("letter",): "letro",
    ("ice", "cream"): "glaso", ("fire", "truck"): "pompo", ("tea", "pot"): "teko",
    ("train", "station"): "staciono",
}
VERBS = {
    "sees": ("vidas",), "likes": ("amas",), "finds": ("trovas",), "takes": ("prenas",),
    "wants": ("volas",), "hears": ("audas",), "follows": ("sekvas",),
    "visits": ("ka", "vizitas"), "paints": ("ka", "pentras"), "greets": ("ho", "salutas"),
}
ADVERBS = {"today": ("hodie",), "again": ("denove",), "quickly": ("rapide",), "often": ("ofte",)}


@dataclass(frozen=True)
class Pair:
    """One sentence pair and its gold word alignment.

    Attributes:
        source: source words.
        target: target words.
        sure: gold links ``(target_word, source_word)`` (0-based word indices).
        possible: links allowed but not required; here equal to ``sure``.
    """

    source: tuple[str, ...]
    target: tuple[str, ...]
    sure: frozenset[tuple[int, int]]
    possible: frozenset[tuple[int, int]]

    @property
    def source_text(self) -> str:
        return " ".join(self.source)

    @property
    def target_text(self) -> str:
        return " ".join(self.target)


class _Builder:
    """Appends source and target words and records which target words translate which."""

    def __init__(self) -> None:
        self.src: list[str] = []
        self.units: list[tuple[tuple[str, ...], list[int]]] = []  # target words, source indices

    def source(self, words: tuple[str, ...]) -> list[int]:
        start = len(self.src)
        self.src.extend(words)
        return list(range(start, start + len(words)))


def _noun_phrase(rng: random.Random, b: _Builder) -> list[tuple[tuple[str, ...], list[int]]]:
    """Source ``DET (ADJ) NOUN`` -> target units ``DET NOUN (ADJ)``."""
    det = rng.choice(sorted(DETERMINERS))
    units = [(DETERMINERS[det], b.source((det,)))]
    adj = rng.choice(sorted(ADJECTIVES)) if rng.random() < 0.6 else None
    adj_unit = (ADJECTIVES[adj], b.source((adj,))) if adj else None
    noun = rng.choice(sorted(NOUNS))
    units.append(((NOUNS[noun],), b.source(noun)))
    if adj_unit:
        units.append(adj_unit)
    return units


def _pair(rng: random.Random) -> Pair:
    b = _Builder()
    subject = _noun_phrase(rng, b)
    verb = rng.choice(sorted(VERBS))
    verb_unit = (VERBS[verb], b.source((verb,)))
    obj = _noun_phrase(rng, b)
    adverb_unit = None
    if rng.random() < 0.4:
        adv = rng.choice(sorted(ADVERBS))
        adverb_unit = (ADVERBS[adv], b.source((adv,)))
    units = subject + obj + ([adverb_unit] if adverb_unit else []) + [verb_unit]
    target: list[str] = []
    links: set[tuple[int, int]] = set()
    for words, sources in units:
        for w in words:
            links.update((len(target), s) for s in sources)
            target.append(w)
    sure = frozenset(links)
    return Pair(tuple(b.src), tuple(target), sure, sure)


def make_pairs(n: int, seed: int = 0) -> list[Pair]:
    """``n`` random sentence pairs (deterministic for a seed)."""
    if not is_int(n) or n < 0:  # -1 was [] and 2.5 a TypeError from range
        raise ProbeError(f"n must be a number of pairs (an integer >= 0), got {n!r}")
    if not is_int(seed):  # random.Random takes 1.5 or 'a' as a seed of another sequence
        raise ProbeError(f"seed must be an integer, got {seed!r}")
    rng = random.Random(int(seed))
    n = int(n)
    return [_pair(rng) for _ in range(n)]


make_translation_pairs = make_pairs
"""Public name of :func:`make_pairs` (``probe.make_translation_pairs``)."""


def split_pairs(n_train: int, n_test: int, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """Training pairs and held-out pairs whose source sentence never occurs in training."""
    train = make_pairs(n_train, seed)
    seen = {p.source for p in train}
    test: list[Pair] = []
    rng_seed = seed + 1_000_003
    while len(test) < n_test:
        for p in make_pairs(4 * n_test, rng_seed):
            if p.source not in seen and len(test) < n_test:
                seen.add(p.source)
                test.append(p)
        rng_seed += 1
    return train, test


TRAIN_PAIRS = 20_000
"""Training pairs of ``toy-mt`` (seed 0)."""

HELDOUT_PAIRS = 500
"""Held-out pairs of ``toy-mt`` (never a training source sentence)."""


def toy_split() -> tuple[list[Pair], list[Pair]]:
    """The training and held-out pairs ``toy-mt`` was trained and is evaluated on."""
    return split_pairs(TRAIN_PAIRS, HELDOUT_PAIRS, seed=0)


def toy_vocabulary() -> list[str]:
    """Every word of both languages after the special tokens, in a fixed order."""
    words: list[str] = list(SPECIAL_TOKENS)
    source = [*DETERMINERS, *ADJECTIVES, *(w for k in NOUNS for w in k), *VERBS, *ADVERBS]
    target = [w for table in (DETERMINERS, ADJECTIVES, VERBS, ADVERBS) for v in table.values()
              for w in v] + list(NOUNS.values())
    for w in source + target:
        if w not in words:
            words.append(w)
    return words
