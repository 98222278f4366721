"""Token and word labels of text inputs, for every tokenizer family.

Words come from a fast tokenizer's encoding (``word_ids``, character offsets). Three families
write words differently and all come out clean:

* WordPiece (BERT): continuation pieces start with ``##``; words are split at spaces and
  punctuation by the tokenizer itself.
* byte-level BPE (GPT-2, RoBERTa, Llama 3): a word's first token carries the space before it
  (``Ġit``, offsets covering ``" it"``); the space is not part of the word.
* SentencePiece (T5, Llama 2): the space is written ``▁``. Tokenizers without a pre-tokenizer
  (Llama 2 style) report the whole text as one word; probe splits it again at whitespace.

With the text known, each token's characters within its word are kept too
(:func:`token_spans_of_encoding`, ``trace.token_spans``): ``probe.group_words`` splits words
at them.

Special tokens are the tokenizer's structural ones only (CLS, SEP, BOS, EOS, PAD): unknown
(``[UNK]``) and mask tokens stand for text and belong to words.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["structural_special_ids", "token_spans_of_encoding", "words_of_encoding"]

Words = tuple[str, ...]
WordIds = tuple[int | None, ...]
TokenSpans = tuple[tuple[int, int] | None, ...]
_SPACE_MARKS = ("▁", "Ġ", " ")
_STRUCTURAL = ("cls_token_id", "sep_token_id", "bos_token_id", "eos_token_id", "pad_token_id")


def structural_special_ids(tokenizer: Any) -> set[int]:
    """Ids of the tokenizer's CLS, SEP, BOS, EOS and PAD tokens (not UNK, not MASK)."""
    out: set[int] = set()
    for attr in _STRUCTURAL:
        try:
            value = getattr(tokenizer, attr, None)
        except (AttributeError, KeyError, ValueError):
            value = None
        if isinstance(value, int) and not isinstance(value, bool):
            out.add(value)
    return out


def special_mask(input_ids: torch.Tensor, tokenizer: Any) -> torch.Tensor:
    """``[batch, seq]`` bool: True where a token is one of the structural special tokens."""
    import torch

    ids = sorted(structural_special_ids(tokenizer))
    if not ids:
        return torch.zeros(input_ids.shape, dtype=torch.bool)
    return torch.isin(input_ids.cpu(), torch.tensor(ids, dtype=input_ids.dtype))


def words_of_encoding(
    encoding: Any, index: int, tokenizer: Any, text: str | None = None
) -> tuple[Words, WordIds] | None:
    """Words of item ``index`` of a fast tokenizer's ``encoding`` and each token's word index.

    Args:
        encoding: a ``BatchEncoding`` from a fast tokenizer (it carries ``word_ids``).
        index: the batch item.
        tokenizer: the tokenizer (decodes words when ``text`` is not known).
        text: the item's text; words are cut from it when given (original case and accents).

    Returns:
        ``(words, word_ids)`` with ``word_ids[t]`` the word of token ``t`` (``None`` for special
        and padding tokens), or ``None`` if the encoding has no word information.
    """
    try:
        raw_ids = list(encoding.word_ids(index))
        item = encoding.encodings[index]
    except (ValueError, AttributeError, IndexError, TypeError):
        return None
    offsets = list(item.offsets)
    pieces = list(item.tokens)
    ids = list(item.ids)
    starts = _word_starts(raw_ids, offsets, pieces, text)
    word_of: list[int | None] = []
    groups: list[list[int]] = []
    for t, w in enumerate(raw_ids):
        if w is None:
            word_of.append(None)
            continue
        if starts[t] or not groups:
            groups.append([])
        groups[-1].append(t)
        word_of.append(len(groups) - 1)
    ends = [_first_start(g, offsets) for g in groups[1:]] + [None]
    texts = [_word_text(g, offsets, ids, tokenizer, text, end) for g, end in zip(groups, ends)]
    # words that are only whitespace (runs of spaces some tokenizers keep) name no word
    keep = [i for i, w in enumerate(texts) if w]
    renumber = {old: new for new, old in enumerate(keep)}
    word_ids = tuple(None if w is None else renumber.get(w) for w in word_of)
    return tuple(texts[i] for i in keep), word_ids


