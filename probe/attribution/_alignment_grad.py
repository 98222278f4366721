"""Gradient-based word alignment: how much each source word moves each generated word.

For generated token ``i`` the score of source token ``j`` is the L2 norm of the gradient of
``log p(y_i | y_<i, x)`` with respect to the embedding of ``x_j`` (saliency, Simonyan et al.
2014), or of that gradient times the embedding (gradient x input, Shrikumar et al. 2017), in
one teacher-forced forward over the generated tokens. Merged to words like attention
(:func:`probe.analysis._alignment.word_alignment_scores`), the result is an
:class:`~probe.analysis._alignment.Alignment` scored exactly like cross-attention
(Ding et al. 2019, "Saliency-driven Word Alignment Interpretation for NMT", compare the two).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from probe._errors import ProbeError
from probe._index import batch_position
from probe.analysis._alignment import (
    Alignment,
    check_generation_words,
    word_alignment_scores,
)
from probe.attribution._gradient import differentiable
from probe.capture.adapters import adapter_for

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["gradient_alignment"]

GradientRule = Literal["saliency", "grad_x_input"]


def gradient_alignment(
    model: nn.Module,
    generation: Any,
    batch_index: int = 0,
    *,
    method: GradientRule = "saliency",
) -> Alignment:
    """Word alignment from input gradients of each generated token (see the module docstring).

    Args:
        model: the encoder-decoder that produced ``generation``; left unchanged.
        generation: a :class:`probe.GenerationTrace` with words (text + ``tokenizer=``).
        batch_index: the batch item.
        method: ``"saliency"`` (gradient norm) or ``"grad_x_input"``.

    Returns:
        An :class:`Alignment` with one layer and head: ``scores`` ``[1, 1, target_word,
        source_word]``, ``method`` the rule used.
    """
    import torch

    if method not in ("saliency", "grad_x_input"):
        raise ProbeError(f"method must be 'saliency' or 'grad_x_input', got {method!r}")
    adapter = adapter_for(model)
    if adapter.family != "encoder-decoder" or getattr(generation, "source_ids", None) is None:
        raise ProbeError(
            "gradient_alignment needs an encoder-decoder model and its probe.generate result"
        )
    b = batch_position(batch_index, generation.batch_size)
    check_generation_words(generation, "gradient_alignment", b)
    # source ids index the encoder's embeddings, generated ids the decoder's (Marian with
    # separate vocabularies has two sizes)
    for ids, vocab in ((generation.source_ids, adapter.vocab_size()),
                       (generation.sequences, _decoder_vocab(model))):
        highest = int(ids.max())
        if vocab is not None and highest >= vocab:
            raise _other_model(model, generation, f"its token id {highest}",
                               f"ids 0..{vocab - 1}")
    device = adapter.device
    n = generation.num_generated
    source = generation.source_ids[b : b + 1].to(device).repeat(n, 1)
    mask = generation.source_mask[b : b + 1].to(device).long().repeat(n, 1)
    decoder = generation.sequences[b : b + 1, :-1].to(device).repeat(n, 1)
    targets = generation.generated_ids[b].to(device)
    layer = adapter.embedding_layer()
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
        if captured:  # shared embeddings: the first call is the encoder's
            return None
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf

    with differentiable(model):
        handle = layer.register_forward_hook(hook)
        try:
            logits = model(input_ids=source, attention_mask=mask, decoder_input_ids=decoder).logits
        finally:
            handle.remove()
        if logits.shape[-1] != generation.scores.shape[-1]:
            raise _other_model(model, generation, f"{generation.scores.shape[-1]} scores per step",
                               f"{logits.shape[-1]} logits")
        logp = torch.log_softmax(logits.float(), dim=-1)
        rows = torch.arange(n, device=device)
        chosen = logp[rows, rows, targets].sum()
        (grad,) = torch.autograd.grad(chosen, captured[0])
    grad = grad.detach()
    values = grad if method == "saliency" else grad * captured[0].detach()
    token_scores = values.float().norm(dim=-1).cpu()  # [generated, source]
    target_ids = [
        w if bool(generation.generated_mask[b, i]) else None
        for i, w in enumerate(generation.word_ids[b][:n])
    ]
    source_ids = [
        w if bool(generation.source_mask[b, t]) else None
        for t, w in enumerate(generation.prompt_word_ids[b])
    ]
    merged = word_alignment_scores(
        token_scores, target_ids, source_ids, len(generation.words[b]),
        len(generation.prompt_words[b])
    )
    return Alignment(
        merged[None, None], tuple(generation.words[b]), tuple(generation.prompt_words[b]),
        (0,), (0,), method=method,
    )


def _decoder_vocab(model: nn.Module) -> int | None:
    """How many token ids the decoder of ``model`` embeds (``None`` if unknown)."""
    get_decoder = getattr(model, "get_decoder", None)
    decoder = get_decoder() if callable(get_decoder) else None
    embed = getattr(decoder, "get_input_embeddings", None)
    layer = embed() if callable(embed) else None
    size = getattr(layer, "num_embeddings", None)
    if isinstance(size, int):
        return size
    out = getattr(model, "get_output_embeddings", None)
    weight = getattr(out() if callable(out) else None, "weight", None)
    return int(weight.shape[0]) if weight is not None and weight.dim() == 2 else None


def _other_model(model: nn.Module, generation: Any, theirs: str, ours: str) -> ProbeError:
    return ProbeError(
        f"this generation was not made by {type(model).__name__} ({theirs}; the model has "
        f"{ours}): pass the model that generated it ({generation.model_name})"
    )
