"""Text helpers of the base room, with no dependency.

* :func:`plain_text`: text without reStructuredText markup, on one line (what the command
  line prints from docstrings); :func:`with_article`: ``"an encoder"``, ``"a vision"``.
* :func:`not_utf8`: why bytes are not UTF-8, naming UTF-16 and UTF-32 by their byte order mark
  and the legacy Chinese, Japanese and Korean encodings text in them reads as.
* Token labels (what figures, HTML views and file names show of a token; the token strings
  themselves stay the tokenizer's own):

  - :func:`byte_level_labels` decodes byte-level BPE symbols (``Ġthe`` -> ``▁the``, split
    UTF-8 characters whole on their first token, stray bytes as ``<0xAD>``);
  - :func:`visible_text` writes every character that draws as nothing or misleads as its
    code point ``<U+200B>`` (:func:`code_point`, the spelling the viewers also use for
    characters no font draws, such as emoji): zero-width and bidi-control characters, other
    format and control characters, a token made only of unusual whitespace (``<U+3000>``), a
    combining mark with no letter to sit on.
* :func:`text_direction`: the reading direction of a sequence of tokens or words, ``"ltr"``
  or ``"rtl"``, from its first strong character (Unicode bidi, as HTML's ``dir="auto"``),
  special-token markup (``[CLS]``, ``<s>``, ``<|endoftext|>``) skipped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

__all__ = [
    "WORD_START",
    "byte_level_labels",
    "code_point",
    "not_utf8",
    "plain_text",
    "text_direction",
    "visible_text",
    "with_article",
]

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_INTERPRETED = re.compile(r"`([^`]+)`")


_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"),
)


def not_utf8(data: bytes, error: UnicodeDecodeError) -> str:
    """What is wrong with ``data``, which failed to decode as UTF-8 with ``error``:
    ``"is UTF-16 (it starts with a UTF-16 byte order mark)"`` (Windows Notepad's "Unicode"),
    likewise UTF-32, else ``"is not UTF-8 (byte N)"``. The caller adds the fix."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return f"is {name} (it starts with a {name} byte order mark)"
    legacy = _legacy_cjk(data)
    if legacy:
        return f"is not UTF-8 (byte {error.start}; it reads as {legacy})"
    return f"is not UTF-8 (byte {error.start})"


#: the legacy encodings of Chinese, Japanese and Korean Windows, tried in this order, and
#: the characters that text in them must be mostly made of
_LEGACY_CJK = (
    ("shift_jis", "Japanese in Shift_JIS", lambda c: 0x3040 <= ord(c) <= 0x30FF),
    ("euc_kr", "Korean in EUC-KR", lambda c: 0xAC00 <= ord(c) <= 0xD7A3),
    ("gb18030", "Chinese in GB18030/GBK or Big5", lambda c: 0x4E00 <= ord(c) <= 0x9FFF),
    ("big5", "Chinese in GB18030/GBK or Big5", lambda c: 0x4E00 <= ord(c) <= 0x9FFF),
)


def _legacy_cjk(data: bytes) -> str | None:
    """The legacy CJK encoding ``data`` reads as, when it decodes without error into at least
    two non-ASCII characters, made mostly of non-ASCII bytes (Latin-1's ``a\xe9b`` reads as
    one GBK character over an ASCII byte: no), at least half of them of that language's
    script (kana, Hangul, CJK ideographs); ``None`` otherwise (a guess worth naming, never
    used to decode)."""
    for codec, name, script in _LEGACY_CJK:
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        wide = [c for c in text if ord(c) > 0x7F]
        high = sum(b > 0x7F for b in data)  # many characters of these encodings: 2 such bytes
        if len(wide) >= 2 and 4 * high >= 5 * len(wide) and 2 * sum(map(script, wide)) >= len(
            wide
        ):
            return name
    return None


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


# ----------------------------------------------------------------- invisible characters
def code_point(ch: str) -> str:
    """How a label writes a character it cannot show: ``<U+200B>``, ``<U+1F44D>``."""
    return f"<U+{ord(ch):04X}>"


#: letters that draw as nothing (Hangul fillers: default-ignorable, yet category Lo)
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
#: joiners that change how their neighbours draw (a Persian non-joining, an emoji sequence)
_JOINERS = frozenset("\u200c\u200d")
#: whitespace a label shows as itself: a space (figures then draw ``␣`` for a blank token),
#: and newlines and tabs, which figures write ``\n``, ``\t``
_PLAIN_SPACE = frozenset(" \n\r\t")


def _hidden(ch: str) -> bool:
    """Whether ``ch`` draws as nothing or changes how other text draws: control and format
    characters (zero-width space, word joiner, BOM, bidi controls, soft hyphen...), line and
    paragraph separators, private-use, surrogate and unassigned code points, blank letters."""
    if ch in _PLAIN_SPACE:
        return False
    return unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp") \
        or ch in _BLANK_LETTERS


def visible_text(text: str) -> str:
    """``text`` with every character that would draw as nothing or mislead written as its
    code point (:func:`code_point`), so a label always shows what its token holds.

    One rule, applied character by character:

    * control and format characters (category Cc, Cf: zero-width space U+200B, word joiner
      U+2060, BOM U+FEFF, soft hyphen, the bidi marks U+200E/F, embeddings and overrides
      U+202A-202E and isolates U+2066-2069, which would reorder the label), line/paragraph
      separators, private-use and unassigned code points, Hangul fillers -> ``<U+XXXX>``.
      Newline, tab and carriage return are left to the caller (figures write ``\n``).
      The joiners U+200C/U+200D stay when they sit between two shown characters, where they
      do something visible (a Persian word's non-joining, an emoji sequence); elsewhere
      (alone, at an edge) they are written as code points too.
    * a text made only of whitespace, some of it not a plain space (U+3000 ideographic
      space, U+00A0 no-break space): every such character -> ``<U+3000>`` (a plain-space
      token stays blank; figures draw it as ``␣``).
    * a combining mark (category M) with no character to sit on (at the start, or after a
      space, ``▁``, a WordPiece ``##`` prefix or a character written as a code point):
      ``<U+0301>``, ``##<U+093F>`` (a Devanagari vowel sign would otherwise be drawn on the
      ``#``). Unicode's own convention, the mark on a dotted circle (◌́), needs a font and
      text shaping that place the mark there for every script; the code point reads the same
      everywhere.
    * a conjoining Hangul jamo that forms no syllable with its neighbours (an uncased BERT
      tokenizer decomposes Korean syllables and splits the jamo over tokens: ``ᄂ``,
      ``##ᅥ``) -> the same letter in its standalone (compatibility) form, ``ㄴ``, ``##ㅓ``:
      alone, a conjoining jamo is drawn as a fragment of a syllable block. Jamo that do form
      a syllable are written as that syllable (NFC).

    Everything else is unchanged (the result of ordinary text is ``text`` itself).
    """
    text = str(text)
    if text.isascii() and text.isprintable():
        return text
    if text and text.isspace() and any(ch not in _PLAIN_SPACE for ch in text):
        return "".join(ch if ch in _PLAIN_SPACE else code_point(ch) for ch in text)
    if any(_is_jamo(ch) for ch in text):
        text = _standalone_jamo(text)
    out: list[str] = []
    base = False  # whether the previous character shown can carry a combining mark
    prefix = 2 if text.startswith("##") else 0  # WordPiece's continuation mark carries none
    for i, ch in enumerate(text):
        if i < prefix:
            out.append(ch)
            continue
        if ch in _JOINERS:
            after = text[i + 1 : i + 2]
            keep = base and bool(after) and not after.isspace() and not _hidden(after)
            out.append(ch if keep else code_point(ch))
            continue
        if _hidden(ch) or (unicodedata.category(ch).startswith("M") and not base):
            out.append(code_point(ch))
            base = False
            continue
        out.append(ch)
        base = not ch.isspace() and ch != WORD_START
    return "".join(out)


# ----------------------------------------------------------------- reading direction
#: a token that is markup, not text: ``[CLS]``, ``[SEP]``, ``<s>``, ``</s>``, ``<pad>``,
#: ``<|endoftext|>``, ``<extra_id_0>``, and the escapes of the labels (``<U+200B>``, ``<0xAD>``)
_MARKUP = re.compile(
    r"\[[A-Za-z_]+[0-9]*\]|<\|[^<>|]*\|>|</?[A-Za-z_][^<>\s]*>|<U\+[0-9A-F]{4,6}>|<0x[0-9A-F]{2}>"
)


def text_direction(texts: Sequence[str]) -> str | None:
    """The reading direction of a text given as its tokens or words: ``"rtl"`` when its first
    strong character (Unicode bidi class L, R or AL) is right-to-left (Arabic, Hebrew,
    Syriac, Thaana, N'Ko...), ``"ltr"`` when it is left-to-right, ``None`` when it has none
    (digits, punctuation, nothing).

    This is HTML's ``dir="auto"`` (the paragraph level of the Unicode bidi algorithm, rules
    P2-P3) over the whole sequence, except that special-token markup is skipped whole
    (``[CLS]``, ``<s>``, ``<|endoftext|>``, and label escapes such as ``<U+200B>``): the
    ``C`` of ``[CLS]`` would otherwise make every BERT sentence left-to-right. A sentence
    mixing directions takes the direction of its first strong character only.
    """
    for text in texts:
        for ch in _MARKUP.sub("", str(text)):
            kind = unicodedata.bidirectional(ch)
            if kind == "L":
                return "ltr"
            if kind in ("R", "AL"):
                return "rtl"
    return None


# ----------------------------------------------------------------- Hangul jamo
def _is_jamo(ch: str) -> bool:
    """Conjoining Hangul jamo: U+1100-11FF, U+A960-A97F, U+D7B0-D7FF."""
    o = ord(ch)
    return 0x1100 <= o <= 0x11FF or 0xA960 <= o <= 0xA97F or 0xD7B0 <= o <= 0xD7FF


_JAMO_ROLES = ("HANGUL CHOSEONG ", "HANGUL JUNGSEONG ", "HANGUL JONGSEONG ")
_COMPAT_JAMO: dict[str, str] = {}


def _compat_jamo(ch: str) -> str:
    """The compatibility (standalone) letter of the conjoining jamo ``ch`` (``ᆫ`` -> ``ㄴ``),
    or ``ch`` when Unicode has none (archaic jamo)."""
    if not _COMPAT_JAMO:
        for code in range(0x3131, 0x318F):
            name = unicodedata.name(chr(code), "")
            if name.startswith("HANGUL LETTER "):
                _COMPAT_JAMO[name[len("HANGUL LETTER "):]] = chr(code)
    name = unicodedata.name(ch, "")
    for role in _JAMO_ROLES:
        if name.startswith(role):
            return _COMPAT_JAMO.get(name[len(role):], ch)
    return ch


def _standalone_jamo(text: str) -> str:
    """``text`` with runs of jamo that form syllables composed (NFC) and every other jamo
    written as its compatibility letter (the Hangul fillers stay, for the caller to name)."""
    text = _JAMO_RUN.sub(lambda run: unicodedata.normalize("NFC", run.group(0)), text)
    return "".join(
        _compat_jamo(ch) if _is_jamo(ch) and ch not in _BLANK_LETTERS else ch for ch in text
    )


_JAMO_RUN = re.compile("[\u1100-\u11ff\ua960-\ua97f\ud7b0-\ud7ff]+")


def short_repr(value: object, limit: int = 80) -> str:
    """``value`` for a one-line message: an array or tensor with dimensions by its type and
    shape, any other ``repr`` on one line, cut to ``limit`` characters."""
    shape = getattr(value, "shape", None)
    if shape is not None and len(tuple(shape)) > 0:
        return f"<{type(value).__name__} of shape {tuple(shape)}>"
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
