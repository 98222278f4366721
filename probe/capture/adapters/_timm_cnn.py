"""timm convolutional networks and their attention gates (SE, ECA, CBAM, non-local, ...).

A timm CNN has no attention matrix for :func:`probe.trace`; what it has are gating modules,
captured by :func:`probe.trace_gates`:

* channel gates, one number per channel and image: ``SEModule``, ``EffectiveSEModule``,
  ``SqueezeExcite`` (EfficientNet/MobileNet blocks), ``EcaModule``, ``CecaModule``,
  ``GatherExcite`` (global extent), ``GlobalContext`` (scaling fusion), the channel half of
  CBAM (``ChannelAttn``, ``LightChannelAttn``);
* spatial gates, one number per position: CBAM's ``SpatialAttn`` and ``LightSpatialAttn``;
* non-local blocks (``NonLocalAttn``): a softmax attention matrix over the positions.

Where a module applies its gate through a ``gate`` activation submodule, a forward hook on
that submodule reads the very tensor the model multiplies by. ``LightChannelAttn`` (an inline
``F.sigmoid``) and ``NonLocalAttn`` (an inline softmax) are recomputed from the module's own
layers in a hook on the module's input, with the same operations in the same order. Hooks are
removed in ``finally``; no flag of the model is switched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from probe._errors import ProbeError, UnsupportedModelError
from probe.capture._gates import GateKind, GateSite
from probe.capture.adapters._base import Site, VisionGeometry, register_adapter
from probe.capture.adapters._vision import TimmViT

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["TimmCNN", "find_gates", "intercept_gates"]

# class name -> kind, for modules that apply their gate through a `gate` submodule
_GATED: dict[str, GateKind] = {
    "SEModule": "channel",
    "EffectiveSEModule": "channel",
    "SqueezeExcite": "channel",
    "SqueezeExciteCl": "channel",
    "EcaModule": "channel",
    "CecaModule": "channel",
    "ChannelAttn": "channel",
    "GatherExcite": "channel",
    "GlobalContext": "channel",
    "SpatialAttn": "spatial",
    "LightSpatialAttn": "spatial",
}
# modules whose gate or softmax is computed inline: recomputed from the module's own layers
_RECOMPUTED: dict[str, GateKind] = {"LightChannelAttn": "channel", "NonLocalAttn": "nonlocal"}
# attention-like modules probe finds but does not capture yet
_NOT_CAPTURED = (
    "BatNonLocalAttn", "SelectiveKernel", "SplitAttn", "CoordAttn", "SimpleCoordAttn",
    "EfficientLocalAttn", "StripAttn", "LambdaLayer", "BottleneckAttn", "HaloAttn",
)
_STAGE = (re.compile(r"(?:^|\.)layer(\d+)(?:\.|$)"), re.compile(r"(?:^|\.)stages?\.(\d+)(?:\.|$)"),
          re.compile(r"^blocks\.(\d+)(?:\.|$)"))


def _stage(name: str) -> int:
    for pattern, offset in zip(_STAGE, (1, 0, 0)):
        match = pattern.search(name)
        if match:
            return int(match.group(1)) - offset
    return -1


def _is_timm(module: Any) -> bool:
    return type(module).__module__.startswith("timm.")


def find_gates(model: nn.Module) -> tuple[list[GateSite], list[str]]:
    """The gating modules of a timm model, and the attention-like ones probe skips.

    Returns:
        ``(sites, skipped)``: captured modules in model order; ``"name (ClassName)"`` of the
        modules probe does not capture (and why, where it is a variant of a captured one).
    """
    sites: list[GateSite] = []
    skipped: list[str] = []
    for name, m in model.named_modules():
        cls = type(m).__name__
        if not _is_timm(m):
            continue
        kind = _GATED.get(cls) or _RECOMPUTED.get(cls)
        if cls == "GatherExcite" and getattr(m, "extent", 0) != 0:
            skipped.append(f"{name} ({cls} with extent {m.extent}: a channel-by-position gate)")
            continue
        if cls == "GlobalContext" and getattr(m, "mlp_scale", None) is None:
            skipped.append(f"{name} ({cls} with additive fusion only: no gate)")
            continue
        if kind is not None:
            sites.append(GateSite(m, name, kind, _stage(name), cls))
        elif cls in _NOT_CAPTURED:
            skipped.append(f"{name} ({cls})")
    return sites, skipped


Record = Callable[..., None]
"""``record(site, values, feature_size, source=None)``; ``source``: the hooked gate tensor."""


def _light_channel(m: Any, x: torch.Tensor) -> torch.Tensor:
    """``LightChannelAttn``'s gate ``[batch, channel]``, as its forward computes it."""
    import torch.nn.functional as F

    pooled = 0.5 * x.mean((2, 3), keepdim=True) + 0.5 * x.amax((2, 3), keepdim=True)
    return F.sigmoid(m.fc2(m.act(m.fc1(pooled)))).flatten(1)


def _nonlocal(m: Any, x: torch.Tensor) -> torch.Tensor:
    """``NonLocalAttn``'s attention ``[batch, HW, HW]``: ``softmax(t^T p * scale)`` over keys."""
    import torch
    import torch.nn.functional as F

    t = m.t(x)
    b, c, h, w = t.size()
    t = t.view(b, c, -1).permute(0, 2, 1)
    p = m.p(x).view(b, c, -1)
    return F.softmax(torch.bmm(t, p) * m.scale, dim=2)


