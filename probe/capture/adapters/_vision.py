"""Vision transformers: HuggingFace ViT-style models and timm ViT/DeiT/EVA/BEiT.

Both take ``pixel_values`` ``[batch, channel, height, width]``; they differ in how they are
called (HF: ``model(pixel_values=x)``, timm: ``model(x)``), how attention is intercepted (HF's
attention-function registry, timm's ``fused_attn`` flag) and where the geometry lives (HF: the
config's ``patch_size``; timm: ``patch_embed.grid_size`` and ``num_prefix_tokens``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from probe._errors import ProbeError, UnsupportedModelError
from probe.capture.adapters._base import (
    Family,
    ModelAdapter,
    Prepared,
    Site,
    VisionGeometry,
    dataset_hint,
    register_adapter,
)
from probe.capture.adapters._hf_sites import find_hf_sites, intercept_hf, is_hf_model
from probe.capture.adapters._timm_sites import (
    check_timm_refused,
    find_timm_sites,
    intercept_timm,
)

if TYPE_CHECKING:
    import torch

    from probe.capture._recorder import StackRecorder

__all__ = ["HFVision", "TimmViT", "VisionModel"]


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


class VisionModel(ModelAdapter):
    """Shared behaviour of the vision families (not registered itself)."""

    family: ClassVar[Family] = "vision"
    modality: ClassVar = "vision"
    #: the image may be of any size (set by :meth:`prepare` from the forward keywords)
    any_size: bool = False

    def prepare(
        self,
        inputs: Any,
        *,
        tokenizer: Any = None,
        decoder_inputs: Any = None,
        forward_kwargs: dict[str, Any] | None = None,
    ) -> Prepared:
        import torch

        if isinstance(inputs, Mapping) and isinstance(inputs.get("pixel_values"), torch.Tensor):
            raise ProbeError(_processor_output_fix(inputs))
        if not isinstance(inputs, torch.Tensor):
            hint = dataset_hint(inputs) or (
                "; convert images with the model's preprocessing first (an image file: "
                "probe.load_image(path, model).pixel_values)")
            raise ProbeError(
                f"vision models take a pixel tensor [batch, channel, height, width], got "
                f"{type(inputs).__name__}{hint}"
            )
        if decoder_inputs is not None:
            raise ProbeError("decoder_inputs= is for encoder-decoder text models: drop it")
        # HF ViT, DeiT, BEiT, ... with interpolate_pos_encoding=True take any image size
        self.any_size = (forward_kwargs or {}).get("interpolate_pos_encoding") is True
        self.check_pixels(inputs)
        p = Prepared(main_key=self.main_key)
        # float32 pixels for a float16/bfloat16 model: cast as HF ViT does itself (timm does not)
        pixels = inputs.to(self.device, self.dtype)
        p.kwargs = {self.main_key: pixels, **self.extra_kwargs(forward_kwargs)}
        if p.kwargs.get("labels") is not None:  # an image classifier's loss
            from probe.capture.adapters._labels import check_labels

            check_labels(self.model, p.kwargs["labels"], None, batch=int(inputs.shape[0]))
        p.pixel_values = inputs.detach().clone()
        p.batch = int(inputs.shape[0])
        return p

    def extra_kwargs(self, forward_kwargs: dict[str, Any] | None) -> dict[str, Any]:
        return dict(forward_kwargs or {})

    def expected_channels(self, x: torch.Tensor) -> int:
        return int(x.shape[1])

    def strict_size(self) -> bool:
        return not self.any_size

    def check_pixels(self, x: torch.Tensor) -> None:
        """Shape, dtype, channels and size of ``x`` against what the model expects."""
        if x.dim() == 3:
            raise ProbeError(
                f"pixel_values must be [batch, channel, height, width], got {tuple(x.shape)}: use "
                "x.unsqueeze(0)"
            )
        if x.dim() == 4 and not x.is_floating_point():
            raise ProbeError(
                f"pixel_values are {x.dtype}, not float: convert and normalise the image first "
                "(x.float() / 255, then the model's mean and std)"
            )
        if x.dim() != 4 or not x.is_floating_point():
            raise ProbeError(
                f"pixel_values must be a float tensor [batch, channel, height, width], got "
                f"{x.dtype} {tuple(x.shape)}"
            )
        check_some_pixels(x, "pixel_values")
        channels = self.expected_channels(x)
        if x.shape[1] != channels:
            if x.shape[-1] == channels:
                hint = (": the channels look last (channels-last layout); use "
                        "pixel_values.permute(0, 3, 1, 2)")
            elif channels == 3 and x.shape[1] == 1:
                hint = (": a grayscale image; repeat its channel (pixel_values.expand(-1, 3, -1, "
                        "-1)) or read the file with probe.load_image(path, model)")
            elif channels == 3 and x.shape[1] == 4:
                hint = (": an RGBA image; drop the alpha channel (pixel_values[:, :3]) or read "
                        "the file with probe.load_image(path, model)")
            else:
                hint = (f": convert the image to {channels} channels (probe.load_image(path, "
                        "model) does)")
            raise ProbeError(
                f"the model expects {channels} channels, got {x.shape[1]} (pixel_values "
                f"{tuple(x.shape)}){hint}"
            )
        expected = self.input_size()
        if self.strict_size() and expected is not None and tuple(x.shape[-2:]) != expected:
            takes = "interpolate_pos_encoding" in self.forward_parameters()[0]
            raise ProbeError(
                f"the model expects {expected[0]}x{expected[1]} images, got "
                f"{x.shape[-2]}x{x.shape[-1]}: resize the image first"
                + (" (or pass interpolate_pos_encoding=True)" if takes else "")
            )


def _processor_output_fix(inputs: Mapping[str, Any]) -> str:
    """What to pass instead of an image processor's output (a mapping with ``pixel_values``)."""
    mask = inputs.get("pixel_mask")
    if mask is not None and hasattr(mask, "all") and not bool(mask.all()):
        return ("the image processor padded these images to one size (pixel_mask has zeros): "
                "probe traces unpadded pixels; process and pass each image alone (a batch of "
                "one) and pass its pixel_values, or resize the images to one size first")
    return (f"vision models take the pixel tensor itself, got the processor's "
            f"{type(inputs).__name__} {sorted(inputs)}: pass inputs['pixel_values']")


