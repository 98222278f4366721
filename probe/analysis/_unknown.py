"""Words that reach the model as its unknown token (``[UNK]``, ``<unk>``).

A word the tokenizer cannot spell becomes the unknown token: MiniLM (an English WordPiece
vocabulary) reads ``它`` and ``猫`` of "小猫没有过马路，因为它太累了。" as ``[UNK]``. Attention
to or from such a word is attention between placeholders, the same for any unknown word, and
says nothing about the word as written. One rule, used by the coreference analyzers (a
``UserWarning``), the coreference figures (a note line) and ``probe render`` (a stderr note):
a word is unknown when **every** token of it is the unknown token, and **partly unknown**
when some of its tokens are and some are not (``小猫``, ``小`` ``[UNK]``: part of it, ``猫``,
reaches the model as a placeholder, and the word's weights mix a placeholder's in); the
warning and the notes name both, a partly unknown word with its unknown part(s).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probe.capture._trace import Trace

__all__ = ["check_partly", "partly_listed", "partly_unknown_words", "unknown_parts",
           "unknown_word_indices", "unknown_words", "unknown_phrase", "warn_unknown"]

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
        if word is not None and not _bare(token):
            unknown[word] = unknown.get(word, True) and token == unk_token
    return sorted(word for word, unk in unknown.items() if unk)


def _bare(token: str) -> bool:
    """A token that is only a word-start marker (SentencePiece ``▁`` before ``<unk>``,
    byte-level ``Ġ``): it spells none of the word, so it counts neither way."""
    return token != "" and not token.strip("\u2581\u0120 ")


def unknown_parts(
    tokens: Sequence[str], word_ids: Sequence[int | None], unk_token: str | None,
    words: Sequence[str] | None = None,
    spans: Sequence[tuple[int, int] | None] | None = None,
) -> dict[int, list[str]]:
    """Word id -> its unknown parts, for the words of which some tokens are ``unk_token`` and
    some are not (``{0: ["猫"]}`` for ``小猫`` as ``小`` ``[UNK]``); ``{}`` without one.

    A part is the text of a run of adjacent unknown tokens, cut from ``words`` at the tokens'
    character ``spans`` within their word; without them (or words) a part is described, e.g.
    ``"token 2 of 2"``.

    Args:
        tokens: ``[seq]`` token strings.
        word_ids: ``[seq]`` each token's word id, ``None`` for special and padding tokens.
        unk_token: the tokenizer's unknown token string.
        words: the words ``word_ids`` index into.
        spans: ``[seq]`` each token's ``(start, end)`` characters within its word.
    """
    if not unk_token:
        return {}
    members: dict[int, list[int]] = {}
    for t, word in enumerate(word_ids):
        if word is not None:
            members.setdefault(word, []).append(t)
    out: dict[int, list[str]] = {}
    for word, ts in members.items():
        unk = [tokens[t] == unk_token for t in ts]
        spelled = [u for t, u in zip(ts, unk) if not _bare(tokens[t])]
        if all(spelled) or not any(spelled):
            continue
        parts: list[str] = []
        run: list[int] = []
        for k, t in enumerate(ts + [-1]):
            if t >= 0 and unk[k]:
                run.append(k)
                continue
            if run:
                parts.append(_part(ts, run, word, words, spans))
                run = []
        out[word] = parts
    return out


def _part(ts: list[int], run: list[int], word: int, words: Sequence[str] | None,
          spans: Sequence[tuple[int, int] | None] | None) -> str:
    """The text of the unknown tokens ``run`` (positions in the word's tokens ``ts``)."""
    cut = [spans[ts[k]] for k in run] if spans is not None else [None]
    if words is not None and word < len(words) and all(c is not None for c in cut):
        start, end = min(c[0] for c in cut), max(c[1] for c in cut)  # type: ignore[index]
        text = words[word][start:end]
        if text.strip():
            return _shown(text)
    first, last = run[0] + 1, run[-1] + 1
    where = f"token {first}" if first == last else f"tokens {first}-{last}"
    return f"{where} of {len(ts)}"


def partly_unknown_words(trace: Trace, batch_index: int = 0) -> dict[int, list[str]]:
    """Index into ``trace.words[batch_index]`` -> the unknown parts of each word that reaches
    the model partly as the unknown token (:func:`unknown_parts`); ``{}`` for a trace without
    words, tokens or a known unknown token."""
    if trace.tokens is None or trace.word_ids is None or trace.unk_token is None:
        return {}
    b = batch_index % len(trace.tokens)
    spans = trace.token_spans[b] if trace.token_spans is not None else None
    words = trace.words[b] if trace.words is not None else None
    return unknown_parts(trace.tokens[b], trace.word_ids[b], trace.unk_token, words, spans)


def partly_listed(words: Sequence[str], parts: Sequence[Sequence[str]]) -> str:
    """``小猫 (猫), 大狗 (狗)``: each partly unknown word with its unknown parts."""
    shown = [f"{_shown(w)} ({', '.join(p)})" for w, p in zip(words, parts)]
    return _listed(shown)


def check_partly(partly: Any, n: int) -> dict[int, list[str]]:
    """A viewer's ``partly_unknown=`` (word index -> its unknown parts) checked against ``n``
    words; ``None`` is ``{}``."""
    from probe._errors import ProbeError

    if partly is None:
        return {}
    ok = isinstance(partly, Mapping) and all(
        isinstance(k, int) and not isinstance(k, bool) and 0 <= k < n
        and not isinstance(v, (str, bytes)) and isinstance(v, Sequence)
        and all(isinstance(p, str) for p in v) for k, v in partly.items())
    if not ok:
        raise ProbeError(f"partly_unknown must map word indices in 0..{n - 1} to lists of "
                         f"their unknown parts (strings), got {partly!r}")
    return {int(k): [str(p) for p in v] for k, v in partly.items()}


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


def unknown_phrase(words: Sequence[str], unk_token: str, partly: str = "") -> str:
    """``它, 猫 reach the model as [UNK]: their weights say nothing about these words``, and
    for the words ``partly`` (:func:`partly_listed`) ``part of 小猫 (猫) reaches the model as
    [UNK]: its weight is partly a placeholder's``."""
    out = []
    if words:
        listed = _listed(words)
        out.append(f"{listed} reaches the model as {unk_token}: its weights say nothing about it"
                   if len(words) == 1 else f"{listed} reach the model as {unk_token}: their "
                   "weights say nothing about these words")
    if partly:
        several = "), " in partly
        out.append(("parts of " if several else "part of ") + f"{partly} "
                   + ("reach" if several else "reaches") + f" the model as {unk_token}: "
                   + ("their" if several else "its") + " weights are partly a placeholder's")
    return "; ".join(out)


def warn_unknown(
    trace: Trace, batch_index: int, indices: Sequence[int], caller: str
) -> None:
    """One ``UserWarning`` line when any of the word ``indices`` (the queried word, its
    candidates) is made only of the unknown token or partly (naming the unknown parts); it
    points at the first caller outside probe."""
    from probe._errors import outside_probe_stacklevel

    unknown = set(unknown_words(trace, batch_index))
    partly = partly_unknown_words(trace, batch_index)
    hit = [i for i in dict.fromkeys(indices) if i in unknown]
    part = [i for i in dict.fromkeys(indices) if i in partly]
    if (not hit and not part) or trace.words is None or trace.unk_token is None:
        return
    words = trace.words[batch_index % len(trace.words)]
    several = len(hit) > 1
    said = []
    if hit:
        said.append(
            f"{_listed([words[i] for i in hit])} {'are' if several else 'is'} not in "
            f"{trace.model_name}'s vocabulary and reach{'' if several else 'es'} the model as "
            f"{trace.unk_token}: {'their' if several else 'its'} weights are a placeholder's "
            f"and say nothing about {'these words' if several else 'it'}")
    if part:
        listed = partly_listed([words[i] for i in part], [partly[i] for i in part])
        many = len(part) > 1
        whose, parts = ("their", "parts") if many else ("its", "part")
        said.append(
            (f"{parts} of {listed} reach{'' if many else 'es'} the model as {trace.unk_token} "
             "too" if hit else
             f"{parts} of {listed} {'are' if many else 'is'} not in {trace.model_name}'s "
             f"vocabulary and reach{'' if many else 'es'} the model as {trace.unk_token}")
            + f": {whose} weights are partly a placeholder's")
    warnings.warn(
        f"{caller}: {'; '.join(said)}; use words the model's vocabulary holds",
        UserWarning, stacklevel=outside_probe_stacklevel(),
    )
