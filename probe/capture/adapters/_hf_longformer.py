"""HuggingFace Longformer (``LongformerModel`` and its heads) and LED (``LEDModel``,
``LEDForConditionalGeneration``): sliding-window self-attention with global tokens.

Each token attends to the ``w = attention_window / 2`` keys on either side of it and to the
global tokens (``global_attention_mask``); a global token attends to every key. The module
(``LongformerSelfAttention``, LED's ``LEDEncoderSelfAttention``, the same code) computes its
softmax by hand over the band and the global keys only, and, asked with
``output_attentions=True`` (for its call only, see ``request`` in
:mod:`~probe.capture.adapters._hf_hand`), returns

- ``local`` ``[batch, seq, head, num_global + 2 w + 1]``: per query, the probabilities of the
  global keys (slot ``g`` is the ``g``-th global token of that item; slots past its count are
  exactly 0) and of the band (column ``j`` is key ``query + j - w``); the rows of global
  tokens are zeroed by the model;
- ``global`` ``[batch, head, num_global, seq]`` (with global tokens): the rows of the global
  tokens over every key.

:func:`full_attention` scatters them into the full ``[batch, head, query, key]`` matrix.
Keys outside a token's band are exactly zero-probability in the model (never scored), so the
matrix is the attention the model computed, not an approximation: the band and global keys of
each real row sum to 1. The model pads the sequence to a multiple of the window (after the
user's tokens); those keys have zero weight and are cut off, so the matrix covers the user's
tokens only. Both tensors are the ones the model multiplies with the values (after its
functional dropout in training mode: recorded with probe's usual dropout warning).

LED's decoder self- and cross-attention is ordinary attention written by hand
(``LEDDecoderAttention``, like FSMT's): it returns its softmax, before a functional dropout,
when asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import UnsupportedModelError
from probe.capture.adapters._hf_hand import register_hand_attention

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["full_attention"]


def _unsupported(module: nn.Module, what: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"{type(module).__name__} {what}: this version of the model is not supported; open an "
        "issue with the model name"
    )


def full_attention(
    module: nn.Module, kwargs: dict[str, Any], output: Any, keys: int | None
) -> torch.Tensor:
    """The full attention of one Longformer self-attention call.

    Args:
        module: the ``LongformerSelfAttention`` (or LED encoder) module.
        kwargs: its call's keyword arguments (``is_index_masked``, ``is_index_global_attn``:
            ``[batch, seq]`` bool over the padded sequence).
        output: its output tuple, asked with ``output_attentions=True``: ``(out, local)`` or
            ``(out, local, global)`` (shapes in the module notes).
        keys: the number of tokens of the user's inputs when known (the length of the mask
            they passed); ``None``: no mask was passed, so the masked keys are exactly the
            model's own padding at the end.

    Returns:
        ``[batch, head, query, key]`` probabilities over the user's tokens (zero outside each
        row's band and global keys, zero rows for masked queries).
    """
    import torch

    local = output[1]
    masked = kwargs.get("is_index_masked")
    is_global = kwargs.get("is_index_global_attn")
    if not isinstance(local, torch.Tensor) or local.dim() != 4 or masked is None:
        raise _unsupported(module, "returned no [batch, seq, head, window] probabilities")
    b, s, h, width = local.shape
    w = int(module.one_sided_attn_window_size)
    g = width - (2 * w + 1)
    if g < 0 or (g > 0 and (len(output) < 3 or is_global is None)):
        raise _unsupported(module, f"returned {width} probabilities per query for w={w}")
    # the band: column j of row i is key i + j - w, placed in a matrix padded by w on each side
    band = local[..., g:].transpose(1, 2)  # [batch, head, seq, 2w + 1]
    columns = torch.arange(s, device=local.device)[:, None] + torch.arange(
        2 * w + 1, device=local.device
    )
    full = local.new_zeros(b, h, s, s + 2 * w).scatter(
        -1, columns.expand(b, h, s, 2 * w + 1), band
    )[..., w : w + s]
    if g > 0:
        # slot k of item n is its k-th global token (as the model fills its slots)
        slots = torch.arange(g, device=local.device) < is_global.sum(-1, keepdim=True)
        where = torch.zeros(b, g, dtype=torch.long, device=local.device)
        where[slots] = is_global.nonzero(as_tuple=True)[1]
        valid = slots.to(local.dtype)
        keyed = local[..., :g].transpose(1, 2) * valid[:, None, None, :]  # [batch, head, seq, g]
        full = full.scatter_add(-1, where[:, None, None, :].expand(b, h, s, g), keyed)
        rows = output[2] * valid[:, None, :, None]  # [batch, head, g, seq]
        full = full.scatter_add(-2, where[:, None, :, None].expand(b, h, g, s), rows)
    if keys is None:  # no user mask: the masked keys at the end are the model's padding
        real = (~masked).any(0).nonzero()
        keys = int(real[-1]) + 1 if len(real) else s
    if not 0 < keys <= s:
        raise _unsupported(module, f"ran on {s} tokens for {keys} input tokens")
    return full[:, :, :keys, :keys]


# Longformer and LED's encoder: the band and global probabilities, returned when asked; the
# functional dropout (``self.dropout``, a float) comes before them
for _family, _cls in (("longformer", "LongformerSelfAttention"),
                      ("led", "LEDEncoderSelfAttention")):
    register_hand_attention(_family, _cls, 1, dropout="dropout", request="output_attentions",
                            convert=full_attention,
                            layout="its band and global probabilities")
# LED's decoder (self and cross): returns its softmax, before a functional dropout, when asked
register_hand_attention("led", "LEDDecoderAttention", 1, functional_dropout="dropout",
                        request="output_attentions")