def check_some_pixels(x: torch.Tensor, name: str) -> None:
    """``x`` ``[batch, channel, height, width]`` holds at least one image, with values."""
    if x.numel() == 0:
        raise ProbeError(f"{name} {tuple(x.shape)} hold no images: pass at least one image")
    if x.is_meta:
        raise ProbeError(f"{name} are on the meta device and hold no values: pass real pixels")
    if x.is_floating_point() or x.is_complex():
        import torch

        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            first = [int(i) for i in bad.nonzero()[0]]
            axes = ("image", "channel", "row", "column") if x.dim() == 4 else ()
            where = ", ".join(f"{a} {i}" for a, i in zip(axes, first)) if axes else str(first)
            value = x[tuple(first)].item()
            raise ProbeError(
                f"{name} hold {int(bad.sum())} non-finite value(s) (first: {value} at {where}), "
                "which would make every attention map NaN: fix the image or its preprocessing "
                "(torch.nan_to_num(x) replaces them)"
            )


@register_adapter
class HFVision(VisionModel):
    """HuggingFace vision transformers (ViT, DeiT, ...): ``main_input_name == "pixel_values"``."""

    priority: ClassVar[int] = 40

    @classmethod
    def detect(cls, model: Any) -> bool:
        return is_hf_model(model) and getattr(model, "main_input_name", "") == "pixel_values"

    def find_sites(self) -> list[Site]:
        self._refuse_layout()
        return find_hf_sites(self.model)

    def intercept(
        self, sites: list[Site], recorders: dict[str, StackRecorder], chunk_size: int | None
    ) -> Any:
        return intercept_hf(self.model, sites, recorders, chunk_size)

    def vision_config(self) -> Any:
        """The config holding the image geometry (``image_size``, ``patch_size``,
        ``num_channels``): the model's own; an image-to-text model's encoder config."""
        return self.model.config

    def _refuse_layout(self) -> None:
        """Video transformers (VideoMAE, ViViT, TimeSformer: a ``num_frames`` config) attend
        over space-time tubelets, not one image's patch grid: refused before anything runs."""
        frames = getattr(self.vision_config(), "num_frames", None)
        if frames:
            raise UnsupportedModelError(
                f"{type(self.model).__name__} is a video transformer: its tokens are space-time "
                f"patches of {frames} frames, not one image's patch grid; probe captures image "
                "and text models, video is not supported yet"
            )

    def check_pixels(self, x: torch.Tensor) -> None:
        self._refuse_layout()
        super().check_pixels(x)

    def expected_channels(self, x: torch.Tensor) -> int:
        return int(getattr(self.vision_config(), "num_channels", x.shape[1]))

    def input_size(self) -> tuple[int, int] | None:
        size = getattr(self.vision_config(), "image_size", None)
        return _pair(size) if size else None

    def vision_geometry(self, pixels: torch.Tensor) -> VisionGeometry:
        """The patch grid; the tokens before the patches are counted from the captured
        sequence (CLS, distillation, registers all come first in HF's ViT family). A model
        with detection tokens *after* the patches that is not YOLOS (which has its own adapter
        in :mod:`~probe.capture.adapters._hf_vision_layouts`) would have them counted as a
        prefix and every patch read one place off: refused."""
        after = int(getattr(self.vision_config(), "num_detection_tokens", 0) or 0)
        if after:
            raise UnsupportedModelError(
                f"{type(self.model).__name__} appends {after} detection tokens after its image "
                "patches; probe maps tokens after the patches for YOLOS only, so this layout is "
                "not supported yet (YOLOS, DETR and Conditional DETR are)"
            )
        h, w = int(pixels.shape[-2]), int(pixels.shape[-1])
        ph, pw = _pair(self.vision_config().patch_size)
        return VisionGeometry((h // ph, w // pw), -1, (h, w), (ph, pw))


@register_adapter
class TimmViT(VisionModel):
    """timm vision transformers (ViT, DeiT, EVA, BEiT, registers, ...)."""

    priority: ClassVar[int] = 40

    @classmethod
    def detect(cls, model: Any) -> bool:
        return type(model).__module__.startswith("timm.")

    @property
    def main_key(self) -> str:
        return "x"

    def find_sites(self) -> list[Site]:
        return find_timm_sites(self.model)

    def intercept(
        self, sites: list[Site], recorders: dict[str, StackRecorder], chunk_size: int | None
    ) -> Any:
        return intercept_timm(self.model, sites, recorders)

    def forward(self, kwargs: dict[str, Any]) -> Any:
        return self.model(kwargs["x"])

    def forward_parameters(self) -> tuple[frozenset[str], bool]:
        return frozenset(), False  # probe calls timm models as model(x)

    def extra_kwargs(self, forward_kwargs: dict[str, Any] | None) -> dict[str, Any]:
        if forward_kwargs:
            raise ProbeError(
                f"timm models take no extra forward arguments, got {sorted(forward_kwargs)}"
            )
        return {}

    def _patch_embed(self) -> Any:
        check_timm_refused(self.model)  # CaiT, XCiT, PiT, ConViT: the precise reason first
        pe = getattr(self.model, "patch_embed", None)
        if pe is None:
            raise UnsupportedModelError(
                f"{type(self.model).__name__} has attention modules but no patch embedding "
                "(patch_embed) mapping its tokens to one patch grid (a hybrid or multi-stage "
                "vision transformer): not supported yet; probe supports timm ViT, DeiT, EVA, "
                "BEiT and Swin"
            )
        if not hasattr(pe, "grid_size") or not hasattr(getattr(pe, "proj", None), "in_channels"):
            # CrossViT (two embeddings), PVT (overlapping, per stage)
            raise UnsupportedModelError(
                f"{type(self.model).__name__} embeds its image with a {type(pe).__name__}, not "
                "one patch grid probe can map its tokens to: not supported yet (probe supports "
                "timm vision transformers: ViT, DeiT, EVA, BEiT and their relatives)"
            )
        return pe

    def expected_channels(self, x: torch.Tensor) -> int:
        pe = self._patch_embed()
        if getattr(pe, "in_chans", None) is not None:  # HybridEmbed: proj follows a CNN
            return int(pe.in_chans)
        return int(pe.proj.in_channels) if hasattr(pe, "proj") else int(x.shape[1])

    def strict_size(self) -> bool:
        pe = self._patch_embed()
        strict = bool(getattr(pe, "strict_img_size", True))
        return strict and not getattr(pe, "dynamic_img_size", False)

    def check_pixels(self, x: torch.Tensor) -> None:
        """As for every vision model; an image of any size (``dynamic_img_size=True``) must
        be a whole number of patches unless the patch embedding pads it
        (``dynamic_img_pad=True``): timm asserts it deep inside the forward."""
        super().check_pixels(x)
        if self.strict_size():
            return
        pe = getattr(self.model, "patch_embed", None)  # a timm CNN subclass has none
        if pe is None or getattr(pe, "dynamic_img_pad", False):
            return
        patch = getattr(pe, "patch_size", None)
        ph, pw = _pair(patch) if patch is not None else (1, 1)
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if h % ph or w % pw:
            raise ProbeError(
                f"the image is {h}x{w}, not a whole number of the model's {ph}x{pw} patches: "
                f"resize or crop it to a multiple (e.g. {max(ph, h // ph * ph)}x"
                f"{max(pw, w // pw * pw)}), or create the model with dynamic_img_pad=True"
            )

    def input_size(self) -> tuple[int, int] | None:
        size = getattr(self._patch_embed(), "img_size", None)
        return _pair(size) if size is not None else None

    def pools_patches(self) -> bool:
        pool = getattr(self.model, "global_pool", None)
        return isinstance(pool, str) and pool not in ("token", "")

    def vision_geometry(self, pixels: torch.Tensor) -> VisionGeometry:
        h, w = int(pixels.shape[-2]), int(pixels.shape[-1])
        pe = self._patch_embed()
        # timm's dynamic_img_size=True lives on the model; its patch embedding is then only
        # not strict (reading pe.dynamic_img_size alone kept the configured grid: a 48x40
        # image was read as 4x4 patches after 15 "prefix" tokens)
        if not self.strict_size() and hasattr(pe, "dynamic_feat_size"):
            grid = tuple(pe.dynamic_feat_size((h, w)))
        else:
            grid = tuple(pe.grid_size)
        rows, cols = int(grid[0]), int(grid[1])
        patch = getattr(pe, "patch_size", None)
        ps = _pair(patch) if patch is not None else (h // rows, w // cols)
        prefix = int(getattr(self.model, "num_prefix_tokens", -1))
        return VisionGeometry((rows, cols), prefix, (h, w), ps)
