"""``swin-shapes``: a small timm Swin Transformer trained by probe on generated shapes.

The model is a plain timm ``SwinTransformer`` (fused attention left as timm sets it up) on
``32x32`` images cut into ``4x4`` patches: an ``8x8`` token grid in stage 0, attended in 4
windows of ``4x4`` tokens (16x16 pixels), the second block's windows shifted by 2 tokens;
patch merging to a ``4x4`` grid in stage 1, where the window covers the whole grid (timm then
uses one window and no shift: global attention). It classifies
the images of :func:`probe.models._shapes.make_shapes` into
:data:`probe.models._shapes.SHAPE_CLASSES`. The weights ship in the package and are produced by
``python -m probe.recipes.train_swin_shapes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "SWIN_SHAPES_BASE",
    "SWIN_SHAPES_CONFIG",
    "SWIN_WEIGHTS_PATH",
    "build_swin_shapes",
    "load_swin_shapes",
    "read_swin_shapes_metadata",
]

SWIN_SHAPES_BASE: str = "swin_tiny_patch4_window7_224"
"""timm model name whose architecture :data:`SWIN_SHAPES_CONFIG` overrides."""

SWIN_SHAPES_CONFIG: dict[str, Any] = {
    "pretrained": False,
    "img_size": 32,
    "patch_size": 4,
    "window_size": 4,
    "embed_dim": 48,
    "depths": (2, 2),
    "num_heads": (3, 6),
    "mlp_ratio": 2.0,
    "num_classes": 4,
}
"""Keyword arguments of ``timm.create_model(SWIN_SHAPES_BASE, **SWIN_SHAPES_CONFIG)``.

About 0.21 M parameters: stage 0 is 2 blocks x 3 heads (width 48, head dim 16) on an ``8x8``
grid in ``4x4``-token windows (the second block shifted by 2), stage 1 is 2 blocks x 6 heads
(width 96) on ``4x4`` tokens in one window.
"""

SWIN_WEIGHTS_PATH: Path = Path(__file__).parent / "weights" / "swin_shapes.safetensors"
"""The shipped float32 weights (a safetensors file with training metadata in its header)."""


def build_swin_shapes() -> nn.Module:
    """A randomly initialised ``swin-shapes`` model (training mode, as timm returns it).

    Input ``[batch, 3, 32, 32]`` normalised as :class:`probe.models._shapes.ShapesBatch`
    documents; output logits ``[batch, 4]``. ``model.pretrained_cfg`` names that input (size
    ``32x32``, mean and std 0.5), so ``probe render --image FILE`` prepares files for it.
    """
    import timm

    from probe.models._shapes import NORMALIZE_MEAN, NORMALIZE_STD

    config = dict(SWIN_SHAPES_CONFIG)
    config["depths"], config["num_heads"] = tuple(config["depths"]), tuple(config["num_heads"])
    model = timm.create_model(SWIN_SHAPES_BASE, **config)
    side = int(config["img_size"])
    model.pretrained_cfg = {
        **model.pretrained_cfg, "architecture": "swin-shapes", "input_size": (3, side, side),
        "mean": (NORMALIZE_MEAN,) * 3, "std": (NORMALIZE_STD,) * 3, "crop_pct": 1.0,
        "url": "", "hf_hub_id": None, "num_classes": int(config["num_classes"]),
    }
    return model


def _check_weights(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ProbeError(
            f"swin-shapes weights not found at {path}; "
            "train them with `python -m probe.recipes.train_swin_shapes`"
        )
    return path


def load_swin_shapes(path: str | Path | None = None) -> nn.Module:
    """The trained ``swin-shapes`` model in eval mode, on the CPU.

    Args:
        path: safetensors file to load; default :data:`SWIN_WEIGHTS_PATH` (the shipped weights).

    Raises:
        ProbeError: the file is missing, unreadable, or holds other tensors.
    """
    from safetensors.torch import load_file

    file = _check_weights(Path(path) if path is not None else SWIN_WEIGHTS_PATH)
    try:
        state = load_file(str(file), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ProbeError(
            f"cannot read swin-shapes weights {file} ({exc}); "
            "re-train them with `python -m probe.recipes.train_swin_shapes`"
        ) from exc
    model = build_swin_shapes()
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise ProbeError(
            f"swin-shapes weights {file} do not match the architecture in SWIN_SHAPES_CONFIG; "
            "re-train them with `python -m probe.recipes.train_swin_shapes`"
        ) from exc
    return model.eval()


def read_swin_shapes_metadata(path: str | Path | None = None) -> dict[str, str]:
    """The training metadata stored in the header of a ``swin-shapes`` safetensors file."""
    from safetensors import safe_open

    file = _check_weights(Path(path) if path is not None else SWIN_WEIGHTS_PATH)
    with safe_open(str(file), framework="pt", device="cpu") as handle:
        return dict(handle.metadata() or {})
