"""Generated captioned scenes: the training data and ground truth of ``caption-shapes``.

Each ``64x64`` image holds one to three non-overlapping shapes (boxes of 14 to 26 pixels;
the classes of :data:`probe.models._shapes.SHAPE_CLASSES`), each painted in one of the named
colours of :data:`CAPTION_COLOURS`, on a noisy grey background. The caption names every object,
left to right by the centre of its box: ``"red disk and blue square"``. Scenes whose object
centres lie closer than :data:`MIN_GAP` pixels apart horizontally are drawn again, so the
order, and so the caption, is determined by the image. Object slot ``j`` of every field is the
``j``-th object of the caption, so ``masks[i, j]`` is the ground truth of the ``j``-th shape
word.

The layout (classes, boxes, masks) comes from :func:`probe.models._scenes.make_scenes`; all
randomness is drawn from local generators seeded by the caller: the same arguments give
bit-identical tensors on a given torch version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from probe._errors import ProbeError
from probe._index import is_int
from probe.models._shapes import NORMALIZE_MEAN, NORMALIZE_STD, SHAPE_CLASSES, denormalize

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["CAPTION_COLOURS", "CAPTION_IMAGE_SIZE", "MIN_GAP", "SIZE_RANGE", "CaptionsBatch",
           "caption_of", "make_captions"]

CAPTION_IMAGE_SIZE: int = 64
"""Side of the square images in pixels."""

CAPTION_COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.15, 0.15),
    "green": (0.15, 0.75, 0.20),
    "blue": (0.20, 0.30, 0.95),
    "yellow": (0.95, 0.85, 0.15),
}
"""The named object colours (RGB in ``0..1``, each channel jittered by up to 0.08)."""

SIZE_RANGE: tuple[int, int] = (14, 26)
"""Smallest and largest box side in pixels (at ``8x8``-pixel patches a 10-pixel disk and a
10-pixel square differ in a few corner pixels: too small to name)."""

MIN_GAP: int = 6
"""Least horizontal distance in pixels between the box centres of two objects of a scene."""

_ROUND = 1_000_003  # seed step between rounds of candidate scenes; part of the determinism


@dataclass(frozen=True)
class CaptionsBatch:
    """A batch of captioned scenes; object slots are ordered left to right.

    Attributes:
        images: ``[n, 3, 64, 64]`` float32 normalised as ``(pixels - 0.5) / 0.5``.
        labels: ``[n, 3]`` int64 shape class of each object slot, ``-1`` for an empty slot.
        colours: ``[n, 3]`` int64 index into :data:`CAPTION_COLOURS`, ``-1`` for an empty slot.
        masks: ``[n, 3, 64, 64]`` bool pixels of each object.
        captions: the ``n`` captions, ``"red disk and blue square"``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    colours: torch.Tensor
    masks: torch.Tensor
    captions: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.captions)

    def to_display(self, i: int) -> np.ndarray:
        """Image ``i`` as ``[64, 64, 3]`` float32 in ``0..1``."""
        n = len(self)
        if not is_int(i) or not -n <= i < n:
            raise ProbeError(f"image index {i!r} is out of range for a batch of {n}; pick "
                             f"0..{n - 1}")
        return denormalize(self.images[int(i)])


def caption_of(labels: list[int], colours: list[int]) -> str:
    """``"red disk and blue square"`` for the filled slots of one scene, in slot order."""
    names = list(CAPTION_COLOURS)
    return " and ".join(f"{names[c]} {SHAPE_CLASSES[s]}"
                        for s, c in zip(labels, colours) if s >= 0)


def _separated(labels: torch.Tensor, centres: torch.Tensor, size: int) -> torch.Tensor:
    """``[n]`` bool: every two objects' box centres at least :data:`MIN_GAP` px apart in x."""
    import torch

    x = torch.where(labels >= 0, centres * size, torch.full_like(centres, float("nan")))
    gaps = (x[:, :, None] - x[:, None, :]).abs()
    eye = torch.eye(x.shape[1], dtype=torch.bool)[None]
    close = (gaps < MIN_GAP) & ~eye  # NaN compares False: empty slots never clash
    return ~close.any(-1).any(-1)


def make_captions(n: int, seed: int = 0) -> CaptionsBatch:
    """Generate ``n`` captioned scenes of one to three shapes (see the module docstring).

    Args:
        n: number of images, at least 1.
        seed: seed of the local generators, ``0..2**64-1``.

    Returns:
        A :class:`CaptionsBatch`; the number of objects is uniform in 1..3 before the scenes
        whose objects are too close in x are dropped (which drops more three-object scenes).
    """
    import torch

    from probe.models._scenes import make_scenes

    if not is_int(n) or n < 1:
        raise ProbeError(f"n must be an integer >= 1, got {n!r}; ask for at least one image")
    if not is_int(seed) or not 0 <= seed < 2**64:  # as make_scenes and probe render --seed
        raise ProbeError(f"seed must be an integer in 0..2**64-1, got {seed!r}")
    n, seed, size = int(n), int(seed), CAPTION_IMAGE_SIZE
    kept: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    total, attempt = 0, 0
    while total < n:
        sub = seed if attempt == 0 else (seed + _ROUND * attempt) % 2**64
        scenes = make_scenes(max(2 * (n - total), 16), seed=sub, image_size=size,
                             size_range=SIZE_RANGE)
        ok = _separated(scenes.labels, scenes.boxes[..., 0], size) & (scenes.counts > 0)
        kept.append((scenes.labels[ok], scenes.boxes[ok, :, 0], scenes.masks[ok]))
        total += int(ok.sum())
        attempt += 1
    labels = torch.cat([k[0] for k in kept])[:n]
    centres = torch.cat([k[1] for k in kept])[:n]
    masks = torch.cat([k[2] for k in kept])[:n]
    # left to right; empty slots last
    order = torch.where(labels >= 0, centres, torch.full_like(centres, 2.0)).argsort(-1)
    labels = labels.gather(1, order)
    masks = masks[torch.arange(n)[:, None], order]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    k = labels.shape[1]
    colours = torch.randint(0, len(CAPTION_COLOURS), (n, k), generator=gen)
    colours = torch.where(labels >= 0, colours, torch.full_like(colours, -1))
    palette = torch.tensor(list(CAPTION_COLOURS.values()))
    paint = palette[colours.clamp(min=0)] + (torch.rand(n, k, 3, generator=gen) - 0.5) * 0.16
    grey = 0.1 + 0.35 * torch.rand(n, 1, generator=gen)
    background = (grey + (torch.rand(n, 3, generator=gen) - 0.5) * 0.08).clamp(0.0, 1.0)
    pixels = background[:, :, None, None].expand(n, 3, size, size).clone()
    for j in range(k):
        pixels = torch.where(masks[:, j, None], paint[:, j, :, None, None], pixels)
    noise = torch.randn(n, 3, size, size, generator=gen) * 0.03
    pixels = (pixels + noise).clamp_(0.0, 1.0)
    captions = tuple(caption_of(lab, col) for lab, col in zip(labels.tolist(), colours.tolist()))
    images = ((pixels - NORMALIZE_MEAN) / NORMALIZE_STD).float()
    return CaptionsBatch(images=images, labels=labels, colours=colours, masks=masks,
                         captions=captions)
