"""Reading images from disk into a vision model's input, and back for display."""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

__all__ = ["ModelImage", "check_image_file", "frames_note", "load_image", "load_image_frames",
           "preprocess_image", "to_rgb8"]


@dataclass(frozen=True)
class ModelImage:
    """An image prepared for a model.

    Attributes:
        pixel_values: ``[1, 3, H, W]`` normalised model input.
        display: ``[H, W, 3]`` float array in ``0..1``: the same pixels, for plotting.
        source: where the image came from (a path, or a description of a generated sample).
        original_size: ``(height, width)`` of the image before it was resized for the model
            (whose input may have another aspect ratio); ``None`` when unknown.
    """

    pixel_values: torch.Tensor
    display: np.ndarray
    source: str
    original_size: tuple[int, int] | None = None


def _input_spec(model: nn.Module,
                processor: Any) -> tuple[tuple[int, int], tuple[float, ...], tuple[float, ...]]:
    """(height, width), mean, std expected by the model."""
    name = getattr(model, "probe_name", None)
    if name in ("vit-shapes", "detr-shapes", "caption-shapes"):
        from probe.models._shapes import NORMALIZE_MEAN, NORMALIZE_STD

        side = 32 if name == "vit-shapes" else 64
        return (side, side), (NORMALIZE_MEAN,) * 3, (NORMALIZE_STD,) * 3
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
    if _is_detr(model):
        return (DETR_EDGES[0], DETR_EDGES[0]), IMAGENET_MEAN, IMAGENET_STD
    if getattr(getattr(cfg, "encoder", None), "image_size", None) is not None:
        cfg = cfg.encoder  # an image-to-text model: its image encoder's size
    size = getattr(cfg, "image_size", 224)
    h, w = (size, size) if isinstance(size, int) else size
    return (int(h), int(w)), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


#: DETR's own preprocessing, used for a DETR folder without ``preprocessor_config.json``:
#: resize keeping the aspect ratio so the shorter side is 800 pixels and the longer at most
#: 1333, then normalise with the ImageNet mean and standard deviation.
DETR_EDGES: tuple[int, int] = (800, 1333)
IMAGENET_MEAN: tuple[float, ...] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, ...] = (0.229, 0.224, 0.225)


def _is_detr(model: nn.Module) -> bool:
    cfg = getattr(model, "config", None)
    return getattr(cfg, "model_type", None) == "detr" and getattr(model, "probe_name", None) is None


def _size_entry(size: Any, key: str) -> int | None:
    value = size.get(key) if hasattr(size, "get") else getattr(size, key, None)
    return int(value) if value else None


def _aspect_edges(model: nn.Module, processor: Any) -> tuple[int, int] | None:
    """``(shortest, longest)`` edge of a resize that keeps the aspect ratio: a processor whose
    ``size`` has both and no fixed height/width (DETR's), or :data:`DETR_EDGES` for a DETR
    loaded without processor; ``None`` for a fixed-size resize."""
    if processor is not None and hasattr(processor, "image_mean"):
        size = getattr(processor, "size", None) or {}
        short, long = _size_entry(size, "shortest_edge"), _size_entry(size, "longest_edge")
        if short and long and not _size_entry(size, "height"):
            return short, long
        return None
    return DETR_EDGES if _is_detr(model) else None


def _aspect_size(width: int, height: int, short: int, long: int) -> tuple[int, int]:
    """``(width, height)`` scaled so the shorter side is ``short`` and the longer at most
    ``long`` (DETR's resize rule)."""
    scale = short / min(width, height)
    if max(width, height) * scale > long:
        scale = long / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


#: PIL modes of single-channel images with more than 8 bits per pixel
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def to_rgb8(image: Any) -> Any:
    """A PIL image as 8-bit RGB, scaled by its real value range (16-bit and float images).

    ``Image.convert("RGB")`` clips 16-bit and 32-bit pixels at 255 (a 16-bit PNG becomes
    mostly white, a float TIFF in ``0..1`` black). Here 16-bit images are divided by 65535,
    32-bit integer images by 65535 when their values fit 16 bits, and float images are taken
    as they are when in ``0..1`` or divided by 255 when in ``0..255``. An image with
    transparency (an alpha band: RGBA, LA, PA; or a palette or grey image with a transparent
    colour) is composited onto white, as viewers show it and as transformers' image
    processors (``convert_to_rgb``) give it to a model; ``convert("RGB")`` kept the colour
    stored under transparent pixels, often black.

    Raises:
        ProbeError: an image whose values have no known range (e.g. floats above 255 or
            negative), with what to do instead.
    """
    import numpy as np
    from PIL import Image

    if image.mode not in _WIDE_MODES:
        if "A" in image.getbands() or image.info.get("transparency") is not None:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return image.convert("RGB")
    values = np.asarray(image, dtype=np.float64)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if image.mode.startswith("I;16") or (image.mode == "I" and lo >= 0 and hi <= 65535):
        scaled = values / 65535.0
    elif image.mode == "F" and lo >= 0 and hi <= 1:
        scaled = values
    elif image.mode == "F" and lo >= 0 and hi <= 255:
        scaled = values / 255.0
    else:
        raise ProbeError(
            f"cannot tell the value range of this {image.mode} image (values {lo:g}..{hi:g}): "
            "save it as an 8-bit or 16-bit PNG"
        )
    gray = Image.fromarray(np.rint(np.clip(scaled, 0, 1) * 255).astype("uint8"))
    return gray.convert("RGB")


