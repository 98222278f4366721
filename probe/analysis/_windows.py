"""Windowed attention (Swin) mapped back to image token coordinates.

A Swin block (Liu et al. 2021, "Swin Transformer: Hierarchical Vision Transformer using
Shifted Windows") splits its ``rows x cols`` token grid into windows of ``wh x ww`` tokens,
after rolling the grid by ``-shift`` (shifted blocks) and padding it to a multiple of the
window. Each window attends within itself: the block's attention is
``[batch * windows, head, N, N]`` with ``N = wh * ww``, windows numbered row-major within
each batch item. :class:`WindowLayout` holds that geometry and says, for every window slot,
which image token sits there (:meth:`WindowLayout.token_index`); the functions here use it to
write a block's windows into image coordinates:

- :func:`windows_to_image`: the block-sparse ``[batch, head, L, L]`` matrix over the block's
  ``L = rows * cols`` tokens in row-major image order (the cyclic shift undone);
- :func:`window_query_map`: one query token's weights as a ``[batch, head, rows, cols]`` map;
- :func:`window_head_stats`: per-head entropy and mean attention distance in pixels.

Padding slots have no image token: weights on padding keys are dropped (rows then sum to 1
minus what the model put on padding) and padding queries have no row. Pairs the model's
shift mask separates (``mask != 0``; the model adds ``-100`` to their logits, which leaves
weights below ``1e-40``) are exactly 0 in the image-coordinate forms: they are the pairs that
the cyclic roll brought together from opposite sides of the image. Pairs the mask leaves open
are kept where they are on the image.

Stages change resolution (patch merging halves the grid), so every function works on one
block at its own resolution; nothing here combines blocks of different stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._index import is_int

if TYPE_CHECKING:
    import torch

__all__ = [
    "WindowHeadStats",
    "WindowLayout",
    "window_head_stats",
    "window_query_map",
    "windows_to_image",
]


@dataclass(frozen=True)
class WindowLayout:
    """Where the tokens of one windowed-attention block sit.

    Attributes:
        grid: ``(rows, cols)`` of the block's real token grid (before padding).
        window: ``(wh, ww)`` window size in tokens.
        shift: ``(sh, sw)`` cyclic shift in tokens (``(0, 0)``: an unshifted block). The
            block rolls its grid by ``-shift`` before partitioning into windows.
        shift_first: ``True`` when the grid is rolled and then padded (timm),
            ``False`` when it is padded and then rolled (HuggingFace transformers).
    """

    grid: tuple[int, int]
    window: tuple[int, int]
    shift: tuple[int, int] = (0, 0)
    shift_first: bool = True

    def __post_init__(self) -> None:
        for name in ("grid", "window", "shift"):
            value = getattr(self, name)
            ok = (
                isinstance(value, tuple)
                and len(value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            )
            if not ok:
                raise ProbeError(f"WindowLayout {name} must be two integers, got {value!r}")
        if min(self.grid) < 1 or min(self.window) < 1 or min(self.shift) < 0:
            raise ProbeError(
                f"WindowLayout needs a positive grid and window and a shift >= 0, got grid "
                f"{self.grid}, window {self.window}, shift {self.shift}"
            )

    @property
    def padded(self) -> tuple[int, int]:
        """``(rows, cols)`` of the grid padded to whole windows."""
        (h, w), (wh, ww) = self.grid, self.window
        return (-(-h // wh) * wh, -(-w // ww) * ww)

    @property
    def num_windows(self) -> int:
        """Windows per image."""
        (hp, wp), (wh, ww) = self.padded, self.window
        return (hp // wh) * (wp // ww)

    @property
    def window_area(self) -> int:
        """``N``: tokens per window."""
        return self.window[0] * self.window[1]

    @property
    def num_tokens(self) -> int:
        """``L``: real tokens of the grid."""
        return self.grid[0] * self.grid[1]

    def token_index(self, device: torch.device | str | None = None) -> torch.Tensor:
        """``[num_windows, N]`` long: the row-major image token (``row * cols + col``) in each
        window slot, ``-1`` for padding. Windows and slots are numbered row-major, as the
        model partitions them."""
        import torch

        (h, w), (hp, wp), (wh, ww), (sh, sw) = self.grid, self.padded, self.window, self.shift
        i = torch.arange(hp, device=device)[:, None]
        j = torch.arange(wp, device=device)[None, :]
        if self.shift_first:  # roll the real grid, then pad: padding stays bottom/right
            real = (i < h) & (j < w)
            src_r, src_c = (i + sh) % h, (j + sw) % w
        else:  # pad, then roll the padded grid: padding moves with the roll
            src_r, src_c = (i + sh) % hp, (j + sw) % wp
            real = (src_r < h) & (src_c < w)
        index = torch.where(real, src_r * w + src_c, torch.full_like(src_r * w, -1))
        index = index.view(hp // wh, wh, wp // ww, ww).permute(0, 2, 1, 3)
        return index.reshape(self.num_windows, self.window_area)


def _check_block(weights: Any, layout: Any, analysis: str) -> None:
    """``weights`` a tensor and ``layout`` a :class:`WindowLayout`, as a block holds them."""
    import torch

    if not isinstance(layout, WindowLayout):
        raise ProbeError(f"{analysis} needs the block's WindowLayout as layout, got "
                         f"{type(layout).__name__}: pass block.layout of a block of "
                         "trace.windows")
    if not isinstance(weights, torch.Tensor):
        raise ProbeError(f"{analysis} needs the block's window attention as a tensor, got "
                         f"{type(weights).__name__}: pass block.weights of a block of "
                         "trace.windows")


def _split(
    weights: torch.Tensor, layout: WindowLayout, mask: torch.Tensor | None, analysis: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``weights`` as ``[batch, windows, head, N, N]``, the token index ``[windows, N]`` and
    the kept pairs ``[windows, N, N]`` (both tokens real, not separated by ``mask``); refuses
    non-finite weights (:func:`~probe.analysis._finite.check_finite`)."""
    from probe.analysis._finite import check_finite

    _check_block(weights, layout, analysis)
    n_w, area = layout.num_windows, layout.window_area
    if weights.dim() != 4 or weights.shape[-2:] != (area, area) or weights.shape[0] % n_w:
        raise ProbeError(
            f"window attention must be [batch * {n_w} windows, head, {area}, {area}] for "
            f"layout {layout}, got {list(weights.shape)}"
        )
    # "batch item" of the message: the window's place in batch * windows
    check_finite(weights[None], analysis, stack="windowed self-attention")
    index = layout.token_index(weights.device)
    keep = (index[:, :, None] >= 0) & (index[:, None, :] >= 0)
    if mask is not None:
        if tuple(mask.shape) != (n_w, area, area):
            raise ProbeError(
                f"the shift mask must be [{n_w}, {area}, {area}], got {list(mask.shape)}"
            )
        keep = keep & (mask.to(weights.device) == 0)
    batch = weights.shape[0] // n_w
    return weights.reshape(batch, n_w, weights.shape[1], area, area), index, keep


