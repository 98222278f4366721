"""Pure functions over an image-to-text trace: which image patches each decoder step looked at.

An image-to-text model (``VisionEncoderDecoderModel``: TrOCR, ViT + GPT-2 captioners) writes
token ``t + 1`` at decoder step ``t``, and its cross-attention row ``t`` (``trace.cross``,
``[layer, batch, head, target, key]``) says where in the image the step looked. The keys
are the encoder's tokens: ``trace.num_prefix_tokens`` tokens without a place in the image
(CLS, DeiT's distillation token), then the patches row-major on ``trace.grid``. Heads are
fused by a registered head fusion (:func:`probe.fuse_heads`, ``"mean"`` by default) and the
chosen layers by the same registry over the layer dimension.

Works on a :class:`~probe.capture._trace.Trace` (``probe.trace(model, pixels,
decoder_inputs=ids)``: rows are the decoder inputs, step ``t`` writing token ``t + 1``) and
on a :class:`~probe.capture._generation_trace.GenerationTrace` (``probe.generate``: row
``i`` is the step that wrote generated token ``i``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from probe._errors import ProbeError
from probe._index import batch_position, is_int
from probe.analysis._detr import decoder_layer_position
from probe.analysis._finite import check_trace_finite
from probe.analysis._fusion import HeadFusion, fuse_heads

if TYPE_CHECKING:
    import torch

__all__ = ["image_geometry", "layer_positions", "token_patch_maps", "token_prefix_share",
           "written_labels"]

PrefixMode = Literal["drop", "renormalize"]


def image_geometry(trace: Any) -> tuple[tuple[int, int] | None, int]:
    """``(grid, num_prefix_tokens)`` of a trace's image source: a Trace's own, a
    generation's ``source_grid`` and ``source_prefix_tokens``."""
    if hasattr(trace, "num_prompt_tokens"):  # a GenerationTrace
        return trace.source_grid, int(trace.source_prefix_tokens)
    return getattr(trace, "grid", None), int(getattr(trace, "num_prefix_tokens", 0))


def _cross_of(trace: Any, call: str) -> Any:
    """``trace.cross`` of an image-to-text trace, checked against its patch grid."""
    cross = getattr(trace, "cross", None)
    grid, prefix = image_geometry(trace)
    if cross is None or grid is None or getattr(cross, "attentions", None) is None:
        raise ProbeError(
            f"{call} needs an image-to-text trace: cross-attention over a patch grid, as "
            "probe.trace(model, pixel_values, decoder_inputs=ids) or probe.generate(model, "
            "pixel_values) return for a VisionEncoderDecoderModel"
        )
    keys = int(cross.attentions.shape[-1])
    rows, cols = grid
    if keys != prefix + rows * cols:
        raise ProbeError(
            f"the cross-attention has {keys} keys but num_prefix_tokens={prefix} plus a "
            f"{rows}x{cols} grid need {prefix + rows * cols}: fix the trace's geometry"
        )
    return cross


def layer_positions(cross: Any, layers: int | Sequence[int] | None) -> list[int]:
    """Kept-layer positions of the model's decoder ``layers`` (``None``: all kept)."""
    if layers is None:
        return list(range(len(cross.layer_indices)))
    if is_int(layers):
        layers = [int(layers)]  # type: ignore[list-item]
    if not isinstance(layers, (list, tuple, range)) or not layers or not all(
            is_int(v) for v in layers):
        raise ProbeError(f"layers must be a decoder layer index or a non-empty list of them, got "
                         f"{layers!r}")
    positions = [decoder_layer_position(cross, int(v)) for v in layers]
    if len(set(positions)) != len(positions):
        raise ProbeError(f"layers {list(layers)} name a layer twice: pass each once")
    return positions


def _fused(trace: Any, batch_index: int, layers: int | Sequence[int] | None,
           head_fusion: HeadFusion, layer_fusion: HeadFusion, call: str) -> torch.Tensor:
    """``[token, key]``: item ``batch_index``'s cross-attention, heads then layers fused."""
    cross = _cross_of(trace, call)
    b = batch_position(batch_index, int(cross.attentions.shape[1]))
    positions = layer_positions(cross, layers)
    att = cross.attentions[positions, b : b + 1]  # [layer, 1, head, token, key]
    check_trace_finite(att, call, cross, positions=positions, items=[b],
                       stack="cross-attention")
    per_layer = fuse_heads(att[:, 0].float(), head_fusion)  # [layer, token, key]
    return fuse_heads(per_layer, layer_fusion)  # the layer dimension is the third from last


