"""HuggingFace image-to-text models (``VisionEncoderDecoderModel``: TrOCR, ViT + GPT-2 or BERT
captioners): an image encoder, and a text decoder attending to its tokens.

The encoder reads ``pixel_values`` ``[batch, channel, height, width]`` as a ViT does (its
config, ``model.config.encoder``, holds the patch grid); the decoder reads
``decoder_input_ids`` ``[batch, target]`` and attends over the encoder's tokens, CLS (and
DeiT's distillation token) included, through cross-attention. The trace keeps the three
stacks as for T5 or BART: ``attentions`` (encoder self-attention, ``[layer, batch, head,
token, token]``), ``decoder`` and ``cross`` (``[layer, batch, head, target, token]``), with
``grid`` and ``num_prefix_tokens`` locating the patches among the encoder's tokens, so
``cross[..., num_prefix_tokens:]`` reshapes onto the patch grid.

Encoders whose tokens are no single patch grid are refused before anything runs: windowed
encoders (Swin, Donut's Swin: blocks of windows over several stages), video encoders.
Decoders dispatching through ``ALL_ATTENTION_FUNCTIONS`` (GPT-2, BERT, RoBERTa, ...) and
TrOCR's hand-written one (:mod:`~probe.capture.adapters._hf_hand`) are captured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from probe._errors import ProbeError, UnsupportedModelError
from probe.capture.adapters._base import Family, Prepared, register_adapter
from probe.capture.adapters._hf_seq2seq import HFEncoderDecoder
from probe.capture.adapters._hf_sites import is_hf_model
from probe.capture.adapters._vision import HFVision

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["HFImageToText", "is_image_to_text"]

#: what the inputs mapping may hold besides ``pixel_values``
_DECODER_KEYS = ("decoder_input_ids", "decoder_attention_mask")
#: encoders whose tokens are windows over several stages, not one patch grid
_WINDOWED = ("swin", "swinv2", "donut-swin", "donut_swin")


def is_image_to_text(model: Any) -> bool:
    """An HF model reading pixels with a text decoder (a config ``decoder`` with a vocabulary;
    DETR's decoder has none)."""
    if not is_hf_model(model) or getattr(model, "main_input_name", "") != "pixel_values":
        return False
    decoder = getattr(model.config, "decoder", None)
    return getattr(decoder, "vocab_size", None) is not None


@register_adapter
class HFImageToText(HFVision):
    """``VisionEncoderDecoderModel``: encoder, decoder and cross-attention over the patches."""

    family: ClassVar[Family] = "encoder-decoder"
    priority: ClassVar[int] = 45  # before HFVision, which reads pixels too

    # the decoder side is the seq2seq text family's: the same checks and messages
    check_decoder_ids = HFEncoderDecoder.check_decoder_ids

    @classmethod
    def detect(cls, model: Any) -> bool:
        return is_image_to_text(model)

    def vision_config(self) -> Any:
        return self.model.config.encoder

    def _refuse_layout(self) -> None:
        kind = str(getattr(self.vision_config(), "model_type", ""))
        if kind in _WINDOWED:
            raise UnsupportedModelError(
                f"{type(self.model).__name__} has a {kind} image encoder: its attention runs in "
                "windows over several stages, not over one patch grid; image-to-text models "
                "with a windowed encoder (Donut) are not supported yet (ViT, DeiT and BEiT-like "
                "encoders are); trace the encoder's windows alone: "
                "probe.trace(model.encoder, pixel_values)"
            )
        if getattr(self.vision_config(), "patch_size", None) is None:
            raise UnsupportedModelError(
                f"{type(self.model).__name__} has a {kind or 'custom'} image encoder without a "
                "patch_size: probe cannot map its tokens onto a patch grid; not supported yet "
                "(ViT, DeiT and BEiT-like encoders are)"
            )
        super()._refuse_layout()

    # ------------------------------------------------------------------ inputs
    def prepare(
        self,
        inputs: Any,
        *,
        tokenizer: Any = None,
        decoder_inputs: Any = None,
        forward_kwargs: dict[str, Any] | None = None,
    ) -> Prepared:
        """Pixels ``[batch, channel, height, width]`` (or a mapping with ``pixel_values`` and
        optionally ``decoder_input_ids``/``decoder_attention_mask``) and the decoder's input:
        ``decoder_inputs=`` (ids ``[batch, target]`` or text with ``tokenizer``), or the
        ``decoder_input_ids=`` keyword; default: the decoder start token alone."""
        import torch

        extra = dict(forward_kwargs or {})
        decoder: dict[str, Any] = {k: extra.pop(k) for k in _DECODER_KEYS if k in extra}
        if isinstance(inputs, Mapping):
            unknown = sorted(k for k in inputs if k not in ("pixel_values", *_DECODER_KEYS))
            if "pixel_values" not in inputs or unknown:
                what = f"; unknown keys {unknown}" if unknown else ""
                raise ProbeError(
                    f"{type(self.model).__name__} takes pixel_values (and optionally "
                    f"decoder_input_ids, decoder_attention_mask), got the keys "
                    f"{sorted(inputs)}{what}: pass pixels [batch, channel, height, width] and "
                    "decoder_inputs=ids"
                )
            for k in _DECODER_KEYS:
                if k in inputs:
                    if k in decoder:
                        raise ProbeError(f"{k} is given twice, in the inputs and as a keyword: "
                                         "pass it once")
                    decoder[k] = inputs[k]
            inputs = inputs["pixel_values"]
        if ("decoder_attention_mask" in decoder and "decoder_input_ids" not in decoder
                and decoder_inputs is None):
            raise ProbeError("decoder_attention_mask= without decoder_input_ids: pass the ids "
                             "with their mask")
        if "labels" in extra and "decoder_input_ids" not in decoder and decoder_inputs is None:
            raise ProbeError(
                "labels= without decoder inputs: the model would build its decoder input from "
                "the labels where probe cannot name the tokens; pass decoder_inputs=ids (the "
                "labels shifted right, starting with the decoder start token)"
            )
        if decoder_inputs is not None and "decoder_input_ids" in decoder:
            raise ProbeError(
                "the decoder's input is given twice, as decoder_inputs= and as "
                "decoder_input_ids: pass one of them"
            )
        p = super().prepare(inputs, forward_kwargs=extra)
        batch = int(p.batch or 1)
        if "decoder_input_ids" not in decoder:
            decoder.update(self._decoder_kwargs(decoder_inputs, tokenizer, batch))
        self.check_decoder_ids(decoder, batch)
        ids = decoder["decoder_input_ids"]
        dmask = decoder.get("decoder_attention_mask")
        p.decoder_mask = (dmask if dmask is not None else torch.ones_like(ids)).to(
            torch.bool).cpu()
        if tokenizer is not None:
            from probe.capture.adapters._text_inputs import is_byte_level

            p.decoder_tokens = tuple(
                tuple(tokenizer.convert_ids_to_tokens(r.tolist())) for r in ids)
            p.byte_level = is_byte_level(tokenizer)
        p.kwargs.update({k: v.to(self.device) for k, v in decoder.items()})
        return p

    def _decoder_kwargs(self, decoder_inputs: Any, tokenizer: Any, batch: int) -> dict[str, Any]:
        import torch

        if decoder_inputs is not None:
            return HFEncoderDecoder._decoder_kwargs(self, decoder_inputs, tokenizer, batch)
        start = self.start_token()
        if start is None:
            raise ProbeError(self._start_hint)
        return {"decoder_input_ids": torch.full((batch, 1), start, dtype=torch.long)}

    def start_token(self) -> int | None:
        """The decoder start token id: the config's, else the generation config's."""
        for cfg in (self.model.config, getattr(self.model, "generation_config", None)):
            start = getattr(cfg, "decoder_start_token_id", None)
            if start is not None:
                return int(start)
        return None

    @property
    def _start_hint(self) -> str:
        return (f"{type(self.model).__name__} has no decoder_start_token_id (config or "
                "generation_config): pass decoder_inputs=ids [batch, target] (or "
                "decoder_input_ids=...), or set model.config.decoder_start_token_id")

    def decoder_vocab_size(self) -> int | None:
        layer = self.model.decoder.get_input_embeddings()
        n = getattr(layer, "num_embeddings", None)
        return int(n) if isinstance(n, int) else None

    def max_length(self) -> int | None:
        """The longest decoder input its position embeddings allow (``None``: unbounded)."""
        cfg = self.model.config.decoder
        for name in ("max_position_embeddings", "n_positions"):
            value = getattr(cfg, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    # ------------------------------------------------------------------ generation
    def generate(self, prepared: Prepared, max_new_tokens: int, kwargs: dict[str, Any]) -> Any:
        """``model.generate(pixel_values=...)`` from the decoder start token (see
        :mod:`~probe.capture.adapters._hf_generate`)."""
        from probe.capture.adapters._hf_generate import hf_generate

        drop = ("decoder_input_ids", "decoder_attention_mask")
        model_kwargs = {k: v for k, v in prepared.kwargs.items() if k not in drop}
        return hf_generate(self.model, model_kwargs, max_new_tokens, kwargs)

    def special_from_config(self, ids: torch.Tensor) -> torch.Tensor:
        """``[batch, seq]`` bool: decoder ids the configs name BOS/EOS/PAD/start (no tokenizer)."""
        import torch

        named: set[int] = set()
        for cfg in (self.model.config.decoder, getattr(self.model, "generation_config", None)):
            for n in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"):
                value = getattr(cfg, n, None)
                for i in value if isinstance(value, (list, tuple)) else [value]:
                    if isinstance(i, int):
                        named.add(i)
        return torch.isin(ids.cpu(), torch.tensor(sorted(named), dtype=ids.dtype))

    def embedding_layer(self) -> nn.Module:
        raise ProbeError(
            f"{type(self.model).__name__} reads pixels: gradient methods attribute to the image "
            "(probe.attribute on model.encoder), not to token embeddings"
        )
