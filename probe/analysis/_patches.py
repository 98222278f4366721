"""Patch saliency maps for vision transformers.

Every function reads the geometry from the trace (``trace.grid`` and
``trace.num_prefix_tokens``, ``trace.num_suffix_tokens``), so non-square grids, any number
of prefix tokens (CLS, distillation, registers) and tokens after the patches (YOLOS's
detection tokens) work; nothing assumes 14x14 or exactly one CLS token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from probe._index import batch_position, is_int
from probe._errors import ProbeError
from probe.analysis._finite import check_trace_finite
from probe.analysis._fusion import HeadFusion
from probe.analysis._trace_input import require_trace

if TYPE_CHECKING:
    import torch

    from probe.capture._trace import Trace

__all__ = ["patch_maps", "to_grid", "upsample", "rollout_map", "relevance_map"]

UpsampleMode = Literal["bilinear", "bicubic", "nearest"]


def _grid(trace: Trace) -> tuple[int, int]:
    """The patch grid of a vision trace, checked against its sequence length."""
    if trace.grid is None:
        raise ProbeError(
            f"patch maps need a vision trace with a patch grid, but this {trace.family!r} trace "
            "has none; capture a vision model (e.g. a timm ViT) with probe.trace"
        )
    rows, cols = trace.grid
    suffix = trace.num_suffix_tokens
    expected = trace.num_prefix_tokens + rows * cols + suffix
    if trace.seq_len != expected:
        after = f" and {suffix} tokens after them" if suffix else ""
        raise ProbeError(
            f"the trace has {trace.seq_len} tokens but num_prefix_tokens="
            f"{trace.num_prefix_tokens} plus a {rows}x{cols} grid{after} need {expected}; fix "
            "the trace's grid or num_prefix_tokens"
        )
    return rows, cols


def patch_keys(trace: Trace) -> slice:
    """The patch positions of a vision trace's tokens: after the prefix, before the suffix."""
    rows, cols = trace.grid  # type: ignore[misc]
    return slice(trace.num_prefix_tokens, trace.num_prefix_tokens + rows * cols)


def _require_tensor(value: object, name: str, call: str) -> None:
    """``value`` is a torch tensor (a numpy array or a trace in its place failed with an
    AttributeError: ``'Tensor' object has no attribute 'grid'`` for swapped arguments)."""
    import torch

    if not isinstance(value, torch.Tensor):
        hint = " (convert it with torch.as_tensor)" if hasattr(value, "__array__") else ""
        raise ProbeError(f"{call}: {name} must be a torch tensor, got "
                         f"{type(value).__name__}{hint}")


def _query(trace: Trace, query: int) -> int:
    if not is_int(query):  # np.int64(0) is token 0
        raise ProbeError(f"query must be a token index (int), got {query!r}")
    query = int(query)
    n = trace.seq_len
    if not -n <= query < n:
        raise ProbeError(f"query {query} is out of range for {n} tokens; use 0..{n - 1}")
    return query % n


def _batch_slice(trace: Trace, batch_index: int | None) -> slice:
    """All batch items, or the one ``batch_index`` names (kept as a size-1 dimension)."""
    if batch_index is None:
        return slice(None)
    b = batch_position(batch_index, trace.batch_size, none_for_all=True)
    return slice(b, b + 1)


def patch_maps(trace: Trace, query: int = 0, batch_index: int | None = None) -> torch.Tensor:
    """Attention of one query token to every patch, per layer and head, on the patch grid.

    The DINO-style map (Caron et al. 2021, "Emerging Properties in Self-Supervised Vision
    Transformers", Fig. 1): row ``query`` of each head's attention (query 0 is the CLS
    token), restricted to the patch keys (the first ``trace.num_prefix_tokens`` keys and the
    last ``trace.num_suffix_tokens`` are skipped) and reshaped row-major to ``trace.grid``.
    Values are raw attention weights; they sum to at most 1 over the grid (the rest goes to
    prefix and suffix tokens).

    Args:
        trace: a vision trace; a row-selected one (``query_rows=``) must have kept row
            ``query``.
        query: the token whose attention is shown (0 is CLS; a patch token is
            ``num_prefix_tokens + row * cols + col``; YOLOS's ``k``-th detection token is
            ``num_prefix_tokens + rows * cols + k``, or ``k - num_suffix_tokens``).
        batch_index: one batch item (kept as a size-1 dimension) or ``None`` for all.

    Non-finite attention (NaN, inf) raises :class:`ProbeError` naming its layer and head.

    Returns:
        ``[layer, batch, head, rows, cols]`` new tensor.
    """
    require_trace(trace, "probe.patch_maps")
    rows, cols = _grid(trace)
    q = _query(trace, query)
    attentions = trace.require_rows([q])  # [layer, batch, head, 1, key]; row-selected too
    items = _batch_slice(trace, batch_index)
    check_trace_finite(
        attentions[:, items], "patch_maps", trace, queries=[q],
        items=range(trace.batch_size)[items],
    )
    picked = attentions[:, items, :, 0, patch_keys(trace)]
    return picked.reshape(*picked.shape[:-1], rows, cols).clone()


