"""Words other than the tokenizer's: group consecutive words into one, or split a word at
its token boundaries.

BERT-style tokenizers (MiniLM's included) split Chinese and Japanese kanji into one "word"
per character, so ``trace.words`` of "小猫没有过马路" is ``('小', '猫', '没', '有', '过', '马',
'路')`` and the word "马路" (road) is two words of the trace; the other way round, a run of
kana (``がマットの``), a SentencePiece tokenizer's whole Chinese sentence or a byte-level
BPE's run of Chinese letters is one word. :func:`group_words` returns a new trace in which
every stretch of text that spells one of the given words and starts and ends at token
boundaries is one word (``probe.group_words(trace, ["小猫", "马路"])``, or a whole
segmentation from a word segmenter), so that ``probe.coref``, ``probe.word_attention`` and
the views read those words with the usual merge rule (mean over the word's tokens as
queries, sum over them as keys; Clark et al. 2019). Where the cuts are lies in
:mod:`probe.analysis._word_cuts`.

A word spells a stretch when the stretch equals it up to case, Unicode compatibility forms
(NFKC: full-width "ＡＢＣ" is "ABC") and whitespace (``"New York"`` spells the words ``New``
``York``). Stretches are matched left to right, the longest given word first; a list whose
words spell a batch item's whole text is read as its segmentation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from probe._errors import ProbeError
from probe._text import short_repr
from probe.analysis._trace_input import require_trace
from probe.analysis._word_cuts import Item, key

if TYPE_CHECKING:
    from probe.capture._trace import Trace

__all__ = ["group_words", "spans_of", "spells_part", "word_spans"]


def _key(text: str) -> str:
    return key(text)


def spans_of(words: Sequence[str], word: str) -> list[tuple[int, int]]:
    """Every run ``(start, stop)`` of two or more consecutive ``words`` that spells ``word``
    (joined, up to case, NFKC and whitespace), left to right, not overlapping."""
    return word_spans(words, [word])


def word_spans(
    words: Sequence[str], wanted: Sequence[str], breaks: frozenset[int] = frozenset()
) -> list[tuple[int, int]]:
    """The runs of two or more whole ``words`` that spell ``wanted``: left to right, at each
    word the longest wanted word starting there. No run goes on from word ``w`` to word
    ``w + 1`` for ``w`` in ``breaks`` (a special token between them)."""
    item = _words_only(words, breaks)
    starts = {b: i for i, b in enumerate(item.base)}
    out = []
    for p, q in item.matches({_key(w) for w in wanted if _key(w)}):
        if p in starts and q in starts and starts[q] - starts[p] > 1:
            out.append((starts[p], starts[q]))
    return out


def _words_only(words: Sequence[str], breaks: frozenset[int] = frozenset()) -> Item:
    """An item of whole words (no token spans: cut only between words)."""
    base = [0]
    for w in words:
        base.append(base[-1] + len(w))
    return Item(words, tuple(range(len(words))), None, tuple(words),
                frozenset(base[w + 1] for w in breaks if w + 1 < len(base)))


def spells_part(trace: Trace, b: int, word: str) -> bool:
    """Whether ``word`` is no word of item ``b`` but spells a stretch of its text (several
    words, or part of one): what :func:`group_words` would make a word, or refuse to."""
    if trace.words is None or trace.word_ids is None or not _key(word):
        return False
    if any(_key(x) == _key(word) for x in trace.words[b]):
        return False
    return _item(trace, b).occurrence(_key(word)) is not None


def group_words(trace: Trace, words: str | Sequence[str]) -> Trace:
    """A new trace in which each stretch of text spelling one of ``words`` is one word.

    The tokenizer's words may be too small (Chinese and Japanese kanji, one word per character
    with BERT-style tokenizers; multi-word expressions) or too large (a run of kana with
    BERT, a whole Chinese sentence with SentencePiece, a run of Chinese letters with
    byte-level BPE): ``probe.group_words(trace, ["小猫", "马路"])`` makes "小猫" and "马路"
    words of every batch item wherever they occur, joining words and splitting a word at its
    token boundaries (what is left of a split word keeps its other tokens as word(s): with
    MiniLM, "マット" out of ``がマットの`` leaves ``が`` and ``の``; a given word that already
    is a word, or a run of whole words, of an item is taken only there: "cat" does not cut
    ``catwalk`` out of a sentence that has "cat"), so ``probe.coref(grouped,
    "它", candidates=["小猫", "马路"])`` and the views treat them as words (merge rule of
    :func:`probe.word_attention`: mean over a word's tokens as queries, sum over its tokens as
    keys). Matching ignores case, Unicode compatibility forms (NFKC) and whitespace, and is
    done on the original text (a normaliser's changes to the tokens, e.g. BERT uncased
    writing が as か, do not count); stretches are taken left to right, the longest given
    word first, also inside longer words. ``words`` may be a whole segmentation of a batch
    item's text (e.g. from a word segmenter): it is reproduced except where a boundary falls
    inside a token, whose two sides stay one word. The grouped word is written as the text
    it covers (with one space between words where the given word has whitespace).
    Attention, tokens and everything else are the trace's own (shared, not copied).

    Args:
        trace: a text trace with ``words`` and ``word_ids`` (splitting also needs
            ``token_spans``: a trace captured from the text with a fast tokenizer).
        words: a word or words, each spelling a stretch of the text that starts and ends at
            token boundaries.

    Returns:
        A new :class:`~probe.Trace` (the input is unchanged).

    Raises:
        ProbeError: a trace without words; a given word whose edges fall inside a token
            wherever it occurs (the message names the token: the tokenizer does not split
            there) or that the text does not contain (the message lists the words).
    """
    require_trace(trace, "probe.group_words")
    if trace.words is None or trace.word_ids is None:
        raise ProbeError(
            "this trace has no words: capture the text itself (probe.trace(model, text, "
            "tokenizer=tok)) with a fast tokenizer"
        )
    if not isinstance(words, str) and not (
        isinstance(words, Sequence) or hasattr(words, "__iter__")
    ):
        raise ProbeError(f"words must be a string or a list of strings, e.g. ['小猫', '马路'], "
                         f"got {words!r}")
    wanted = [words] if isinstance(words, str) else list(words)
    if not wanted or not all(isinstance(w, str) and _key(w) for w in wanted):
        raise ProbeError(f"words must be non-blank strings, e.g. ['小猫', '马路'], got {words!r}")
    spaced = {_key(w) for w in wanted if len(w.split()) > 1}
    targets = {_key(w) for w in wanted}
    items = [_item(trace, b) for b in range(len(trace.words))]
    plans, found = [], set()
    for item in items:
        stretches = item.segmentation(wanted)
        if stretches is not None:
            found |= targets
            glue = {st: " " if _spaced_inside(item, st, spaced) else "" for st in stretches}
        else:
            stretches = _whole_first(item, targets)
            found |= {_key(item.text[p:q]) for p, q in stretches}
            found |= {_key(x) for x in item.words}
            glue = {(p, q): " " if _key(item.text[p:q]) in spaced else "" for p, q in stretches}
        plans.append(item.pieces(stretches, glue))
    for w in wanted:
        if _key(w) not in found:
            raise ProbeError(_refusal(trace, items, w))
    regrouped = [item.regroup(pieces) for item, pieces in zip(items, plans)]
    spans = None if any(r[2] is None for r in regrouped) else tuple(r[2] for r in regrouped)
    return trace.replace(words=tuple(r[0] for r in regrouped),
                         word_ids=tuple(r[1] for r in regrouped), token_spans=spans)


def _item(trace: Trace, b: int) -> Item:
    ids = trace.word_ids[b]  # type: ignore[index]
    spans = None if trace.token_spans is None else trace.token_spans[b]
    if spans is not None and len(spans) != len(ids):
        spans = None
    labels = trace.labels[b] if trace.labels is not None else ("?",) * len(ids)
    words = trace.words[b]  # type: ignore[index]
    base = [0]
    for w in words:
        base.append(base[-1] + len(w))
    cut = _breaks(ids)
    return Item(words, ids, spans, labels,
                frozenset(base[w + 1] for w in cut if w + 1 < len(base)))


def _whole_first(item: Item, targets: set[str]) -> list[tuple[int, int]]:
    """The stretches of ``item`` spelling ``targets``; a target that is already a word or a run
    of whole words of the item is taken only there, never cut out of a longer word ("it" in
    a sentence with the word "cat" leaves "catwalk", ``cat ##walk``, whole)."""
    whole = frozenset(key(item.text[p:q]) for p, q in _words_only(item.words).matches(targets)
                      if not item.crosses_break(p, q))
    return item.matches(targets, whole)


def _spaced_inside(item: Item, stretch: tuple[int, int], spaced: set[str]) -> bool:
    """A stretch of a segmentation is written with spaces if a given word in it has one."""
    if not spaced:
        return False
    text = _key(item.text[stretch[0]:stretch[1]])
    return any(w in text for w in spaced)


def _refusal(trace: Trace, items: Sequence[Item], word: str) -> str:
    """Why ``word`` became no word: its edges fall inside a token, or the text lacks it."""
    for b, item in enumerate(items):
        where = item.occurrence(_key(word))
        if where is None:
            continue
        if item.spans is None:
            return (
                f"{word!r} is part of the word(s) {item.text[where[0]:where[1]]!r} of this "
                "trace, which keeps no token offsets to split words at (ids, or a tokenizer "
                "output without its text): capture the text itself (probe.trace(model, text, "
                "tokenizer=tok)) with a fast tokenizer"
            )
        found = item.straddler(*where)
        if found is not None:
            edge, t, inside = found
            w = item.word_ids[t]
            return (
                f"{word!r} is not a word of this sentence and cannot be made one: it {edge} "
                f"{'inside' if inside else 'past'} the token "
                f"{item.labels[t]!r} (of the word {item.words[w]!r}"
                f"{'' if b == 0 else f', batch item {b}'})"
                f"{'' if inside else ', before the next token boundary'}, where the tokenizer "
                "does not split; give words that start and end at token boundaries, e.g. the "
                "whole token"
            )
    for b, item in enumerate(items):
        if item.occurrence(_key(word), across=True) is not None:
            return (
                f"{word!r} runs across the two texts of a pair in batch item {b} (a special "
                "token such as [SEP] lies between its words): give words within one text"
            )
    if len(items) == 1:
        return (
            f"{word!r} spells no run of consecutive words of this text: its words are "
            f"{list(items[0].words)}; give words made of whole words or whole tokens"
        )
    shown = "; ".join(f"item {b}: {short_repr(list(item.words), 100)}"
                      for b, item in enumerate(items[:3]))
    more = f"; and {len(items) - 3} more item(s)" if len(items) > 3 else ""
    return (
        f"{word!r} spells no run of consecutive words in any batch item (their words: "
        f"{shown}{more}); give words made of whole words or whole tokens"
    )


def _breaks(ids: Sequence[int | None]) -> frozenset[int]:
    """The words ``w`` followed by a special token before word ``w + 1`` (``[SEP]`` between
    the two texts of a pair): a grouped word never spans them."""
    out, last, gap = set(), None, False
    for t in ids:
        if t is None:
            gap = last is not None
        else:
            if gap and t != last:
                out.add(last)
            last, gap = t, False
    return frozenset(out)
