"""Attention rollout (Abnar & Zuidema 2020).

Samira Abnar and Willem Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020.
Each layer's attention is fused over heads, mixed with the residual connection
(``0.5 * A + 0.5 * I``), renormalised row by row, and the layers are multiplied together.

:func:`rollout_step` holds the per-layer math once; :func:`rollout` folds it over a trace and
streaming capture folds it layer by layer while the model runs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._index import in_range, is_int, is_real
from probe.analysis._finite import (
    CAUSES,
    all_finite,
    check_finite,
    check_tensor_finite,
    check_trace_finite,
)
from probe.analysis._fusion import HeadFusion, check_head_fusion, fuse_heads
from probe.analysis._trace_input import require_trace

if TYPE_CHECKING:
    import torch

    from probe.capture._trace import Trace

__all__ = ["rollout", "rollout_step", "residual_attention"]

_OPTION_DEFAULTS: dict[str, Any] = {"head_fusion": "mean", "discard_ratio": 0.0, "start_layer": 0}


def check_discard_ratio(discard_ratio: float) -> float:
    """Validate ``discard_ratio`` (a fraction in ``[0, 1)``) and return it as a float."""
    if not is_real(discard_ratio):  # np.float32(0.5) is a number too
        raise ProbeError(f"discard_ratio must be a number in [0, 1), got {discard_ratio!r}")
    if not 0.0 <= float(discard_ratio) < 1.0:  # NaN too
        raise ProbeError(
            f"discard_ratio must be in [0, 1), got {discard_ratio}; e.g. 0.9 drops the lowest "
            "90% of each row"
        )
    return float(discard_ratio)


def residual_attention(
    fused: torch.Tensor,
    discard_ratio: float = 0.0,
    num_prefix_tokens: int = 0,
    key_mask: torch.Tensor | None = None,
    *,
    _consume: bool = False,
    _checked: bool = False,
) -> torch.Tensor:
    """One layer's residual-augmented attention ``A_hat`` (Abnar & Zuidema 2020).

    Steps, for each row (query) of each batch item:

    1. padded keys get weight 0;
    2. if ``discard_ratio > 0``, the lowest ``floor(discard_ratio * m)`` weights among the
       ``m`` *discardable* keys are set to 0. Discardable keys are the real keys at positions
       ``>= num_prefix_tokens``: prefix keys (CLS, distillation, registers) are never
       discarded. The diagonal is not protected, because step 3 adds it back anyway. Ties
       are broken towards the lower key position (stable sort);
    3. ``A_hat = 0.5 * A + 0.5 * I``;
    4. each row is divided by its sum (``keepdim=True``), so every row sums to 1 whatever the
       head fusion, e.g. for ``max``/``min`` whose rows do not sum to 1.

    Padded query rows are replaced by identity rows (weight 1 on themselves), so the result
    is row-stochastic everywhere and real rows never receive mass from padded tokens.

    Args:
        fused: ``[batch, query, key]`` head-fused attention of one layer.
        discard_ratio: fraction in ``[0, 1)`` of the weakest weights per row to drop.
        num_prefix_tokens: number of leading tokens that are never discarded.
        key_mask: ``[batch, key]`` bool, True for real tokens; ``None`` means all real.

    Non-finite attention (NaN, inf) raises :class:`ProbeError` naming its index (one
    reduction over ``fused``; :func:`rollout_step` checks once, streaming capture never).

    Returns:
        A new ``[batch, query, key]`` tensor whose rows sum to 1 (float32 for half inputs).
    """
    import torch

    if fused.dim() != 3 or fused.shape[-1] != fused.shape[-2]:
        raise ProbeError(
            f"expected fused attention [batch, query, key] with query == key, got "
            f"{tuple(fused.shape)}"
        )
    discard_ratio = check_discard_ratio(discard_ratio)
    if num_prefix_tokens < 0:
        raise ProbeError(f"num_prefix_tokens must be >= 0, got {num_prefix_tokens}")
    if not (_consume or _checked):
        check_tensor_finite(fused, "residual_attention", ("batch", "query", "key"))
    attn = fused.detach()
    if not attn.is_floating_point() or attn.dtype in (torch.float16, torch.bfloat16):
        attn = attn.float()  # a new tensor already
    elif not _consume:
        attn = attn.clone()  # the input is never modified
    return _residual_attention_(attn, discard_ratio, num_prefix_tokens, key_mask)


def _residual_attention_(
    attn: torch.Tensor,
    discard_ratio: float,
    num_prefix_tokens: int,
    key_mask: torch.Tensor | None,
) -> torch.Tensor:
    """:func:`residual_attention` computed in place on ``attn`` (a tensor the caller owns).

    Peak memory is ``attn`` plus one ``[batch, query]`` row sum (plus the ``[batch, query,
    key]`` sort buffers when ``discard_ratio > 0``): streaming capture folds 4096-token layers
    with this, where every out-of-place step costs another 64 MB per batch item.
    """
    import torch

    batch, n, _ = attn.shape
    padded = None
    if key_mask is None:
        key_mask = torch.ones(batch, n, dtype=torch.bool, device=attn.device)
    else:
        if tuple(key_mask.shape) != (batch, n):
            raise ProbeError(
                f"key_mask must be [batch, key] = {(batch, n)}, got {tuple(key_mask.shape)}"
            )
        key_mask = key_mask.to(device=attn.device, dtype=torch.bool)
        if not bool(key_mask.all()):
            padded = ~key_mask
            # 1. padded keys carry no weight
            attn.masked_fill_(padded[:, None, :], 0.0)

    # 2. discard the weakest weights of each row among discardable keys
    if discard_ratio > 0.0:
        positions = torch.arange(n, device=attn.device)
        discardable = key_mask & (positions >= num_prefix_tokens)[None, :]  # [batch, key]
        count = torch.floor(discard_ratio * discardable.sum(-1).to(torch.float64)).long()
        order = attn.masked_fill(~discardable[:, None, :], math.inf).argsort(dim=-1, stable=True)
        drop_sorted = positions[None, None, :] < count[:, None, None]  # [batch, 1, key]
        drop = torch.zeros_like(attn, dtype=torch.bool).scatter(
            -1, order, drop_sorted.expand(batch, n, n)
        )
        del order
        attn.masked_fill_(drop, 0.0)
        del drop

    # 3. residual connection 0.5 * A + 0.5 * I, 4. renormalise rows (keepdim!)
    attn.mul_(0.5)
    attn.diagonal(dim1=-2, dim2=-1).add_(0.5)
    attn.div_(attn.sum(dim=-1, keepdim=True))
    # padded query rows become identity rows
    if padded is not None:
        attn.masked_fill_(padded[:, :, None], 0.0)
        attn.diagonal(dim1=-2, dim2=-1).masked_fill_(padded, 1.0)
    return attn


def rollout_step(
    fused: torch.Tensor,
    state: torch.Tensor | None,
    discard_ratio: float = 0.0,
    num_prefix_tokens: int = 0,
    key_mask: torch.Tensor | None = None,
    *,
    _consume: bool = False,
    _checked: bool = False,
) -> torch.Tensor:
    """Fold one layer into a running attention rollout: ``R <- A_hat @ R``.

    Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers". ``A_hat`` is
    :func:`residual_attention` of ``fused`` (see there for the discard and padding rules).

    Args:
        fused: ``[batch, query, key]`` head-fused attention of the next layer.
        state: ``[batch, query, key]`` rollout of the layers below, or ``None`` for the first
            layer (the state is then ``A_hat`` itself).
        discard_ratio: fraction in ``[0, 1)`` of the weakest weights per row to drop.
        num_prefix_tokens: leading tokens whose weights are never discarded.
        key_mask: ``[batch, key]`` bool, True for real tokens.
        _consume: internal (streaming capture): ``fused`` is a float32 buffer the caller drops
            after the call, so it is overwritten instead of copied, and it is not checked for
            NaN (capture records; :func:`rollout` refuses a non-finite result).
        _checked: internal (:func:`rollout`): ``fused`` is known to be finite.

    Non-finite attention (NaN, inf) raises :class:`ProbeError` naming its layer and head.

    Returns:
        The new ``[batch, query, key]`` state (a new tensor; rows sum to 1).
    """
    if not (_consume or _checked) and fused.dim() == 3:
        check_finite(fused[None, :, None], "rollout_step", stack="fused attention")
    a_hat = residual_attention(
        fused, discard_ratio, num_prefix_tokens, key_mask, _consume=_consume, _checked=True
    )
    if state is None:
        return a_hat
    if tuple(state.shape) != tuple(a_hat.shape):
        raise ProbeError(
            f"rollout state {tuple(state.shape)} does not match this layer's attention "
            f"{tuple(a_hat.shape)}; pass state=None for the first layer"
        )
    return a_hat @ state.to(device=a_hat.device, dtype=a_hat.dtype)


def check_start_layer(start_layer: Any) -> int:
    """``start_layer`` as an int: a Python or numpy integer (``np.int64(2)`` is layer 2);
    ``2.0``, ``True``, ``"2"`` and ``None`` are refused."""
    if not is_int(start_layer):
        raise ProbeError(f"start_layer must be an int, got {start_layer!r}")
    return int(start_layer)


def consecutive_layers(trace: Trace, start_layer: int, method: str) -> list[int]:
    """Positions in ``trace.attentions`` of model layers ``start_layer..last``, in order.

    Raises:
        ProbeError: ``start_layer`` is out of range or a layer from it on was not captured.
    """
    start_layer = check_start_layer(start_layer)
    if not trace.layer_indices:
        raise ProbeError(f"the trace holds no layers; capture with layers=None to use {method}")
    n = trace.num_model_layers or max(trace.layer_indices) + 1
    start = in_range(start_layer, n, name="start_layer")
    missing = [layer for layer in range(start, n) if layer not in trace.layer_indices]
    if missing:
        fix = "capture again with layers=None"
        if max(missing) + 1 < n:
            fix += f" or pass start_layer={max(missing) + 1}"
        raise ProbeError(
            f"{method} needs every layer from {start} to {n - 1}, but layers {missing} were not "
            f"captured; {fix}"
        )
    return [trace.layer_indices.index(layer) for layer in range(start, n)]


def rollout(
    trace: Trace,
    head_fusion: HeadFusion = "mean",
    discard_ratio: float = 0.0,
    start_layer: int = 0,
) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").

    ``R = A_hat[L-1] @ ... @ A_hat[start_layer]`` where ``A_hat`` is the head-fused,
    residual-augmented, row-renormalised attention of each layer (see
    :func:`residual_attention` for the exact discard and padding rules). ``R[b, i, j]`` is
    how much output token ``i`` draws from input token ``j``.

    Args:
        trace: a trace holding every layer from ``start_layer`` on, or a streaming trace
            whose stored rollout was computed with the same options.
        head_fusion: how heads are combined: ``"mean"``, ``"max"``, ``"min"`` or any fusion
            registered with :func:`probe.register_head_fusion`.
        discard_ratio: fraction in ``[0, 1)`` of the weakest weights of each row to drop
            (prefix tokens such as CLS are never dropped).
        start_layer: first model layer to include (the model's numbering; negative counts
            back from the last layer).

    Non-finite attention (NaN, inf) raises :class:`ProbeError` naming its layer and head.

    Returns:
        ``[batch, query, key]``: a new tensor; every row sums to 1. Real rows put zero weight
        on padded keys; padded rows are identity rows.
    """
    require_trace(trace, "probe.rollout")
    check_head_fusion(head_fusion)
    discard_ratio = check_discard_ratio(discard_ratio)
    start_layer = check_start_layer(start_layer)  # also before a streaming trace's stored one
    if not trace.has_attentions:
        if trace.rollout_result is not None:
            return _stored_rollout(trace, head_fusion, discard_ratio, start_layer)
        trace.require_attentions()  # raises: a streaming trace without its rollout
    if trace.query_indices is not None:
        trace.require_attentions()  # raises: rollout needs every query row
    if trace.head_indices is None and head_fusion != "mean":
        raise ProbeError(
            f"heads were averaged during capture, so head_fusion={head_fusion!r} cannot be "
            "computed; use head_fusion='mean' or capture again with heads=None"
        )
    positions = consecutive_layers(trace, start_layer, "rollout")
    key_mask = trace.attention_mask
    # layer by layer: a capture's layers are never stacked into one tensor here
    state = None
    for pos in positions:
        layer = trace.layer_attentions(pos)
        fused = fuse_heads(layer, head_fusion, check=False)
        finite = all_finite(fused)  # NaN and inf reach the fused map: one small reduction
        if not finite:  # name the layer and head (a fusion that makes NaN itself: rollout_step)
            check_trace_finite(layer[None], "rollout", trace, positions=[pos])
        state = rollout_step(
            fused, state, discard_ratio, trace.num_prefix_tokens, key_mask, _checked=finite
        )
    return state  # type: ignore[return-value]


