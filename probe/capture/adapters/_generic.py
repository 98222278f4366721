"""Any other ``torch.nn.Module``: run it, but capture nothing.

Perturbation methods (deletion and insertion curves, ERASER, sanity checks of user maps)
only need to call a model: images as ``model(pixels)``, text as ``model(**text_kwargs)``.
This fallback adapter gives them that for models no family recognises. Capturing attention
from such a model raises a clear error that says what to pass instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from probe._errors import ProbeError, UnsupportedModelError
from probe.capture.adapters._base import Prepared, Site, register_adapter
from probe.capture.adapters._hf_text import HFTextModel
from probe.capture.adapters._vision import check_some_pixels

if TYPE_CHECKING:
    from probe.capture._recorder import StackRecorder

__all__ = ["GenericModule"]


@register_adapter
class GenericModule(HFTextModel):
    """Fallback for plain modules: images as ``model(x)``, text as ``model(**kwargs)``."""

    priority: ClassVar[int] = -1000
    generic: ClassVar[bool] = True

    @classmethod
    def detect(cls, model: Any) -> bool:
        return True

    @property
    def main_key(self) -> str:
        return "x"

    def forward(self, kwargs: dict[str, Any]) -> Any:
        if set(kwargs) == {"x"}:
            return self.model(kwargs["x"])
        return self.model(**kwargs)

    def find_sites(self) -> list[Site]:
        from torch import nn

        model = self.model
        name = type(model).__name__
        inner = getattr(model, "module", None)
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            hint = f"pass the wrapped model (model.module, a {type(inner).__name__}) instead"
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile
            hint = (
                "a torch.compile'd model runs compiled code that probe cannot hook: pass the "
                f"original (model._orig_mod, a {type(model._orig_mod).__name__}), which shares "
                "its weights"
            )
        elif isinstance(model, nn.Sequential):
            hint = "pass the transformer model itself, not an nn.Sequential around it"
        else:
            hint = "pass a transformers or timm transformer model"
        raise UnsupportedModelError(
            f"probe cannot capture attention from {name}: no HuggingFace or timm attention "
            f"modules found at its top level; {hint}"
        )

    def intercept(
        self, sites: list[Site], recorders: dict[str, StackRecorder], chunk_size: int | None
    ) -> Any:
        self.find_sites()  # raises

    def prepare(
        self,
        inputs: Any,
        *,
        tokenizer: Any = None,
        decoder_inputs: Any = None,
        forward_kwargs: dict[str, Any] | None = None,
    ) -> Prepared:
        import torch

        is_tensor = isinstance(inputs, torch.Tensor)
        if is_tensor and inputs.dim() == 4 and not inputs.is_floating_point():
            raise ProbeError(
                f"images are {inputs.dtype}, not float: convert and normalise them first "
                "(x.float() / 255, then the model's mean and std)"
            )
        if isinstance(inputs, torch.Tensor) and inputs.is_floating_point():
            if inputs.dim() != 4:
                raise ProbeError(
                    f"images must be [batch, channel, height, width], got shape "
                    f"{tuple(inputs.shape)}" + ("; use x.unsqueeze(0)" if inputs.dim() == 3 else "")
                )
            check_some_pixels(inputs, "images")
            p = Prepared(main_key="x", kwargs={"x": inputs.to(self.device, self.dtype)})
            p.pixel_values = inputs.detach().clone()
            p.batch = int(inputs.shape[0])
            return p
        return super().prepare(
            inputs, tokenizer=tokenizer, decoder_inputs=decoder_inputs,
            forward_kwargs=forward_kwargs
        )

    def max_length(self) -> int | None:
        return super().max_length() if getattr(self.model, "config", None) is not None else None

    def special_from_config(self, input_ids: Any) -> Any:
        import torch

        if getattr(self.model, "config", None) is None:
            return torch.zeros(input_ids.shape, dtype=torch.bool)
        return super().special_from_config(input_ids)
