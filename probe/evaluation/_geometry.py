"""Saliency maps against object masks on the patch grid: one common grid for every method
(:func:`to_patch_grid`), object patches (:func:`object_patch_mask`), the pointing game
(:func:`pointing_game`) and the positive mass on the object (:func:`mass_on_object`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch

__all__ = ["mass_on_object", "object_patch_mask", "pointing_game", "to_patch_grid"]


def _grid_tuple(grid: Any) -> tuple[int, int]:
    if (
        not isinstance(grid, (tuple, list))
        or len(grid) != 2
        or not all(isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in grid)
    ):
        raise ProbeError(f"grid must be (rows, cols) of positive ints, got {grid!r}")
    return int(grid[0]), int(grid[1])


def _pool_factors(height: int, width: int, grid: tuple[int, int], what: str) -> tuple[int, int]:
    rows, cols = grid
    if height % rows or width % cols:
        raise ProbeError(
            f"{what} of {height}x{width} pixels do not split into a {rows}x{cols} patch grid; "
            "pass pixel maps whose size is a multiple of the grid (the model's input size)"
        )
    return height // rows, width // cols


def to_patch_grid(maps: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Bring saliency maps to the patch grid, so that every method is scored on the same units.

    Args:
        maps: one of ``[n, rows * cols]`` (patch scores, row-major, as in
            :attr:`probe.Attribution.scores`), ``[n, rows, cols]`` (already on the grid),
            ``[n, H, W]`` (pixel maps) or ``[n, channel, H, W]`` (pixel attributions; the
            channels are summed first). ``H`` and ``W`` must be multiples of ``rows``/``cols``.
        grid: ``(rows, cols)`` of the model's patch grid.

    Returns:
        ``[n, rows, cols]`` float64 new tensor. Pixel maps are *average pooled* over each
        patch's ``H / rows x W / cols`` pixels (for a constant patch, its value).
    """
    import torch
    import torch.nn.functional as F

    rows, cols = _grid_tuple(grid)
    if not isinstance(maps, torch.Tensor):
        raise ProbeError(f"maps must be a tensor, got {type(maps).__name__}")
    x = maps.detach().to("cpu", torch.float64)
    if x.dim() == 2:
        if x.shape[1] != rows * cols:
            raise ProbeError(
                f"maps [n, units] must have rows * cols = {rows * cols} units, got {tuple(x.shape)}"
            )
        return x.reshape(-1, rows, cols).clone()
    if x.dim() == 4:
        x = x.sum(1)
    if x.dim() != 3:
        raise ProbeError(
            f"maps must be [n, rows*cols], [n, rows, cols], [n, H, W] or [n, C, H, W], got "
            f"{tuple(maps.shape)}"
        )
    if tuple(x.shape[1:]) == (rows, cols):
        return x.clone()
    ph, pw = _pool_factors(int(x.shape[1]), int(x.shape[2]), (rows, cols), "maps")
    return F.avg_pool2d(x[:, None], kernel_size=(ph, pw), stride=(ph, pw))[:, 0]


def object_patch_mask(masks: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Object patches: a patch is an object patch when it contains any object pixel.

    Args:
        masks: ``[n, H, W]`` bool object masks (e.g. :attr:`probe.ShapesBatch.masks`); ``H``
            and ``W`` multiples of ``rows`` and ``cols``.
        grid: ``(rows, cols)`` patch grid.

    Returns:
        ``[n, rows, cols]`` bool.
    """
    import torch

    rows, cols = _grid_tuple(grid)
    if not isinstance(masks, torch.Tensor) or masks.dim() != 3:
        shape = tuple(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__
        raise ProbeError(f"masks must be a bool tensor [n, H, W], got {shape}")
    n, height, width = (int(s) for s in masks.shape)
    ph, pw = _pool_factors(height, width, (rows, cols), "masks")
    m = masks.detach().cpu().bool().reshape(n, rows, ph, cols, pw)
    return m.any(dim=4).any(dim=2)


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """Pointing game on the patch grid: does the top patch of each map touch the object?

    Zhang et al. 2016 ("Top-down Neural Attention by Excitation Backprop") count a hit when
    the maximum of a saliency map falls on the object. Here the map lives on the patch grid:
    the top patch is the one with the highest raw score (for signed maps the most positive
    evidence); ties (e.g. an all-zero GradCAM map) are broken uniformly at random by a
    generator seeded with ``seed``, so a constant map scores the object-patch fraction on
    average, like the random baseline. A hit means the top patch contains at least one
    object pixel (:func:`object_patch_mask`).

    Args:
        maps: ``[n, rows, cols]`` scores on the patch grid (see :func:`to_patch_grid`).
        masks: ``[n, H, W]`` bool object masks of the same images.
        seed: seed of the tie-breaking generator.

    Returns:
        ``[n]`` bool: hit or miss per image.
    """
    import torch

    if not isinstance(maps, torch.Tensor) or maps.dim() != 3:
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise ProbeError(
            f"maps must be [n, rows, cols] on the patch grid, got {shape}; see to_patch_grid"
        )
    n, rows, cols = (int(s) for s in maps.shape)
    patches = object_patch_mask(masks, (rows, cols))
    if patches.shape[0] != n:
        raise ProbeError(f"{n} maps but {patches.shape[0]} masks: pass one mask per map")
    flat = maps.detach().to("cpu", torch.float64).reshape(n, -1)
    if bool(torch.isnan(flat).any()):
        raise ProbeError("maps contain NaN: fix the attribution before scoring it")
    tied = flat == flat.amax(dim=1, keepdim=True)
    generator = torch.Generator().manual_seed(int(seed))
    keys = torch.rand(flat.shape, generator=generator, dtype=torch.float64)
    top = torch.where(tied, keys, torch.full_like(keys, -1.0)).argmax(dim=1)
    return patches.reshape(n, -1).gather(1, top[:, None])[:, 0]


def mass_on_object(maps: torch.Tensor, patch_masks: torch.Tensor) -> torch.Tensor:
    """Fraction of each map's positive mass that lies on object patches.

    ``sum(relu(map) * object) / sum(relu(map))`` over the patch grid: negative scores
    (evidence against the class in signed maps) are ignored. An iid random map scores the
    object-patch fraction ``k / (rows * cols)`` in expectation.

    Args:
        maps: ``[n, rows, cols]`` scores on the patch grid (see :func:`to_patch_grid`).
        patch_masks: ``[n, rows, cols]`` bool object patches (see :func:`object_patch_mask`).

    Returns:
        ``[n]`` float64 in ``[0, 1]``; ``nan`` for a map without positive mass.
    """
    import torch

    if not isinstance(maps, torch.Tensor) or not isinstance(patch_masks, torch.Tensor):
        raise ProbeError("maps and patch_masks must be tensors [n, rows, cols]")
    if maps.dim() != 3 or tuple(maps.shape) != tuple(patch_masks.shape):
        raise ProbeError(
            f"maps {tuple(maps.shape)} and patch_masks {tuple(patch_masks.shape)} must both be "
            "[n, rows, cols] of the same shape"
        )
    positive = maps.detach().to("cpu", torch.float64).clamp_min(0.0).flatten(1)
    total = positive.sum(1)
    on = (positive * patch_masks.detach().cpu().bool().flatten(1)).sum(1)
    undefined = torch.full_like(total, float("nan"))
    return torch.where(total > 0, on / total.clamp_min(1e-300), undefined)
