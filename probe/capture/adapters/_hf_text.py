"""HuggingFace text models: encoders (BERT, RoBERTa, ...) and decoders (GPT-2, Llama, ...).

Both prepare text the same way (strings with a tokenizer, a tokenizer output, or an
``input_ids`` tensor) and name tokens and words from the tokenizer; they differ in how they
are recognised (a decoder's self-attention is causal) and in the query row their prediction
is read from (see :mod:`probe.attribution._attention`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from probe._errors import ProbeError
from probe._text import with_article
from probe.capture.adapters._base import (
    Family,
    ModelAdapter,
    Prepared,
    Site,
    dataset_hint,
    register_adapter,
)
from probe.capture.adapters._hf_hand import hand_attention
from probe.capture.adapters._hf_sites import (
    check_modality,
    find_hf_sites,
    intercept_hf,
    is_hf_model,
)
from probe.capture.adapters._text_inputs import (
    check_embeds,
    check_mapping_keys,
    check_mask,
    check_positions,
    check_not_only_special,
    check_token_types,
    encode_texts,
    is_byte_level,
    word_labels,
)
from probe.capture.adapters._words import special_mask

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.capture._recorder import StackRecorder

def check_encodable(text: str, what: str) -> None:
    """Refuse text that is not valid Unicode (lone surrogates, e.g. from undecodable bytes).

    Raises:
        ProbeError: naming the position of the first invalid character.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ProbeError(
            f"the {what} is not valid UTF-8 (an undecodable byte or lone surrogate at character "
            f"{exc.start}): pass valid UTF-8 text"
        ) from None


__all__ = ["HFDecoder", "HFEncoder", "HFTextModel"]


def is_hf_text(model: Any) -> bool:
    return is_hf_model(model) and getattr(model, "main_input_name", "input_ids") != "pixel_values"


