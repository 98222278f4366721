"""Encoding and checking text inputs for the HuggingFace text families.

* One string is never padded, so tokenizers without a pad token (GPT-2, most decoder LLMs)
  work. A batch is padded by the tokenizer when it has a pad token; otherwise probe pads it
  itself on the tokenizer's ``padding_side`` with the EOS id (or 0) and an attention mask of 0
  there, so the padding is never attended to and never belongs to a word.
* ``attention_mask`` must match ``input_ids`` and leave every item at least one token.
* A text of special tokens only (``"[CLS] [SEP]"``) is refused: there is nothing to look at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.capture.adapters._words import (
    TokenSpans,
    WordIds,
    Words,
    token_spans_of_encoding,
    words_of_encoding,
)

if TYPE_CHECKING:
    import torch

__all__ = ["check_embeds", "check_mapping_keys", "check_mask", "check_not_only_special",
           "check_positions", "check_token_types", "encode_targets", "encode_texts",
           "is_byte_level", "word_labels"]

Pads = list[tuple[int, int]]


def _pad_id(tokenizer: Any) -> int | None:
    try:
        value = tokenizer.pad_token_id
    except (AttributeError, KeyError, ValueError):
        return None
    return value if isinstance(value, int) else None


def encode_texts(tokenizer: Any, texts: list[str]) -> tuple[Any, dict[str, Any], Pads | None]:
    """Encode ``texts``: ``(encoding, forward kwargs as tensors, padding probe added or None)``."""
    import torch

    if len(texts) == 1 or _pad_id(tokenizer) is not None:
        enc = tokenizer(texts, return_tensors="pt", padding=len(texts) > 1, truncation=False,
                        verbose=False)  # probe checks the length against the model itself
        return enc, dict(enc), None
    enc = tokenizer(texts, truncation=False, verbose=False)
    lengths = [len(row) for row in enc["input_ids"]]
    longest = max(lengths)
    left = getattr(tokenizer, "padding_side", "right") == "left"
    eos = getattr(tokenizer, "eos_token_id", None)
    fill = {"input_ids": eos if isinstance(eos, int) else 0, "attention_mask": 0}
    pads: Pads = [((longest - n, 0) if left else (0, longest - n)) for n in lengths]
    kwargs: dict[str, Any] = {}
    for key, rows in enc.items():
        if not (isinstance(rows, list) and all(isinstance(r, list) for r in rows)):
            continue
        value = fill.get(key, 0)
        padded = [[value] * a + list(r) + [value] * b for r, (a, b) in zip(rows, pads)]
        kwargs[key] = torch.tensor(padded, dtype=torch.long)
    return enc, kwargs, pads


def encode_targets(tokenizer: Any, texts: list[str]) -> dict[str, Any]:
    """Encode decoder ``texts`` (``text_target=``): ``decoder_input_ids`` and
    ``decoder_attention_mask`` tensors. One text (or texts of one length) needs no padding, so
    a tokenizer without a pad token works; texts of different lengths need one.

    Raises:
        ProbeError: texts of different lengths and no pad token, naming the fix.
    """
    import torch

    if len(texts) == 1 or _pad_id(tokenizer) is not None:
        enc = tokenizer(text_target=texts, return_tensors="pt", padding=len(texts) > 1,
                        verbose=False)
        return {"decoder_input_ids": enc["input_ids"],
                "decoder_attention_mask": enc["attention_mask"]}
    rows = tokenizer(text_target=texts, verbose=False)["input_ids"]
    lengths = sorted({len(r) for r in rows})
    if len(lengths) > 1:
        raise ProbeError(
            f"the {len(texts)} decoder texts are {lengths[0]} to {lengths[-1]} tokens long and "
            "the tokenizer has no pad token to even them out: set tokenizer.pad_token (e.g. "
            "tokenizer.pad_token = tokenizer.eos_token), or pass padded decoder_input_ids "
            "with their decoder_attention_mask in the inputs mapping"
        )
    ids = torch.tensor(rows, dtype=torch.long)
    return {"decoder_input_ids": ids, "decoder_attention_mask": torch.ones_like(ids)}


def check_mask(mask: Any, input_ids: torch.Tensor | None, name: str = "attention_mask",
               embeds: torch.Tensor | None = None, real: bool = True) -> None:
    """``attention_mask`` ``[batch, seq]`` like ``input_ids`` (or ``inputs_embeds``'
    ``[batch, seq, hidden]``), bool or 0/1 values, each item with a real token.

    transformers reads any non-zero value as a real token (a mask of 2s, -1s or NaNs ran as
    all ones), so other values are refused rather than guessed at. ``real=False``: a mask
    that marks no token is fine (Longformer's ``global_attention_mask``).
    """
    import torch

    if not isinstance(mask, torch.Tensor):
        raise ProbeError(f"{name} must be a tensor [batch, seq], got {type(mask).__name__}")
    ids, ref = ("input_ids", input_ids) if input_ids is not None else ("inputs_embeds", embeds)
    if isinstance(ref, torch.Tensor) and ref.dim() >= 2 and (
            tuple(mask.shape) != tuple(ref.shape[:2])):
        fix = ("the mask the tokenizer returned with these ids" if real else
               f"one value per token, [batch, seq] {tuple(ref.shape[:2])}")
        raise ProbeError(
            f"{name} {tuple(mask.shape)} does not match {ids} {tuple(ref.shape)}: pass {fix}"
        )
    if mask.dim() != 2:
        raise ProbeError(f"{name} must be a tensor [batch, seq], got shape {tuple(mask.shape)}")
    if mask.is_complex():
        raise ProbeError(f"{name} must hold 0 and 1 (or be a bool tensor), got {mask.dtype}")
    if mask.is_meta:
        raise ProbeError(f"{name} is on the meta device and holds no values: pass a real mask")
    if not mask.numel() or mask.dtype == torch.bool:
        odd = None
    else:
        values = mask.detach()
        bad = ~((values == 0) | (values == 1))
        odd = values[bad].flatten()[:1].tolist() if bool(bad.any()) else None
    if odd and not real:
        raise ProbeError(f"{name} holds {odd[0]!r}: it holds 1 for a token with global "
                         "attention and 0 for the others; pass a 0/1 or bool mask")
    if odd:
        raise ProbeError(
            f"{name} holds {odd[0]!r}: a mask holds 1 for a real token and 0 for padding "
            "(transformers reads any other non-zero value as real); pass a 0/1 or bool mask"
        )
    if real and mask.numel() and not bool(mask.bool().any(-1).all()):
        empty = int((~mask.bool().any(-1)).nonzero()[0, 0])
        raise ProbeError(
            f"{name} masks every token of item {empty}: each item needs a real token"
        )


#: what a tokenizer returns about the encoding, not for the model (``return_offsets_mapping``,
#: ``return_special_tokens_mask``, ``return_length``, overflow): dropped from an input mapping
TOKENIZER_ONLY = frozenset({"offset_mapping", "special_tokens_mask", "length",
                            "overflowing_tokens", "num_truncated_tokens",
                            "overflow_to_sample_mapping"})


def check_mapping_keys(kwargs: dict[str, Any], model: Any) -> None:
    """Drop the tokenizer-only keys of an input mapping (in place; ``kwargs`` is probe's own
    copy) and refuse a key the model's forward does not take (it was silently ignored)."""
    import difflib

    from probe.capture.adapters._base import forward_keywords

    for key in TOKENIZER_ONLY & set(kwargs):
        del kwargs[key]
    named, open_kw = forward_keywords(model)
    if open_kw:
        return  # the forward takes **kwargs probe cannot list: the model judges them
    what = f"{type(model).__name__}.forward"
    for key in kwargs:
        if key in named:
            continue
        close = difflib.get_close_matches(str(key), sorted(named), n=1, cutoff=0.75)
        hint = f"did you mean {close[0]!r}?" if close else "drop it from the mapping"
        raise ProbeError(
            f"the input mapping holds {key!r}, which is not a keyword {what} takes: {hint}"
        )


def check_embeds(embeds: Any, input_ids: Any, hidden: int | None, limit: int | None) -> None:
    """``inputs_embeds`` ``[batch, seq, hidden]``: floating, real and finite values, at most
    ``limit`` positions, not beside ``input_ids`` (the model takes one of them)."""
    import torch

    if input_ids is not None:
        raise ProbeError("the inputs hold both input_ids and inputs_embeds: pass one of them")
    if not isinstance(embeds, torch.Tensor):
        raise ProbeError(f"inputs_embeds must be a tensor [batch, seq, hidden], got "
                         f"{type(embeds).__name__}")
    if embeds.dim() != 3 or not embeds.is_floating_point():
        raise ProbeError(f"inputs_embeds must be a float tensor [batch, seq, hidden], got "
                         f"{embeds.dtype} {tuple(embeds.shape)}")
    batch, seq, width = (int(n) for n in embeds.shape)
    if not batch or not seq:
        raise ProbeError(f"inputs_embeds {tuple(embeds.shape)} hold no tokens: pass at least "
                         "one token")
    if hidden is not None and width != hidden:
        raise ProbeError(f"inputs_embeds are {width} wide but the model embeds tokens in "
                         f"{hidden}: pass embeddings of this model (its input embedding layer)")
    if limit is not None and seq > limit:
        raise ProbeError(f"the input is {seq} tokens long but the model accepts at most "
                         f"{limit}: shorten the input or split it into chunks")
    if embeds.is_meta:
        raise ProbeError("inputs_embeds are on the meta device and hold no values: pass real "
                         "embeddings")
    bad = ~torch.isfinite(embeds.detach())
    if bool(bad.any()):
        b, t, _ = (int(i) for i in bad.nonzero()[0])
        raise ProbeError(f"inputs_embeds hold {int(bad.sum())} non-finite value(s) (first at "
                         f"item {b}, token {t}), which would make the attention maps NaN: fix "
                         "them (torch.nan_to_num(x) replaces them)")


def check_positions(positions: Any, shape: tuple[int, int], table: int | None) -> None:
    """``position_ids`` ``[batch or 1, seq]`` of integers in ``0..table-1``
    (the rows of the model's position embedding; ``None``: no upper bound)."""
    import torch

    if not isinstance(positions, torch.Tensor):
        raise ProbeError(f"position_ids must be a tensor [batch, seq], got "
                         f"{type(positions).__name__}")
    batch, seq = shape
    if (positions.is_floating_point() or positions.is_complex()
            or positions.dtype == torch.bool):
        raise ProbeError(f"position_ids must be integers, got {positions.dtype}")
    if positions.dim() != 2 or int(positions.shape[1]) != seq or (
            int(positions.shape[0]) not in (1, batch)):
        raise ProbeError(f"position_ids {tuple(positions.shape)} do not fit the input "
                         f"({batch}, {seq}): pass [batch, seq] or [1, seq] positions")
    if positions.is_meta or not positions.numel():
        return
    low, high = int(positions.min()), int(positions.max())
    if low < 0 or (table is not None and high >= table):
        bound = f"0..{table - 1}" if table is not None else "0 or more"
        raise ProbeError(f"position id {low if low < 0 else high} is outside the model's "
                         f"positions ({bound}): pass positions in that range, or drop "
                         "position_ids (the model counts them itself)")


def check_token_types(types: Any, input_ids: torch.Tensor | None, type_vocab: Any) -> None:
    """``token_type_ids`` ``[batch, seq]`` like ``input_ids``, each id below ``type_vocab``
    (the config's ``type_vocab_size``; not checked when the config has none)."""
    import torch

    if not isinstance(types, torch.Tensor):
        raise ProbeError(
            f"token_type_ids must be a tensor [batch, seq], got {type(types).__name__}"
        )
    if input_ids is not None and tuple(types.shape) != tuple(input_ids.shape):
        raise ProbeError(
            f"token_type_ids {tuple(types.shape)} does not match input_ids "
            f"{tuple(input_ids.shape)}: pass the token_type_ids the tokenizer returned with "
            "these ids (or none)"
        )
    if types.is_floating_point() or types.is_complex() or types.dtype == torch.bool:
        raise ProbeError(f"token_type_ids must be integers, got {types.dtype}")
    if types.is_meta:
        raise ProbeError("token_type_ids are on the meta device and hold no values: pass real "
                         "ones (or none)")
    if isinstance(type_vocab, int) and types.numel():
        low, high = int(types.min()), int(types.max())
        if low < 0 or high >= type_vocab:
            raise ProbeError(
                f"token type id {low if low < 0 else high} is outside the model's "
                f"{type_vocab} token types (ids 0..{type_vocab - 1}): pass the token_type_ids "
                "this model's tokenizer returned"
            )


def check_not_only_special(
    texts: list[str], special: torch.Tensor, mask: torch.Tensor | None
) -> None:
    """Refuse texts whose every token is a structural special token."""
    real = ~special if mask is None else mask & ~special
    for text, row in zip(texts, real):
        if not bool(row.any()):
            from probe._text import visible_text

            # a mark with nothing to sit on is written <U+0301> (it drew on the quote)
            raise ProbeError(f"the text {visible_text(text)!r} holds only special tokens: pass "
                             "some words to look at")


def word_labels(
    encoding: Any, tokenizer: Any, texts: list[str] | None, pads: Pads | None, seq_len: int
) -> tuple[tuple[Words, ...], tuple[WordIds, ...], tuple[TokenSpans, ...] | None] | None:
    """Words, per-token word indices and per-token character spans within their word
    (:func:`token_spans_of_encoding`; ``None`` unless every item's text is known) of every
    item, aligned to the ``seq_len`` tokens.

    ``None`` when the encoding carries no word information or does not match the ids.
    """
    encodings = getattr(encoding, "encodings", None)
    if not encodings:
        return None
    words_all: list[Words] = []
    ids_all: list[WordIds] = []
    spans_all: list[TokenSpans] | None = []
    for b in range(len(encodings)):
        text = texts[b] if texts else None
        labels = words_of_encoding(encoding, b, tokenizer, text)
        if labels is None:
            return None
        words, word_ids = labels
        spans = None if text is None else token_spans_of_encoding(encoding, b, text, words,
                                                                  word_ids)
        if pads is not None:
            left, right = pads[b]
            word_ids = (None,) * left + word_ids + (None,) * right
            spans = None if spans is None else (None,) * left + spans + (None,) * right
        if len(word_ids) != seq_len:
            return None
        words_all.append(words)
        ids_all.append(word_ids)
        if spans is None or len(spans) != seq_len:
            spans_all = None
        elif spans_all is not None:
            spans_all.append(spans)
    return tuple(words_all), tuple(ids_all), None if spans_all is None else tuple(spans_all)


def is_byte_level(tokenizer: Any) -> bool:
    """True when ``tokenizer``'s tokens are byte-level BPE symbols (GPT-2, RoBERTa, BART,
    Llama 3): its own decoder turns the symbols of a space and a newline into those bytes."""
    try:
        return tokenizer.convert_tokens_to_string(["\u0120", "\u010a"]) == " \n"
    except Exception:  # a tokenizer that cannot decode these symbols is not byte-level
        return False
