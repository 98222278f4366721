"""Generated shape images: the training data of ``vit-shapes`` and a saliency ground truth.

Each image holds one foreground shape (``square``, ``disk``, ``cross`` or ``triangle``) of random
size, position and colour on a noisy background of random mean colour. The class is the shape;
the generator also returns the object's pixel mask, so that saliency maps can be scored against
the pixels that actually decide the class.

Everything is drawn from a local :class:`torch.Generator` seeded by the caller, never from the
global RNG: the same ``(n, seed, image_size)`` gives bit-identical tensors on a given torch
version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from probe._errors import ProbeError
from probe._index import is_int

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = [
    "SHAPE_CLASSES",
    "NORMALIZE_MEAN",
    "NORMALIZE_STD",
    "ShapesBatch",
    "make_shapes",
    "sample_image",
    "denormalize",
]

SHAPE_CLASSES: tuple[str, ...] = ("square", "disk", "cross", "triangle")
"""Class names, indexed by label."""

NORMALIZE_MEAN: float = 0.5
"""Images are ``(pixels - NORMALIZE_MEAN) / NORMALIZE_STD`` with pixels in ``0..1``."""

NORMALIZE_STD: float = 0.5
"""See :data:`NORMALIZE_MEAN`: normalised images lie in ``-1..1``."""

# Images are rendered this many at a time, so memory stays bounded for large ``n``. Part of
# the determinism contract: changing it changes which noise each image receives.
_CHUNK = 4096

# Every colour channel of the foreground differs from the background mean by at least this.
_MIN_CONTRAST = 0.3


@dataclass(frozen=True)
class ShapesBatch:
    """A batch of generated shape images.

    Attributes:
        images: ``[n, 3, height, width]`` float32, normalised the way ``vit-shapes`` expects:
            ``(pixels - 0.5) / 0.5`` with pixels in ``0..1``, so values lie in ``-1..1``.
        labels: ``[n]`` int64 index into :data:`SHAPE_CLASSES`.
        masks: ``[n, height, width]`` bool, ``True`` on the object's pixels.
    """

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def class_names(self) -> tuple[str, ...]:
        """Shape name of each image (``len == n``)."""
        return tuple(SHAPE_CLASSES[i] for i in self.labels.tolist())

    def to_display(self, i: int) -> np.ndarray:
        """Image ``i`` as ``[height, width, 3]`` float32 in ``0..1``, ready for ``imshow``."""
        n = len(self)
        if not -n <= i < n:
            raise ProbeError(f"image index {i} is out of range for a batch of {n}; pick 0..{n - 1}")
        return denormalize(self.images[i])


def denormalize(image: torch.Tensor) -> np.ndarray:
    """Undo the ``vit-shapes`` normalisation of one image.

    Args:
        image: ``[3, height, width]`` normalised image (as in :attr:`ShapesBatch.images`).

    Returns:
        ``[height, width, 3]`` float32 numpy array in ``0..1``.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ProbeError(
            f"denormalize expects one image [3, height, width], got shape {tuple(image.shape)}; "
            "index the batch first"
        )
    pixels = image.detach().float().cpu() * NORMALIZE_STD + NORMALIZE_MEAN
    return pixels.clamp(0.0, 1.0).permute(1, 2, 0).contiguous().numpy()


def _shape_masks(
    labels: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, size: torch.Tensor, image_size: int
) -> torch.Tensor:
    """Rasterise the shapes at pixel centres.

    Args:
        labels: ``[n]`` class index.
        x0, y0: ``[n]`` top-left corner of each shape's bounding box, in pixels.
        size: ``[n]`` side of the bounding box, in pixels.
        image_size: side of the square image.

    Returns:
        ``[n, image_size, image_size]`` bool masks.
    """
    import torch

    centres = torch.arange(image_size, dtype=torch.float32) + 0.5
    s = size.float()[:, None, None]
    # (u, v): position inside the bounding box, 0..1 left to right and top to bottom.
    u = (centres[None, None, :] - x0.float()[:, None, None]) / s
    v = (centres[None, :, None] - y0.float()[:, None, None]) / s
    inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    du = (u - 0.5).abs()
    dv = (v - 0.5).abs()
    bar = 1.0 / 6.0  # half width of the cross's bars, relative to the box
    per_class = torch.stack(
        [
            inside,  # square: the whole box
            du.square() + dv.square() <= 0.25,  # disk inscribed in the box
            inside & ((du <= bar) | (dv <= bar)),  # plus-shaped cross
            inside & (du <= v / 2),  # triangle, apex at the top centre
        ]
    )
    index = labels.view(1, -1, 1, 1).expand(1, *per_class.shape[1:])
    return per_class.gather(0, index)[0]