def preprocess_image(image: Any, model: nn.Module, processor: Any = None,
                     source: str = "") -> ModelImage:
    """Resize and normalise a PIL image (or ``[H, W, 3]`` array in 0..1) for ``model``: to its
    fixed input size, or keeping the aspect ratio for DETR-style processors (shortest and
    longest edge, :data:`DETR_EDGES` for a DETR folder without processor)."""
    import numpy as np
    import torch
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray((np.clip(image, 0, 1) * 255).astype("uint8"))
    image = to_rgb8(image)
    _check_image_model(model)
    (h, w), mean, std = _input_spec(model, processor)
    edges = _aspect_edges(model, processor)
    if edges is not None:
        w, h = _aspect_size(image.width, image.height, *edges)
    rgb = image.convert("RGB").resize((w, h), Image.BILINEAR)
    display = np.asarray(rgb, dtype=np.float32) / 255.0
    pixels = torch.from_numpy(display).permute(2, 0, 1)
    pixels = (pixels - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    return ModelImage(pixels.unsqueeze(0).float(), display, source, (image.height, image.width))


def _check_image_model(model: nn.Module) -> None:
    """Refuse a text model (a transformers config with a vocabulary and no image size or
    channels): it has no image size or normalisation, so the image was made 224 pixels wide
    with a mean and std of 0.5 that no model asked for."""
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "vocab_size", None) is None:
        return
    if any(getattr(cfg, n, None) is not None for n in ("image_size", "num_channels")):
        return
    name = getattr(model, "probe_name", None) or type(model).__name__
    raise ProbeError(f"{name} is a text model: images are for vision models (pass text to it, "
                     "or load a vision model such as vit-shapes)")


@contextmanager
def _safe_decoding(path: str) -> Iterator[None]:
    """PIL's decompression-bomb warning as an error; every decoding failure as one line."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ProbeError(
            f"{path!r} is too large to decode safely (over {Image.MAX_IMAGE_PIXELS} pixels): "
            "downscale it first"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, MemoryError) as exc:
        if isinstance(exc, ProbeError):
            raise
        raise ProbeError(
            f"cannot read {path!r} as an image ({type(exc).__name__}): pass a PNG or JPEG file"
        ) from None


def check_image_file(path: str) -> None:
    """Raise :class:`ProbeError` unless ``path`` is a readable, regular image file.

    Only regular files are opened (a FIFO or device would block forever); images larger than
    PIL's ``Image.MAX_IMAGE_PIXELS`` are refused before their pixels are decoded.
    """
    from PIL import Image

    if not isinstance(path, (str, os.PathLike)):  # an array was printed whole, an int a TypeError
        raise ProbeError(f"an image file path (str or pathlib.Path) is needed here, got "
                         f"{type(path).__name__}: save the image to a PNG file and pass its path")
    if not os.path.exists(path):
        from probe._atomic import dangling_link

        link = dangling_link(path)
        if link is not None:  # was "does not exist" of a path that ls shows
            raise ProbeError(f"image file {path!r} {link}: fix the link or pass the image "
                             "file itself")
        raise ProbeError(f"image file {path!r} does not exist: check the path")
    if os.path.isdir(path):
        raise ProbeError(f"{path!r} is a directory: pass an image file (PNG, JPEG, ...)")
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ProbeError(f"{path!r} is not a regular file: pass an image file (PNG, JPEG, ...)")
    with _safe_decoding(path), Image.open(path) as img:
        img.verify()


def load_image(path: str, model: nn.Module, processor: Any = None) -> ModelImage:
    """Read an image file and prepare it for ``model`` (resize to its input size, normalise).

    The image is taken upright as viewers show it: a JPEG's EXIF orientation (a phone photo
    stored sideways) is applied first, as ``transformers.image_utils.load_image`` does. A file
    of several frames (an animated GIF, WebP or PNG, a multi-page TIFF) gives its first frame,
    as transformers does, with one ``UserWarning`` naming the frame count.

    Raises:
        ProbeError: the file does not exist or is not a readable image.
    """
    from probe._errors import outside_probe_stacklevel

    image, frames = load_image_frames(path, model, processor)
    if frames > 1:
        warnings.warn(f"probe.load_image: {frames_note(path, frames)}", UserWarning,
                      stacklevel=outside_probe_stacklevel())
    return image


def frames_note(path: str, frames: int) -> str:
    """What a note says about an image file of ``frames`` frames."""
    return (f"{os.path.basename(str(path))!r} holds {frames} frames (an animation or a "
            "multi-page file); frame 0 is used: save the frame you mean as a still image "
            "(PNG) to look at another")


def load_image_frames(path: str, model: nn.Module,
                      processor: Any = None) -> tuple[ModelImage, int]:
    """:func:`load_image` without its warning: the image (of frame 0) and the file's number
    of frames (the command line says it in a note)."""
    from PIL import Image, ImageOps

    check_image_file(path)
    with _safe_decoding(path), Image.open(path) as img:
        frames = int(getattr(img, "n_frames", 1) or 1)
        img.load()
        rgb = to_rgb8(ImageOps.exif_transpose(img))
    return preprocess_image(rgb, model, processor, source=os.path.basename(path)), frames
