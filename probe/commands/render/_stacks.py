"""The attention views on one stack of an encoder-decoder (``--stack``) and the ``alignment``
view of a generation (``--generate``): additions to the views of ``_figures.py``.

``--stack encoder`` reads ``trace.attentions`` (encoders and encoder-decoders), ``--stack
decoder`` the decoder self-attention (``trace.decoder`` of an encoder-decoder, or
``trace.attentions`` of a decoder-only model) and ``--stack cross`` ``trace.cross``, with the
decoder tokens as query labels and the source tokens as key labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe._index import model_position
from probe.commands.render._figures import register_view
from probe.commands.render._session import Session, _stem

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

    from probe.viewers.html import HtmlView

__all__ = ["STACK_FIGURES", "STACK_PAGES", "alignment_choice"]


class _Stack:
    """One stack of batch item 0: ``attn`` ``[layer, head, query, key]`` and its labels."""

    def __init__(self, s: Session) -> None:
        tr = s.trace()
        name = s.args.stack or "encoder"
        family = tr.family
        n_src = tr.valid_length(0)
        src = list(tr.labels[0][:n_src]) if tr.labels is not None else None
        if family == "encoder-decoder":
            dec = list(tr.decoder_labels[0]) if tr.decoder_labels is not None else None
            stacks = {"encoder": (tr.encoder, src, src), "decoder": (tr.decoder, dec, dec),
                      "cross": (tr.cross, dec, src)}
        elif family == "decoder":
            stacks = {"decoder": (tr.encoder, src, src)}
        else:
            stacks = {"encoder": (tr.encoder, src, src)}
        if name not in stacks or stacks[name][0] is None:
            have = [k for k, v in stacks.items() if v[0] is not None]
            other = ("" if family == "encoder-decoder"
                     else f", or an encoder-decoder model for {name} (e.g. --model toy-mt)")
            raise ProbeError(
                f"--stack {name}: {s.model_name} ({family}) has no {name} attention; it has "
                f"{', '.join(have)}: pass --stack {have[0]}{other}"
            )
        stack, queries, keys = stacks[name]
        attn = stack.attentions[:, 0]
        nq = len(queries) if queries is not None else attn.shape[-2]
        nk = len(keys) if keys is not None else attn.shape[-1]
        self.attn: torch.Tensor = attn[:, :, :nq, :nk]
        self.queries, self.keys = queries, keys
        self.layer_indices = tuple(stack.layer_indices)
        self.num_model_layers = int(stack.num_model_layers)  # the decoder's, for cross
        self.num_heads = int(stack.num_heads)
        self.head_indices = stack.head_indices
        self.name = name

    def layer(self, s: Session) -> tuple[int, int]:
        """The model layer of ``--layer`` (default the model's last of this stack) and its
        position in ``attn``."""
        layer = s.args.layer if s.args.layer is not None else -1
        pos = model_position(layer, self.layer_indices, self.num_model_layers, name="layer",
                             unit="layers", owner=f"the {self.name} stack")
        return self.layer_indices[pos], pos

    def head(self, s: Session) -> tuple[int, int]:
        """The model head of ``--head`` (default 0) and its position in ``attn``: this
        stack's own heads (cross: the decoder's), never the encoder's; a negative one counts
        back from the stack's last head (from the last kept when its count is unknown)."""
        head = s.args.head if s.args.head is not None else 0
        if self.head_indices is None:
            raise ProbeError(f"--head: the {self.name} stack's heads were averaged during "
                             "capture (one mean per layer): drop --head")
        pos = model_position(head, self.head_indices, self.num_heads, name="head",
                             unit="heads per layer", owner=f"the {self.name} stack")
        return self.head_indices[pos], pos

    def labels(self) -> dict[str, list[str] | None]:
        return {"query_tokens": self.queries, "key_tokens": self.keys}


def _heads(s: Session) -> list[tuple[str, Figure]]:
    from probe.viewers import head_grid, model_view

    st = _Stack(s)
    name = f"{s.model_name} {st.name}"
    if s.args.layer is None:
        fig = model_view(st.attn, **st.labels(), direction=s.args.direction,
                         model_name=name, layers=list(st.layer_indices))
        return [(_stem(s, "heads", st.name, "all"), fig)]
    layer, pos = st.layer(s)
    fig = head_grid(st.attn[pos], **st.labels(), layer=layer, direction=s.args.direction,
                    model_name=name)
    return [(_stem(s, "heads", st.name, f"L{layer}"), fig)]


