"""``vit-shapes``: a small timm vision transformer trained by probe on generated shapes.

The model is a plain timm ``VisionTransformer`` (fused attention left as timm sets it up) on
``32x32`` images cut into ``4x4`` patches: an ``8x8`` grid of 64 patch tokens after one CLS
token. It classifies the images of :func:`probe.models._shapes.make_shapes` into
:data:`probe.models._shapes.SHAPE_CLASSES`. The weights ship in the package and are produced by
``python -m probe.recipes.train_vit_shapes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "VIT_SHAPES_BASE",
    "VIT_SHAPES_CONFIG",
    "WEIGHTS_PATH",
    "build_vit_shapes",
    "load_vit_shapes",
    "read_vit_shapes_metadata",
]

VIT_SHAPES_BASE: str = "vit_tiny_patch16_224"
"""timm model name whose architecture :data:`VIT_SHAPES_CONFIG` overrides."""

VIT_SHAPES_CONFIG: dict[str, Any] = {
    "pretrained": False,
    "img_size": 32,
    "patch_size": 4,
    "in_chans": 3,
    "embed_dim": 96,
    "depth": 4,
    "num_heads": 4,
    "mlp_ratio": 2.0,
    "num_classes": 4,
    "global_pool": "token",
    "class_token": True,
}
"""Keyword arguments of ``timm.create_model(VIT_SHAPES_BASE, **VIT_SHAPES_CONFIG)``.

About 0.31 M parameters: 4 layers of 4 heads (head dim 24) over 1 CLS + 8x8 patch tokens.
"""

WEIGHTS_PATH: Path = Path(__file__).parent / "weights" / "vit_shapes.safetensors"
"""The shipped float32 weights (a safetensors file with training metadata in its header)."""


def build_vit_shapes() -> nn.Module:
    """A randomly initialised ``vit-shapes`` model (training mode, as timm returns it).

    Input ``[batch, 3, 32, 32]`` normalised as :class:`probe.models._shapes.ShapesBatch` documents;
    output logits ``[batch, 4]``.
    """
    import timm

    return timm.create_model(VIT_SHAPES_BASE, **VIT_SHAPES_CONFIG)


def _check_weights(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ProbeError(
            f"vit-shapes weights not found at {path}; "
            "train them with `python -m probe.recipes.train_vit_shapes`"
        )
    return path


def load_vit_shapes(path: str | Path | None = None) -> nn.Module:
    """The trained ``vit-shapes`` model in eval mode.

    Args:
        path: safetensors file to load; default :data:`WEIGHTS_PATH` (the shipped weights).

    Returns:
        The timm ``VisionTransformer`` with the weights loaded, in eval mode, on the CPU.
        ``model.patch_embed.grid_size == (8, 8)`` and ``model.num_prefix_tokens == 1``.
    """
    from safetensors.torch import load_file

    file = _check_weights(Path(path) if path is not None else WEIGHTS_PATH)
    try:
        state = load_file(str(file), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ProbeError(
            f"cannot read vit-shapes weights {file} ({exc}); "
            "re-train them with `python -m probe.recipes.train_vit_shapes`"
        ) from exc
    model = build_vit_shapes()
    state = {name: tensor.float() for name, tensor in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ProbeError(
            f"vit-shapes weights {file} do not match the architecture in VIT_SHAPES_CONFIG; "
            "re-train them with `python -m probe.recipes.train_vit_shapes`"
        ) from exc
    return model.eval()


def read_vit_shapes_metadata(path: str | Path | None = None) -> dict[str, str]:
    """The training metadata stored in the header of a ``vit-shapes`` safetensors file.

    Args:
        path: safetensors file; default :data:`WEIGHTS_PATH`.

    Returns:
        String keys and values as written by the recipe (``image_size``, ``classes``, ``seed``,
        ``accuracy``, ...); empty when the file carries no metadata.
    """
    from safetensors import safe_open

    file = _check_weights(Path(path) if path is not None else WEIGHTS_PATH)
    with safe_open(str(file), framework="pt", device="cpu") as handle:
        return dict(handle.metadata() or {})
