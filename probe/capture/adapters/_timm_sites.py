"""timm attention sites: modules with a ``fused_attn`` flag and an ``attn_drop`` dropout.

timm attention modules (``Attention``, EVA, BEiT, ...) apply ``attn_drop`` to the softmaxed
weights on their unfused path. probe turns the flag off on each module (never the global
``set_fused_attn``), hooks ``attn_drop``, and restores flags and hooks in ``finally``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from probe._errors import UnsupportedModelError
from probe.capture.adapters._base import Site, number_sites

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.capture._recorder import StackRecorder

__all__ = ["check_timm_refused", "find_timm_sites", "intercept_timm", "register_timm_refusal"]

#: timm model class name -> why its attention is not one [query, key] map per layer over one
#: token sequence (checked before anything is switched)
_REFUSED: dict[str, str] = {}


def register_timm_refusal(model_class: str, reason: str) -> None:
    """Refuse timm models of class ``model_class`` with ``reason`` (one line, naming what the
    model's attention is and that it is not supported)."""
    _REFUSED[model_class] = reason


register_timm_refusal(
    "Cait",
    "CaiT's self-attention blocks attend over the patches alone and mix their heads after "
    "the softmax (talking heads), and its class-attention blocks have one query (CLS) over "
    "CLS + patches: no one token sequence across its layers, not supported (not a trace of "
    "some layers only)",
)
register_timm_refusal(
    "Xcit",
    "XCiT's cross-covariance attention (XCA) attends between channels, not tokens (a [head, "
    "dim, dim] map per layer), and only its last class-attention blocks attend over tokens, "
    "with one query: it has no [query, key] token attention per layer, not supported",
)
register_timm_refusal(
    "PoolingVisionTransformer",
    "PiT pools its tokens between stages (a smaller grid per stage, its class token carried "
    "along): its layers attend over different token sequences, not one patch grid, not "
    "supported",
)
register_timm_refusal(
    "ConVit",
    "ConViT's gated positional self-attention blocks (GPSA) attend over the patches alone and "
    "its later blocks over CLS + patches: no one token sequence across its layers, not "
    "supported (not a trace of some layers only)",
)


def check_timm_refused(model: Any) -> None:
    """Raise :class:`UnsupportedModelError` with the reason registered for ``model``'s class."""
    reason = _REFUSED.get(type(model).__name__)
    if reason is not None:
        raise UnsupportedModelError(f"{type(model).__name__}: {reason}")


def find_timm_sites(model: nn.Module) -> list[Site]:
    """Attention modules of a timm model (those with ``fused_attn`` and ``attn_drop``)."""
    from torch import nn

    check_timm_refused(model)
    found = []
    for name, m in model.named_modules():
        cls = type(m).__name__
        if "WindowAttention" in cls or type(model).__name__.lower().startswith("swin"):
            raise UnsupportedModelError(
                f"{type(model).__name__} uses windowed attention that probe cannot map back "
                "to the image yet (not supported yet; Swin v1 and v2 are: timm swin_* and "
                "swinv2_* models); use those, or a global-attention ViT such as "
                "vit_small_patch16_224, deit, eva, beit"
            )
        if hasattr(m, "fused_attn") and isinstance(getattr(m, "attn_drop", None), nn.Dropout):
            found.append((name, m, "self"))
    if not found and getattr(model, "patch_embed", None) is None:
        raise UnsupportedModelError(
            f"{type(model).__name__} is a convolutional network (CNN): probe captures the "
            "attention of vision transformers and CNNs are not supported (yet); use a ViT such "
            "as timm:vit_small_patch16_224"
        )
    if not found:
        raise UnsupportedModelError(
            f"no attention modules found in {type(model).__name__}: probe captures timm models "
            "whose attention modules have a fused_attn flag and an attn_drop layer (ViT, DeiT, "
            "EVA, BEiT and their relatives)"
        )
    return number_sites(found)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- timm
def _check_square(model: nn.Module, name: str, weights: torch.Tensor, tokens: list[int]) -> None:
    """Every captured layer is self-attention over one token sequence: ``[..., N, N]`` with
    the same ``N`` in every layer. Class attention (one query) and pooling stages (fewer
    tokens per stage) are other layouts: refused, not half-read (CaiT and PiT are refused by
    name before this, see :func:`register_timm_refusal`; this catches their relatives)."""
    q, k = int(weights.shape[-2]), int(weights.shape[-1])
    if not tokens:
        tokens.append(k)
    if q != k or k != tokens[0]:
        what = (f"{q} query rows for {k} keys" if q != k
                else f"{k} tokens where the first layer has {tokens[0]}")
        raise UnsupportedModelError(
            f"{type(model).__name__}'s attention {name!r} has {what}: probe captures timm models "
            "whose every attention layer attends over one token sequence (ViT, DeiT, EVA, BEiT "
            "and their relatives); class attention and pooling stages are not supported yet"
        )


@contextmanager
def intercept_timm(
    model: nn.Module, sites: list[Site], recorders: dict[str, StackRecorder]
) -> Iterator[None]:
    """Turn off ``fused_attn`` per module and hook ``attn_drop``; restore both in ``finally``."""
    handles = []
    previous = [(s.module, s.module.fused_attn) for s in sites]
    tokens: list[int] = []  # the first layer's token count: every layer must share it
    try:
        for site in sites:
            site.module.fused_attn = False
            def hook(
                _mod: Any,
                _inp: Any,
                out: torch.Tensor,
                layer: int = site.layer,
                name: str = site.name,
                recorder: StackRecorder = recorders[site.stack],
            ) -> None:
                _check_square(model, name, out, tokens)
                if _mod.training and float(getattr(_mod, "p", 0.0)) > 0.0:
                    recorder.dropout_active = True  # out is after dropout, as the model used it
                recorder.record(layer, 0, out, out.shape[-2])

            handles.append(site.module.attn_drop.register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()
        for module, flag in previous:
            module.fused_attn = flag
