"""Words that reach the model as its unknown token (``[UNK]``, ``<unk>``).

A word the tokenizer cannot spell becomes the unknown token: MiniLM (an English WordPiece
vocabulary) reads ``它`` and ``猫`` of "小猫没有过马路，因为它太累了。" as ``[UNK]``. Attention
to or from such a word is attention between placeholders, the same for any unknown word, and
says nothing about the word as written. One rule, used by the coreference analyzers (a
``UserWarning``), the coreference figures (a note line) and ``probe render`` (a stderr note):
a word is unknown when **every** token of it is the unknown token (``小猫``, ``小`` ``[UNK]``,
is not: part of it reaches the model).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from probe.capture._trace import Trace

__all__ = ["unknown_word_indices", "unknown_words", "unknown_phrase", "warn_unknown"]

#: at most this many unknown words are named in a line
SHOWN = 8
#: a word longer than this is shown cut
_LONGEST = 40


def unknown_word_indices(
    tokens: Sequence[str], word_ids: Sequence[int | None], unk_token: str | None
) -> list[int]:
    """Word ids (ascending) whose tokens are all ``unk_token``; ``[]`` without one.

    Args:
        tokens: ``[seq]`` token strings.
        word_ids: ``[seq]`` each token's word id, ``None`` for special and padding tokens.
        unk_token: the tokenizer's unknown token string.
    """
    if not unk_token:
        return []
    unknown: dict[int, bool] = {}
    for token, word in zip(tokens, word_ids):
        if word is not None:
            unknown[word] = unknown.get(word, True) and token == unk_token
    return sorted(word for word, unk in unknown.items() if unk)


def unknown_words(trace: Trace, batch_index: int = 0) -> list[int]:
    """Indices into ``trace.words[batch_index]`` of the words made only of the unknown token;
    ``[]`` for a trace without words, tokens or a known unknown token."""
    if trace.tokens is None or trace.word_ids is None or trace.unk_token is None:
        return []
    b = batch_index % len(trace.tokens)
    return unknown_word_indices(trace.tokens[b], trace.word_ids[b], trace.unk_token)


def _shown(word: str) -> str:
    return word if len(word) <= _LONGEST else word[:_LONGEST - 1] + "\u2026"


def _listed(words: Sequence[str]) -> str:
    listed = ", ".join(_shown(w) for w in words[:SHOWN])
    return listed + (f" and {len(words) - SHOWN} more" if len(words) > SHOWN else "")


def unknown_phrase(words: Sequence[str], unk_token: str) -> str:
    """``它, 猫 reach the model as [UNK]: their weights say nothing about these words``."""
    listed = _listed(words)
    if len(words) == 1:
        return f"{listed} reaches the model as {unk_token}: its weights say nothing about it"
    return f"{listed} reach the model as {unk_token}: their weights say nothing about these words"


def warn_unknown(
    trace: Trace, batch_index: int, indices: Sequence[int], caller: str
) -> None:
    """One ``UserWarning`` line when any of the word ``indices`` (the queried word, its
    candidates) is made only of the unknown token; it points at the first caller outside
    probe."""
    from probe._errors import outside_probe_stacklevel

    unknown = set(unknown_words(trace, batch_index))
    hit = [i for i in dict.fromkeys(indices) if i in unknown]
    if not hit or trace.words is None or trace.unk_token is None:
        return
    words = trace.words[batch_index % len(trace.words)]
    several = len(hit) > 1
    warnings.warn(
        f"{caller}: {_listed([words[i] for i in hit])} {'are' if several else 'is'} not in "
        f"{trace.model_name}'s vocabulary and reach{'' if several else 'es'} the model as "
        f"{trace.unk_token}: {'their' if several else 'its'} weights are a placeholder's and "
        f"say nothing about {'these words' if several else 'it'}; use words the model's "
        "vocabulary holds",
        UserWarning, stacklevel=outside_probe_stacklevel(),
    )
