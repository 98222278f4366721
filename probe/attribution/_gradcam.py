"""GradCAM (Selvaraju et al. 2017) on every vision model probe knows: the patch tokens entering
a ViT block, a CNN stage's feature map, a Swin block's input feature map.

Split from :mod:`probe.attribution._gradient`, whose model-state and input helpers it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.attribution._gradient import _fix_target, _forward_fn, _prepare, differentiable
from probe.attribution._registry import MethodContext, MethodOption, register_method

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__: list[str] = []


# --------------------------------------------------------------------------- GradCAM
def _token_grid(grid: tuple[int, int], suffix: int = 0) -> nn.Module:
    """A module viewing the patch tokens ``[batch, tokens, dim]`` as ``[batch, dim, rows, cols]``.

    The prefix tokens are the ``tokens - rows * cols - suffix`` leading ones (CLS,
    distillation, registers), the ``suffix`` last ones follow the patches (YOLOS's detection
    tokens), as in :func:`probe.trace`.
    """
    from torch import nn

    rows, cols = grid

    class TokenGrid(nn.Module):
        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            prefix = tokens.shape[1] - rows * cols - suffix
            if tokens.dim() != 3 or prefix < 0:
                raise ProbeError(
                    f"gradcam cannot map block input {tuple(tokens.shape)} onto the {rows}x{cols} "
                    "patch grid; this model's token layout is not supported"
                )
            patches = tokens[:, prefix : prefix + rows * cols, :]
            return patches.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], rows, cols)

    return TokenGrid()


@register_method(
    "gradcam", modalities=("vision",), uses_gradients=True,
    options=(MethodOption("block", -1, int, doc="the block whose input tokens are used"),),
)
def _gradcam(ctx: MethodContext) -> torch.Tensor:
    """GradCAM (Selvaraju et al. 2017) on the patch tokens entering the last block, via captum.

    Captum ``LayerGradCam`` needs channels-first maps, so the tokens entering the block are
    routed through a view ``[batch, tokens, dim] -> [batch, dim, rows, cols]`` (prefix tokens
    dropped, geometry from the model) while the block runs: channels are the embedding dims,
    the spatial map is the patch grid, and the map is ``ReLU(sum_d mean_patches(grad_d) *
    token_d)``. The block's *input* is used, not its output, because in CLS-pooled ViTs the
    patch tokens leaving the last block never reach the classifier (their gradient is zero);
    pytorch-grad-cam uses ``blocks[-1].norm1`` for the same reason.

    Options: ``block`` (``-1``: the last block; CNNs: the stage, ``-1`` the last one).

    CNNs (timm ResNets and relatives): the classic GradCAM on the feature map a stage outputs,
    resampled to the unit grid (:func:`probe.attribution._cnn.gradcam_on_layer`). Swin: the
    block's input feature map at its stage's resolution, resampled to the stage-0 patch grid
    (:func:`probe.attribution._windowed.gradcam_on_windowed_block`; ``block`` counts blocks
    over all stages).
    """
    import torch
    from captum.attr import LayerGradCam

    opts = ctx.options
    batch = _prepare(ctx.model, ctx.inputs, ctx.tokenizer)
    if hasattr(batch.adapter, "feature_layer"):  # a CNN: a stage's feature map
        from probe.attribution._cnn import gradcam_on_layer

        layer = batch.adapter.feature_layer(opts["block"])  # type: ignore[attr-defined]
        with differentiable(ctx.model):
            classes = _fix_target(ctx.model, batch, ctx.target)
            forward = _forward_fn(ctx.model, batch, ctx.target)
            shapes: list[tuple[int, ...]] = []
            handle = layer.register_forward_hook(
                lambda _m, _i, out: shapes.append(_shape(out)) and None)  # output kept
            try:
                return gradcam_on_layer(forward, layer, batch.x, classes,
                                        batch.grid)  # type: ignore[arg-type]
            except Exception:
                if shapes and len(shapes[0]) != 4:  # tokens, a pooled vector: no spatial map
                    raise _not_spatial(ctx, batch, layer, shapes[0], forward, classes) from None
                raise
            finally:
                handle.remove()
    block = batch.adapter.block(opts["block"])
    if getattr(batch.adapter, "windowed", False):  # Swin: the block's input feature map
        from probe.attribution._windowed import gradcam_on_windowed_block

        with differentiable(ctx.model):
            classes = _fix_target(ctx.model, batch, ctx.target)
            forward = _forward_fn(ctx.model, batch, ctx.target)
            return gradcam_on_windowed_block(forward, block, batch.x, (*batch.extras, classes),
                                             batch.grid)  # type: ignore[arg-type]
    view = _token_grid(batch.grid, batch.suffix)  # type: ignore[arg-type]

    def through_view(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        hidden = args[0] if args else kwargs["hidden_states"]
        patches = view(hidden).flatten(2).transpose(1, 2)
        start = hidden.shape[1] - patches.shape[1] - batch.suffix
        after = hidden[:, hidden.shape[1] - batch.suffix :]  # YOLOS's detection tokens
        rebuilt = torch.cat([hidden[:, :start], patches, after], dim=1)
        if args:
            return (rebuilt, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": rebuilt}

    with differentiable(ctx.model):
        classes = _fix_target(ctx.model, batch, ctx.target)
        forward = _forward_fn(ctx.model, batch, ctx.target)
        handle = block.register_forward_pre_hook(through_view, with_kwargs=True)
        try:
            cam = LayerGradCam(forward, view).attribute(
                batch.x, additional_forward_args=(*batch.extras, classes), relu_attributions=True
            )
        finally:
            handle.remove()
    return cam.detach().flatten(1)


def _shape(output: Any) -> tuple[int, ...]:
    """The shape of a module's output (its first tensor when it returns several)."""
    import torch

    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    return tuple(output.shape) if isinstance(output, torch.Tensor) else ()


