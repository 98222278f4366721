"""GradCAM on a windowed-attention (Swin) block: the block's input feature map.

A Swin block's input is a feature map at its stage's resolution: timm passes it as
``[batch, rows, cols, dim]``, HuggingFace as ``[batch, rows * cols, dim]`` with the grid in
``input_dimensions``. Routed through a channels-first view ``[batch, dim, rows, cols]`` while
the block runs, it is what GradCAM (Selvaraju et al. 2017) weighs, like a CNN stage's map;
the map is then resampled to the stage-0 patch grid every Swin method scores
(:func:`probe.analysis._gates.to_unit_grid`: exact block means where sizes divide).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["gradcam_on_windowed_block"]


def gradcam_on_windowed_block(
    forward: Callable[..., torch.Tensor],
    block: nn.Module,
    x: torch.Tensor,
    forward_args: tuple[Any, ...],
    grid: tuple[int, int],
) -> torch.Tensor:
    """GradCAM ``ReLU(sum_d mean_rc(d target / d A_d) * A_d)`` on ``block``'s input ``A``.

    Args:
        forward: ``forward(x, *forward_args) -> [batch]`` target scores.
        block: a Swin block (timm ``SwinTransformerBlock`` / ``SwinTransformerV2Block``, HF
            ``SwinLayer`` and relatives).
        x: pixels ``[batch, channel, H, W]``.
        forward_args: the rest of ``forward``'s arguments.
        grid: the stage-0 patch grid ``(rows, cols)`` the scores are given on.

    Returns:
        ``[batch, rows * cols]``.
    """
    from captum.attr import LayerGradCam
    from torch import nn

    from probe.analysis._gates import to_unit_grid

    view = nn.Identity()  # captum reads the map [batch, dim, rows, cols] at its output

    def through_view(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        hidden = args[0] if args else kwargs["hidden_states"]
        if hidden.dim() == 4:  # timm: [batch, rows, cols, dim]
            rebuilt = view(hidden.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        else:  # HF: [batch, rows * cols, dim] and input_dimensions (rows, cols)
            dims = kwargs.get("input_dimensions", args[1] if len(args) > 1 else None)
            b, _, d = hidden.shape
            grid_map = hidden.transpose(1, 2).reshape(b, d, int(dims[0]), int(dims[1]))
            rebuilt = view(grid_map).flatten(2).transpose(1, 2)
        if args:
            return (rebuilt, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": rebuilt}

    handle = block.register_forward_pre_hook(through_view, with_kwargs=True)
    try:
        cam = LayerGradCam(forward, view).attribute(
            x, additional_forward_args=forward_args, relu_attributions=True
        )
    finally:
        handle.remove()
    return to_unit_grid(cam.detach()[:, 0], grid).flatten(1)
