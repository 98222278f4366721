"""HuggingFace DETR (``DetrForObjectDetection``, ``DetrModel``, and Conditional DETR, which shares
its attention over the whole feature map): object queries over the image.

DETR runs a CNN backbone, flattens its last feature map row-major into a sequence of
``rows * cols`` tokens, encodes it with transformer self-attention, and decodes a fixed set of
object queries that attend to each other (decoder self-attention) and to the encoded feature
map (cross-attention). Its attention modules dispatch through ``ALL_ATTENTION_FUNCTIONS`` like
every transformers v5 model, so probe captures them exactly whatever ``attn_implementation``
the model was loaded with; this adapter adds the geometry: the feature-map grid that the
encoder tokens and the cross-attention keys are laid out on.

Deformable DETR and other DETR variants that sample features instead of attending over the
whole map raise :class:`UnsupportedModelError` ("not supported yet"); Table Transformer, a
DETR whose attention is written by hand instead of dispatching, is refused as every such
model is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from probe._errors import ProbeError, UnsupportedModelError
from probe.capture.adapters._base import (
    Family,
    Prepared,
    Site,
    VisionGeometry,
    register_adapter,
)
from probe.capture.adapters._hf_sites import find_hf_sites, is_hf_model
from probe.capture.adapters._vision import HFVision

if TYPE_CHECKING:
    import torch

__all__ = ["HFDetr"]

_SUPPORTED = ("detr", "conditional_detr")


def _conv_encoder(model: Any) -> Any:
    """The ``DetrConvEncoder`` of a ``DetrForObjectDetection`` or ``DetrModel``."""
    inner = getattr(model, "model", model)
    return getattr(inner, "backbone", None)


def _model_type(model: Any) -> str:
    return str(getattr(getattr(model, "config", None), "model_type", "") or "")


@register_adapter
class HFDetr(HFVision):
    """DETR: encoder self-attention over the feature map, object queries in the decoder."""

    family: ClassVar[Family] = "encoder-decoder"
    priority: ClassVar[int] = 50

    @classmethod
    def detect(cls, model: Any) -> bool:
        return is_hf_model(model) and "detr" in _model_type(model).replace("-", "_")

    def find_sites(self) -> list[Site]:
        kind = _model_type(self.model)
        if kind not in _SUPPORTED:
            raise UnsupportedModelError(
                f"{type(self.model).__name__} ({kind}) is not supported yet: probe captures "
                "DETR and Conditional DETR, whose queries attend over the whole feature map; "
                "deformable attention samples a few points per query and has no attention matrix"
            )
        return find_hf_sites(self.model)

    def input_size(self) -> tuple[int, int] | None:
        return None  # DETR takes any image size

    def prepare(self, inputs: Any, **kwargs: Any) -> Prepared:
        """As for every vision model, plus a ``pixel_mask=`` keyword checked against the
        pixels (:func:`_check_pixel_mask`)."""
        p = super().prepare(inputs, **kwargs)
        if p.kwargs.get("pixel_mask") is not None:
            _check_pixel_mask(p.kwargs["pixel_mask"], p.pixel_values)
        return p

    def stride(self) -> int:
        """Input pixels per cell of the backbone's last feature map, the one DETR encodes.

        A timm backbone reports it (``feature_info``, 16 with ``dilation``); an HF ResNet
        backbone is 4 (stem) times 2 per later stage up to its last ``out_features`` stage
        (``downsample_in_first_stage`` adds one). Other backbones raise
        :class:`UnsupportedModelError`.
        """
        net = getattr(_conv_encoder(self.model), "model", None)
        info = getattr(net, "feature_info", None)
        if info is not None and hasattr(info, "reduction"):
            return int(info.reduction()[-1])
        cfg = getattr(net, "config", None)
        stages = list(getattr(cfg, "out_features", None) or [])
        if getattr(cfg, "model_type", "") == "resnet" and stages and stages[-1].startswith("stage"):
            last = int(stages[-1][len("stage"):])
            first = 2 if getattr(cfg, "downsample_in_first_stage", False) else 1
            return 4 * first * 2 ** (last - 1)
        raise UnsupportedModelError(
            f"{type(self.model).__name__} has a {type(net).__name__} backbone whose stride "
            "probe cannot read: probe supports DETR with a timm backbone or an HF ResNet one"
        )

    def class_names(self) -> list[str]:
        """Names of the detector's classes, by index (``config.id2label``; ``class i`` when
        the config has none)."""
        cfg = self.model.config
        n = int(getattr(cfg, "num_labels", 0) or 0)
        names = getattr(cfg, "id2label", None) or {}
        return [str(names.get(i, names.get(str(i), f"class {i}"))) for i in range(n)]

    def detection_outputs(self, output: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits [batch, query, classes + 1], boxes [batch, query, 4])`` of a forward
        output; raises :class:`ProbeError` for a ``DetrModel`` without detection heads."""
        logits, boxes = getattr(output, "logits", None), getattr(output, "pred_boxes", None)
        if logits is None or boxes is None:
            raise ProbeError(
                f"{type(self.model).__name__} has no detection heads (class logits and boxes): "
                "load DetrForObjectDetection"
            )
        return logits, boxes

    def vision_geometry(self, pixels: torch.Tensor) -> VisionGeometry:
        """The feature-map grid: each stride-2 stage of the backbone halves the size, rounding
        up (padding 1 on 3x3/7x7 kernels), so an ``H x W`` image gives ``ceil(H / s) x
        ceil(W / s)`` cells; :func:`probe.trace` checks it against the captured sequence."""
        h, w = int(pixels.shape[-2]), int(pixels.shape[-1])
        s = self.stride()
        return VisionGeometry((-(-h // s), -(-w // s)), 0, (h, w), (s, s))


def _check_pixel_mask(mask: Any, pixels: torch.Tensor) -> None:
    """``pixel_mask`` ``[batch, height, width]`` like the pixels, all ones.

    DETR reads any non-zero value as a real pixel, so 2 or 0.5 ran as 1; a zero marks padding
    that probe's trace does not record (the same images padded by a processor are refused):
    a mask of another shape was silently resized by DETR, or failed deep inside it.
    """
    import torch

    if not isinstance(mask, torch.Tensor):
        raise ProbeError(f"pixel_mask must be a tensor [batch, height, width], got "
                         f"{type(mask).__name__}")
    want = (int(pixels.shape[0]), int(pixels.shape[-2]), int(pixels.shape[-1]))
    if tuple(mask.shape) != want:
        raise ProbeError(f"pixel_mask {tuple(mask.shape)} does not match the pixels "
                         f"{tuple(pixels.shape)}: pass a [batch, height, width] mask {want}, or "
                         "drop it (all ones is the default)")
    if mask.is_meta or mask.is_complex():
        raise ProbeError(f"pixel_mask must hold 0 and 1, got a {mask.dtype} tensor on "
                         f"{mask.device}: drop it (all ones is the default)")
    values = mask.detach()
    odd = values[(values != 0) & (values != 1) | values.isnan()]
    if odd.numel():
        raise ProbeError(f"pixel_mask holds {odd.flatten()[0].item()!r}: a mask holds 1 for a "
                         "real pixel and 0 for padding (DETR reads any other non-zero value as "
                         "real); drop it (all ones is the default)")
    if not bool(values.bool().all()):
        raise ProbeError("pixel_mask marks padding (it has zeros): probe traces unpadded "
                         "pixels; pass each image alone, or resize the images to one size, "
                         "and drop pixel_mask")