class HFTextModel(ModelAdapter):
    """Shared behaviour of the HuggingFace text families (not registered itself)."""

    modality: ClassVar = "text"

    def find_sites(self) -> list[Site]:
        check_modality(self.model)
        return find_hf_sites(self.model)

    def intercept(
        self, sites: list[Site], recorders: dict[str, StackRecorder], chunk_size: int | None
    ) -> Any:
        return intercept_hf(self.model, sites, recorders, chunk_size)

    # ------------------------------------------------------------------ inputs
    def prepare(
        self,
        inputs: Any,
        *,
        tokenizer: Any = None,
        decoder_inputs: Any = None,
        forward_kwargs: dict[str, Any] | None = None,
    ) -> Prepared:
        import torch

        check_modality(self.model)  # speech, CLIP, vision-language models: first
        p = Prepared(main_key="input_ids")
        encoding: Any = None
        texts: list[str] | None = None
        pads: list[int] | None = None  # left padding added by probe (pad-less tokenizers)
        if tokenizer is not None and not callable(tokenizer):  # also with ids: names tokens
            raise ProbeError(
                f"tokenizer must be a tokenizer, got {type(tokenizer).__name__}: pass the "
                "one probe.load_model returned (model, tokenizer)"
            )
        if isinstance(inputs, str) or (
            isinstance(inputs, (list, tuple)) and inputs and all(isinstance(t, str) for t in inputs)
        ):
            if tokenizer is None:
                raise ProbeError(
                    "text inputs need a tokenizer: pass tokenizer=... "
                    "(probe.load_model returns one)"
                )
            texts = [inputs] if isinstance(inputs, str) else list(inputs)
            blank = [i for i, t in enumerate(texts) if not t.strip()]
            if blank and isinstance(inputs, str):
                raise ProbeError("empty text: pass a non-empty string")
            if blank:
                raise ProbeError(
                    f"empty text at index {blank[0]} of the {len(texts)} texts: pass non-empty "
                    "strings (drop or fill that item)"
                )
            for text in texts:
                check_encodable(text, "text")
            encoding, kwargs, pads = encode_texts(tokenizer, texts)
        elif isinstance(inputs, Mapping):
            kwargs = dict(inputs)
            if "input_ids" not in kwargs and "inputs_embeds" not in kwargs:
                raise ProbeError("the input mapping has no 'input_ids': pass a tokenizer's output")
            if getattr(inputs, "encodings", None):
                encoding = inputs
        elif isinstance(inputs, torch.Tensor):
            if inputs.dim() == 1:
                raise ProbeError(
                    f"input_ids must be [batch, seq], got shape {tuple(inputs.shape)}: use "
                    "ids.unsqueeze(0)"
                )
            kwargs = {"input_ids": inputs}
        elif isinstance(inputs, (list, tuple)) and not inputs:
            raise ProbeError(
                f"the inputs are an empty {type(inputs).__name__}: pass at least one string"
            )
        else:
            raise ProbeError(
                f"unsupported inputs of type {type(inputs).__name__}: pass a string, a list of "
                "strings, a tokenizer output or an input_ids tensor" + dataset_hint(inputs)
            )
        if not self.accepts("token_type_ids"):
            kwargs.pop("token_type_ids", None)
        if isinstance(inputs, Mapping):
            check_mapping_keys(kwargs, self.model)
        input_ids = kwargs.get("input_ids")
        if input_ids is not None:
            self.check_ids(input_ids)
            p.input_ids = input_ids.detach().clone()
        if "inputs_embeds" in kwargs:
            check_embeds(kwargs["inputs_embeds"], input_ids, self.embedding_width(),
                         self.max_length())
        mask = kwargs.get("attention_mask")
        if mask is not None:
            check_mask(mask, input_ids, embeds=kwargs.get("inputs_embeds"))
        if kwargs.get("token_type_ids") is not None:
            check_token_types(kwargs["token_type_ids"], input_ids,
                              getattr(self.model.config, "type_vocab_size", None))
        if mask is None and input_ids is not None:
            mask = torch.ones_like(input_ids, dtype=torch.bool)
        p.attention_mask = None if mask is None else mask.detach().to(torch.bool).cpu()
        if tokenizer is not None and input_ids is not None:
            p.tokens = tuple(
                tuple(tokenizer.convert_ids_to_tokens(row.tolist())) for row in input_ids
            )
            p.byte_level = is_byte_level(tokenizer)
            unk = getattr(tokenizer, "unk_token", None)
            p.unk_token = str(unk) if isinstance(unk, str) and unk else None
            special = special_mask(input_ids, tokenizer)
            p.special_tokens_mask = (
                special & p.attention_mask if p.attention_mask is not None else special
            )
            if texts is not None:
                check_not_only_special(texts, p.special_tokens_mask, p.attention_mask)
            if encoding is not None:
                labels = word_labels(encoding, tokenizer, texts, pads, int(input_ids.shape[1]))
                if labels is not None:
                    p.words, p.word_ids, p.token_spans = labels
        elif input_ids is not None:
            p.special_tokens_mask = self.special_from_config(input_ids)
        extra = dict(forward_kwargs or {})
        if "labels" in extra:  # before the decoder inputs: a seq2seq decoder may read them
            if "labels" in kwargs:
                raise ProbeError("labels are given twice, as labels= and in the input mapping: "
                                 "pass one of them")
            kwargs["labels"] = extra.pop("labels")
        self.add_decoder_inputs(p, kwargs, decoder_inputs, tokenizer)
        kwargs.update(extra)
        self.check_labels(kwargs)
        if kwargs.get("global_attention_mask") is not None:  # Longformer, LED: 1 = global
            check_mask(kwargs["global_attention_mask"], input_ids, "global_attention_mask",
                       embeds=kwargs.get("inputs_embeds"), real=False)
        main = input_ids if input_ids is not None else kwargs.get("inputs_embeds")
        if kwargs.get("position_ids") is not None and main is not None:
            check_positions(kwargs["position_ids"], tuple(main.shape[:2]), self.position_rows())
        self.add_left_padding_positions(kwargs, p.attention_mask)
        device = self.device
        p.kwargs = {
            k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
        return p

    def generate(self, prepared: Prepared, max_new_tokens: int, kwargs: dict[str, Any]) -> Any:
        """``model.generate`` on prepared inputs (see :mod:`._hf_generate`): a ``Generated``.

        Left padding is what decoder-only generation needs; a right-padded batch is refused.
        Positions are left to ``generate`` (it counts them from the attention mask).
        """
        from probe.capture.adapters._hf_generate import hf_generate

        mask = prepared.attention_mask
        if self.family == "decoder" and mask is not None and not bool(mask[:, -1].all()):
            raise ProbeError(
                "the batch is right-padded: decoder-only generation needs left padding; set "
                "tokenizer.padding_side = 'left' before encoding"
            )
        if self.family == "decoder" and prepared.input_ids is None:
            raise ProbeError(
                "probe.generate needs the prompt as input_ids: from inputs_embeds transformers "
                "returns only the generated tokens, so the prompt's keys could not be placed; "
                "pass input_ids (or the text with tokenizer=)"
            )
        limit = self.max_length()
        prompt = int(prepared.input_ids.shape[1]) if prepared.input_ids is not None else 0
        if self.family == "decoder" and limit is not None and prompt >= limit:
            raise ProbeError(
                f"the prompt is {prompt} tokens, and {self.name} accepts at most {limit} "
                f"positions: no room to generate; shorten the prompt to at most {limit - 1} "
                "tokens"
            )
        if self.family == "decoder" and limit is not None and prompt + max_new_tokens > limit:
            raise ProbeError(
                f"the prompt is {prompt} tokens and max_new_tokens={max_new_tokens} would reach "
                f"{prompt + max_new_tokens} positions, but {self.name} accepts at most {limit}: "
                f"use max_new_tokens <= {max(limit - prompt, 0)} or a shorter prompt"
            )
        if self.family == "encoder-decoder" and limit is not None and max_new_tokens > limit:
            raise ProbeError(  # the decoder's position table ran out: an IndexError
                f"max_new_tokens={max_new_tokens} would take the decoder past the {limit} "
                f"positions {self.name} accepts: use max_new_tokens <= {limit}"
            )
        drop = ("position_ids", "decoder_input_ids", "decoder_attention_mask")
        model_kwargs = {k: v for k, v in prepared.kwargs.items() if k not in drop}
        return hf_generate(self.model, model_kwargs, max_new_tokens, kwargs)

    def check_labels(self, kwargs: dict[str, Any]) -> None:
        """``labels`` for the model's loss fit its head (see :mod:`._labels`)."""
        if kwargs.get("labels") is None:
            return
        from probe.capture.adapters._labels import check_labels

        main = kwargs.get("input_ids")
        main = main if main is not None else kwargs.get("inputs_embeds")
        dec = kwargs.get("decoder_input_ids")
        check_labels(self.model, kwargs["labels"], tuple(main.shape[:2]) if main is not None
                     else None, tuple(dec.shape[:2]) if dec is not None else None)
        if hasattr(kwargs["labels"], "contiguous"):  # EncoderDecoderModel's loss .view()s them
            kwargs["labels"] = kwargs["labels"].contiguous()

    def check_ids(self, input_ids: Any) -> None:
        """``input_ids``: an integer ``[batch, seq]`` tensor, not empty, ids in the vocabulary."""
        import torch

        if not isinstance(input_ids, torch.Tensor):
            raise ProbeError(
                f"input_ids must be a tensor [batch, seq], got {type(input_ids).__name__}: use "
                "the tokenizer with return_tensors='pt'"
            )
        if input_ids.dim() != 2 or input_ids.dtype not in (torch.int64, torch.int32):
            raise ProbeError(
                f"text models take input_ids as an integer tensor [batch, seq], got "
                f"{input_ids.dtype} {tuple(input_ids.shape)}"
            )
        if input_ids.numel() == 0:
            raise ProbeError(
                f"input_ids {tuple(input_ids.shape)} hold no tokens: pass at least one token"
            )
        if input_ids.is_meta:  # no values to read (.item() failed deep inside)
            raise ProbeError("input_ids are on the meta device and hold no values: pass real ids")
        self.check_length(input_ids)
        vocab = self.vocab_size()
        low, high = int(input_ids.min()), int(input_ids.max())
        if vocab is not None and (low < 0 or high >= vocab):
            bad = low if low < 0 else high
            raise ProbeError(
                f"token id {bad} is outside the vocabulary of {self.name} (ids 0..{vocab - 1}): "
                "encode the text with this model's own tokenizer"
            )

    def vocab_size(self) -> int | None:
        """Rows of the input embedding table (``None`` when the model has none)."""
        try:
            layer = self.embedding_layer()
        except ProbeError:
            return None
        n = getattr(layer, "num_embeddings", None)
        return int(n) if isinstance(n, int) else None

    def add_left_padding_positions(self, kwargs: dict[str, Any], mask: Any) -> None:
        """Left-padded batches: positions counted from each item's first real token.

        Models with absolute or rotary positions would otherwise see every real token of a
        left-padded item shifted by its padding, and attend differently than on the item
        alone. Models that derive positions from the padding themselves (RoBERTa-style) and
        models whose forward takes no ``position_ids`` are left alone.
        """
        if mask is None or "position_ids" in kwargs or not bool((~mask[:, 0]).any()):
            return
        if not self.accepts("position_ids", strict=True):
            return
        own_positions = "create_position_ids_from_input_ids"
        if any(hasattr(type(m), own_positions) for m in self.model.modules()):
            return
        positions = mask.long().cumsum(-1) - 1
        kwargs["position_ids"] = positions.clamp_min(0)

    def add_decoder_inputs(
        self, p: Prepared, kwargs: dict[str, Any], decoder_inputs: Any, tokenizer: Any
    ) -> None:
        """Encoder-decoders add decoder inputs here; text encoders and decoders take none."""
        if decoder_inputs is not None:
            raise ProbeError(
                f"decoder_inputs= is for encoder-decoder models; {self.name} is "
                f"{with_article(self.family)} model: drop it"
            )

    def accepts(self, name: str, strict: bool = False) -> bool:
        """Whether the forward names keyword ``name`` (unknown signature: ``not strict``)."""
        try:
            return name in inspect.signature(self.model.forward).parameters
        except (TypeError, ValueError):
            return not strict

    def max_length(self) -> int | None:
        """The longest input the position embeddings allow, or ``None`` if unbounded."""
        cfg = self.model.config
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(cfg, name, None)
            if isinstance(value, int) and value > 0:
                roberta_like = getattr(cfg, "model_type", "") in ("roberta", "xlm-roberta",
                                                                  "camembert")
                return value - (2 if roberta_like else 0)
        return None

    def embedding_width(self) -> int | None:
        """Width of the input embedding (``None`` when the model has no such layer)."""
        try:
            layer = self.embedding_layer()
        except ProbeError:
            return None
        n = getattr(layer, "embedding_dim", None)
        return int(n) if isinstance(n, int) else None

    def position_rows(self) -> int | None:
        """Rows of an absolute position embedding table (``None`` for relative or rotary
        positions, which have no table to index)."""
        cfg = self.model.config
        if getattr(cfg, "rope_theta", None) is not None or getattr(cfg, "rope_parameters", None):
            return None
        for name in ("max_position_embeddings", "n_positions"):
            value = getattr(cfg, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def check_length(self, input_ids: torch.Tensor) -> None:
        limit = self.max_length()
        n = int(input_ids.shape[1])
        if limit is not None and n > limit:
            raise ProbeError(
                f"the input is {n} tokens long but {self.name} accepts at most {limit}: "
                "shorten the text or split it into chunks"
            )

    def special_from_config(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``[batch, seq]`` bool: ids the config names as BOS/EOS/CLS/SEP/PAD (no tokenizer)."""
        import torch

        cfg = self.model.config
        ids = {
            getattr(cfg, n, None)
            for n in ("bos_token_id", "eos_token_id", "cls_token_id", "sep_token_id",
                      "pad_token_id")
        }
        ids.discard(None)
        flat = {i for x in ids for i in (x if isinstance(x, list) else [x])}
        return torch.isin(input_ids.cpu(), torch.tensor(sorted(flat), dtype=input_ids.dtype))


def _is_causal(model: nn.Module) -> bool:
    if getattr(getattr(model, "config", None), "causal", None) is True:  # XLM's CLM models
        return True
    try:
        sites = find_hf_sites(model)
    except ProbeError:
        return False
    return any(
        getattr(s.module, "is_causal", False)
        or (hand is not None and hand.is_causal(s.module))
        for s in sites if s.stack == "self"
        for hand in [hand_attention(s.module)]
    )


@register_adapter
class HFEncoder(HFTextModel):
    """HuggingFace text encoders (BERT, RoBERTa, DistilBERT, MiniLM, ...)."""

    family: ClassVar[Family] = "encoder"
    priority: ClassVar[int] = 10

    @classmethod
    def detect(cls, model: Any) -> bool:
        return is_hf_text(model) and not getattr(model.config, "is_encoder_decoder", False)


@register_adapter
class HFDecoder(HFTextModel):
    """HuggingFace decoder-only language models (GPT-2, Llama, Mistral, ...)."""

    family: ClassVar[Family] = "decoder"
    priority: ClassVar[int] = 20

    @classmethod
    def detect(cls, model: Any) -> bool:
        return HFEncoder.detect(model) and _is_causal(model)
