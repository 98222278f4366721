"""Text helpers of the base room: plain text from docstrings (what the command line prints),
words with their article, and readable labels for byte-level BPE tokens
(:func:`byte_level_labels`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["WORD_START", "byte_level_labels", "plain_text", "with_article"]

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_INTERPRETED = re.compile(r"`([^`]+)`")


def plain_text(text: str) -> str:
    """``text`` without reStructuredText markup, on one line.

    ``:func:`probe.coref``` becomes ``probe.coref`` (``~a.b`` becomes ``b``), ````x````
    and ```x``` become ``x``; runs of whitespace become one space.
    """

    def role(match: re.Match[str]) -> str:
        target = match.group(1)
        return target.rsplit(".", 1)[-1] if match.group(0).split("`")[1].startswith("~") else target

    out = _ROLE.sub(role, str(text))
    out = _LITERAL.sub(r"\1", out)
    out = _INTERPRETED.sub(r"\1", out)
    return " ".join(out.split())


def with_article(word: str) -> str:
    """``word`` after ``"a"`` or ``"an"`` by its first letter: ``"an encoder"``, ``"a vision"``."""
    return f"{'an' if word[:1].lower() in 'aeiou' and word[:1] else 'a'} {word}"


# ----------------------------------------------------------------- byte-level token labels
#: the word-start marker of SentencePiece tokens (``▁the``), which probe's labels show as is;
#: byte-level labels write a token's leading space with it too
WORD_START = "\u2581"


def _byte_alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet, symbol -> byte: printable Latin-1 bytes stand for
    themselves, the other 68 bytes (controls, space, NBSP, soft hyphen) for the code points
    from U+0100 on, in byte order (space is ``Ġ``, newline ``Ċ``)."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {chr(b): b for b in printable}
    shifted = [b for b in range(256) if b not in table.values()]
    table.update({chr(0x100 + i): b for i, b in enumerate(shifted)})
    return table


_BYTES = _byte_alphabet()


def _utf8_length(lead: int) -> int:
    """Bytes of the UTF-8 sequence a byte starts (1..4), or 0 for a continuation byte or a
    byte that never starts one."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0


def _escape(data: bytes) -> str:
    return "".join(f"<0x{b:02X}>" for b in data)


def byte_level_labels(tokens: Sequence[str]) -> tuple[str, ...]:
    """Readable labels of one sequence of byte-level BPE tokens (GPT-2, RoBERTa, Llama 3).

    Each symbol stands for one byte of the UTF-8 text; the labels decode them:

    * ``Ġthe`` -> ``▁the``: the token's leading spaces are written ``▁`` (:data:`WORD_START`),
      as SentencePiece tokens show them; other bytes decode to their text (``Ċ`` -> a newline).
    * a character whose bytes are split over several tokens is written whole on the token
      holding its first byte, and the bytes it continues into on the next tokens as escapes
      ``<0xAD>`` (SentencePiece's byte-fallback spelling): 中 (E4 B8 AD) as ``ä¸`` + ``Ń``
      reads ``中`` + ``<0xAD>``.
    * bytes that form no character (a sequence cut short, invalid UTF-8) are escapes too.

    Tokens holding a symbol outside the byte alphabet (added or special tokens such as
    ``<|endoftext|>`` are inside it and decode to themselves) are returned as they are.
    Labels are for display only; the token strings stay the tokenizer's own.
    """
    raw = [None if any(c not in _BYTES for c in t) else bytes(_BYTES[c] for c in t)
           for t in map(str, tokens)]
    labels: list[str] = []
    for i, data in enumerate(raw):
        if data is None:
            labels.append(str(tokens[i]))
            continue
        after = b""  # the bytes of the next tokens, which may complete a split character
        for nxt in raw[i + 1 : i + 4]:
            if nxt is None:
                break
            after += nxt
        out, pos = [], 0
        while pos < len(data) and 0x80 <= data[pos] <= 0xBF:  # continues an earlier token
            pos += 1
        out.append(_escape(data[:pos]))
        if pos == 0:
            spaces = len(data) - len(data.lstrip(b" "))
            out.append(WORD_START * spaces)
            pos = spaces
        while pos < len(data):
            need = _utf8_length(data[pos])
            chunk = (data[pos : pos + need] + after)[:need] if need else b""
            try:
                text = chunk.decode("utf-8") if need and len(chunk) == need else None
            except UnicodeDecodeError:
                text = None
            if text is None:  # no character: escape this byte and go on
                out.append(_escape(data[pos : pos + 1]))
                pos += 1
            else:
                out.append(text)
                pos += need
        labels.append("".join(out))
    return tuple(labels)
