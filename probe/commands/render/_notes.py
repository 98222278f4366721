"""Notes ``probe render`` prints on stderr after a successful render: what the figure cannot
show by itself.

A word the tokenizer maps to its unknown token reaches the model as ``<unk>``, while word-level
figures (alignment, coref) label it as typed: toy-mt's word-level vocabulary has no capitals
and no punctuation, so "A huge tree greets a fire truck today." sends ``A`` and ``today.`` as
``<unk>`` and the alignment of those rows is the alignment of an unknown token. A word only
part of which is the unknown token (a SentencePiece ``cat€`` as ``▁ca`` ``t`` ``<unk>``) is
named with that part.
"""

from __future__ import annotations

from typing import Any

__all__ = ["unknown_words_note"]

#: at most this many unknown words are listed in a note
_SHOWN = 8
#: a word longer than this is shown cut, with its length
_LONGEST = 40


def unknown_words(tokenizer: Any, text: str) -> list[str]:
    """The words of ``text`` (as the tokenizer splits it) whose tokens are all the unknown
    token (:func:`probe.analysis._unknown.unknown_word_indices`, the rule the coreference
    analyzers and figures follow); ``[]`` when the tokenizer has no unknown token or no word
    boundaries (slow)."""
    from probe.analysis._unknown import unknown_word_indices

    unk = getattr(tokenizer, "unk_token", None)
    if not isinstance(unk, str) or not getattr(tokenizer, "is_fast", False):
        return []
    enc = tokenizer(text, add_special_tokens=False)
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    words = []
    for word in unknown_word_indices(tokens, enc.word_ids(), unk):
        span = enc.word_to_chars(word)
        words.append(text[span.start:span.end].strip() if span is not None else str(word))
    return words


def partly_unknown_words(tokenizer: Any, text: str) -> list[tuple[str, list[str]]]:
    """The words of ``text`` some but not all of whose tokens are the unknown token, each with
    its unknown parts (:func:`probe.analysis._unknown.unknown_parts`): ``[("cat€", ["€"])]``;
    ``[]`` when the tokenizer has no unknown token or no word boundaries (slow)."""
    from probe.analysis._unknown import unknown_parts

    unk = getattr(tokenizer, "unk_token", None)
    if not isinstance(unk, str) or not getattr(tokenizer, "is_fast", False):
        return []
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    word_ids = enc.word_ids()
    n = max((w for w in word_ids if w is not None), default=-1) + 1
    starts, words = [], []
    for word in range(n):
        span = enc.word_to_chars(word)
        written = text[span.start:span.end] if span is not None else ""
        lead = len(written) - len(written.lstrip())  # a SentencePiece word keeps its space
        starts.append((span.start if span is not None else 0) + lead)
        words.append(written.strip())
    spans = [None if w is None else (a - starts[w], b - starts[w])
             for w, (a, b) in zip(word_ids, enc["offset_mapping"])]
    parts = unknown_parts(tokens, word_ids, unk, words, spans)
    return [(words[w] or str(w), p) for w, p in sorted(parts.items())]


def _word(word: str) -> str:
    """``repr`` of a word, a long one cut (a 3000-letter word stays one readable line)."""
    if len(word) <= _LONGEST:
        return repr(word)
    return f"{word[:_LONGEST - 10]!r}... ({len(word)} characters)"


def unknown_words_note(tokenizer: Any, text: str, model_name: str,
                       which: str = "--text") -> str | None:
    """``probe: note: 2 words of --text are not in toy-mt's vocabulary ...``, or ``None``;
    ``which`` names the input (``--text 2 of 3`` in a batch). Words of which only a part is
    the unknown token follow with that part: ``part of 1 word of --text ... : 'cat€'
    ('€')``."""
    words = unknown_words(tokenizer, text)
    partly = partly_unknown_words(tokenizer, text)
    if not words and not partly:
        return None
    unk = getattr(tokenizer, "unk_token", None) or "the unknown token"
    said = []
    if words:
        count = (f"1 word of {which} is" if len(words) == 1
                 else f"{len(words)} words of {which} are")
        said.append(f"{count} not in {model_name}'s vocabulary and reach"
                    f"{'es' if len(words) == 1 else ''} the model as {unk}: "
                    + _listed([_word(w) for w in words]))
    if partly:
        count = ("part of 1 word of {} reaches" if len(partly) == 1
                 else f"parts of {len(partly)} words of {{}} reach").format(which)
        shown = _listed([f"{_word(w)} ({', '.join(map(_word, p))})" for w, p in partly])
        said.append(f"{count} the model as {unk}" + (
            "" if words else f" (not in {model_name}'s vocabulary)") + f": {shown}")
    return "probe: note: " + "; ".join(said)


def _listed(shown: list[str]) -> str:
    more = f" and {len(shown) - _SHOWN} more" if len(shown) > _SHOWN else ""
    return ", ".join(shown[:_SHOWN]) + more
