"""HuggingFace encoder-decoders (T5, BART, Marian, ...): encoder, decoder and cross-attention.

The encoder reads the source text; the decoder reads ``decoder_inputs`` (text, ids, or by
default the decoder start token alone) and attends over the source through cross-attention.
Gradient methods attribute to the encoder's token embeddings (the decoder inputs stay fixed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from probe._errors import ProbeError
from probe.capture.adapters._base import Family, Prepared, register_adapter
from probe.capture.adapters._hf_sites import is_hf_model
from probe.capture.adapters._hf_text import HFTextModel

if TYPE_CHECKING:
    from torch import nn

__all__ = ["HFEncoderDecoder"]


@register_adapter
class HFEncoderDecoder(HFTextModel):
    """HuggingFace sequence-to-sequence models with cross-attention."""

    family: ClassVar[Family] = "encoder-decoder"
    priority: ClassVar[int] = 30

    @classmethod
    def detect(cls, model: Any) -> bool:
        return is_hf_model(model) and bool(getattr(model.config, "is_encoder_decoder", False))

    def add_decoder_inputs(
        self, p: Prepared, kwargs: dict[str, Any], decoder_inputs: Any, tokenizer: Any
    ) -> None:
        import torch

        if "decoder_input_ids" not in kwargs:
            ids = kwargs.get("input_ids")
            batch = int(ids.shape[0]) if ids is not None else 1
            kwargs.update(self._decoder_kwargs(decoder_inputs, tokenizer, batch))
        dec = kwargs["decoder_input_ids"]
        dmask = kwargs.get("decoder_attention_mask")
        p.decoder_mask = (dmask if dmask is not None else torch.ones_like(dec)).to(torch.bool).cpu()
        if tokenizer is not None:
            p.decoder_tokens = tuple(
                tuple(tokenizer.convert_ids_to_tokens(r.tolist())) for r in dec
            )

    def _decoder_kwargs(self, decoder_inputs: Any, tokenizer: Any, batch: int) -> dict[str, Any]:
        import torch

        if decoder_inputs is None:
            start = getattr(self.model.config, "decoder_start_token_id", None)
            if start is None:
                raise ProbeError(
                    "this encoder-decoder model has no decoder_start_token_id: pass "
                    "decoder_inputs=..."
                )
            return {"decoder_input_ids": torch.full((batch, 1), int(start), dtype=torch.long)}
        if isinstance(decoder_inputs, torch.Tensor):
            return {"decoder_input_ids": decoder_inputs}
        if isinstance(decoder_inputs, (str, list, tuple)):
            if tokenizer is None:
                raise ProbeError("decoder text needs a tokenizer: pass tokenizer=...")
            texts = [decoder_inputs] if isinstance(decoder_inputs, str) else list(decoder_inputs)
            enc = tokenizer(text_target=texts, return_tensors="pt", padding=True, verbose=False)
            return {
                "decoder_input_ids": enc["input_ids"],
                "decoder_attention_mask": enc["attention_mask"],
            }
        raise ProbeError(
            "decoder_inputs must be a string, a list of strings or a tensor, got "
            f"{type(decoder_inputs).__name__}"
        )

    def embedding_layer(self) -> nn.Module:
        """The encoder's token embedding (the decoder inputs stay fixed)."""
        get_encoder = getattr(self.model, "get_encoder", None)
        owner = get_encoder() if callable(get_encoder) else self.model
        get = getattr(owner, "get_input_embeddings", None)
        layer = get() if callable(get) else None
        if layer is None:
            return super().embedding_layer()
        return layer