def to_grid(scores: torch.Tensor, trace: Trace) -> torch.Tensor:
    """Reshape per-token scores ``[..., num_tokens]`` or ``[..., num_patches]`` to the grid.

    With ``num_tokens`` scores (the whole sequence) the first ``trace.num_prefix_tokens``
    and the last ``trace.num_suffix_tokens`` are dropped; patches are laid out row-major as
    the patch embedding flattens them.

    Returns:
        ``[..., rows, cols]`` new tensor, e.g. ``[batch, rows, cols]`` for ``[batch, tokens]``.
    """
    if callable(getattr(scores, "require_attentions", None)):
        raise ProbeError("probe.to_grid takes (scores, trace): the trace came first; swap them")
    require_trace(trace, "probe.to_grid")
    _require_tensor(scores, "scores", "probe.to_grid(scores, trace)")
    rows, cols = _grid(trace)
    n_patches = rows * cols
    if scores.dim() < 1 or scores.shape[-1] not in (trace.seq_len, n_patches):
        raise ProbeError(
            f"scores of shape {tuple(scores.shape)} do not fit this trace: the last dimension "
            f"must be the {trace.seq_len} tokens or the {n_patches} patches"
        )
    patches = scores if scores.shape[-1] == n_patches else scores[..., patch_keys(trace)]
    return patches.reshape(*scores.shape[:-1], rows, cols).clone()


def upsample(
    maps: torch.Tensor, size: tuple[int, int], mode: UpsampleMode = "bilinear"
) -> torch.Tensor:
    """Resize patch maps ``[..., rows, cols]`` to image size ``[..., H, W]``.

    ``size`` is ``(H, W)``, e.g. ``trace.image_size``. Bilinear and bicubic use
    ``align_corners=False`` (patch centres sit at pixel-block centres). Integer maps are
    converted to float.

    Returns:
        ``[..., H, W]`` new tensor.
    """
    import torch.nn.functional as F

    _require_tensor(maps, "maps", "probe.upsample(maps, size)")
    if mode not in ("bilinear", "bicubic", "nearest"):
        raise ProbeError(f"unknown upsample mode {mode!r}; use 'bilinear', 'bicubic' or 'nearest'")
    if maps.dim() < 2:
        raise ProbeError(f"maps must be [..., rows, cols], got shape {tuple(maps.shape)}")
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2 or any(
        not is_int(s) or s < 1 for s in size  # numpy integers count; a bare 32 was a TypeError
    ):
        raise ProbeError(f"size must be (height, width) in pixels, e.g. (224, 224), got {size!r}")
    size = (int(size[0]), int(size[1]))
    x = maps if maps.is_floating_point() else maps.float()
    lead = x.shape[:-2]
    flat = x.reshape(-1, 1, *x.shape[-2:])
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    out = F.interpolate(flat, size=tuple(size), mode=mode, **kwargs)
    return out.reshape(*lead, *size)


def rollout_map(
    trace: Trace,
    head_fusion: HeadFusion = "mean",
    discard_ratio: float = 0.0,
    start_layer: int = 0,
    query: int = 0,
) -> torch.Tensor:
    """Attention rollout of one query (CLS by default) on the patch grid.

    Row ``query`` of :func:`probe.rollout` (Abnar & Zuidema 2020) restricted to the patch
    keys and reshaped to ``trace.grid``; works on streaming traces too. Values are the
    rollout weights as they are (not renormalised over the patches).

    Returns:
        ``[batch, rows, cols]`` new tensor.
    """
    require_trace(trace, "probe.rollout_map")
    from probe.analysis._rollout import rollout

    _grid(trace)
    q = _query(trace, query)
    result = rollout(trace, head_fusion, discard_ratio, start_layer)
    return to_grid(result[:, q, :], trace)


def relevance_map(trace: Trace, query: int = 0) -> torch.Tensor:
    """Gradient-weighted relevance (Chefer, Gur & Wolf 2021) of one query on the patch grid.

    Row ``query`` (CLS by default) of :func:`probe.relevance`, restricted to the patch keys
    and reshaped to ``trace.grid``. The trace must hold attention gradients.

    Returns:
        ``[batch, rows, cols]`` new tensor.
    """
    require_trace(trace, "probe.relevance_map")
    from probe.analysis._relevance import relevance

    _grid(trace)
    q = _query(trace, query)
    return to_grid(relevance(trace)[:, q, :], trace)