def make_shapes(
    n: int, seed: int = 0, image_size: int = 32, *, size_range: tuple[int, int] | None = None
) -> ShapesBatch:
    """Generate ``n`` shape images with labels and object masks.

    Classes are balanced (``n // 4`` or one more each, in shuffled order). A shape's bounding
    box side is drawn uniformly from ``size_range`` (default ``image_size // 4`` to
    ``image_size // 2`` pixels, inclusive) and the box lies fully inside the image. Every colour
    channel of the foreground differs from the background mean colour by at least 0.3; Gaussian
    pixel noise (standard deviation 0.02..0.1, per image) covers the whole image.

    Args:
        n: number of images, at least 1.
        seed: seed of the local generator; the output is a pure function of the arguments.
        image_size: side of the square images in pixels, at least 16.
        size_range: ``(smallest, largest)`` side of the shapes' bounding boxes in pixels,
            inclusive, with ``4 <= smallest <= largest <= image_size``.

    Returns:
        A :class:`ShapesBatch` with ``images`` ``[n, 3, image_size, image_size]`` (normalised
        as documented there), ``labels`` ``[n]`` and ``masks`` ``[n, image_size, image_size]``.
    """
    import torch

    if not is_int(n) or n < 1:  # numpy integers count
        raise ProbeError(f"n must be an integer >= 1, got {n!r}; ask for at least one image")
    if not is_int(image_size) or image_size < 16:
        raise ProbeError(
            f"image_size must be an integer >= 16, got {image_size!r}; use 32 for vit-shapes"
        )
    if not is_int(seed) or not 0 <= seed < 2**64:
        raise ProbeError(f"seed must be an integer in 0..2**64-1, got {seed!r}")
    n, image_size, seed = int(n), int(image_size), int(seed)

    if size_range is None:
        low, high = image_size // 4, image_size // 2
    else:
        valid = (
            isinstance(size_range, (tuple, list))
            and len(size_range) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in size_range)
            and 4 <= size_range[0] <= size_range[1] <= image_size
        )
        if not valid:
            raise ProbeError(
                f"size_range {size_range!r} is invalid for image_size {image_size}; "
                f"pass (smallest, largest) with 4 <= smallest <= largest <= {image_size}"
            )
        low, high = size_range

    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    k = len(SHAPE_CLASSES)

    # Per-image parameters, all drawn up front.
    labels = (torch.arange(n) % k)[torch.randperm(n, generator=gen)]
    size = torch.randint(low, high + 1, (n,), generator=gen)
    x0 = (torch.rand(n, generator=gen) * (image_size - size + 1)).floor().long()
    y0 = (torch.rand(n, generator=gen) * (image_size - size + 1)).floor().long()
    background = torch.rand(n, 3, generator=gen)
    offset = _MIN_CONTRAST + torch.rand(n, 3, generator=gen) * (1.0 - 2 * _MIN_CONTRAST)
    foreground = (background + offset) % 1.0  # |fg - bg| >= _MIN_CONTRAST per channel
    noise_std = 0.02 + 0.08 * torch.rand(n, generator=gen)

    images = torch.empty(n, 3, image_size, image_size, dtype=torch.float32)
    masks = torch.empty(n, image_size, image_size, dtype=torch.bool)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        mask = _shape_masks(labels[sl], x0[sl], y0[sl], size[sl], image_size)
        colour = torch.where(
            mask[:, None], foreground[sl, :, None, None], background[sl, :, None, None]
        )
        noise = torch.randn(colour.shape, generator=gen) * noise_std[sl, None, None, None]
        pixels = (colour + noise).clamp_(0.0, 1.0)
        images[sl] = (pixels - NORMALIZE_MEAN) / NORMALIZE_STD
        masks[sl] = mask
    return ShapesBatch(images=images, labels=labels, masks=masks)


def sample_image(seed: int = 0, image_size: int = 32) -> ShapesBatch:
    """One generated image (a batch of size 1), e.g. a default input for the CLI.

    Args:
        seed: generator seed.
        image_size: side of the image in pixels, at least 16.

    Returns:
        A :class:`ShapesBatch` with ``images`` ``[1, 3, image_size, image_size]``.
    """
    return make_shapes(1, seed=seed, image_size=image_size)