def _stored_rollout(
    trace: Trace, head_fusion: str, discard_ratio: float, start_layer: int
) -> torch.Tensor:
    """The rollout kept by a streaming capture, if it was computed with these options."""
    stored: dict[str, Any] = {**_OPTION_DEFAULTS, **(trace.rollout_options or {})}
    n = trace.num_model_layers or (max(trace.layer_indices) + 1 if trace.layer_indices else 0)

    def layer(index: int) -> int:  # -1 and n - 1 name the same layer
        return index % n if n else index

    same = (
        stored["head_fusion"] == head_fusion
        and math.isclose(float(stored["discard_ratio"]), discard_ratio, abs_tol=1e-12)
        and layer(int(stored["start_layer"])) == layer(start_layer)
    )
    if not same:
        have = {key: stored[key] for key in _OPTION_DEFAULTS}
        wanted = {"head_fusion": head_fusion, "discard_ratio": discard_ratio,
                  "start_layer": start_layer}
        raise ProbeError(
            f"this streaming trace holds the rollout for {have}, not {wanted}; call rollout with "
            "those options or capture again without stream=True"
        )
    if not all_finite(trace.rollout_result):  # type: ignore[arg-type]
        raise ProbeError(
            "rollout: the rollout folded during streaming capture is not finite (a layer's "
            f"attention held NaN or inf); {CAUSES}; to see which layer and head, capture "
            "again without stream=True and call probe.rollout"
        )
    return trace.rollout_result.clone()  # type: ignore[union-attr]
