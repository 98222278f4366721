"""Notes ``probe render`` prints on stderr after a successful render: what the figure cannot
show by itself.

A word the tokenizer maps to its unknown token reaches the model as ``<unk>``, while word-level
figures (alignment, coref) label it as typed: toy-mt's word-level vocabulary has no capitals
and no punctuation, so "A huge tree greets a fire truck today." sends ``A`` and ``today.`` as
``<unk>`` and the alignment of those rows is the alignment of an unknown token.
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
        words.append(text[span.start:span.end] if span is not None else str(word))
    return words


def _word(word: str) -> str:
    """``repr`` of a word, a long one cut (a 3000-letter word stays one readable line)."""
    if len(word) <= _LONGEST:
        return repr(word)
    return f"{word[:_LONGEST - 10]!r}... ({len(word)} characters)"


def unknown_words_note(tokenizer: Any, text: str, model_name: str,
                       which: str = "--text") -> str | None:
    """``probe: note: 2 words of --text are not in toy-mt's vocabulary ...``, or ``None``;
    ``which`` names the input (``--text 2 of 3`` in a batch)."""
    words = unknown_words(tokenizer, text)
    if not words:
        return None
    unk = getattr(tokenizer, "unk_token", None) or "the unknown token"
    shown = ", ".join(_word(w) for w in words[:_SHOWN])
    more = f" and {len(words) - _SHOWN} more" if len(words) > _SHOWN else ""
    count = f"1 word of {which} is" if len(words) == 1 else f"{len(words)} words of {which} are"
    return (
        f"probe: note: {count} not in {model_name}'s vocabulary and reach"
        f"{'es' if len(words) == 1 else ''} the model as {unk}: {shown}{more}"
    )
