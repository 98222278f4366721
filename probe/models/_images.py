"""Reading images from disk into a vision model's input, and back for display."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

__all__ = ["ModelImage", "load_image", "preprocess_image"]


@dataclass(frozen=True)
class ModelImage:
    """An image prepared for a model.

    Attributes:
        pixel_values: ``[1, 3, H, W]`` normalised model input.
        display: ``[H, W, 3]`` float array in ``0..1``: the same pixels, for plotting.
        source: where the image came from (a path, or a description of a generated sample).
    """

    pixel_values: torch.Tensor
    display: np.ndarray
    source: str


def _input_spec(model: nn.Module, processor: Any) -> tuple[tuple[int, int], tuple[float, ...], tuple[float, ...]]:
    """(height, width), mean, std expected by the model."""
    if getattr(model, "probe_name", None) == "vit-shapes":
        from probe.models._shapes import NORMALIZE_MEAN, NORMALIZE_STD

        return (32, 32), (NORMALIZE_MEAN,) * 3, (NORMALIZE_STD,) * 3
    if processor is not None and hasattr(processor, "image_mean"):
        size = getattr(processor, "size", {}) or {}
        h = size.get("height") or size.get("shortest_edge") or 224
        w = size.get("width") or size.get("shortest_edge") or 224
        return (int(h), int(w)), tuple(processor.image_mean), tuple(processor.image_std)
    if hasattr(model, "pretrained_cfg"):
        import timm.data

        cfg = timm.data.resolve_model_data_config(model)
        _, h, w = cfg["input_size"]
        return (int(h), int(w)), tuple(cfg["mean"]), tuple(cfg["std"])
    cfg = getattr(model, "config", None)
    size = getattr(cfg, "image_size", 224)
    h, w = (size, size) if isinstance(size, int) else size
    return (int(h), int(w)), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


def preprocess_image(image: Any, model: nn.Module, processor: Any = None, source: str = "") -> ModelImage:
    """Resize and normalise a PIL image (or ``[H, W, 3]`` array in 0..1) for ``model``."""
    import numpy as np
    import torch
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray((np.clip(image, 0, 1) * 255).astype("uint8"))
    (h, w), mean, std = _input_spec(model, processor)
    rgb = image.convert("RGB").resize((w, h), Image.BILINEAR)
    display = np.asarray(rgb, dtype=np.float32) / 255.0
    pixels = torch.from_numpy(display).permute(2, 0, 1)
    pixels = (pixels - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    return ModelImage(pixels.unsqueeze(0).float(), display, source)


def check_image_file(path: str) -> None:
    """Raise :class:`ProbeError` unless ``path`` is a readable image file."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.exists(path):
        raise ProbeError(f"image file {path!r} does not exist: check the path")
    if os.path.isdir(path):
        raise ProbeError(f"{path!r} is a directory: pass an image file (PNG, JPEG, ...)")
    try:
        with Image.open(path) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ProbeError(
            f"cannot read {path!r} as an image ({type(exc).__name__}): pass a PNG or JPEG file"
        ) from None


def load_image(path: str, model: nn.Module, processor: Any = None) -> ModelImage:
    """Read an image file and prepare it for ``model`` (resize to its input size, normalise).

    Raises:
        ProbeError: the file does not exist or is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    check_image_file(path)
    try:
        with Image.open(path) as img:
            img.load()
            return preprocess_image(img, model, processor, source=os.path.basename(path))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ProbeError(
            f"cannot read {path!r} as an image ({type(exc).__name__}): pass a PNG or JPEG file"
        ) from None
