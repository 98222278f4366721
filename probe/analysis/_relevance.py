"""Gradient-weighted attention relevance (Chefer, Gur & Wolf 2021), the math part.

Hila Chefer, Shir Gur and Lior Wolf, "Generic Attention-model Explainability for
Interpreting Bi-Modal and Encoder-Decoder Transformers", ICCV 2021 (arXiv 2103.15679),
the self-attention update rule. The capture of attention and its gradients is done by
``probe.trace(..., requires_grad=True)``; this module only combines them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from probe._errors import ProbeError
from probe.analysis._finite import check_finite, check_trace_finite
from probe.analysis._rollout import consecutive_layers
from probe.analysis._trace_input import require_trace

if TYPE_CHECKING:
    import torch

    from probe.capture._trace import Trace

__all__ = ["relevance", "relevance_from_gradients"]


def relevance_from_gradients(attentions: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """Relevance map from attention and its gradient (Chefer, Gur & Wolf 2021).

    "Generic Attention-model Explainability for Interpreting Bi-Modal and Encoder-Decoder
    Transformers" (ICCV 2021), the self-attention update rule:
    ``R = I``; for each layer from the first to the last,
    ``A_bar = mean_heads(clamp(grad * A, min=0))`` and ``R = R + A_bar @ R``.

    Args:
        attentions: ``[layer, batch, head, query, key]`` attention weights, layers in the
            order the model applies them.
        gradients: ``[layer, batch, head, query, key]`` gradient of the explained scalar (e.g.
            the target class logit) with respect to ``attentions``.

    Non-finite attention (NaN, inf) raises :class:`ProbeError` naming its layer and head.

    Returns:
        ``[batch, query, key]`` new tensor (float32 for half inputs). Rows are not normalised:
        ``R - I`` is the relevance the layers add; zero gradients give the identity.
    """
    import torch

    if attentions.dim() != 5 or attentions.shape[-1] != attentions.shape[-2]:
        raise ProbeError(
            "attentions must be [layer, batch, head, query, key] with query == key, got "
            f"{tuple(attentions.shape)}"
        )
    if tuple(gradients.shape) != tuple(attentions.shape):
        raise ProbeError(
            f"gradients {tuple(gradients.shape)} must have the shape of attentions "
            f"{tuple(attentions.shape)}; pass the gradient of each attention weight"
        )
    check_finite(attentions, "relevance_from_gradients", stack="self-attention")
    check_finite(gradients, "relevance_from_gradients", stack="self-attention",
                 what="attention gradient")
    dtype = torch.promote_types(attentions.dtype, gradients.dtype)
    if dtype in (torch.float16, torch.bfloat16) or not dtype.is_floating_point:
        dtype = torch.float32
    attn = attentions.detach().to(dtype)
    grad = gradients.detach().to(device=attn.device, dtype=dtype)
    _, batch, _, n, _ = attn.shape
    result = torch.eye(n, dtype=dtype, device=attn.device).repeat(batch, 1, 1)
    for layer in range(attn.shape[0]):
        a_bar = (grad[layer] * attn[layer]).clamp(min=0).mean(dim=1)  # [batch, query, key]
        result = result + a_bar @ result
    return result


def relevance(trace: Trace) -> torch.Tensor:
    """Gradient-weighted relevance of a trace (Chefer, Gur & Wolf 2021).

    Applies :func:`relevance_from_gradients` to ``trace.require_attentions()`` and
    ``trace.gradients()``: capture with ``probe.trace(..., requires_grad=True)`` and call
    ``.backward()`` on the explained scalar of the output first. The rule needs every layer
    of the model and every head on its own.

    Non-finite attention (NaN, inf) raises :class:`ProbeError` naming its layer and head.

    Returns:
        ``[batch, query, key]``; for a classifier, row 0 (CLS) holds the relevance of every
        input token for the explained output.
    """
    require_trace(trace, "probe.relevance")
    attentions = trace.require_attentions()
    if trace.head_indices is None:
        raise ProbeError(
            "relevance needs each head's attention and gradient, but heads were averaged "
            "during capture; capture again with heads=None"
        )
    if trace.num_heads and len(trace.head_indices) != trace.num_heads:
        raise ProbeError(  # was "gradients (3, 2, 4, 9, 9) must have the shape of attentions"
            f"relevance averages its rule over every head, but this trace keeps heads "
            f"{list(trace.head_indices)} of {trace.num_heads}; capture again with heads=None"
        )
    positions = consecutive_layers(trace, 0, "relevance")
    gradients = trace.gradients()
    if positions != list(range(attentions.shape[0])):  # reorder into model layer order
        attentions = attentions[positions]
        gradients = gradients[positions]
    check_trace_finite(attentions, "relevance", trace, positions=positions)
    check_trace_finite(
        gradients, "relevance", trace, positions=positions, what="attention gradient"
    )
    return relevance_from_gradients(attentions, gradients)