def _not_spatial(ctx: MethodContext, batch: Any, layer: nn.Module, shape: tuple[int, ...],
                 forward: Any, classes: Any) -> ProbeError:
    """GradCAM's refusal of a stage whose output is no ``[batch, channels, height, width]``
    map (LeViT's stages output tokens): the model, the stage probe picked, its output shape,
    and the stages that do output a map (one forward without gradients), or the methods that
    need none."""
    import torch

    names = {id(m): n for n, m in ctx.model.named_modules()}
    stages: list[nn.Module] = []
    while True:  # the adapter's stages, in order
        try:
            stages.append(batch.adapter.feature_layer(len(stages)))
        except ProbeError:
            break
    seen: dict[int, tuple[int, ...]] = {}

    def record(module: nn.Module, _inputs: Any, output: Any) -> None:  # None: output kept
        seen.setdefault(id(module), _shape(output))

    handles = [m.register_forward_hook(record) for m in stages]
    try:
        with torch.no_grad():
            forward(batch.x, classes)
    finally:
        for handle in handles:
            handle.remove()
    spatial = [(i, m) for i, m in enumerate(stages) if len(seen.get(id(m), ())) == 4]
    picked = f"block={ctx.options['block']}"
    head = (f"gradcam needs a spatial feature map [batch, channels, height, width], but the "
            f"stage probe picked in {batch.adapter.name} ({type(ctx.model).__name__}), "
            f"{names.get(id(layer), type(layer).__name__)} ({picked}), outputs {shape}")
    if spatial:
        i, m = spatial[-1]
        return ProbeError(f"{head}: pass block={i} ({names.get(id(m))} outputs "
                          f"{seen[id(m)]}), or use ig, saliency or inputxgrad")
    listed = ", ".join(names.get(id(m), "?") for m in stages)
    return ProbeError(f"{head}, and none of its stages ({listed}) outputs one, so GradCAM does "
                      "not apply to this model: use ig, saliency or inputxgrad, which need no "
                      "feature map")