def _word_starts(
    raw_ids: list[int | None], offsets: list[tuple[int, int]], pieces: list[str], text: str | None
) -> list[bool]:
    """Whether each token starts a word: the tokenizer says so, or it starts after whitespace."""
    starts = []
    previous: int | None = None
    word_start = 0  # where the current word's text starts
    for t, w in enumerate(raw_ids):
        if w is None:
            starts.append(False)
            continue
        new = w != previous
        if not new:
            if text is not None:
                s, e = offsets[t]
                after_space = s > 0 and text[s - 1].isspace() and _after_gap(offsets, t)
                new = s < e and (
                    text[s].isspace() or after_space or _after_lead(text, word_start, s)
                )
            else:
                new = pieces[t].startswith(_SPACE_MARKS)
        if new and text is not None and offsets[t][1] > offsets[t][0]:
            word_start = offsets[t][0]
        starts.append(new)
        previous = w
    return starts


def _after_lead(text: str, start: int, s: int) -> bool:
    """Whether a token at ``s`` starts a word after leading punctuation ``text[start:s]``.

    Llama 3's and Qwen's pre-tokenizers attach one non-letter to the letters after it
    (``，因为`` and ``(hello`` are one pre-token); the punctuation is a word of its own, as
    other tokenizers make it, when a token boundary separates it from the letters.
    Apostrophes stay (``'s``, ``'t``: the contraction pieces these tokenizers split off)."""
    lead = text[start:s].strip()
    return bool(lead) and text[s].isalnum() and all(
        unicodedata.category(c)[0] in "PS" and c not in "'\u2019" for c in lead
    )


def _after_gap(offsets: list[tuple[int, int]], t: int) -> bool:
    """The character before token ``t`` belongs to no token (offsets trimmed of spaces)."""
    return t == 0 or offsets[t][0] > offsets[t - 1][1]


def _first_start(group: list[int], offsets: list[tuple[int, int]]) -> int | None:
    starts = [offsets[t][0] for t in group if offsets[t][1] > offsets[t][0]]
    return min(starts) if starts else None


def _word_text(
    group: list[int],
    offsets: list[tuple[int, int]],
    ids: list[int],
    tokenizer: Any,
    text: str | None,
    limit: int | None = None,
) -> str:
    """The word's text; ``limit``: where the next word starts (``None``: the text's end)."""
    if text is not None:
        spans = [offsets[t] for t in group if offsets[t][1] > offsets[t][0]]
        if not spans:
            return ""
        end = max(e for _, e in spans)
        stop = len(text) if limit is None else max(limit, end)
        # combining marks that a normaliser dropped (accents of BERT's uncased tokenizer,
        # the emoji variation selector U+FE0F) are covered by no token, yet belong to the word
        while end < stop and unicodedata.category(text[end]).startswith("M"):
            end += 1
        return text[min(s for s, _ in spans) : end].strip()
    return str(tokenizer.decode([ids[t] for t in group])).strip()


def token_spans_of_encoding(
    encoding: Any, index: int, text: str, words: Words, word_ids: WordIds
) -> TokenSpans | None:
    """Per token, the ``(start, end)`` characters of its word (``words[word_ids[t]]``) it
    covers, from the encoding's character offsets into ``text``; ``None`` for tokens of no
    word. A token's offsets are clipped to its word (the space of ``Ġit`` is not part of
    ``it``). ``None`` when the encoding has no offsets for item ``index``.

    :func:`probe.group_words` reads these to split a word at token boundaries."""
    try:
        offsets = list(encoding.encodings[index].offsets)
    except (AttributeError, IndexError, TypeError):
        return None
    if len(offsets) != len(word_ids):
        return None
    first: dict[int, int] = {}  # word -> where its text starts in ``text``
    for (s, e), w in zip(offsets, word_ids):
        if w is not None and e > s:
            first[w] = min(first.get(w, s), s)
    starts = {}
    for w, s in first.items():
        starts[w] = s + len(text[s:]) - len(text[s:].lstrip())
    out: list[tuple[int, int] | None] = []
    for (s, e), w in zip(offsets, word_ids):
        if w is None or w not in starts:
            out.append(None if w is None else (0, 0))
            continue
        n = len(words[w])
        out.append((min(max(s - starts[w], 0), n), min(max(e - starts[w], 0), n)))
    return tuple(out)
