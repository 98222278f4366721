"""The ``cross`` view of ``probe render``: an image-to-text model captions the image under
:func:`probe.generate`, and each written token's cross-attention is drawn over the image
(:func:`probe.plot` ``"cross"``, :func:`probe.viewers.html.token_patches_html`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.commands.render._figures import register_view
from probe.commands.render._session import Session, _stem

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["caption_generation"]

#: tokens the cross view lets the model write at most (it stops at its end token)
CAPTION_TOKENS = 20


def caption_generation(s: Session) -> Any:
    """``probe.generate`` of the session's image (once), its caption kept in
    ``extra["generated"]`` for :func:`render` to report on stderr."""
    if "generation" not in s.extra:
        from probe.analysis._image_text import image_geometry

        adapter = s.extra.get("adapter")
        if adapter is None or not hasattr(adapter, "decoder_vocab_size"):
            raise ProbeError(
                f"the cross view needs an image-to-text model (a VisionEncoderDecoderModel: "
                f"--model caption-shapes); {s.model_name} is not one: use heads, rollout or "
                "saliency")
        import probe

        gen = probe.generate(s.model, s.pixel_values, tokenizer=s.processor,
                             max_new_tokens=CAPTION_TOKENS)
        if image_geometry(gen)[0] is None:  # pragma: no cover - the adapter gives one
            raise ProbeError(f"{s.model_name}'s generation has no patch grid to draw on")
        s.extra["generation"] = gen
        s.extra["generated"] = gen.text[0] if gen.text else ""
    return s.extra["generation"]


def cross_layers(s: Session) -> list[int] | None:
    """``--layer`` as the decoder layers to fuse (``None``: every layer, averaged)."""
    return None if s.args.layer is None else [s.args.layer]


def _layer_part(s: Session) -> str:
    return "all" if s.args.layer is None else f"L{s.args.layer}"


@register_view("cross")
def _cross(s: Session) -> list[tuple[str, Figure]]:
    """The caption the model writes for the image, one panel per written token: its step's
    cross-attention over the image (heads averaged; decoder layer ``--layer``, default every
    layer averaged; CLS left out, its share under each token)."""
    import probe

    gen = caption_generation(s)
    try:
        fig = probe.plot(gen, "cross", image=s.display, layers=cross_layers(s),
                         image_size=s.display_size)
    except ProbeError as exc:
        if s.args.layer is not None and "layer" in str(exc):
            raise ProbeError(f"--layer: {exc}") from None
        raise
    return [(_stem(s, "cross", _layer_part(s)), fig)]


def cross_page(s: Session) -> list[tuple[str, Any]]:
    """The interactive form: the written tokens, hover one for where its step looked."""
    from probe.viewers.html import token_patches_html

    gen = caption_generation(s)
    try:
        page = token_patches_html(gen, image=s.display, layers=cross_layers(s))
    except ProbeError as exc:
        if s.args.layer is not None and "layer" in str(exc):
            raise ProbeError(f"--layer: {exc}") from None
        raise
    return [(_stem(s, "cross", _layer_part(s), "interactive"), page)]
