"""The options of ``probe render``: :class:`RenderArgs` and the constants the views share."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_IMAGE_METHODS",
    "DEFAULT_TEXT_METHODS",
    "FORMATS",
    "IMAGE_DEFAULT_VIEWS",
    "GENERATE_VIEWS",
    "RenderArgs",
    "STACKS",
    "STACK_VIEWS",
    "TEXT_ONLY_VIEWS",
]

FORMATS = ("png", "svg", "pdf", "html")


@dataclass(frozen=True)
class RenderArgs:
    """Options of ``probe render``."""

    view: str
    model: str | None = None
    text: str | None = None
    pair: str | None = None
    image: str | None = None
    word: str | None = None
    layer: int | None = None
    head: int | None = None
    methods: tuple[str, ...] = ()
    fusion: str = "mean"
    discard: float = 0.0
    out: str = "probe-out"
    formats: tuple[str, ...] = ("png",)
    dpi: int = 200
    seed: int = 0
    pretrained: bool = False
    quiet: bool = False
    generate: int | None = None
    stack: str | None = None

TEXT_ONLY_VIEWS = ("coref", "alignment")
STACKS = ("encoder", "decoder", "cross")
STACK_VIEWS = ("heads", "head", "links")
GENERATE_VIEWS = ("heads", "head", "links", "alignment")
IMAGE_DEFAULT_VIEWS = ("saliency",)
DEFAULT_TEXT_METHODS = ("attention", "rollout", "relevance", "ig", "saliency", "inputxgrad", "random")
DEFAULT_IMAGE_METHODS = (
    "attention", "rollout", "relevance", "ig", "saliency", "gradcam", "random",
)
