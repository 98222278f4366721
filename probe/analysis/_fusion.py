"""Head fusion: how the heads of one layer are combined into a single attention matrix.

A fusion is one function ``[..., head, query, key] -> [..., query, key]`` registered under a
name with :func:`register_head_fusion`. Attention rollout, attention flow and streaming
capture all go through :func:`fuse_heads`, so a new fusion plugs into all of them at once::

    @probe.register_head_fusion("median")
    def _median(attn):
        return attn.median(dim=-3).values

    probe.rollout(trace, head_fusion="median")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Literal, TypeVar, Union

from probe._errors import ProbeError
from probe.analysis._finite import all_finite, check_tensor_finite

if TYPE_CHECKING:
    import torch

__all__ = [
    "HeadFusion", "register_head_fusion", "unregister_head_fusion", "fuse_heads",
    "list_head_fusions",
]

#: Built-in fusion names; any registered name is accepted where a ``HeadFusion`` is expected.
HeadFusion = Union[Literal["mean", "max", "min"], str]

FusionFn = Callable[["torch.Tensor"], "torch.Tensor"]
_F = TypeVar("_F", bound=FusionFn)

_REGISTRY: dict[str, FusionFn] = {}


def register_head_fusion(name: str, *, overwrite: bool = False) -> Callable[[_F], _F]:
    """Decorator registering a head fusion ``[..., head, query, key] -> [..., query, key]``.

    Args:
        name: the name users pass as ``head_fusion=``.
        overwrite: replace an existing fusion of the same name instead of raising.

    The function must not modify its input and must return a new tensor with the head
    dimension (``dim=-3``) removed. Rows need not sum to 1: rollout renormalises.
    """
    if not isinstance(name, str) or not name:
        raise ProbeError(f"head fusion name must be a non-empty string, got {name!r}")

    def decorator(fn: _F) -> _F:
        if name in _REGISTRY and not overwrite:
            raise ProbeError(
                f"head fusion {name!r} is already registered; pick another name or pass "
                "overwrite=True"
            )
        _REGISTRY[name] = fn
        return fn

    return decorator


def unregister_head_fusion(name: str) -> None:
    """Remove head fusion ``name`` from the registry (tests use it to restore the registry)."""
    if name not in _REGISTRY:
        raise ProbeError(
            f"head fusion {name!r} is not registered: registered are {list(list_head_fusions())}"
        )
    del _REGISTRY[name]


def list_head_fusions() -> tuple[str, ...]:
    """Names of the registered head fusions, sorted."""
    return tuple(sorted(_REGISTRY))


def check_head_fusion(name: str) -> None:
    """Raise :class:`ProbeError` if ``name`` is not a registered head fusion."""
    if name not in _REGISTRY:
        raise ProbeError(
            f"unknown head_fusion {name!r}; use one of {list(list_head_fusions())} or register "
            "a new one with probe.register_head_fusion"
        )


def fuse_heads(
    attn: torch.Tensor, name: HeadFusion = "mean", *, check: bool = True
) -> torch.Tensor:
    """Combine the heads of ``attn`` ``[..., head, query, key]`` into ``[..., query, key]``.

    Args:
        attn: attention weights with the head dimension third from last, e.g.
            ``[layer, batch, head, query, key]`` or ``[batch, head, query, key]``.
        name: a registered fusion: ``"mean"``, ``"max"``, ``"min"`` or your own.
        check: refuse a non-finite result; ``False`` for callers that check themselves
            (rollout names the layer and head) or must not refuse (streaming capture records
            what the model computed).

    A NaN or inf that reaches the fused map raises :class:`ProbeError` naming its index in
    ``attn`` (or the fusion, when ``attn`` is finite). The check is one reduction over the
    fused map (``1/heads`` of ``attn``): mean fusion carries every NaN and inf into it, max and
    min every NaN and the inf on their side; a value a fusion drops (``-inf`` under max,
    ``+inf`` under min) leaves a finite, well-defined result and is not refused.

    Returns:
        A new tensor ``[..., query, key]``; ``attn`` is not modified.
    """
    import torch

    check_head_fusion(name)
    if not isinstance(attn, torch.Tensor):
        got = type(attn).__name__
        raise ProbeError(
            f"fuse_heads takes an attention tensor [..., head, query, key], got {got}: pass "
            + ("trace.attentions[layer], not the Trace" if got == "Trace" else "a tensor")
        )
    if attn.dim() < 3:
        raise ProbeError(
            f"fuse_heads needs attention shaped [..., head, query, key], got {tuple(attn.shape)}"
        )
    fused = _REGISTRY[name](attn)
    if check and not all_finite(fused):  # the fused map: 1/heads of the input's size
        dims = ("layer", "batch") if attn.dim() >= 5 else ("batch",)
        check_tensor_finite(attn, "fuse_heads", (*dims, "head", "query", "key"))
        check_tensor_finite(fused, f"fuse_heads (the {name!r} fusion's output)",
                            (*dims, "query", "key"))  # the fusion made it
    expected = tuple(attn.shape[:-3]) + tuple(attn.shape[-2:])
    if tuple(fused.shape) != expected:
        raise ProbeError(
            f"head fusion {name!r} returned shape {tuple(fused.shape)} instead of {expected}; "
            "fix it to reduce dim=-3 (the head dimension) only"
        )
    return fused


@register_head_fusion("mean")
def _fuse_mean(attn: torch.Tensor) -> torch.Tensor:
    """Average over heads (Abnar & Zuidema 2020)."""
    return attn.mean(dim=-3)


@register_head_fusion("max")
def _fuse_max(attn: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum over heads."""
    return attn.amax(dim=-3)


@register_head_fusion("min")
def _fuse_min(attn: torch.Tensor) -> torch.Tensor:
    """Element-wise minimum over heads."""
    return attn.amin(dim=-3)
