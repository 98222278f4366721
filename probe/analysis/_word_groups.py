"""Words longer than the tokenizer's words: group consecutive words of a trace into one.

BERT-style tokenizers (MiniLM's included) split Chinese and Japanese kanji into one "word"
per character, so ``trace.words`` of "小猫没有过马路" is ``('小', '猫', '没', '有', '过', '马',
'路')`` and the word "马路" (road) is two words of the trace. :func:`group_words` returns a new
trace in which every run of consecutive words that spells one of the given words is one word
(e.g. ``probe.group_words(trace, ["小猫", "马路"])``, or a whole segmentation from a word
segmenter), so that ``probe.coref``, ``probe.word_attention`` and the views read the grouped
words with the usual merge rule (mean over the word's tokens as queries, sum over them as
keys; Clark et al. 2019).

A word spells a run when the run's words, joined, equal it up to case, Unicode
compatibility forms (NFKC: full-width "ＡＢＣ" is "ABC") and whitespace (``"New York"``
spells the words ``New`` ``York``). Runs are matched left to right, the longest given word
first, so a full segmentation of the sentence is reproduced.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

from probe._errors import ProbeError
from probe.analysis._trace_input import require_trace

if TYPE_CHECKING:
    from probe.capture._trace import Trace

__all__ = ["group_words", "spans_of", "word_spans"]


def _key(text: str) -> str:
    """What two spellings share: case, Unicode compatibility forms (NFKC: full-width "ＡＢＣ"
    is "ABC") and whitespace do not count."""
    return "".join(unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
                   .split())


def spans_of(words: Sequence[str], word: str) -> list[tuple[int, int]]:
    """Every run ``(start, stop)`` of two or more consecutive ``words`` that spells ``word``
    (joined, up to case, NFKC and whitespace), left to right, not overlapping."""
    return word_spans(words, [word])


def word_spans(
    words: Sequence[str], wanted: Sequence[str], breaks: frozenset[int] = frozenset()
) -> list[tuple[int, int]]:
    """The runs of ``words`` to group for ``wanted``: left to right, at each word the longest
    wanted word that spells a run of two or more words starting there. No run goes on from
    word ``w`` to word ``w + 1`` for ``w`` in ``breaks`` (a special token between them)."""
    keys = [_key(w) for w in words]
    targets = sorted({_key(w) for w in wanted if _key(w)}, key=len, reverse=True)
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        for target in targets:
            joined, stop = "", i
            while stop < len(words) and len(joined) < len(target) and target.startswith(joined):
                if stop > i and stop - 1 in breaks:
                    break
                joined += keys[stop]
                stop += 1
            if joined == target and stop - i > 1:
                out.append((i, stop))
                i = stop
                break
        else:
            i += 1
    return out


def group_words(trace: Trace, words: str | Sequence[str]) -> Trace:
    """A new trace in which each run of consecutive words spelling one of ``words`` is one word.

    For scripts a tokenizer splits into one word per character (Chinese, Japanese kanji with
    BERT-style tokenizers), or multi-word expressions: ``probe.group_words(trace, ["小猫",
    "马路"])`` makes "小猫" and "马路" words of every batch item wherever they occur, so
    ``probe.coref(grouped, "它", candidates=["小猫", "马路"])`` and the views treat them as
    words (merge rule of :func:`probe.word_attention`: mean over a word's tokens as queries,
    sum over its tokens as keys). ``words`` may also be a whole segmentation of the text
    (e.g. from a word segmenter). Matching ignores case, Unicode compatibility forms (NFKC)
    and whitespace; runs are taken left to right, the longest given word first. The grouped
    word is written as its words joined (with one space between them where the given word
    has whitespace).
    Attention, tokens and everything else are the trace's own (shared, not copied).

    Args:
        trace: a text trace with ``words`` and ``word_ids``.
        words: a word or words, each spelling one or more consecutive words of the trace.

    Returns:
        A new :class:`~probe.Trace` (the input is unchanged).

    Raises:
        ProbeError: a trace without words, or a given word that spells no run of words in
            any batch item (the message lists the trace's words).
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
    spaced = {_key(w): len(w.split()) > 1 for w in wanted}
    breaks = [_breaks(ids) for ids in trace.word_ids]
    for w in wanted:
        single = any(_key(x) == _key(w) for item in trace.words for x in item)
        if not single and not any(
            word_spans(item, [w], cut) for item, cut in zip(trace.words, breaks)
        ):
            raise ProbeError(
                f"{w!r} spells no run of consecutive words of this text: its words are "
                f"{list(trace.words[0])}; give words made of whole words"
            )
    new_words, new_ids = [], []
    for item, ids, cut in zip(trace.words, trace.word_ids, breaks):
        remap: dict[int, int] = {}
        merged: list[str] = []
        spans = {start: stop for start, stop in word_spans(item, wanted, cut)}
        i = 0
        while i < len(item):
            stop = spans.get(i, i + 1)
            glue = " " if spaced.get(_key("".join(item[i:stop]))) else ""
            for j in range(i, stop):
                remap[j] = len(merged)
            merged.append(glue.join(item[i:stop]))
            i = stop
        new_words.append(tuple(merged))
        new_ids.append(tuple(None if t is None else remap[t] for t in ids))
    return trace.replace(words=tuple(new_words), word_ids=tuple(new_ids))


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
