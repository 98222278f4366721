"""Where a batch item's words may be cut and joined: the geometry behind ``probe.group_words``.

An item's words are laid end to end in one string (``"".join(words)``). A grouped word is a
stretch of that string that starts and ends at a **cut**: the start or end of a word, or the
start of a token inside a word that no other token of the word straddles (a byte-level
token split out of a character, or a ``[UNK]`` covering a run, leaves no cut inside it).
Characters no token covers (an accent BERT's uncased normaliser dropped) belong to the token
before them. Without the tokens' character spans (``trace.token_spans is None``) the only
cuts are the word boundaries, so words can be joined but not split.

Spellings are compared as :func:`key` gives them (case, NFKC and whitespace do not count).
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Item", "Piece", "key"]

Span = tuple[int, int]
# a new word: the (word, start, stop) stretches of the item's words it is made of, and glue
Piece = tuple[tuple[tuple[int, int, int], ...], str]


def key(text: str) -> str:
    """What two spellings share: case, Unicode compatibility forms (NFKC: full-width "ＡＢＣ"
    is "ABC") and whitespace do not count."""
    return "".join(unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
                   .split())


def loose(text: str) -> str:
    """:func:`key` decomposed (NFKD): a stretch's form grows only by appending as the stretch
    grows (NFKC composes "ｶ" + "ﾞ" into "ガ", so "ｶ"'s key is no prefix of "ｶﾞ"'s; Korean
    typed as jamo likewise), so it prunes searches that :func:`key` then decides."""
    return "".join(unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
                   .split())


@dataclass
class Item:
    """One batch item's words, their tokens and where they may be cut.

    Attributes:
        words: the item's words; ``text`` is them joined, ``base[w]`` where word ``w`` starts.
        word_ids: per token its word (``None``: special or padding).
        spans: per token its ``(start, end)`` in its word, or ``None`` (no offsets known).
        labels: per token its display label (for messages).
        breaks: positions of ``text`` no word may run across (a special token between words).
    """

    words: Sequence[str]
    word_ids: Sequence[int | None]
    spans: Sequence[Span | None] | None
    labels: Sequence[str]
    breaks: frozenset[int]

    def __post_init__(self) -> None:
        self.text = "".join(self.words)
        self._tokens: dict[int, list[int]] = {}
        for t, w in enumerate(self.word_ids):
            if w is not None:
                self._tokens.setdefault(w, []).append(t)
        self.base = [0]
        for w in self.words:
            self.base.append(self.base[-1] + len(w))
        cuts = set(self.base)
        if self.spans is not None:
            for w, word in enumerate(self.words):
                # a token start s is a cut when no token of the word straddles it (a < s < b):
                # sweep the starts in order with the furthest end of the tokens started before
                reach, prev = 0, None
                for s, e in sorted(self._span(t) for t in self.tokens_of(w)):
                    if s != prev and 0 < s < len(word) and reach <= s:
                        cuts.add(self.base[w] + s)
                    if s != prev:
                        prev = s
                    reach = max(reach, e)
        self.cuts = sorted(cuts)
        self._cut_set = cuts

    def tokens_of(self, w: int) -> list[int]:
        return self._tokens.get(w, [])

    def _span(self, t: int) -> Span:
        span = None if self.spans is None else self.spans[t]
        return (0, 0) if span is None else (int(span[0]), int(span[1]))

    def anchor(self, t: int) -> int:
        """Where token ``t`` sits in its word: its first character (the word's last for a
        token of no characters at the end)."""
        n = len(self.words[self.word_ids[t]])  # type: ignore[index]
        return min(self._span(t)[0], max(n - 1, 0))

    def is_cut(self, position: int) -> bool:
        return position in self._cut_set

    def crosses_break(self, p: int, q: int) -> bool:
        return any(p < b < q for b in self.breaks)

    # ------------------------------------------------------------------ matching
    def matches(self, targets: set[str], whole: frozenset[str] = frozenset()) -> list[Span]:
        """Stretches ``[p, q)`` between cuts spelling one of ``targets``: left to right, at
        each cut the longest that matches (a segmenter's output is reproduced); a target in
        ``whole`` only from a word's start to a word's end."""
        prefixes = {t[:i] for t in map(loose, targets) for i in range(len(t) + 1)}
        bases = set(self.base)
        out: list[Span] = []
        i = 0
        while i < len(self.cuts) - 1:
            p, best = self.cuts[i], None
            for j in range(i + 1, len(self.cuts)):
                q = self.cuts[j]
                if self.crosses_break(p, q):
                    break
                if loose(self.text[p:q]) not in prefixes:
                    break
                k = key(self.text[p:q])
                if k in targets and (k not in whole or (p in bases and q in bases)):
                    best = j
            if best is None:
                i += 1
            else:
                out.append((p, self.cuts[best]))
                i = best
        return out

    def occurrence(self, target: str, across: bool = False) -> Span | None:
        """The first stretch ``[p, q)`` spelling ``target`` wherever its edges fall (inside a
        token too), not running across a break (unless ``across``); ``None`` if the text has
        none."""
        wide = loose(target)
        for p in range(len(self.text)):
            if self.text[p].isspace():
                continue
            for q in range(p + 1, len(self.text) + 1):
                if not across and self.crosses_break(p, q):
                    break
                if key(self.text[p:q]) == target:
                    return p, q
                if not wide.startswith(loose(self.text[p:q])):
                    break
        return None

    def segmentation(self, wanted: Sequence[str]) -> list[Span] | None:
        """``wanted`` read as a segmentation of the whole item (its words, joined, spell the
        item's text): the stretches between its word boundaries, a boundary that is no cut
        (inside a token) left out; ``None`` when ``wanted`` does not spell the whole item."""
        if "".join(loose(w) for w in wanted) != loose(self.text):
            return None
        bounds, p = [0], 0
        for w in wanted:
            k, wide = key(w), loose(w)
            while p < len(self.text) and self.text[p].isspace():
                p += 1
            q = p
            while key(self.text[p:q]) != k:
                q += 1
                if q > len(self.text) or not wide.startswith(loose(self.text[p:q])):
                    return None
            bounds.append(q)
            p = q
        kept = sorted({c for c in map(self._cut_near, bounds) if c is not None}
                      | set(self.breaks) | {0, len(self.text)})
        return [(a, b) for a, b in zip(kept, kept[1:]) if a < b]

    def _cut_near(self, b: int) -> int | None:
        """The cut at ``b``, else after the spaces following ``b`` (the boundary of "New" in a
        word "New York" is where the token "York" starts), else ``None`` (inside a token)."""
        if self.is_cut(b):
            return b
        while b < len(self.text) and self.text[b].isspace():
            b += 1
            if self.is_cut(b):
                return b
        return None

    # ------------------------------------------------------------------ the new words
    def pieces(self, stretches: Sequence[Span], glue_of: dict[Span, str]) -> list[Piece]:
        """The item's new words: each stretch, and what is left of each word between them."""
        out: list[tuple[int, int, Piece]] = []
        covered: dict[int, list[Span]] = {}
        for p, q in stretches:
            parts = []
            first = max(bisect_right(self.base, p) - 1, 0)
            for w in range(first, min(bisect_left(self.base, q), len(self.words))):
                word = self.words[w]
                a, b = max(p - self.base[w], 0), min(q - self.base[w], len(word))
                if a < b:
                    parts.append((w, a, b))
                    covered.setdefault(w, []).append((a, b))
            if parts:
                out.append((p, parts[0][0], (tuple(parts), glue_of.get((p, q), ""))))
        for w, word in enumerate(self.words):
            start = 0
            for a, b in sorted(covered.get(w, [])) + [(len(word), len(word))]:
                if start < a or (not word and not covered.get(w)):
                    out.append((self.base[w] + start, w, (((w, start, a),), "")))
                start = max(start, b)
        out.sort(key=lambda x: (x[0], x[1]))
        return [piece for _, _, piece in out]

    def regroup(
        self, pieces: Sequence[Piece]
    ) -> tuple[tuple[str, ...], tuple[int | None, ...], tuple[Span | None, ...] | None]:
        """Words, per-token word ids and per-token spans of ``pieces``."""
        texts: list[str] = []
        where: dict[int, list[tuple[int, int, int, int, int]]] = {}  # word -> stretches
        for n, (parts, glue) in enumerate(pieces):
            text = ""
            for w, a, b in parts:
                raw = self.words[w][a:b]
                lead = len(raw) - len(raw.lstrip())
                part = raw.strip()
                if not part:
                    where.setdefault(w, []).append((a, b, n, len(text) - a, 0))
                    continue
                if text:
                    text += glue
                where.setdefault(w, []).append((a, b, n, len(text) - a - lead, len(part)))
                text += part
            texts.append(text)
        ids: list[int | None] = []
        spans: list[Span | None] = []
        for t, w in enumerate(self.word_ids):
            if w is None:
                ids.append(None)
                spans.append(None)
                continue
            stretches = where.get(w, [])
            anchor = self.anchor(t)
            found = [x for x in stretches if x[0] <= anchor < x[1]] or stretches[-1:]
            if not found:  # a word made of nothing: kept as it was
                ids.append(None)
                spans.append(None)
                continue
            a, b, n, shift, _ = found[0]
            ids.append(n)
            s, e = self._span(t)
            size = len(texts[n])
            spans.append((min(max(s + shift, 0), size), min(max(e + shift, 0), size)))
        return tuple(texts), tuple(ids), None if self.spans is None else tuple(spans)

    # ------------------------------------------------------------------ messages
    def straddler(self, p: int, q: int) -> tuple[str, int, bool] | None:
        """``("starts" | "ends", token, inside)``: the edge of ``[p, q)`` that is no cut and
        the token it falls inside (``inside``), or else the token before it (the edge falls
        in characters no token of the trace starts at), or ``None`` when both edges are
        cuts."""
        for edge, x in (("starts", p), ("ends", q)):
            if self.is_cut(x):
                continue
            w = bisect_right(self.base, x) - 1
            inside = x - self.base[w]
            own = self.tokens_of(w)
            across = [t for t in own if self._span(t)[0] < inside < self._span(t)[1]]
            before = [t for t in own if self.anchor(t) < inside]
            chosen = across or before[-1:] or own[:1]
            if chosen:
                return edge, chosen[0], bool(across)
        return None
