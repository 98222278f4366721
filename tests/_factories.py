"""Hand-built traces for analyzer and viewer tests (no model needed).

``make_trace`` fills every geometry field of :class:`probe.capture._trace.Trace` with sensible
defaults from the attention tensor; ``random_attention`` makes row-stochastic attention with
padded keys at zero weight, like a real softmax over a padded batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from probe.capture._trace import Trace

__all__ = ["make_trace", "module_io", "random_attention", "SPECIAL_TOKENS"]

SPECIAL_TOKENS = frozenset({"[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>", "<|endoftext|>"})


def _batched(
    value: Sequence[Any] | None, batch: int, name: str
) -> tuple[tuple[Any, ...], ...] | None:
    """Accept one sequence (batch of 1) or one sequence per batch item; return nested tuples."""
    if value is None:
        return None
    items = list(value)
    if items and not isinstance(items[0], (list, tuple)):
        items = [items]
    if len(items) != batch:
        raise ValueError(f"{name}: expected {batch} batch items, got {len(items)}")
    return tuple(tuple(item) for item in items)


def make_trace(
    attentions: torch.Tensor | None,
    tokens: Sequence[Any] | None = None,
    words: Sequence[Any] | None = None,
    word_ids: Sequence[Any] | None = None,
    num_prefix_tokens: int = 0,
    grid: tuple[int, int] | None = None,
    attention_mask: torch.Tensor | Sequence[Any] | None = None,
    special_tokens_mask: torch.Tensor | Sequence[Any] | None = None,
    *,
    layer_indices: Sequence[int] | None = None,
    head_indices: Sequence[int] | None | str = "all",
    num_model_layers: int | None = None,
    num_heads: int | None = None,
    family: str | None = None,
    model_name: str = "hand-built",
    image_size: tuple[int, int] | None = None,
    rollout_result: torch.Tensor | None = None,
    rollout_options: dict[str, Any] | None = None,
    layer_tensors: tuple[torch.Tensor, ...] | None = None,
    shape: tuple[int, int, int, int, int] | None = None,
) -> Trace:
    """A :class:`Trace` around ``attentions`` ``[layer, batch, head, query, key]``.

    Defaults: every token real; special tokens are the first ``num_prefix_tokens`` positions
    plus any token in :data:`SPECIAL_TOKENS`; layers ``0..L-1`` of an ``L``-layer model;
    heads ``0..H-1`` (``head_indices=None`` means "heads averaged during capture"); family
    ``"vision"`` when ``grid`` is given, else ``"encoder"``. ``tokens``, ``words`` and
    ``word_ids`` take one sequence (batch of 1) or one per batch item. For streaming traces
    pass ``attentions=None`` and ``shape`` (the would-be attention shape).
    """
    if attentions is not None:
        shape = tuple(attentions.shape)  # type: ignore[assignment]
    if shape is None or len(shape) != 5:
        raise ValueError("attentions must be [layer, batch, head, query, key] (or pass shape=)")
    n_layers, batch, n_heads, n_query, n_key = shape
    if attention_mask is None:
        mask = torch.ones(batch, n_key, dtype=torch.bool)
    else:
        mask = torch.as_tensor(attention_mask).bool().reshape(batch, n_key)
    tokens_t = _batched(tokens, batch, "tokens")
    if special_tokens_mask is None:
        special = torch.zeros(batch, n_key, dtype=torch.bool)
        special[:, :num_prefix_tokens] = True
        if tokens_t is not None:
            for b, toks in enumerate(tokens_t):
                for i, tok in enumerate(toks):
                    special[b, i] |= tok in SPECIAL_TOKENS
        special &= mask
    else:
        special = torch.as_tensor(special_tokens_mask).bool().reshape(batch, n_key)
    layers = tuple(range(n_layers)) if layer_indices is None else tuple(layer_indices)
    if head_indices == "all":
        heads: tuple[int, ...] | None = tuple(range(n_heads))
    else:
        heads = None if head_indices is None else tuple(head_indices)  # type: ignore[arg-type]
    if family is None:
        family = "vision" if grid is not None else "encoder"
    return Trace(
        attentions=attentions,
        layer_names=tuple(f"layers.{i}.attention" for i in layers),
        layer_indices=layers,
        head_indices=heads,
        model_name=model_name,
        family=family,  # type: ignore[arg-type]
        attention_mask=mask,
        special_tokens_mask=special,
        num_prefix_tokens=num_prefix_tokens,
        tokens=tokens_t,
        words=_batched(words, batch, "words"),
        word_ids=_batched(word_ids, batch, "word_ids"),
        grid=grid,
        image_size=image_size,
        rollout_result=rollout_result,
        rollout_options=rollout_options,
        layer_tensors=layer_tensors,
        num_heads=num_heads if num_heads is not None else (len(heads) if heads else 1),
        num_model_layers=num_model_layers if num_model_layers is not None else max(layers) + 1,
    )


def random_attention(
    layers: int,
    batch: int,
    heads: int,
    tokens: int,
    *,
    seed: int = 0,
    attention_mask: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float64,
    sharpness: float = 2.0,
) -> torch.Tensor:
    """Softmax attention ``[layer, batch, head, tokens, tokens]`` with padded keys at 0."""
    gen = torch.Generator().manual_seed(seed)
    shape = (layers, batch, heads, tokens, tokens)
    logits = sharpness * torch.randn(shape, generator=gen, dtype=dtype)
    if attention_mask is not None:
        keep = attention_mask.bool()[None, :, None, None, :]
        logits = logits.masked_fill(~keep, float("-inf"))
    return logits.softmax(dim=-1)


def module_io(
    model: torch.nn.Module, names: list[str], x: torch.Tensor
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Input and output of each named module in one plain forward of ``model`` on ``x`` (the
    reference for capture tests); the hooks are removed also when the forward raises."""
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = [
        model.get_submodule(n).register_forward_hook(
            lambda _m, a, o, n=n: seen.__setitem__(n, (a[0].detach().clone(), o.detach().clone()))
        )
        for n in names
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return seen
