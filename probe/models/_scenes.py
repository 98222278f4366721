"""Generated scenes of several shapes with their boxes: the training data of ``detr-shapes``.

Each image holds one to three non-overlapping shapes (the classes of
:data:`probe.models._shapes.SHAPE_CLASSES`), each with its own colour, on a noisy background
of random mean colour. The generator returns every object's class, box and pixel mask, so that
a detector's predictions and its queries' attention can be scored against the truth.

Everything is drawn from a local :class:`torch.Generator` seeded by the caller: the same
arguments give bit-identical tensors on a given torch version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._index import is_int
from probe.models._shapes import (
    NORMALIZE_MEAN,
    NORMALIZE_STD,
    SHAPE_CLASSES,
    _shape_masks,
    denormalize,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["ScenesBatch", "make_scenes"]

_MIN_CONTRAST = 0.3
_TRIES = 24  # candidate placements drawn per object; part of the determinism contract


@dataclass(frozen=True)
class ScenesBatch:
    """A batch of generated multi-object scenes.

    Attributes:
        images: ``[n, 3, size, size]`` float32 normalised as ``(pixels - 0.5) / 0.5``.
        labels: ``[n, k]`` int64 class of each object slot, ``-1`` for an empty slot.
        boxes: ``[n, k, 4]`` float32 ``(cx, cy, w, h)`` relative to the image (DETR's
            convention), zeros for an empty slot.
        masks: ``[n, k, size, size]`` bool pixels of each object.
    """

    images: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    masks: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def counts(self) -> torch.Tensor:
        """``[n]`` number of objects in each image."""
        return (self.labels >= 0).sum(1)

    def targets(self) -> list[dict[str, Any]]:
        """Per-image ``{"class_labels": [m], "boxes": [m, 4]}``: the ``labels`` of HF DETR."""
        out = []
        for lab, box in zip(self.labels, self.boxes):
            keep = lab >= 0
            out.append({"class_labels": lab[keep], "boxes": box[keep]})
        return out

    def to_display(self, i: int) -> np.ndarray:
        """Image ``i`` as ``[size, size, 3]`` float32 in ``0..1``."""
        n = len(self)
        if not -n <= i < n:
            raise ProbeError(f"image index {i} is out of range for a batch of {n}; pick 0..{n - 1}")
        return denormalize(self.images[i])


def _place(size: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor,
           wanted: torch.Tensor) -> torch.Tensor:
    """Choose, per image and object, the first candidate box that keeps a 2-pixel gap to the
    objects already placed: ``[n, k]`` index into the candidates, ``-1`` where none fits or
    the object is not wanted. Inputs are ``[n, k, tries]`` (size, x0, y0) and ``[n]``."""
    import torch

    n, k, tries = size.shape
    choice = torch.full((n, k), -1, dtype=torch.long)
    s, x, y = size.tolist(), x0.tolist(), y0.tolist()
    for i in range(n):
        placed: list[tuple[int, int, int]] = []
        for j in range(int(wanted[i])):
            for t in range(tries):
                a = (x[i][j][t], y[i][j][t], s[i][j][t])
                if all(
                    a[0] >= b[0] + b[2] + 2 or b[0] >= a[0] + a[2] + 2
                    or a[1] >= b[1] + b[2] + 2 or b[1] >= a[1] + a[2] + 2
                    for b in placed
                ):
                    placed.append(a)
                    choice[i, j] = t
                    break
    return choice


def make_scenes(
    n: int,
    seed: int = 0,
    image_size: int = 64,
    *,
    objects: tuple[int, int] = (1, 3),
    size_range: tuple[int, int] | None = None,
) -> ScenesBatch:
    """Generate ``n`` scenes of ``objects[0]..objects[1]`` non-overlapping shapes.

    The number of objects is uniform in ``objects`` (inclusive); each object's class is
    uniform over the four shapes, its box side uniform in ``size_range`` (default
    ``image_size // 6`` to ``image_size * 3 // 8``) and its position uniform inside the image,
    redrawn up to 24 times until it keeps a 2-pixel gap to the objects already placed (an
    object that finds no room is left out, which happens for well under 1% of them).

    Args:
        n: number of images, at least 1.
        seed: seed of the local generator.
        image_size: side of the square images in pixels, at least 32.
        objects: ``(fewest, most)`` objects per image, ``1 <= fewest <= most <= 6``.
        size_range: ``(smallest, largest)`` box side in pixels, ``4 <= smallest <= largest``
            and ``largest <= image_size // 2``.

    Returns:
        A :class:`ScenesBatch` with ``k = objects[1]`` object slots per image.
    """
    import torch

    if not is_int(n) or n < 1:  # numpy integers count
        raise ProbeError(f"n must be an integer >= 1, got {n!r}; ask for at least one image")
    if not is_int(image_size) or image_size < 32:
        raise ProbeError(f"image_size must be an integer >= 32, got {image_size!r}; use 64")
    if not is_int(seed) or not 0 <= seed < 2**64:  # as make_shapes (and probe render --seed)
        raise ProbeError(f"seed must be an integer in 0..2**64-1, got {seed!r}")
    n, image_size, seed = int(n), int(image_size), int(seed)
    ok = lambda r, lo, hi: (  # noqa: E731
        isinstance(r, (tuple, list)) and len(r) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in r)
        and lo <= r[0] <= r[1] <= hi
    )
    if not ok(objects, 1, 6):
        raise ProbeError(
            f"objects {objects!r} is invalid: pass (fewest, most) with 1 <= fewest <= most <= 6")
    if size_range is None:
        size_range = (image_size // 6, image_size * 3 // 8)
    if not ok(size_range, 4, image_size // 2):
        raise ProbeError(
            f"size_range {size_range!r} is invalid for image_size {image_size}: pass "
            f"(smallest, largest) with 4 <= smallest <= largest <= {image_size // 2}"
        )
    gen = torch.Generator(device="cpu").manual_seed(seed)
    k, (low, high) = objects[1], size_range
    wanted = torch.randint(objects[0], k + 1, (n,), generator=gen)
    classes = torch.randint(0, len(SHAPE_CLASSES), (n, k), generator=gen)
    size = torch.randint(low, high + 1, (n, k, _TRIES), generator=gen)
    x0 = (torch.rand(n, k, _TRIES, generator=gen) * (image_size - size + 1)).floor().long()
    y0 = (torch.rand(n, k, _TRIES, generator=gen) * (image_size - size + 1)).floor().long()
    background = torch.rand(n, 3, generator=gen)
    offset = _MIN_CONTRAST + torch.rand(n, k, 3, generator=gen) * (1.0 - 2 * _MIN_CONTRAST)
    foreground = (background[:, None] + offset) % 1.0
    noise_std = 0.02 + 0.06 * torch.rand(n, generator=gen)
    noise = torch.randn(n, 3, image_size, image_size, generator=gen)

    choice = _place(size, x0, y0, wanted)
    present = choice >= 0
    pick = choice.clamp(min=0)[..., None]
    s, x, y = (t.gather(2, pick)[..., 0] for t in (size, x0, y0))
    labels = torch.where(present, classes, torch.full_like(classes, -1))
    flat = _shape_masks(classes.flatten(), x.flatten(), y.flatten(), s.flatten(), image_size)
    masks = flat.view(n, k, image_size, image_size) & present[..., None, None]
    colour = background[:, :, None, None].expand(n, 3, image_size, image_size).clone()
    for j in range(k):
        m = masks[:, j, None]
        colour = torch.where(m, foreground[:, j, :, None, None], colour)
    pixels = (colour + noise * noise_std[:, None, None, None]).clamp_(0.0, 1.0)
    sf = s.float()
    boxes = torch.stack([(x + sf / 2), (y + sf / 2), sf, sf], -1) / image_size
    boxes = boxes * present[..., None]
    images = (pixels - NORMALIZE_MEAN) / NORMALIZE_STD
    return ScenesBatch(images=images.float(), labels=labels, boxes=boxes.float(), masks=masks)
