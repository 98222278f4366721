"""Swin Transformers (windowed attention): timm ``SwinTransformer`` and
``SwinTransformerV2``, HuggingFace ``SwinModel`` / ``SwinForImageClassification``, their
``Swinv2`` counterparts and Donut's ``DonutSwinModel``.

Each block rolls its token grid by ``-shift`` (every second block), pads it to whole windows
and attends within each window; probe records every block's softmax weights
``[batch * windows, head, N, N]`` with the block's grid, window, shift and the shift mask the
model added, into ``trace.windows`` (see :mod:`probe.capture._windows`).

- timm: ``WindowAttention`` has a ``fused_attn`` flag; probe turns it off on each module
  (never the global switch), hooks ``attn_drop`` for the weights (timm's own unfused path),
  and reads the grid from the block's input and the mask from the attention's call. timm
  rolls the grid and then pads it.
- HuggingFace (transformers 5): ``SwinAttention`` dispatches through
  ``ALL_ATTENTION_FUNCTIONS``, so probe routes it through the model's own
  ``eager_attention_forward`` (:func:`~probe.capture.adapters._hf_sites.intercept_hf`) and reads
  the grid from ``SwinLayer``'s ``input_dimensions`` and the window and shift from the layer at
  call time (the model shrinks them on small grids). HF pads the grid and then rolls it.
- Swin V2 (scaled cosine attention with a log-spaced continuous position bias) computes its
  attention by hand in both libraries, with no fused path, and so does HF's ``DonutSwin`` (V1
  otherwise): probe hooks the dropout that follows the softmax (timm ``attn_drop``, HF
  ``<...>SelfAttention.dropout``), the model's own and only path, and reads grid, window,
  shift and mask as for V1.

Flags, configs and hooks are restored in ``finally``, also when the forward raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from probe._errors import ProbeError, UnsupportedModelError
from probe.analysis._windows import WindowLayout
from probe.capture.adapters._base import Site, VisionGeometry, number_sites, register_adapter
from probe.capture.adapters._hf_sites import intercept_hf, is_hf_model
from probe.capture.adapters._vision import HFVision, TimmViT, _pair

if TYPE_CHECKING:
    import torch
    from torch import nn

    from probe.capture._windows import WindowRecorder

__all__ = ["HFDonutSwin", "HFSwin", "HFSwinV2", "TimmSwin", "TimmSwinV2"]

_STAGE = re.compile(r"(?:^|\.)layers\.(\d+)\.blocks\.\d+\.")


def _stage(name: str) -> int:
    found = _STAGE.search(name)
    if found is None:
        raise UnsupportedModelError(
            f"cannot tell the stage of Swin attention module {name!r} (expected "
            "...layers.<stage>.blocks.<block>...): this Swin variant is not supported"
        )
    return int(found.group(1))


def _parent(model: nn.Module, name: str) -> nn.Module:
    return model.get_submodule(name.rsplit(".", 1)[0])


def _mask_arg(args: tuple[Any, ...], kwargs: dict[str, Any], key: str) -> Any:
    return kwargs.get(key, args[1] if len(args) > 1 else None)


def _on_weights(recorder: WindowRecorder, layer: int) -> Any:
    """A forward hook on the dropout after a block's softmax: records its output (the weights
    the model used; after dropout in training mode, which the recorder then warns about)."""

    def hook(mod: Any, _inp: Any, out: torch.Tensor) -> None:
        if mod.training and float(getattr(mod, "p", 0.0)) > 0.0:
            recorder.dropout_active = True  # out is after dropout, as the model used
        recorder.record(layer, 0, out, out.shape[-2])

    return hook


# --------------------------------------------------------------------------- both
class _SwinSites:
    """What timm's and HF's Swin share: one attention module per block, found by class name,
    stage ``i`` from ``...layers.<i>.blocks...``, tokens ``2**i`` patches wide."""

    model: Any
    attention_class: ClassVar[str]

    def is_site(self, module: Any) -> bool:
        return type(module).__name__ == self.attention_class

    def find_sites(self) -> list[Site]:
        found = [(name, m, "self") for name, m in self.model.named_modules() if self.is_site(m)]
        if not found:
            raise UnsupportedModelError(
                f"no {self.attention_class} modules found in {type(self.model).__name__}"
            )
        return number_sites(found)  # type: ignore[arg-type]

    def stage_of(self, site: Site) -> int:
        return _stage(site.name)

    def token_size(self, stage: int, geometry: VisionGeometry) -> tuple[int, int]:
        ph, pw = geometry.patch_size
        return (ph * 2**stage, pw * 2**stage)


# --------------------------------------------------------------------------- timm
@register_adapter
class TimmSwin(_SwinSites, TimmViT):
    """timm Swin Transformer (``swin_*`` models of ``timm.models.swin_transformer``)."""

    priority: ClassVar[int] = 50
    windowed: ClassVar[bool] = True

    @classmethod
    def detect(cls, model: Any) -> bool:
        return type(model).__module__ == "timm.models.swin_transformer"

    attention_class: ClassVar[str] = "WindowAttention"

    def is_site(self, module: Any) -> bool:
        return super().is_site(module) and hasattr(module, "fused_attn")

    def vision_geometry(self, pixels: torch.Tensor) -> VisionGeometry:
        # from the pixels: a Swin built with strict_img_size=False takes other sizes than its
        # patch_embed.grid_size (the patch convolution floors, or pads with dynamic_img_pad)
        h, w = int(pixels.shape[-2]), int(pixels.shape[-1])
        pe = self._patch_embed()
        ph, pw = _pair(pe.patch_size)
        if getattr(pe, "dynamic_img_pad", False):
            grid = (-(-h // ph), -(-w // pw))
        else:
            grid = (h // ph, w // pw)
        return VisionGeometry(grid, 0, (h, w), (ph, pw))

    @contextmanager
    def intercept(  # type: ignore[override]
        self, sites: list[Site], recorders: dict[str, WindowRecorder], chunk_size: int | None
    ) -> Iterator[None]:
        recorder = recorders["self"]
        grids: dict[int, tuple[int, int]] = {}
        handles = []
        previous = [(s.module, s.module.fused_attn) for s in sites
                    if hasattr(s.module, "fused_attn")]
        try:
            for site in sites:
                block = _parent(self.model, site.name)
                if hasattr(site.module, "fused_attn"):  # V1; V2 has only the unfused path
                    site.module.fused_attn = False

                def on_block(_m: Any, args: tuple[Any, ...], layer: int = site.layer) -> None:
                    grids[layer] = (int(args[0].shape[1]), int(args[0].shape[2]))  # [B, H, W, C]

                def on_attn(
                    _m: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                    layer: int = site.layer, block: Any = block,
                ) -> None:
                    layout = WindowLayout(
                        grids.pop(layer), _pair(block.window_size), _pair(block.shift_size), True
                    )
                    recorder.geometry(layer, layout, _mask_arg(args, kwargs, "mask"))

                handles.append(block.register_forward_pre_hook(on_block))
                handles.append(site.module.register_forward_pre_hook(on_attn, with_kwargs=True))
                handles.append(site.module.attn_drop.register_forward_hook(
                    _on_weights(recorder, site.layer)))
            yield
        finally:
            for h in handles:
                h.remove()
            for module, flag in previous:
                module.fused_attn = flag


@register_adapter
class TimmSwinV2(TimmSwin):
    """timm Swin Transformer V2 (``swinv2_*`` models of ``timm.models.swin_transformer_v2``;
    not the separate ``swinv2_cr_*`` implementation)."""

    @classmethod
    def detect(cls, model: Any) -> bool:
        return type(model).__module__ == "timm.models.swin_transformer_v2"

    def is_site(self, module: Any) -> bool:
        from torch import nn

        return (_SwinSites.is_site(self, module)
                and isinstance(getattr(module, "attn_drop", None), nn.Dropout))


# --------------------------------------------------------------------------- HuggingFace
@register_adapter
class HFSwin(_SwinSites, HFVision):
    """HuggingFace Swin (``config.model_type == "swin"``: ``SwinModel``,
    ``SwinForImageClassification``, ``SwinForMaskedImageModeling``, ``SwinBackbone``)."""

    priority: ClassVar[int] = 50
    windowed: ClassVar[bool] = True
    model_type: ClassVar[str] = "swin"
    attention_class: ClassVar[str] = "SwinAttention"
    #: attention computed by hand (no ``AttentionInterface``): hook the dropout after softmax
    hand_computed: ClassVar[bool] = False
    #: the layer shrinks its own ``window_size`` / ``shift_size`` at call time on small grids
    shrinks_window: ClassVar[bool] = True

    @classmethod
    def detect(cls, model: Any) -> bool:
        return is_hf_model(model) and getattr(model.config, "model_type", "") == cls.model_type

    def strict_size(self) -> bool:
        # relative position bias only: any size works (the model pads to whole patches)
        return bool(getattr(self.model.config, "use_absolute_embeddings", False))

    def vision_geometry(self, pixels: torch.Tensor) -> VisionGeometry:
        h, w = int(pixels.shape[-2]), int(pixels.shape[-1])
        ph, pw = _pair(self.model.config.patch_size)
        return VisionGeometry((-(-h // ph), -(-w // pw)), 0, (h, w), (ph, pw))

    @contextmanager
    def intercept(  # type: ignore[override]
        self, sites: list[Site], recorders: dict[str, WindowRecorder], chunk_size: int | None
    ) -> Iterator[None]:
        recorder = recorders["self"]
        grids: dict[int, tuple[int, int]] = {}
        with ExitStack() as stack:
            handles = []
            stack.callback(lambda: [h.remove() for h in handles])
            for site in sites:
                layer_module = _parent(self.model, site.name)
                if self.shrinks_window:
                    # the layer shrinks its own window_size / shift_size on small grids and
                    # keeps them: put them back, so the model is as it was after the trace
                    stack.callback(setattr, layer_module, "shift_size", layer_module.shift_size)
                    stack.callback(setattr, layer_module, "window_size",
                                   layer_module.window_size)

                def on_layer(
                    _m: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                    layer: int = site.layer, window: int = int(layer_module.window_size),
                ) -> None:
                    dims = kwargs.get("input_dimensions", args[1] if len(args) > 1 else None)
                    grids[layer] = (int(dims[0]), int(dims[1]))
                    if self.shrinks_window and min(grids[layer]) < window:
                        # HF would fail on its position bias
                        raise ProbeError(
                            f"this input gives Swin block {layer} a {grids[layer][0]}x"
                            f"{grids[layer][1]} token grid, smaller than its {window}x{window} "
                            "window (HF Swin's relative-position bias is sized for the window): "
                            "use a larger image"
                        )

                def on_attn(
                    _m: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                    layer: int = site.layer, owner: Any = layer_module,
                ) -> None:
                    window, shift = int(owner.window_size), int(owner.shift_size)
                    layout = WindowLayout(grids.pop(layer), (window, window), (shift, shift), False)
                    recorder.geometry(layer, layout, _mask_arg(args, kwargs, "attention_mask"))

                handles.append(layer_module.register_forward_pre_hook(on_layer, with_kwargs=True))
                handles.append(site.module.register_forward_pre_hook(on_attn, with_kwargs=True))
                if self.hand_computed:
                    handles.append(site.module.self.dropout.register_forward_hook(
                        _on_weights(recorder, site.layer)))
            if not self.hand_computed:
                routes = intercept_hf(self.model, sites, recorders, None)  # type: ignore[arg-type]
                stack.enter_context(routes)
            yield


@register_adapter
class HFSwinV2(HFSwin):
    """HuggingFace Swin V2 (``config.model_type == "swinv2"``: ``Swinv2Model``,
    ``Swinv2ForImageClassification``, ``Swinv2ForMaskedImageModeling``, ``Swinv2Backbone``).

    ``Swinv2SelfAttention`` computes its weights by hand (no attention implementation to
    switch), so probe only hooks: the layer's ``input_dimensions`` for the grid, the attention
    call for the mask, the dropout after the softmax for the weights. Window and shift are
    fixed when the model is built (no shrinking at call time, unlike V1).
    """

    model_type: ClassVar[str] = "swinv2"
    attention_class: ClassVar[str] = "Swinv2Attention"
    hand_computed: ClassVar[bool] = True
    shrinks_window: ClassVar[bool] = False


@register_adapter
class HFDonutSwin(HFSwin):
    """HuggingFace Donut's Swin encoder (``config.model_type == "donut-swin"``:
    ``DonutSwinModel``): Swin V1 with its attention computed by hand."""

    model_type: ClassVar[str] = "donut-swin"
    attention_class: ClassVar[str] = "DonutSwinAttention"
    hand_computed: ClassVar[bool] = True
