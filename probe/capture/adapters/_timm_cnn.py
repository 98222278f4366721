"""timm convolutional networks and their attention gates (SE, ECA, CBAM, SK, non-local, ...).

A timm CNN has no attention matrix for :func:`probe.trace`; what it has are gating modules,
captured by :func:`probe.trace_gates`:

* channel gates, one number per channel and image: ``SEModule``, ``EffectiveSEModule``,
  ``SqueezeExcite`` (EfficientNet/MobileNet blocks), ``EcaModule``, ``CecaModule``,
  ``GatherExcite`` (global extent), ``GlobalContext`` (scaling fusion), the channel half of
  CBAM (``ChannelAttn``, ``LightChannelAttn``), ``SplitAttn`` with ``radix=1`` (a sigmoid);
* spatial gates, one number per position: CBAM's ``SpatialAttn`` and ``LightSpatialAttn``;
* channel-spatial gates, one number per channel and position: ``GatherExcite`` with a local
  extent (its coarse gate as upsampled by the module), ``CoordAttn`` (``a_h * a_w``),
  ``SimpleCoordAttn``;
* branch gates, a softmax over parallel branches per channel: ``SelectiveKernel`` (SKNet,
  Li et al. 2019) and ``SplitAttn`` with ``radix > 1`` (ResNeSt, Zhang et al. 2020);
* context maps, the softmax over positions with which ``GlobalContext`` (Cao et al. 2019)
  pools its context, in both fusions (its additive term is not a gate and is not captured);
* non-local blocks (``NonLocalAttn``): a softmax attention matrix over the positions;
  bilinear ones (``BatNonLocalAttn``, Chi et al. 2020): ``y = P x Q`` per channel group, an
  attention matrix ``P[i, k] * Q[l, j]`` over the positions for each group.

Where a module applies its gate through a ``gate`` activation submodule (or a softmax
submodule: ``SelectiveKernelAttn``, ``RadixSoftmax``), a forward hook on that submodule reads
the very tensor the model multiplies by. ``LightChannelAttn`` (an inline ``F.sigmoid``),
``NonLocalAttn`` (an inline softmax) and ``BatNonLocalAttn`` (inline normalised sigmoids) are
recomputed from the module's own layers in a hook on the module's input, the context map from
the logits ``conv_attn`` returned, with the same operations in the same order. Hooks are removed in
``finally``; no flag of the model is switched.
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
    "CoordAttn": "channel_spatial",
    "SimpleCoordAttn": "channel_spatial",
}
# modules whose gate or softmax is computed inline: recomputed from the module's own layers
_RECOMPUTED: dict[str, GateKind] = {
    "LightChannelAttn": "channel", "NonLocalAttn": "nonlocal", "BatNonLocalAttn": "bilinear",
}
# attention-like modules probe finds but does not capture yet
_NOT_CAPTURED = (
    "EfficientLocalAttn", "StripAttn", "LambdaLayer", "BottleneckAttn",
    "HaloAttn",
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


def _kernel_labels(m: Any) -> tuple[str, ...]:
    """One label per path of a ``SelectiveKernel``: kernel, dilation, effective size."""
    labels = []
    for path in m.paths:
        conv = path.conv
        k, d = int(conv.kernel_size[0]), int(conv.dilation[0])
        e = d * (k - 1) + 1
        labels.append(f"{k}x{k}" if d == 1 else f"{k}x{k} dil {d} ({e}x{e})")
    return tuple(labels)


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
            kind = "channel_spatial"
        if cls == "GlobalContext":
            if m.conv_attn is not None:
                sites.append(
                    GateSite(m.conv_attn, f"{name}.conv_attn", "context", _stage(name), cls)
                )
            if m.mlp_scale is None:
                if m.conv_attn is None:
                    skipped.append(f"{name} ({cls} with additive fusion and no attention pooling)")
                continue
        if cls == "SelectiveKernel":
            sites.append(GateSite(m.attn, f"{name}.attn", "branch", _stage(name), cls,
                                  _kernel_labels(m)))
        elif cls == "SplitAttn":
            radix = int(m.radix)
            branches = tuple(f"radix {i}" for i in range(radix)) if radix > 1 else ()
            sites.append(GateSite(m, name, "branch" if radix > 1 else "channel", _stage(name),
                                  cls, branches))
        elif kind is not None:
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


def _bilinear(ba: Any, x: torch.Tensor) -> torch.Tensor:
    """BAT's attention ``[batch, group, HW, HW]`` from ``BilinearAttnTransform`` ``ba``'s input.

    ``p`` (rows) and ``q`` (columns) are computed as its forward does and expanded with its own
    ``resize_mat``; output position ``(i, j)`` takes ``P[i, k] * Q[l, j]`` of input ``(k, l)``.
    """
    import torch
    import torch.nn.functional as F

    b, _, h, w = x.shape
    n, g = ba.block_size, ba.groups
    out = ba.conv1(x)
    rp = F.adaptive_max_pool2d(out, (n, 1))
    cp = F.adaptive_max_pool2d(out, (1, n))
    p = ba.conv_p(rp).view(b, g, n, n).sigmoid()
    q = ba.conv_q(cp).view(b, g, n, n).sigmoid()
    p = ba.resize_mat(p / p.sum(dim=3, keepdim=True), h // n)  # [B, G, H, H]
    q = ba.resize_mat(q / q.sum(dim=2, keepdim=True), w // n)  # [B, G, W, W]
    return torch.einsum("bgik,bglj->bgijkl", p, q).reshape(b, g, h * w, h * w)


def _context(logits: torch.Tensor) -> torch.Tensor:
    """``GlobalContext``'s pooling weights ``[batch, H, W]`` from ``conv_attn``'s output."""
    import torch.nn.functional as F

    b, _, h, w = logits.shape
    return F.softmax(logits.reshape(b, 1, h * w), dim=-1).reshape(b, h, w)


def _hook_site(site: GateSite, record: Record) -> list[Any]:
    """Register the hooks that make ``record`` see ``site``'s gate; returns their handles."""
    m, cls = site.module, site.module_type
    size: list[tuple[int, int]] = []
    pending: list[Any] = []

    def remember(x: torch.Tensor, channels_last: bool = False) -> None:
        hw = x.shape[1:3] if channels_last else x.shape[-2:]
        size[:] = [(int(hw[0]), int(hw[1]))]

    if site.kind == "context":  # the conv_attn logits -> softmax over positions
        def context(_m: Any, _a: Any, out: torch.Tensor) -> None:
            record(site, _context(out), (int(out.shape[-2]), int(out.shape[-1])))

        return [m.register_forward_hook(context)]
    if cls == "SelectiveKernel":  # SelectiveKernelAttn: [B, path, C, H, W] -> [B, path, C, 1, 1]
        def branch(_m: Any, args: tuple[Any, ...], out: torch.Tensor) -> None:
            x = args[0]
            record(site, out.reshape(out.shape[:3]), (int(x.shape[-2]), int(x.shape[-1])), out)

        return [m.register_forward_hook(branch)]
    if cls == "BatNonLocalAttn":  # the transform's input: conv1's output
        def bat(_m: Any, args: tuple[Any, ...]) -> None:
            x = args[0]
            n = m.ba.block_size
            if x.shape[-2] % n or x.shape[-1] % n:  # timm asserts it too, without a message
                raise ProbeError(
                    f"{site.name} (BatNonLocalAttn) needs feature maps divisible by its block "
                    f"size {n}, got {x.shape[-2]}x{x.shape[-1]}: use the input size the model "
                    "was built for (timm's pretrained_cfg input_size, e.g. 256 for "
                    "bat_resnext26ts)"
                )
            record(site, _bilinear(m.ba, x), (int(x.shape[-2]), int(x.shape[-1])))

        return [m.ba.register_forward_pre_hook(bat)]
    if cls in _RECOMPUTED:
        def pre(_m: Any, args: tuple[Any, ...]) -> None:
            x = args[0]
            remember(x)
            fn = _light_channel if cls == "LightChannelAttn" else _nonlocal
            record(site, fn(m, x), size[0])

        return [m.register_forward_pre_hook(pre)]

    # the gate is the output of a submodule (called twice by CoordAttn); recorded at the end
    # of the module's forward, where the size of the gated map is known
    def keep(_m: Any, _a: Any, out: torch.Tensor) -> None:
        pending.append(out)

    def start(_m: Any, args: tuple[Any, ...]) -> None:
        pending.clear()
        if cls != "SplitAttn":
            remember(args[0], cls == "SqueezeExciteCl")

    def finish(_m: Any, _a: Any, out: torch.Tensor) -> None:
        if cls == "SplitAttn":
            remember(out)
        b = int(out.shape[0])
        # CoordAttn multiplies by a_w then a_h: their product is off the output's path
        gate, source = (pending[0], pending[0]) if len(pending) == 1 else (
            pending[0] * pending[1], None)
        pending.clear()
        if site.kind == "spatial":
            values = gate.reshape(b, *gate.shape[-2:])
        elif site.kind == "channel_spatial":
            values = gate.expand(b, -1, *size[0]) if gate.dim() == 4 else gate
        elif site.kind == "branch":  # RadixSoftmax: [B, radix * C], radix-major
            values = gate.reshape(b, len(site.branches), -1)
        else:
            values = gate.reshape(b, -1)
        record(site, values, size[0], source)

    sub = m.rsoftmax if cls == "SplitAttn" else m.gate
    return [m.register_forward_pre_hook(start), sub.register_forward_hook(keep),
            m.register_forward_hook(finish)]


