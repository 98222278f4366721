"""Model adapters: the one room that knows HuggingFace and timm.

Importing this package registers the built-in families (HF text encoders, HF decoders, HF
encoder-decoders, HF vision transformers, timm vision transformers, timm and HF Swin).
:func:`adapter_for` returns the adapter of a model; a new family is one file with one
``@register_adapter`` class (see :mod:`probe.capture.adapters._base`).
"""

from probe.capture.adapters import (  # noqa: F401  (register the built-in families)
    _detr,
    _generic,
    _hf_image_text,
    _hf_longformer,
    _hf_seq2seq,
    _hf_text,
    _hf_vision_layouts,
    _swin,
    _timm_cnn,
    _vision,
)
from probe.capture.adapters._base import (
    ModelAdapter,
    Prepared,
    Site,
    VisionGeometry,
    adapter_for,
    list_adapters,
    register_adapter,
    unregister_adapter,
)

__all__ = [
    "ModelAdapter",
    "Prepared",
    "Site",
    "VisionGeometry",
    "adapter_for",
    "list_adapters",
    "register_adapter",
    "unregister_adapter",
]