def windows_to_image(
    weights: torch.Tensor, layout: WindowLayout, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """A block's windows as one block-sparse matrix over its image tokens.

    Args:
        weights: ``[batch * windows, head, N, N]`` the block's window attention.
        layout: the block's geometry.
        mask: ``[windows, N, N]`` the shift mask the model added (0 where allowed), or
            ``None`` for none.

    Returns:
        ``[batch, head, L, L]`` (``L = rows * cols``, row-major): ``out[b, h, q, k]`` is the
        weight query token ``q`` gave key token ``k``; 0 outside ``q``'s window, for padding
        and for pairs the mask separates. A new tensor.
    """
    import torch

    w5, index, keep = _split(weights, layout, mask, "windows_to_image")
    batch, _, heads, _, _ = w5.shape
    n = layout.num_tokens
    win, qs, ks = keep.nonzero(as_tuple=True)
    flat = index[win, qs] * n + index[win, ks]
    out = torch.zeros(batch, heads, n * n, dtype=weights.dtype, device=weights.device)
    out[:, :, flat] = w5.permute(0, 2, 1, 3, 4)[:, :, win, qs, ks]
    return out.view(batch, heads, n, n)


def window_query_map(
    weights: torch.Tensor,
    layout: WindowLayout,
    query: tuple[int, int],
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Where one query token of a block attends, on the block's token grid.

    Args:
        weights: ``[batch * windows, head, N, N]`` the block's window attention.
        layout: the block's geometry.
        query: ``(row, col)`` of the query token on the block's ``rows x cols`` grid.
        mask: ``[windows, N, N]`` the model's shift mask, or ``None``.

    Returns:
        ``[batch, head, rows, cols]``: the query's row of :func:`windows_to_image`, as a map.
    """
    import torch

    _check_block(weights, layout, "window_query_map")
    rows, cols = layout.grid
    if not (isinstance(query, (tuple, list)) and len(query) == 2 and all(map(is_int, query))):
        raise ProbeError(f"query must be (row, col) on the block's {rows}x{cols} token grid, "
                         f"got {query!r}")
    r, c = (int(q) for q in query)
    if not (0 <= r < rows and 0 <= c < cols):
        raise ProbeError(f"query {tuple(query)} is outside the block's {rows}x{cols} token grid")
    w5, index, keep = _split(weights, layout, mask, "window_query_map")
    batch, _, heads, _, _ = w5.shape
    win, slot = (index == r * cols + c).nonzero(as_tuple=True)
    win, slot = int(win[0]), int(slot[0])
    ks = keep[win, slot].nonzero(as_tuple=True)[0]
    out = torch.zeros(batch, heads, rows * cols, dtype=weights.dtype, device=weights.device)
    out[:, :, index[win, ks]] = w5[:, win, :, slot][:, :, ks]
    return out.view(batch, heads, rows, cols)


@dataclass(frozen=True)
class WindowHeadStats:
    """Per-head statistics of one windowed block.

    Attributes:
        entropy: ``[batch, head]`` mean over real query tokens of the entropy (nats) of the
            query's weights over its whole window (what the model's softmax spread over).
        distance: ``[batch, head]`` mean over real query tokens of the weighted distance, in
            pixels of the model input, from the query token's centre to the centres of the
            real tokens it attends to (pairs the shift mask separates excluded): the "mean
            attention distance" of Dosovitskiy et al. 2021, per block at its own resolution.
        window_entropy: ``log(N)``, the entropy of uniform weights over a window (the bound).
    """

    entropy: torch.Tensor
    distance: torch.Tensor
    window_entropy: float


def window_head_stats(
    weights: torch.Tensor,
    layout: WindowLayout,
    mask: torch.Tensor | None = None,
    token_size: tuple[float, float] = (1.0, 1.0),
) -> WindowHeadStats:
    """Entropy and mean attention distance of every head of one windowed block.

    Args:
        weights: ``[batch * windows, head, N, N]`` the block's window attention.
        layout: the block's geometry.
        mask: ``[windows, N, N]`` the model's shift mask, or ``None``.
        token_size: ``(height, width)`` of one of the block's tokens in input pixels (patch
            size times the stage's downsampling), so that distances compare across stages.
    """
    import math

    import torch

    w5, index, keep = _split(weights, layout, mask, "window_head_stats")
    probs = w5.double()
    real_q = index >= 0  # [windows, N]
    n_real = float(real_q.sum()) * 1.0
    ent = -(probs * torch.log(probs.clamp_min(1e-300))).sum(-1)  # [b, win, head, N]
    ent = (ent * real_q[None, :, None, :]).sum((1, 3)) / n_real
    cols = layout.grid[1]
    r = torch.div(index, cols, rounding_mode="floor").double() * token_size[0]
    c = (index % cols).double() * token_size[1]
    dist = torch.sqrt((r[:, :, None] - r[:, None, :]) ** 2 + (c[:, :, None] - c[:, None, :]) ** 2)
    dist = torch.where(keep, dist, torch.zeros_like(dist))  # [win, N, N]
    mean_dist = (probs * dist[None, :, None]).sum(-1)  # [b, win, head, N]
    mean_dist = (mean_dist * real_q[None, :, None, :]).sum((1, 3)) / n_real
    return WindowHeadStats(
        entropy=ent.to(weights.dtype),
        distance=mean_dist.to(weights.dtype),
        window_entropy=math.log(layout.window_area),
    )