def _head(s: Session) -> list[tuple[str, Figure]]:
    from probe.viewers import head_heatmap

    st = _Stack(s)
    (layer, lpos), (head, hpos) = st.layer(s), st.head(s)
    fig = head_heatmap(
        st.attn[lpos, hpos], **st.labels(), direction=s.args.direction,
        model_name=f"{s.model_name} {st.name}",
        layer=layer, head=head,
    )
    return [(_stem(s, "head", st.name, f"L{layer}H{head}"), fig)]


def _links(s: Session) -> list[tuple[str, Figure]]:
    from probe.viewers import link_view

    st = _Stack(s)
    layer, lpos = st.layer(s)
    heads = [st.head(s)[1]] if s.args.head is not None else None
    fig = link_view(
        st.attn[lpos], **st.labels(), heads=heads, direction=s.args.direction,
        model_name=f"{s.model_name} {st.name}",
        layer=layer,
    )
    suffix = f"L{layer}" + (f"H{st.head(s)[0]}" if heads else "")
    return [(_stem(s, "links", st.name, suffix), fig)]


STACK_FIGURES = {"heads": _heads, "head": _head, "links": _links}


def _heads_page(s: Session) -> list[tuple[str, HtmlView]]:
    from probe.viewers.html import model_view_html

    st = _Stack(s)
    heads = list(st.head_indices) if st.head_indices is not None else None
    if s.args.layer is None:
        page = model_view_html(st.attn, **st.labels(), layers=list(st.layer_indices),
                               heads=heads, direction=s.args.direction,
                               model_name=f"{s.model_name} {st.name}")
        return [(_stem(s, "heads", st.name, "all"), page)]
    layer, pos = st.layer(s)  # --layer: that layer's heads, as the figure shows them
    page = model_view_html(st.attn[pos:pos + 1], **st.labels(), layers=[layer], heads=heads,
                           direction=s.args.direction, model_name=f"{s.model_name} {st.name}")
    return [(_stem(s, "heads", st.name, f"L{layer}"), page)]


def _links_page(s: Session) -> list[tuple[str, HtmlView]]:
    from probe.viewers.html import head_view_html

    st = _Stack(s)
    layer, pos = st.layer(s)
    heads = list(st.head_indices) if st.head_indices is not None else None
    page = head_view_html(st.attn, **st.labels(), layers=list(st.layer_indices), heads=heads,
                          layer=pos, direction=s.args.direction,
                          model_name=f"{s.model_name} {st.name}")
    return [(_stem(s, s.args.view, st.name, f"L{layer}"), page)]


#: the interactive forms of the stack views (``--stack ... --format html``)
STACK_PAGES = {"heads": _heads_page, "head": _links_page, "links": _links_page}


def alignment_choice(s: Session) -> tuple[Any, int, int | None]:
    """``probe.alignment`` of the translation of ``--text``, with ``--layer`` (default the
    last; checked, made non-negative) and ``--head`` (checked; ``None``: all heads)."""
    import probe

    gen = s.generation()
    if not gen.is_encoder_decoder:
        raise ProbeError(
            f"the alignment view needs an encoder-decoder (e.g. --model toy-mt); {s.model_name} "
            "is decoder-only"
        )
    al = probe.alignment(gen)
    layer = s.args.layer if s.args.layer is not None else -1
    # the decoder's (cross) layers, checked once; every layer is kept (render generates them)
    layer = al.layer_indices[al.layer_position(layer)]
    head = None
    if s.args.head is not None:
        # the cross-attention's own heads (the alignment knows their number), not the encoder's
        head = al.head_indices[al.head_position(s.args.head)]  # type: ignore[index]
    return al, layer, head


@register_view("alignment")
def _alignment(s: Session) -> list[tuple[str, Figure]]:
    """Word alignment of ``--text`` and its translation: cross-attention merged into words
    (``--layer``, default last; ``--head``, default all heads averaged)."""
    from probe.viewers import alignment_view

    al, layer, head = alignment_choice(s)
    matrix = al.matrix(layer=layer, head=head)
    fig = alignment_view(
        matrix, al.target_words, al.source_words, predicted=al.links(layer=layer, head=head),
        direction=s.args.direction,
        model_name=s.model_name, layer=layer, head="mean" if head is None else head,
    )
    return [(_stem(s, "alignment", f"L{layer}" + ("" if head is None else f"H{head}")), fig)]
