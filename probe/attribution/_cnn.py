"""Attribution on CNNs: GradCAM on a stage's feature map, and CBAM's spatial attention.

Both score the cells of the model's unit grid (the last stage's feature map, see
:meth:`probe.capture.adapters._timm_cnn.TimmCNN.vision_geometry`), so they take part in
:func:`probe.compare`, agreement and faithfulness like every other method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from probe._errors import ProbeError
from probe.attribution._registry import MethodContext, MethodOption, register_method

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["gradcam_on_layer"]


def gradcam_on_layer(
    forward: Callable[..., torch.Tensor],
    layer: nn.Module,
    x: torch.Tensor,
    classes: torch.Tensor | None,
    grid: tuple[int, int],
) -> torch.Tensor:
    """GradCAM (Selvaraju et al. 2017) on the feature map ``layer`` outputs, via captum.

    ``ReLU(sum_c mean_hw(d target / d A_c) * A_c)`` on the map ``A`` ``[batch, channel, h, w]``,
    resampled to ``grid`` (:func:`probe.analysis._gates.to_unit_grid`).

    Returns:
        ``[batch, rows * cols]``.
    """
    from captum.attr import LayerGradCam

    from probe.analysis._gates import to_unit_grid

    cam = LayerGradCam(forward, layer).attribute(
        x, additional_forward_args=(classes,), relu_attributions=True
    )
    return to_unit_grid(cam.detach()[:, 0], grid).flatten(1)


@register_method(
    "cbam-spatial", modalities=("vision",), needs="gates",
    description="CBAM's spatial attention gate of one stage, on the unit grid",
    options=(
        MethodOption(
            "stage", -1, int, nullable=True,
            doc="network stage (negative: from the last); None: mean over every stage",
        ),
    ),
)
def _cbam_spatial(ctx: MethodContext) -> torch.Tensor:
    """The spatial gate of CBAM (Woo et al. 2018), ``sigmoid(conv([mean_c; max_c]))``.

    The gates of the chosen stage (mean over its CBAM modules; ``stage=None``: over every
    stage) are captured with :func:`probe.trace_gates` and resampled to the unit grid.
    Models without spatial gates raise :class:`ProbeError`.
    """
    import torch

    from probe.analysis._gates import to_unit_grid
    from probe.capture import adapter_for
    from probe.capture._gate_capture import trace_gates

    adapter = adapter_for(ctx.model)
    pixels = adapter.prepare(ctx.inputs).main
    grid = adapter.vision_geometry(pixels).grid
    gates = trace_gates(ctx.model, ctx.inputs, modules=["spatial"]).gates
    if not gates:
        raise ProbeError(f"{adapter.name} has no spatial gates (CBAM): cbam-spatial needs them")
    stage = ctx.options["stage"]
    if stage is not None:
        stages = sorted({g.stage for g in gates})
        if not -len(stages) <= stage < len(stages):
            raise ProbeError(
                f"option 'stage' of cbam-spatial must be in -{len(stages)}..{len(stages) - 1} "
                f"({len(stages)} stages have spatial gates), got {stage}"
            )
        gates = tuple(g for g in gates if g.stage == stages[stage])
    maps = torch.stack([to_unit_grid(g.values.float(), grid) for g in gates])
    return maps.mean(0).flatten(1)
