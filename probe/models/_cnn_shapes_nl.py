"""``cnn-shapes-nl``: a small timm ResNet with one non-local block, trained by probe on shapes.

The network is ``cnn-shapes`` (:mod:`probe.models._cnn_shapes`) without CBAM and narrower in
its last stages: a plain timm ``ResNet`` (``BasicBlock``, one block per stage, deep stem, no
max-pool, ``output_stride=8``) whose second stage carries timm's ``NonLocalAttn`` (Wang et al.
2018, "Non-local Neural Networks") in the block's attention slot: every position of the
``8x8`` feature map of stage 1 (zero-based; ``4x4`` input pixels per cell) attends to every
other through a softmax over the 64 positions, so :func:`probe.trace_gates` reads one
``[batch, 64, 64]`` attention matrix per image. Weights ship in the package, produced by
``python -m probe.recipes.train_cnn_shapes_nl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "CNN_NL_CONFIG",
    "CNN_NL_STAGE",
    "CNN_NL_WEIGHTS_PATH",
    "build_cnn_shapes_nl",
    "load_cnn_shapes_nl",
    "read_cnn_shapes_nl_metadata",
]

CNN_NL_CONFIG: dict[str, Any] = {
    "layers": (1, 1, 1, 1),
    "channels": (16, 32, 48, 64),
    "num_classes": 4,
    "stem_type": "deep",
    "stem_width": 16,
    "output_stride": 8,
}
"""Keyword arguments of ``timm.models.resnet.ResNet(BasicBlock, **CNN_NL_CONFIG)``; the stem's
max-pool is then replaced by ``nn.Identity`` (strides in ``feature_info`` halved to match)."""

CNN_NL_STAGE: int = 1
"""Zero-based stage whose block holds the ``NonLocalAttn`` (``layer2.0.se``; ``8x8`` map)."""

CNN_NL_WEIGHTS_PATH: Path = Path(__file__).parent / "weights" / "cnn_shapes_nl.safetensors"
"""The shipped float32 weights (a safetensors file with training metadata in its header)."""

_RECIPE = "python -m probe.recipes.train_cnn_shapes_nl"


def build_cnn_shapes_nl() -> nn.Module:
    """A randomly initialised ``cnn-shapes-nl`` (training mode, as timm returns it).

    Input ``[batch, 3, 32, 32]`` normalised as :class:`probe.models._shapes.ShapesBatch`
    documents; output logits ``[batch, 4]``.
    """
    from timm.layers import NonLocalAttn
    from timm.models.resnet import BasicBlock, ResNet
    from torch import nn

    model = ResNet(BasicBlock, **CNN_NL_CONFIG)
    model.maxpool = nn.Identity()
    for info in model.feature_info[1:]:  # the stages now run at half timm's stated stride
        info["reduction"] //= 2
    block = getattr(model, f"layer{CNN_NL_STAGE + 1}")[0]
    block.se = NonLocalAttn(CNN_NL_CONFIG["channels"][CNN_NL_STAGE])
    from probe.models._shapes import NORMALIZE_MEAN, NORMALIZE_STD

    # the input it was trained on: (pixels - 0.5) / 0.5 (ImageNet's statistics, timm's
    # default, would feed files to it wrongly normalised)
    model.pretrained_cfg = {"architecture": "cnn-shapes-nl", "input_size": (3, 32, 32),
                            "mean": (NORMALIZE_MEAN,) * 3, "std": (NORMALIZE_STD,) * 3,
                            "crop_pct": 1.0}
    return model


def _check_weights(path: Path) -> Path:
    if not path.is_file():
        raise ProbeError(f"cnn-shapes-nl weights not found at {path}; train them with `{_RECIPE}`")
    return path


def load_cnn_shapes_nl(path: str | Path | None = None) -> nn.Module:
    """The trained ``cnn-shapes-nl`` in eval mode, on the CPU.

    Args:
        path: safetensors file to load; default :data:`CNN_NL_WEIGHTS_PATH` (shipped weights).
    """
    from safetensors.torch import load_file

    file = _check_weights(Path(path) if path is not None else CNN_NL_WEIGHTS_PATH)
    try:
        state = load_file(str(file), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ProbeError(
            f"cannot read cnn-shapes-nl weights {file} ({exc}); re-train them with `{_RECIPE}`"
        ) from exc
    model = build_cnn_shapes_nl()
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise ProbeError(
            f"cnn-shapes-nl weights {file} do not match the architecture in CNN_NL_CONFIG; "
            f"re-train them with `{_RECIPE}`"
        ) from exc
    return model.eval()


def read_cnn_shapes_nl_metadata(path: str | Path | None = None) -> dict[str, str]:
    """The training metadata stored in the header of a ``cnn-shapes-nl`` safetensors file."""
    from safetensors import safe_open

    file = _check_weights(Path(path) if path is not None else CNN_NL_WEIGHTS_PATH)
    with safe_open(str(file), framework="pt", device="cpu") as handle:
        return dict(handle.metadata() or {})