@contextmanager
def intercept_gates(sites: list[GateSite], record: Record) -> Iterator[None]:
    """Hook every site so that ``record(site, values, feature_size)`` sees its gate.

    ``values`` is the gate as the module computed it (``source``: the hooked tensor itself,
    ``None`` for recomputed gates), reshaped to ``[batch, channel]``
    (channel), ``[batch, height, width]`` (spatial) or ``[batch, HW, HW]`` (non-local).
    Every hook is removed on exit, also when the forward raises.
    """
    handles = []
    sizes: dict[int, tuple[int, int]] = {}
    try:
        for i, site in enumerate(sites):
            def pre(_m: Any, args: tuple[Any, ...], i: int = i, site: GateSite = site) -> None:
                x = args[0]
                hw = x.shape[1:3] if site.module_type == "SqueezeExciteCl" else x.shape[-2:]
                sizes[i] = (int(hw[0]), int(hw[1]))
                if site.module_type == "LightChannelAttn":
                    record(site, _light_channel(site.module, x), sizes[i])
                elif site.module_type == "NonLocalAttn":
                    record(site, _nonlocal(site.module, x), sizes[i])

            handles.append(site.module.register_forward_pre_hook(pre))
            if site.module_type in _RECOMPUTED:
                continue

            def post(_m: Any, _args: Any, out: torch.Tensor, i: int = i, site: GateSite = site) -> None:
                batch = int(out.shape[0])
                if site.kind == "spatial":
                    values = out.reshape(batch, *out.shape[-2:])
                else:
                    values = out.reshape(batch, -1)
                record(site, values, sizes[i], out)

            handles.append(site.module.gate.register_forward_hook(post))
        yield
    finally:
        for handle in handles:
            handle.remove()


@register_adapter
class TimmCNN(TimmViT):
    """timm convolutional networks (ResNet, SE-ResNet, ECA-ResNet, EfficientNet, ...).

    Detected as a timm model without a patch embedding and without timm attention modules.
    :func:`probe.trace` refuses it (a CNN has no attention matrix); :func:`probe.trace_gates`
    captures its gates, and gradient methods (GradCAM on the last stage, Integrated Gradients,
    saliency) score a unit grid of the input: the cells of the last stage's feature map.
    """

    priority: ClassVar[int] = 45

    @classmethod
    def detect(cls, model: Any) -> bool:
        if not _is_timm(model) or getattr(model, "patch_embed", None) is not None:
            return False
        return not any(
            hasattr(m, "fused_attn") and hasattr(m, "attn_drop") for m in model.modules()
        )

    def find_sites(self) -> list[Site]:
        sites, _ = find_gates(self.model)
        name = self.name
        if sites:
            kinds = sorted({s.kind for s in sites})
            hint = (
                f"it has {len(sites)} attention gates ({', '.join(kinds)}): capture them with "
                "probe.trace_gates(model, pixels)"
            )
        else:
            hint = (
                "it has no attention modules; use gradient methods such as "
                "probe.attribute(model, pixels, 'gradcam')"
            )
        raise UnsupportedModelError(
            f"{name} is a convolutional network: probe.trace captures attention matrices of "
            f"transformers; {hint}"
        )

    def find_gates(self) -> tuple[list[GateSite], list[str]]:
        """``(sites, skipped)``: see :func:`find_gates`."""
        return find_gates(self.model)

    def intercept_gates(self, sites: list[GateSite], record: Record) -> Any:
        return intercept_gates(sites, record)

    # ------------------------------------------------------------------ geometry
    def _first_conv(self) -> Any:
        from torch import nn

        return next((m for m in self.model.modules() if isinstance(m, nn.Conv2d)), None)

    def expected_channels(self, x: torch.Tensor) -> int:
        conv = self._first_conv()
        return int(conv.in_channels) if conv is not None else int(x.shape[1])

    def strict_size(self) -> bool:
        return False

    def input_size(self) -> tuple[int, int] | None:
        return None

    def unit_stride(self) -> int:
        """Input pixels per cell of the last stage's feature map (timm's ``feature_info``)."""
        info = getattr(self.model, "feature_info", None)
        try:
            return int(info[-1]["reduction"])  # type: ignore[index]
        except (TypeError, KeyError, IndexError):
            raise ProbeError(
                f"{self.name} does not report its feature strides (timm feature_info); probe "
                "cannot place its feature maps on the image"
            ) from None

    def vision_geometry(self, pixels: torch.Tensor) -> VisionGeometry:
        """The unit grid: one cell per position of the last stage's feature map."""
        h, w = int(pixels.shape[-2]), int(pixels.shape[-1])
        s = self.unit_stride()
        return VisionGeometry((-(-h // s), -(-w // s)), 0, (h, w), (s, s))

    def pools_patches(self) -> bool:
        return True

    def feature_layer(self, stage: int = -1) -> nn.Module:
        """The module whose output is the feature map of network stage ``stage`` (GradCAM)."""
        model = self.model
        stages = getattr(model, "stages", None)
        if stages is None and hasattr(model, "layer1"):
            stages = [getattr(model, f"layer{i}") for i in range(1, 5) if hasattr(model, f"layer{i}")]
        if stages is None:
            blocks = getattr(model, "blocks", None)
            stages = list(blocks) if blocks is not None else None
        if not stages:
            raise ProbeError(
                f"cannot find the stages of {self.name} (layer1..4, stages or blocks); GradCAM "
                "needs the last stage's feature map"
            )
        n = len(stages)
        if isinstance(stage, bool) or not isinstance(stage, int) or not -n <= stage < n:
            raise ProbeError(f"stage must be a stage index in -{n}..{n - 1}, got {stage!r}")
        return stages[stage]
