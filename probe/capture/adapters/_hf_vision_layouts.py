"""HuggingFace vision transformers whose tokens are not ``prefix + patch grid``.

- ViT-MAE shuffles its patches per image (``argsort`` of random ``noise``) and keeps only the
  first ``1 - mask_ratio`` of them: its token ``k`` is a different patch in every image, and
  most patches are missing. probe maps tokens onto one patch grid, so a capture is accepted
  only when the model keeps every patch in grid order (``mask_ratio == 0`` and a ``noise=``
  forward argument increasing along the patches, passed to :func:`probe.trace`); anything
  else is refused before the forward with the fix (so are attribution methods, which take no
  forward arguments). ``ViTMAEForPreTraining``'s decoder (the mask tokens put back, other widths and
  heads) is not captured: the trace holds the encoder's layers.
- YOLOS appends ``num_detection_tokens`` detection tokens *after* the patches
  (``[CLS, patches..., detections...]``): the trace states them as ``num_suffix_tokens``, so
  patch maps, the CLS view and rollout read the grid between prefix and suffix, and a
  detection token is a query like any other (``query=trace.seq_len - k``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from probe._errors import ProbeError
from probe.capture._train_mode import current_call
from probe.capture.adapters._base import (
    Prepared,
    Site,
    VisionGeometry,
    number_sites,
    register_adapter,
)
from probe.capture.adapters._hf_sites import is_hf_model
from probe.capture.adapters._vision import HFVision

if TYPE_CHECKING:
    import torch

__all__ = ["HFViTMAE", "HFYolos"]


def _model_type(model: Any) -> str:
    return str(getattr(getattr(model, "config", None), "model_type", ""))


@register_adapter
class HFViTMAE(HFVision):
    """ViT-MAE (``ViTMAEModel``, ``ViTMAEForPreTraining``): see the module notes."""

    priority: ClassVar[int] = 41

    @classmethod
    def detect(cls, model: Any) -> bool:
        return is_hf_model(model) and _model_type(model) == "vit_mae"

    def find_sites(self) -> list[Site]:
        """The encoder's attention modules (the pre-training decoder's are left out)."""
        found = [(s.name, s.module, s.stack) for s in super().find_sites()
                 if not s.name.startswith("decoder.")]
        return number_sites(found)

    def prepare(
        self,
        inputs: Any,
        *,
        tokenizer: Any = None,
        decoder_inputs: Any = None,
        forward_kwargs: dict[str, Any] | None = None,
    ) -> Prepared:
        p = self.prepare_unchecked(inputs, tokenizer=tokenizer, decoder_inputs=decoder_inputs,
                                   forward_kwargs=forward_kwargs)
        self._check_grid_order(p)
        return p

    def prepare_unchecked(self, inputs: Any, **options: Any) -> Prepared:
        """The inputs prepared without the grid-order check: to compare the pixels of a
        ``trace=`` with those ``probe.attribute`` got (the trace was checked when captured)."""
        return super().prepare(inputs, **options)

    def _check_grid_order(self, p: Prepared) -> None:
        """Refuse unless every patch is kept, in grid order, in every image."""
        import torch

        rows, cols = self.vision_geometry(p.main).grid
        n = rows * cols
        ratio = float(getattr(self.model.config, "mask_ratio", 0.0))
        kept = int(n * (1 - ratio))  # as ViTMAEEmbeddings.random_masking counts them
        name = type(self.model).__name__
        fix = (f"set model.config.mask_ratio = 0.0 and pass the forward argument noise=torch."
               f"arange({n}.0).repeat(batch, 1) to probe.trace to keep every patch in grid order")
        if current_call() == "probe.attribute":  # it passes no forward argument: no loop
            fix = (f"probe.attribute passes no forward argument, so it cannot keep the patches "
                   f"in grid order: set model.config.mask_ratio = 0.0, capture trace = "
                   f"probe.trace(model, pixels, noise=torch.arange({n}.0).repeat(batch, 1)) and "
                   f"pass it to an attention method, probe.attribute(model, pixels, 'rollout', "
                   f"trace=trace) ('attention', 'flow' too); the other methods run the model "
                   f"themselves and cannot")
        if kept < n:
            raise ProbeError(
                f"{name} keeps a random {kept} of its {n} patches per image (mask_ratio="
                f"{ratio:g}), a different subset and order in every image: probe maps tokens "
                f"onto one patch grid and cannot state which patch each token is; {fix}"
            )
        noise = p.kwargs.get("noise")
        if noise is None:
            raise ProbeError(
                f"{name} shuffles its {n} patches in a random order per image (no noise= "
                f"forward argument): probe cannot state which patch each token is; {fix}"
            )
        if not isinstance(noise, torch.Tensor) or tuple(noise.shape) != (p.batch, n):
            got = tuple(noise.shape) if isinstance(noise, torch.Tensor) else type(noise).__name__
            raise ProbeError(f"noise= must be a [batch, patches] = [{p.batch}, {n}] tensor, got "
                             f"{got}; {fix}")
        order = torch.argsort(noise.to(p.main.device), dim=1)  # as random_masking sorts it
        if not torch.equal(order.cpu(), torch.arange(n).expand(p.batch, n)):
            raise ProbeError(
                f"the noise= passed to {name} orders its patches other than row-major in some "
                f"image: probe cannot state which patch each token is; {fix}"
            )


@register_adapter
class HFYolos(HFVision):
    """YOLOS: ``[CLS, patches..., detection tokens]`` (see the module notes)."""

    priority: ClassVar[int] = 41

    @classmethod
    def detect(cls, model: Any) -> bool:
        return is_hf_model(model) and _model_type(model) == "yolos"

    def strict_size(self) -> bool:
        return False  # YOLOS interpolates its position embeddings to any image size

    def vision_geometry(self, pixels: torch.Tensor) -> VisionGeometry:
        h, w = int(pixels.shape[-2]), int(pixels.shape[-1])
        ph, pw = _pair(self.model.config.patch_size)
        detections = int(getattr(self.model.config, "num_detection_tokens", 0) or 0)
        return VisionGeometry((h // ph, w // pw), 1, (h, w), (ph, pw), detections)


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))
