"""The frozen result of :func:`probe.generate`: attention recorded while a model generates.

Row ``i`` of every generated-step tensor is the query that *produced* generated token ``i``:
for a decoder-only model the last prompt token for ``i = 0``, then generated token ``i - 1``;
for an encoder-decoder the decoder start token, then generated token ``i - 1``. Self-attention
keys are the positions of the whole sequence (prompt + generated, ``total``); a row has zero
weight on the keys that did not exist yet. The model never reads its last generated token,
so the tokens it processed are ``total - 1``; :meth:`GenerationTrace.to_trace` returns them
as an ordinary :class:`~probe.capture._trace.Trace` (what one teacher-forced forward over
those tokens captures), so every analyzer and viewer works on a generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.capture._guard import _Attentions, _checked_state
from probe.capture._trace import (
    AttentionStack,
    Family,
    Trace,
    stored_attentions,
    stored_summary,
)

if TYPE_CHECKING:
    import torch

__all__ = ["GenerationTrace"]

Rows = tuple[tuple[str, ...], ...]
WordIds = tuple[tuple[int | None, ...], ...]
Spans = tuple[tuple[tuple[int, int] | None, ...], ...]


class NotATraceError(ProbeError, AttributeError):
    """A :class:`Trace` attribute read from a :class:`GenerationTrace` (an AttributeError too,
    so ``getattr(gen, name, default)`` keeps working)."""


@dataclass(frozen=True)
class GenerationTrace:
    """Attention of every generation step, assembled per layer. Immutable.

    Every attention tensor it holds (``attentions``, ``prompt_attentions``, ``cross_prompt``
    and the ``encoder`` and ``cross`` stacks) is guarded as a :class:`Trace`'s is: written in
    place, the next read of it (``to_trace``, pickling, ``copy.deepcopy``) raises
    :class:`~probe.capture._trace.ModifiedTraceError`.

    Attributes:
        attentions: ``[layer, batch, head, generated, total]`` self-attention of the
            generating stack (decoder-only: the model; encoder-decoder: the decoder), one row
            per generated token (the query that produced it).
        prompt_attentions: ``[layer, batch, head, prompt - 1, total]`` the prompt's other rows
            of the first step, or ``None`` (``keep_prompt=False``, or a one-token prompt).
        encoder: encoder self-attention ``[layer, batch, head, source, source]`` (once).
        cross: cross-attention ``[layer, batch, head, generated, source]``.
        cross_prompt: cross-attention of the decoder prompt's other rows, or ``None``.
        tokens: per batch item, the tokens of the generating sequence: prompt (decoder-only)
            or decoder start (encoder-decoder), then the generated tokens; padding included.
        num_prompt_tokens: tokens before the first generated one (``P``; ``total = P + n``).
        words, word_ids: per batch item, the words of the generated text and, per generated
            token, its word index (``None`` for special tokens), or ``None`` without a
            tokenizer. Words are read from the tokenizer's encoding of the decoded text, so
            only an item whose generated tokens encode back to themselves has them; reading
            another item's (``gen.words[b]``) raises a :class:`probe.ProbeError` saying why
            (see :attr:`words_missing`).
        token_spans: per batch item, per generated token, its ``(start, end)`` characters
            within its word (see :attr:`Trace.token_spans`), or ``None`` without offsets.
        prompt_words, prompt_word_ids: words of the prompt / source text and each prompt
            (decoder-only) or source (encoder-decoder) token's word index.
        source_tokens: encoder-decoders: per batch item, the source tokens.
        source_ids: encoder-decoders: ``[batch, source]`` the source token ids.
        text: per batch item, the generated text (special tokens skipped).
        byte_level: the tokens are byte-level BPE symbols (see :attr:`Trace.labels`).
        unk_token: the tokenizer's unknown token (see :attr:`Trace.unk_token`).
        sequences: ``[batch, total]`` token ids (prompt / decoder start + generated).
        scores: ``[batch, generated, vocab]`` the processed next-token scores of each step
            (what the sampler or argmax saw).
        attention_mask: ``[batch, total]`` bool, False for padding of the prompt.
        special_tokens_mask: ``[batch, total]`` bool, True for BOS/EOS/PAD and the decoder start.
        source_mask: ``[batch, source]`` bool, encoder-decoders.
        generated_mask: ``[batch, generated]`` bool, True up to and including the first EOS
            (later steps of finished items are padding the model still ran).
        source_grid, source_prefix_tokens, source_image_size, source_pixel_values:
            image-to-text models: the patch grid of the source image and the encoder tokens
            before the patches (the cross-attention keys), the image size and pixels (a
            Trace's ``grid``, ``num_prefix_tokens``, ``image_size``, ``pixel_values``);
            ``None``/0 for text sources.
    """

    attentions: torch.Tensor = _Attentions()  # type: ignore[assignment]  # edits refused
    layer_names: tuple[str, ...]
    layer_indices: tuple[int, ...]
    head_indices: tuple[int, ...] | None
    model_name: str
    family: Family
    tokens: Rows | None
    num_prompt_tokens: int
    sequences: torch.Tensor
    scores: torch.Tensor
    attention_mask: torch.Tensor
    special_tokens_mask: torch.Tensor
    generated_mask: torch.Tensor
    prompt_attentions: torch.Tensor | None = _Attentions(optional=True)  # type: ignore[assignment]
    encoder: AttentionStack | None = None
    cross: AttentionStack | None = None
    cross_prompt: torch.Tensor | None = _Attentions(optional=True)  # type: ignore[assignment]
    words: Rows | None = None
    word_ids: WordIds | None = None
    prompt_words: Rows | None = None
    prompt_word_ids: WordIds | None = None
    token_spans: Spans | None = None
    prompt_token_spans: Spans | None = None
    source_tokens: Rows | None = None
    source_ids: torch.Tensor | None = None
    source_mask: torch.Tensor | None = None
    source_special_tokens_mask: torch.Tensor | None = None
    text: tuple[str, ...] | None = None
    num_heads: int = 0
    num_model_layers: int = 0
    output: Any = field(default=None, repr=False, compare=False)
    byte_level: bool = False
    unk_token: str | None = None
    source_grid: tuple[int, int] | None = None
    source_prefix_tokens: int = 0
    source_image_size: tuple[int, int] | None = None
    source_pixel_values: torch.Tensor | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ geometry
    @property
    def num_generated(self) -> int:
        return int(stored_attentions(self).shape[3])  # the shape as stored: no stacking

    @property
    def batch_size(self) -> int:
        return int(self.sequences.shape[0])

    @property
    def generated_ids(self) -> torch.Tensor:
        """``[batch, generated]`` the generated token ids."""
        return self.sequences[:, self.num_prompt_tokens :]

    @property
    def generated_tokens(self) -> Rows | None:
        if self.tokens is None:
            return None
        return tuple(row[self.num_prompt_tokens :] for row in self.tokens)

    def __getstate__(self) -> dict[str, Any]:
        return _checked_state(self)  # an edited generation is not copied as if captured

    @property
    def words_missing(self) -> tuple[str | None, ...]:
        """Per batch item, ``None`` when its generated words are known (``gen.words[b]``),
        else why they are not (its generated tokens do not encode back to themselves, or no
        tokenizer was given)."""
        if self.words is None:
            return ("no tokenizer was given to probe.generate (pass tokenizer=...)",) * (
                self.batch_size
            )
        return tuple(getattr(self.words, "missing", (None,) * len(self.words)))

    @property
    def is_encoder_decoder(self) -> bool:
        return self.family == "encoder-decoder"

    # ------------------------------------------------------------------ as a trace
    def to_trace(self) -> Trace:
        """The tokens the model processed as a :class:`Trace` (square self-attention).

        Decoder-only: ``attentions`` ``[layer, batch, head, T, T]`` over the ``T = total - 1``
        tokens read by the model (prompt + all generated but the last). Encoder-decoders: the
        encoder in ``attentions``, the decoder in ``trace.decoder`` and the cross-attention in
        ``trace.cross`` over the decoder tokens read. Equal to ``probe.trace`` of one
        teacher-forced forward over those tokens.

        Raises:
            ProbeError: the prompt rows were not kept (``keep_prompt=False``) and the prompt
                is longer than one token, so the square matrix is incomplete.
        """
        import torch

        if self.num_prompt_tokens > 1 and self.prompt_attentions is None:
            raise ProbeError(
                "this generation kept only the generated rows (keep_prompt=False): the prompt's "
                "own attention is missing; generate again with keep_prompt=True to get a Trace"
            )
        total = self.num_prompt_tokens + self.num_generated - 1
        parts = [self.attentions] if self.prompt_attentions is None else [
            self.prompt_attentions, self.attentions
        ]
        square = torch.cat(parts, dim=3)[..., :total]
        tokens = None if self.tokens is None else tuple(row[:total] for row in self.tokens)
        mask = self.attention_mask[:, :total]
        stack = AttentionStack("self", square, self.layer_names, self.layer_indices,
                               self.head_indices, num_model_layers=self.num_model_layers,
                               num_heads=self.num_heads)  # the generating stack's own counts
        common = dict(
            model_name=self.model_name, family=self.family, num_heads=self.num_heads,
            num_model_layers=self.num_model_layers, output=self.output,
            byte_level=self.byte_level, unk_token=self.unk_token,
        )
        if not self.is_encoder_decoder:
            return Trace(
                attentions=square, layer_names=self.layer_names, layer_indices=self.layer_indices,
                head_indices=self.head_indices, attention_mask=mask,
                special_tokens_mask=self.special_tokens_mask[:, :total], tokens=tokens,
                **self._joined_words(total), input_ids=self.sequences[:, :total], **common,
            )
        if self.encoder is None or self.cross is None or self.source_mask is None:
            raise ProbeError("this encoder-decoder generation holds no encoder or cross-attention")
        cross_parts = [self.cross.attentions] if self.cross_prompt is None else [
            self.cross_prompt, self.cross.attentions
        ]
        cross = AttentionStack(
            "cross", torch.cat(cross_parts, dim=3), self.cross.layer_names,
            self.cross.layer_indices, self.cross.head_indices,
            num_model_layers=self.cross.num_model_layers, num_heads=self.cross.num_heads,
        )
        # the trace's main stack is the encoder: its counts, not the generating decoder's (0,
        # unknown, in a generation pickled before stacks kept counts: read from what was kept)
        common.update(num_model_layers=self.encoder.num_model_layers,
                      num_heads=self.encoder.num_heads)
        return Trace(
            attentions=self.encoder.attentions, layer_names=self.encoder.layer_names,
            layer_indices=self.encoder.layer_indices, head_indices=self.encoder.head_indices,
            attention_mask=self.source_mask,
            special_tokens_mask=_or_zeros(self.source_special_tokens_mask, self.source_mask),
            tokens=self.source_tokens, words=self.prompt_words, word_ids=self.prompt_word_ids,
            token_spans=self.prompt_token_spans,
            decoder=stack, cross=cross, decoder_tokens=tokens, grid=self.source_grid,
            num_prefix_tokens=self.source_prefix_tokens, image_size=self.source_image_size,
            pixel_values=self.source_pixel_values, **common,
        )

    def _joined_words(self, total: int) -> dict[str, Any]:
        """Decoder-only: prompt words then the generated words read by the model (an item
        without generated words has word id ``None`` on its generated tokens), and the
        tokens' spans within their words when both parts have them."""
        if self.prompt_word_ids is None or self.prompt_words is None:
            return {}
        n = self.num_prompt_tokens
        prompt_spans = self.prompt_token_spans
        words_all, ids_all, spans_all = [], [], []
        for b, (words, ids) in enumerate(zip(self.prompt_words, self.prompt_word_ids)):
            ids = list(ids)[:n]
            spans = None if prompt_spans is None else list(prompt_spans[b])[:n]
            words = list(words)
            if self.words_missing[b] is None and self.word_ids is not None:
                seen: dict[int, int] = {}
                generated = (None if self.token_spans is None
                             else self.token_spans[b][: total - n])  # type: ignore[index]
                for i, w in enumerate(self.word_ids[b][: total - n]):
                    if w is not None and w not in seen:
                        seen[w] = len(words)
                        words.append(self.words[b][w])
                    ids.append(None if w is None else seen[w])
                    if spans is not None:
                        spans.append(None if generated is None else generated[i])
                if generated is None:
                    spans = None
            ids += [None] * (total - len(ids))
            words_all.append(tuple(words))
            ids_all.append(tuple(ids))
            spans_all.append(None if spans is None else
                             tuple(spans) + (None,) * (total - len(spans)))
        out: dict[str, Any] = {"words": tuple(words_all), "word_ids": tuple(ids_all)}
        if all(s is not None for s in spans_all):
            out["token_spans"] = tuple(spans_all)
        return out

    def __getattr__(self, name: str) -> Any:
        """Only called for names the generation lacks: a :class:`Trace` name says to convert."""
        if not name.startswith("__") and (
            name in Trace.__dataclass_fields__ or hasattr(Trace, name)
        ):
            raise NotATraceError(
                f"this is a GenerationTrace, not a probe.Trace: pass gen.to_trace() (the "
                f"attention over every token the model read), which has {name!r}"
            )
        raise AttributeError(f"'GenerationTrace' object has no attribute {name!r}")

    def __repr__(self) -> str:
        # shapes as stored: a repr neither stacks the attention nor raises on an edited trace
        extra = "" if self.cross is None else f", cross={stored_summary(self.cross)}"
        return (
            f"GenerationTrace(model={self.model_name!r}, family={self.family!r}, "
            f"generated={self.num_generated}, "
            f"attentions={stored_summary(self)}{extra})"
        )


def _or_zeros(mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.zeros_like(like) if mask is None else mask