def token_patch_maps(
    trace: Any,
    *,
    batch_index: int = 0,
    layers: int | Sequence[int] | None = None,
    head_fusion: HeadFusion = "mean",
    layer_fusion: HeadFusion = "mean",
    prefix: PrefixMode = "drop",
) -> torch.Tensor:
    """Each decoder step's cross-attention over the image's patch grid.

    Args:
        trace: an image-to-text :class:`~probe.Trace` or :class:`~probe.GenerationTrace`.
        batch_index: the batch item (negative counts from the end).
        layers: the model's decoder layers to fuse (an index or a list; negative counts back
            from its last); ``None``: every layer the trace kept.
        head_fusion: a registered head fusion (``"mean"``, ``"max"``, ``"min"``, your own).
        layer_fusion: a registered fusion applied to the layer dimension (the same registry).
        prefix: the encoder tokens before the patches (CLS, DeiT's distillation token) have
            no place in the image. ``"drop"``: their weight is left out, each map sums to
            ``1 - token_prefix_share`` (raw attention, comparable across tokens);
            ``"renormalize"``: each map is divided by its patch total and sums to 1 (where the
            step looked *within* the image). A map whose patches all have weight 0 stays 0.

    Returns:
        ``[token, rows, cols]`` float32, a new tensor: one map per decoder row (a trace's
        decoder inputs, step ``t`` writing token ``t + 1``; a generation's generated tokens).

    Raises:
        ProbeError: not an image-to-text trace, a layer or fusion that does not exist, an
            unknown ``prefix``, non-finite attention (naming layer and head).
    """
    if prefix not in ("drop", "renormalize"):
        raise ProbeError(f"prefix must be 'drop' or 'renormalize', got {prefix!r}")
    fused = _fused(trace, batch_index, layers, head_fusion, layer_fusion,
                   "probe.token_patch_maps")
    grid, prefix_tokens = image_geometry(trace)
    patches = fused[:, prefix_tokens:]
    if prefix == "renormalize":
        total = patches.sum(-1, keepdim=True)
        patches = patches / total.where(total > 0, total.new_ones(()))
    rows, cols = grid  # type: ignore[misc]
    return patches.reshape(patches.shape[0], rows, cols).clone()


def token_prefix_share(
    trace: Any,
    *,
    batch_index: int = 0,
    layers: int | Sequence[int] | None = None,
    head_fusion: HeadFusion = "mean",
    layer_fusion: HeadFusion = "mean",
) -> torch.Tensor:
    """``[token]``: the fused cross-attention weight each decoder step puts on the encoder's
    prefix tokens (CLS, distillation), which :func:`token_patch_maps` leaves out; 0 for an
    encoder without any (arguments as there)."""
    fused = _fused(trace, batch_index, layers, head_fusion, layer_fusion,
                   "probe.token_prefix_share")
    return fused[:, : image_geometry(trace)[1]].sum(-1)


def written_labels(trace: Any, batch_index: int = 0) -> list[str] | None:
    """The token each map's step wrote, for titles: a generation's generated tokens; a
    trace's next decoder input (step ``t`` wrote token ``t + 1``; the last step's token is not
    in the trace: ``"→ ?"``). ``None`` without token strings (no tokenizer given)."""
    from probe._text import byte_level_labels

    def shown(row: Sequence[str]) -> list[str]:
        return list(byte_level_labels(row)) if getattr(trace, "byte_level", False) else list(row)

    if hasattr(trace, "num_prompt_tokens"):  # a GenerationTrace
        generated = trace.generated_tokens
        if generated is None:
            return None
        return shown(generated[batch_position(batch_index, len(generated))])
    tokens = getattr(trace, "decoder_tokens", None)
    if tokens is None:
        return None
    return [*shown(tokens[batch_position(batch_index, len(tokens))])[1:], "\u2192 ?"]