@contextmanager
def intercept_gates(sites: list[GateSite], record: Record) -> Iterator[None]:
    """Hook every site so that ``record(site, values, feature_size, source)`` sees its gate.

    ``values`` is the gate as the module computed it, shaped as :class:`probe.Gate` documents
    for its kind; ``source`` is the hooked tensor itself (``None`` for recomputed gates).
    Every hook is removed on exit, also when the forward raises.
    """
    handles: list[Any] = []
    try:
        for site in sites:
            handles.extend(_hook_site(site, record))
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
    input_step: ClassVar[str] = "stem"

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
        own = _other_attention(self.model, sites)
        if own:  # LeViT, TNT, CoaT, EfficientFormer, DaViT, EdgeNeXt, MobileViT v2, GCViT
            raise UnsupportedModelError(
                f"{name} has attention modules probe does not capture yet ({', '.join(own)}): "
                "probe.trace captures timm models whose attention modules have a fused_attn "
                "flag over one token sequence (ViT, DeiT, EVA, BEiT; Swin by its windows)"
                + (f"; {hint}" if sites else "")
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

    def _stage_names(self) -> list[str]:
        """Names of the network's stages, input first: ``stages.i`` (ConvNeXt, ...),
        ``layer1..4`` (ResNet), ``blocks.i`` (EfficientNet, MobileNet) or the stages timm's
        ``feature_info`` names (RegNet's ``s1..s4``); empty if none."""
        model = self.model
        stages = getattr(model, "stages", None)
        if stages is None and hasattr(model, "layer1"):
            return [f"layer{i}" for i in range(1, 5) if hasattr(model, f"layer{i}")]
        parent = "stages" if stages is not None else "blocks"
        container = getattr(model, parent, None)
        if container is not None and hasattr(container, "named_children"):
            return [f"{parent}.{name}" for name, _ in container.named_children()]
        # else timm's feature_info: the modules whose children with parameters are all one
        # kind of block (RegNet's s1..s4; a stem mixes convolutions and norms)
        names = []
        for info in getattr(model, "feature_info", None) or []:
            name = info.get("module") if isinstance(info, dict) else None
            try:
                module = model.get_submodule(name) if isinstance(name, str) and name else None
            except AttributeError:
                module = None
            kinds = {
                type(c) for c in module.children() if any(True for _ in c.parameters())
            } if module is not None else set()
            if len(kinds) == 1:
                names.append(name)
        return names

    def stacks(self) -> list[str]:
        """The stages' lists of blocks (sanity checks randomise one residual block at a time).

        A stage that is itself a list of blocks (``layer3``, ``blocks.2``) is a stack; a stage
        module that holds its blocks in a list named like a transformer stack (ConvNeXt's
        ``stages.2.blocks``) contributes that list, and its other parts (a downsampling layer)
        are steps of their own; any other stage (RegNet's ``s3`` with blocks ``b1``, ``b2``,
        ...) is a stack of its children. Models without recognisable stages fall back to the
        transformer search.
        """
        from torch import nn

        from probe.capture.adapters._blocks import STACK_NAMES

        found = []
        for name in self._stage_names():
            stage = self.model.get_submodule(name)
            if not any(True for _ in stage.parameters()):
                continue
            if not isinstance(stage, (nn.Sequential, nn.ModuleList)):
                inner = [
                    child for child, m in stage.named_children()
                    if child in STACK_NAMES and isinstance(m, (nn.Sequential, nn.ModuleList))
                ]
                if len(inner) == 1:
                    name = f"{name}.{inner[0]}"
            found.append(name)
        if found:
            return found
        try:
            return super().stacks()
        except ProbeError:
            raise ProbeError(
                f"cannot find the stages of {self.name} (layer1..4, stages, blocks or timm's "
                "feature_info): the sanity check randomises it one residual block at a time"
            ) from None

    def feature_layer(self, stage: int = -1) -> nn.Module:
        """The module whose output is the feature map of network stage ``stage`` (GradCAM)."""
        stages = [self.model.get_submodule(name) for name in self._stage_names()]
        if not stages:
            raise ProbeError(
                f"cannot find the stages of {self.name} (layer1..4, stages or blocks); GradCAM "
                "needs the last stage's feature map"
            )
        n = len(stages)
        if isinstance(stage, bool) or not isinstance(stage, int) or not -n <= stage < n:
            raise ProbeError(f"stage must be a stage index in -{n}..{n - 1}, got {stage!r}")
        return stages[stage]


def _other_attention(model: nn.Module, gates: list[GateSite]) -> list[str]:
    """Class names of ``model``'s attention modules that are not gates (``Attention`` or
    ``Attn`` in the name, outside every gate site): a hybrid transformer, not a CNN."""
    inside = {id(m) for g in gates for m in g.module.modules()}
    return sorted({
        type(m).__name__ for m in model.modules()
        if id(m) not in inside and ("Attention" in type(m).__name__ or "Attn" in type(m).__name__)
    })
