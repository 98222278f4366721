"""Row-selected capture on HuggingFace models: only the kept query rows are computed eagerly.

When a recorder keeps only some query rows of a layer (``probe.trace(query_rows=...)``,
``probe.generate(keep_prompt=False)``), the layer's *output* comes from the attention
implementation the model was configured with (``"sdpa"``: transformers' registered function,
fed the very arguments and mask it would get without probe, so the output is bitwise the
same), and the attention *probabilities* of the kept rows come from the model's own eager
function called on ``query[..., rows, :]`` with the mask and per-row arguments (T5's
position bias) sliced to those rows. Memory grows with ``rows x keys`` per layer, never
``keys^2``. Models configured with ``"eager"`` compute every row anyway (that is their own
forward); probe keeps the wanted rows. Other implementations (flash attention, flex
attention, custom kernels) cannot be called this way and use the chunked eager path of
:func:`probe.capture.adapters._hf_sites.intercept_hf`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "ROW_IMPLEMENTATIONS", "eager_rows_mask", "implementation_function", "mask_builder",
    "take_rows",
]

ROW_IMPLEMENTATIONS = ("sdpa", "eager")
"""Original implementations whose output probe can reproduce while computing only some rows."""


def implementation_function(impl: str, eager: Callable[..., Any]) -> Callable[..., Any]:
    """The attention function a module configured with ``impl`` calls (``eager``: its own)."""
    if impl == "eager":
        return eager
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    return ALL_ATTENTION_FUNCTIONS[impl]


def mask_builder(impl: str) -> Callable[..., Any]:
    """The mask builder ``transformers`` registers for ``impl`` (``sdpa_mask``, ``eager_mask``)."""
    from transformers.masking_utils import AttentionMaskInterface

    return AttentionMaskInterface._global_mapping[impl]


def take_rows(t: Any, rows: torch.Tensor, q_total: int) -> Any:
    """Rows ``rows`` of a ``[..., query, key]`` tensor; tensors broadcast over queries unchanged."""
    import torch

    if isinstance(t, torch.Tensor) and t.dim() >= 2 and t.shape[-2] == q_total:
        return t.index_select(-2, rows.to(t.device))
    return t


def eager_rows_mask(
    impl: str,
    mask: torch.Tensor | None,
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    rows: torch.Tensor,
    is_causal: bool | None,
) -> torch.Tensor | None:
    """The additive mask the eager function needs for query ``rows`` of this call.

    ``mask`` is what the model built for ``impl``. Eager masks are already additive. SDPA
    masks are boolean (True: attend) or ``None``; ``None`` means what
    ``sdpa_attention_forward`` makes of it: causal with SDPA's upper-left alignment (key ``j``
    visible from row ``i`` iff ``j <= i``) when the call has several rows and the module (or
    the ``is_causal`` argument) is causal, else no mask.

    Args:
        impl: the model's original implementation (``"sdpa"`` or ``"eager"``).
        mask: ``[batch or 1, 1 or head, query, key]`` mask of the call, or ``None``.
        query: ``[batch, head, query, dim]``; key: ``[batch, kv_head, key, dim]``.
        rows: ``[rows]`` long tensor of the kept query rows.
        is_causal: the ``is_causal`` keyword the model passed, if any.

    Returns:
        ``[batch or 1, 1 or head, rows, key]`` additive float mask in ``query``'s dtype, or
        ``None`` (nothing masked).
    """
    import torch

    q_total, k_total = int(query.shape[-2]), int(key.shape[-2])
    if impl == "eager" or (mask is not None and mask.dtype != torch.bool):
        return take_rows(mask, rows, q_total)
    low = torch.finfo(query.dtype).min
    zero = torch.zeros((), dtype=query.dtype, device=query.device)
    if mask is None:
        causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
        if not (q_total > 1 and causal):
            return None
        keys = torch.arange(k_total, device=query.device)
        visible = keys[None, :] <= rows.to(query.device)[:, None]
        return torch.where(visible, zero, low)[None, None]
    return torch.where(take_rows(mask, rows, q_total), zero, low)
