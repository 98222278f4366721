"""``detr-shapes``: a small HF ``DetrForObjectDetection`` trained by probe on generated scenes.

The model is a plain transformers DETR whose backbone is a small HF ResNet built from a config
(no pretrained weights anywhere): stem (stride 4) and two basic-block stages, the second at
stride 8, so a ``64x64`` image of :func:`probe.models._scenes.make_scenes` gives an ``8x8``
feature map (64 encoder tokens). Two encoder and two decoder layers of width 64 with 4 heads,
8 object queries, the four classes of :data:`probe.models._shapes.SHAPE_CLASSES`. The weights
ship in the package and are produced by ``python -m probe.recipes.train_detr_shapes``; the
detector is weak (it finds 44% of held-out objects), see the README.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "DETR_BACKBONE_CONFIG",
    "DETR_SHAPES_CONFIG",
    "DETR_SHAPES_IMAGE_SIZE",
    "DETR_WEIGHTS_PATH",
    "build_detr_shapes",
    "load_detr_shapes",
    "read_detr_shapes_metadata",
]

DETR_SHAPES_IMAGE_SIZE: int = 64
"""Side of the square input images in pixels."""

DETR_BACKBONE_CONFIG: dict[str, Any] = {
    "num_channels": 3,
    "embedding_size": 16,
    "hidden_sizes": [32, 64],
    "depths": [1, 1],
    "layer_type": "basic",
    "out_features": ["stage2"],
}
"""Keyword arguments of the backbone's ``transformers.ResNetConfig`` (stride 8 output)."""

DETR_SHAPES_CONFIG: dict[str, Any] = {
    "use_timm_backbone": False,
    "use_pretrained_backbone": False,
    "d_model": 64,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
    "num_queries": 8,
    "num_labels": 4,
    "auxiliary_loss": True,
    "dropout": 0.0,
}
"""Keyword arguments of ``transformers.DetrConfig`` besides the backbone config."""

DETR_WEIGHTS_PATH: Path = Path(__file__).parent / "weights" / "detr_shapes.safetensors"
"""The shipped float32 weights (a safetensors file with training metadata in its header)."""


def build_detr_shapes() -> nn.Module:
    """A randomly initialised ``detr-shapes`` model, every parameter trainable.

    (transformers freezes a ResNet backbone's stem and first stage, meant for ImageNet
    weights; this backbone starts from random weights, so all of it is trained.) Input
    ``[batch, 3, 64, 64]`` normalised as :class:`probe.models._scenes.ScenesBatch` documents.
    """
    from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig
    from transformers.utils import logging

    from probe.models._shapes import SHAPE_CLASSES

    config = DetrConfig(
        backbone_config=ResNetConfig(**DETR_BACKBONE_CONFIG),
        id2label=dict(enumerate(SHAPE_CLASSES)),
        label2id={c: i for i, c in enumerate(SHAPE_CLASSES)},
        **DETR_SHAPES_CONFIG,
    )
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        model = DetrForObjectDetection(config)
    finally:
        logging.set_verbosity(verbosity)
    for p in model.parameters():
        p.requires_grad_(True)
    model.config._name_or_path = "detr-shapes"
    return model


def _check_weights(path: Path) -> Path:
    if not Path(path).is_file():
        raise ProbeError(
            f"detr-shapes weights not found at {path}; "
            "train them with `python -m probe.recipes.train_detr_shapes`"
        )
    return Path(path)


def load_detr_shapes(path: str | Path | None = None) -> nn.Module:
    """The trained ``detr-shapes`` model in eval mode, on the CPU (SDPA attention).

    Args:
        path: safetensors file to load; default :data:`DETR_WEIGHTS_PATH`.
    """
    from safetensors.torch import load_file

    file = _check_weights(Path(path) if path is not None else DETR_WEIGHTS_PATH)
    try:
        state = load_file(str(file), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ProbeError(
            f"cannot read detr-shapes weights {file} ({exc}); "
            "re-train them with `python -m probe.recipes.train_detr_shapes`"
        ) from exc
    import torch

    with torch.random.fork_rng(devices=[]):  # the random init is overwritten: keep the caller's RNG
        model = build_detr_shapes()
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise ProbeError(
            f"detr-shapes weights {file} do not match DETR_SHAPES_CONFIG; "
            "re-train them with `python -m probe.recipes.train_detr_shapes`"
        ) from exc
    return model.eval()


def read_detr_shapes_metadata(path: str | Path | None = None) -> dict[str, str]:
    """The training metadata stored in the header of a ``detr-shapes`` safetensors file."""
    from safetensors import safe_open

    file = _check_weights(Path(path) if path is not None else DETR_WEIGHTS_PATH)
    with safe_open(str(file), framework="pt", device="cpu") as handle:
        return dict(handle.metadata() or {})
