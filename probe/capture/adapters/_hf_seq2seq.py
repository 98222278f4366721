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
from probe.capture.adapters._text_inputs import check_mask, encode_targets

if TYPE_CHECKING:
    from torch import nn

__all__ = ["HFEncoderDecoder"]


def _batch(kwargs: dict[str, Any]) -> int:
    """The encoder's batch: rows of ``input_ids`` (or ``inputs_embeds``), else 1."""
    for name in ("input_ids", "inputs_embeds"):
        value = kwargs.get(name)
        if value is not None:
            return int(value.shape[0])
    return 1


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

        batch = _batch(kwargs)
        if decoder_inputs is not None and "decoder_input_ids" in kwargs:
            raise ProbeError(
                "the decoder's input is given twice, as decoder_inputs= and as the inputs' "
                "'decoder_input_ids': pass one of them"
            )
        if "decoder_input_ids" not in kwargs and decoder_inputs is None and kwargs.get(
                "labels") is not None:  # the decoder reads the labels, as in transformers
            from probe.capture.adapters._labels import shifted_labels

            kwargs["decoder_input_ids"] = shifted_labels(self.model, kwargs["labels"], batch)
        elif "decoder_input_ids" not in kwargs:
            kwargs.update(self._decoder_kwargs(decoder_inputs, tokenizer, batch))
        self.check_decoder_ids(kwargs, batch)
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
            if not texts or any(not isinstance(t, str) for t in texts):
                raise ProbeError(
                    "decoder_inputs as text must be a string or a non-empty list of strings"
                )
            blank = [i for i, t in enumerate(texts) if not t.strip()]
            if blank:
                where = "" if isinstance(decoder_inputs, str) else f" at index {blank[0]}"
                raise ProbeError(
                    f"empty decoder text{where}: pass the target words, or leave "
                    "decoder_inputs out to start from the decoder start token"
                )
            return encode_targets(tokenizer, texts)  # unpadded where it can be (no pad token)
        raise ProbeError(
            "decoder_inputs must be a string, a list of strings or a tensor, got "
            f"{type(decoder_inputs).__name__}"
        )

    def check_decoder_ids(self, kwargs: dict[str, Any], batch: int) -> None:
        """``decoder_input_ids``: an integer ``[batch, seq]`` tensor with the encoder's batch
        (one row is repeated over the batch), ids in the decoder's vocabulary and length.

        Raises:
            ProbeError: naming what does not fit and the fix.
        """
        import torch

        dec = kwargs["decoder_input_ids"]
        if not isinstance(dec, torch.Tensor):
            raise ProbeError(
                f"decoder_input_ids must be a tensor [batch, seq], got {type(dec).__name__}: use "
                "the tokenizer with return_tensors='pt'"
            )
        dmask = kwargs.get("decoder_attention_mask")
        if dmask is not None and (not isinstance(dmask, torch.Tensor)
                                  or tuple(dmask.shape) != tuple(dec.shape)):
            got = tuple(dmask.shape) if isinstance(dmask, torch.Tensor) else type(dmask).__name__
            raise ProbeError(
                f"decoder_attention_mask {got} does not match the decoder ids "
                f"{tuple(dec.shape)}: pass the mask the tokenizer returned with them"
            )
        if dmask is not None and dec.dim() == 2:
            check_mask(dmask, dec, "decoder_attention_mask")
        if dec.dim() == 1:
            raise ProbeError(
                f"decoder_inputs must be [batch, seq], got shape {tuple(dec.shape)}: use "
                "ids.unsqueeze(0)"
            )
        if dec.dim() != 2 or dec.dtype not in (torch.int64, torch.int32):
            raise ProbeError(
                f"decoder_inputs as ids must be an integer tensor [batch, seq], got {dec.dtype} "
                f"{tuple(dec.shape)}"
            )
        if dec.shape[1] == 0:
            raise ProbeError(
                f"decoder_inputs {tuple(dec.shape)} hold no tokens: pass at least one token"
            )
        rows = int(dec.shape[0])
        if rows != batch:
            if rows != 1:
                raise ProbeError(
                    f"decoder_inputs has {rows} items but the inputs have {batch}: pass one "
                    "decoder input per input (or one for all)"
                )
            kwargs["decoder_input_ids"] = dec = dec.expand(batch, -1)
            if dmask is not None:
                kwargs["decoder_attention_mask"] = dmask.expand(batch, -1)
        if dec.is_meta:
            return
        vocab = self.decoder_vocab_size()
        low, high = int(dec.min()), int(dec.max())
        if vocab is not None and (low < 0 or high >= vocab):
            raise ProbeError(
                f"decoder token id {low if low < 0 else high} is outside the decoder's "
                f"vocabulary of {self.name} (ids 0..{vocab - 1}): encode the target with this "
                "model's own tokenizer (text_target=...)"
            )
        limit = self.max_length()
        if limit is not None and int(dec.shape[1]) > limit:
            raise ProbeError(
                f"the decoder input is {int(dec.shape[1])} tokens long but {self.name} accepts "
                f"at most {limit}: shorten it"
            )

    def decoder_vocab_size(self) -> int | None:
        """Rows of the decoder's token embedding (the encoder's when it has none of its own)."""
        get_decoder = getattr(self.model, "get_decoder", None)
        decoder = get_decoder() if callable(get_decoder) else None
        get = getattr(decoder, "get_input_embeddings", None)
        layer = get() if callable(get) else None
        n = getattr(layer, "num_embeddings", None)
        return int(n) if isinstance(n, int) else self.vocab_size()

    def embedding_layer(self) -> nn.Module:
        """The encoder's token embedding (the decoder inputs stay fixed)."""
        get_encoder = getattr(self.model, "get_encoder", None)
        owner = get_encoder() if callable(get_encoder) else self.model
        get = getattr(owner, "get_input_embeddings", None)
        layer = get() if callable(get) else None
        if layer is None:
            return super().embedding_layer()
        return layer
