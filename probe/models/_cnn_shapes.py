"""``cnn-shapes``: a small timm ResNet with CBAM attention, trained by probe on generated shapes.

The model is a plain timm ``ResNet`` (``BasicBlock``, one block per stage) whose blocks carry
timm's CBAM module (``block_args=dict(attn_layer="cbam")``): a channel gate followed by a
spatial gate in every block. It takes the ``32x32`` images of
:func:`probe.models._shapes.make_shapes` and classifies them into
:data:`probe.models._shapes.SHAPE_CLASSES`. The stem's max-pool is replaced by an identity so
the feature maps stay fine enough to localise the shapes: ``16x16`` in stage 1 and ``8x8`` in
stages 2-4 (stages 3 and 4 are dilated, timm's ``output_stride=8``). The weights ship in the
package and are produced by ``python -m probe.recipes.train_cnn_shapes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "CNN_SHAPES_CONFIG",
    "CNN_SHAPES_IMAGE_SIZE",
    "CNN_WEIGHTS_PATH",
    "build_cnn_shapes",
    "load_cnn_shapes",
    "read_cnn_shapes_metadata",
]

CNN_SHAPES_IMAGE_SIZE: int = 32
"""Side of the square input images in pixels."""

CNN_SHAPES_CONFIG: dict[str, Any] = {
    "layers": (1, 1, 1, 1),
    "channels": (16, 32, 64, 96),
    "num_classes": 4,
    "stem_type": "deep",
    "stem_width": 16,
    "output_stride": 8,
    "block_args": {"attn_layer": "cbam"},
}
"""Keyword arguments of ``timm.models.resnet.ResNet(BasicBlock, **CNN_SHAPES_CONFIG)``.

About 0.23 M parameters; the stem's max-pool is then replaced by ``nn.Identity`` (and the
strides in ``model.feature_info`` halved to match): the unit grid is ``8x8`` cells of ``4x4``
pixels, like the patch grid of ``vit-shapes``.
"""

CNN_WEIGHTS_PATH: Path = Path(__file__).parent / "weights" / "cnn_shapes.safetensors"
"""The shipped float32 weights (a safetensors file with training metadata in its header)."""


def build_cnn_shapes() -> nn.Module:
    """A randomly initialised ``cnn-shapes`` model (training mode, as timm returns it).

    Input ``[batch, 3, 32, 32]`` normalised as :class:`probe.models._shapes.ShapesBatch`
    documents; output logits ``[batch, 4]``.
    """
    from timm.models.resnet import BasicBlock, ResNet
    from torch import nn

    config = dict(CNN_SHAPES_CONFIG)
    config["block_args"] = dict(config["block_args"])
    model = ResNet(BasicBlock, **config)
    model.maxpool = nn.Identity()
    for info in model.feature_info[1:]:  # the stages now run at half timm's stated stride
        info["reduction"] //= 2
    from probe.models._shapes import NORMALIZE_MEAN, NORMALIZE_STD

    # the input it was trained on: (pixels - 0.5) / 0.5 (ImageNet's statistics, timm's
    # default, would feed files to it wrongly normalised)
    model.pretrained_cfg = {"architecture": "cnn-shapes", "input_size": (3, 32, 32),
                            "mean": (NORMALIZE_MEAN,) * 3, "std": (NORMALIZE_STD,) * 3,
                            "crop_pct": 1.0}
    return model


def _check_weights(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ProbeError(
            f"cnn-shapes weights not found at {path}; "
            "train them with `python -m probe.recipes.train_cnn_shapes`"
        )
    return path


def load_cnn_shapes(path: str | Path | None = None) -> nn.Module:
    """The trained ``cnn-shapes`` model in eval mode, on the CPU.

    Args:
        path: safetensors file to load; default :data:`CNN_WEIGHTS_PATH` (the shipped weights).
    """
    from safetensors.torch import load_file

    file = _check_weights(Path(path) if path is not None else CNN_WEIGHTS_PATH)
    try:
        state = load_file(str(file), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ProbeError(
            f"cannot read cnn-shapes weights {file} ({exc}); "
            "re-train them with `python -m probe.recipes.train_cnn_shapes`"
        ) from exc
    model = build_cnn_shapes()
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise ProbeError(
            f"cnn-shapes weights {file} do not match the architecture in CNN_SHAPES_CONFIG; "
            "re-train them with `python -m probe.recipes.train_cnn_shapes`"
        ) from exc
    return model.eval()


def read_cnn_shapes_metadata(path: str | Path | None = None) -> dict[str, str]:
    """The training metadata stored in the header of a ``cnn-shapes`` safetensors file."""
    from safetensors import safe_open

    file = _check_weights(Path(path) if path is not None else CNN_WEIGHTS_PATH)
    with safe_open(str(file), framework="pt", device="cpu") as handle:
        return dict(handle.metadata() or {})
