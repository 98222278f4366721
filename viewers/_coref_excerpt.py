"""Which words the coreference view draws of a long text (:func:`excerpt`).

Only the words before the chosen word can be its antecedents (unless candidates are given),
and only the ranked ones are marked, so a long paragraph is drawn as an excerpt: the sentence
holding the chosen word, from the earliest ranked antecedent on, with a ``…`` mark wherever
text is left out. What is drawn changes, never the weights, the colour scale or the ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Optional

from probe._errors import ProbeError

__all__ = ["excerpt", "Context", "CONTEXTS", "EXCERPT_WORDS"]

Context = Literal["excerpt", "all"]
CONTEXTS = ("excerpt", "all")
#: a text of at most this many words is drawn whole; an excerpt of one stretch is at most this
EXCERPT_WORDS = 40
_BEFORE, _AFTER = 25, 12  # words kept of the chosen word's sentence before / after it
_AROUND = 4  # words kept of an antecedent's sentence on each side, when it stands apart
_BRIDGE = 3  # two kept stretches at most this many words apart are joined

_ENDS = set(".!?\u3002\uff01\uff1f\u2026\u061f\u0964\u0965")
_CLOSERS = set("\"')]}\u201d\u2019\u300d\u300f\uff09")


def check_context(context: object) -> Context:
    """``context`` if it is ``"excerpt"`` or ``"all"``, else a one-line error."""
    if context not in CONTEXTS:
        raise ProbeError(f"context must be 'excerpt' (a readable excerpt of a long text, the "
                         f"default) or 'all' (the whole text), got {context!r}")
    return context  # type: ignore[return-value]


def sentences(words: Sequence[str]) -> list[tuple[int, int]]:
    """``(first, last)`` word index of each sentence: a sentence ends at a word made of
    sentence-final punctuation (``.``, ``?``, ``。``, ...) and the closing quotes after it."""
    out, start, i = [], 0, 0
    while i < len(words):
        word = str(words[i])
        if word and all(c in _ENDS for c in word):
            while i + 1 < len(words) and str(words[i + 1]) and all(
                c in _CLOSERS for c in str(words[i + 1])
            ):
                i += 1
            out.append((start, i))
            start = i + 1
        i += 1
    if start < len(words):
        out.append((start, len(words) - 1))
    return out


def excerpt(words: Sequence[str], word: int, shown: Sequence[int],
            context: Context = "excerpt") -> list[Optional[int]]:
    """The word indices to draw, in order, with ``None`` where text is cut (an ellipsis).

    ``context="all"`` and texts of at most :data:`EXCERPT_WORDS` words: every word. Else the
    span from the earliest ``shown`` word (the ranked antecedents) to the end of the sentence
    holding ``word``, widened to the start of that first sentence while it stays within
    :data:`EXCERPT_WORDS`; when the span is longer, the chosen word's sentence (at most
    25 words before it and 12 after) and a few words around each shown word, joined where
    they are close.
    """
    n = len(words)
    if check_context(context) == "all" or n <= EXCERPT_WORDS:
        return list(range(n))
    spans = sentences(words)
    of = {i: s for s in spans for i in range(s[0], s[1] + 1)}
    first, last = of[word]
    first, last = max(first, word - _BEFORE), min(last, word + _AFTER)
    low, high = min([first, *shown]), max([last, *shown])
    if high - low + 1 <= EXCERPT_WORDS:
        start = of[low][0]
        kept = [(start if high - start + 1 <= EXCERPT_WORDS else low, high)]
    else:
        pieces = [(first, last)] + [(max(of[i][0], i - _AROUND), min(of[i][1], i + _AROUND))
                                    for i in shown]
        kept = []
        for a, b in sorted(pieces):
            if kept and a <= kept[-1][1] + _BRIDGE + 1:
                kept[-1] = (kept[-1][0], max(kept[-1][1], b))
            else:
                kept.append((a, b))
    out: list[Optional[int]] = []
    for a, b in kept:
        if a > (out[-1] + 1 if out and out[-1] is not None else 0):
            out.append(None)
        out.extend(range(a, b + 1))
    if out[-1] is not None and out[-1] < n - 1:
        out.append(None)
    return out
