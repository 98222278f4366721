"""The figure views of ``probe render``: one function per view, registered in :data:`VIEWS`,
each taking a :class:`Session` and returning ``[(file stem, Figure)]``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.commands.render._methods import (
    _attribution,
    _cli_wording,
    _compute_all,
    _coref_report,
    _coref_suffix,
    _curves_for,
    _faithfulness,
    _methods,
    _methods_part,
    _needs_target,
)
from probe.commands.render._session import Session, _stem

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["VIEWS", "register_view"]

ViewFn = Callable[[Session], "list[tuple[str, Figure]]"]
VIEWS: dict[str, ViewFn] = {}


def register_view(name: str) -> Callable[[ViewFn], ViewFn]:
    """Register ``fn(session) -> [(stem, Figure)]`` as ``probe render NAME``."""

    def decorator(fn: ViewFn) -> ViewFn:
        VIEWS[name] = fn
        return fn

    return decorator


@register_view("heads")
def _heads(s: Session) -> list[tuple[str, Figure]]:
    from probe.viewers import head_grid, model_view

    attn = s.attention()
    tokens = s.tokens()
    sentence = _sentence(s)  # under the title, as probe.plot(trace, "heads") draws it
    if s.args.layer is None:
        fig = model_view(attn, tokens, direction=s.args.direction, model_name=s.model_name,
                         sentence=sentence)
        return [(_stem(s, "heads", "all"), fig)]
    layer = s.layer()
    pos = s.trace().layer_position(layer)
    fig = head_grid(attn[pos], tokens, layer=layer, direction=s.args.direction,
                    model_name=s.model_name, sentence=sentence)
    return [(_stem(s, "heads", f"L{layer}"), fig)]


@register_view("head")
def _head(s: Session) -> list[tuple[str, Figure]]:
    from probe.viewers import head_heatmap

    layer, head = s.layer(), s.head()
    tr = s.trace()
    fig = head_heatmap(
        s.attention()[tr.layer_position(layer), tr.head_position(head)], s.tokens(),
        direction=s.args.direction, model_name=s.model_name, layer=layer, head=head,
    )
    return [(_stem(s, "head", f"L{layer}H{head}"), fig)]


@register_view("links")
def _links(s: Session) -> list[tuple[str, Figure]]:
    from probe.viewers import link_view

    highlight = _word_tokens(s)  # first: the trace is grouped at --word here
    layer = s.layer()
    tr = s.trace()
    heads = [s.head()] if s.args.head is not None else None
    fig = link_view(
        s.attention()[tr.layer_position(layer)], s.tokens(), heads=heads,
        direction=s.args.direction, model_name=s.model_name, layer=layer, highlight=highlight,
        sentence=_sentence(s),  # under the title, as probe.plot(trace, "links") draws it
    )
    suffix = f"L{layer}" + (f"H{heads[0]}" if heads else "")
    return [(_stem(s, "links", suffix, _coref_suffix(s) if s.args.word else None), fig)]


def _sentence(s: Session) -> str | None:
    """The input sentence in quotes for the title's second line, as :func:`probe.plot` puts
    it (``None`` for a trace without words)."""
    from probe.viewers._plot import quoted_sentence

    return quoted_sentence(s.trace(), 0)


def _word_tokens(s: Session) -> list[int] | None:
    """The token positions of ``--word`` (``--occurrence``), as ``probe.plot(trace, "links",
    word=...)`` highlights them; ``None`` without ``--word``."""
    if s.args.word is None:
        return None
    from probe.viewers._plot import word_positions

    try:
        positions = word_positions(s.trace(), 0, s.args.word, s.args.occurrence or 0)
    except ProbeError as exc:
        raise ProbeError(_cli_wording(str(exc), s.args)) from None
    return [i for i in positions if i < len(s.tokens())]


@register_view("coref")
def _coref(s: Session) -> list[tuple[str, Figure]]:
    from probe.analysis._coref import word_rows
    from probe.viewers import coref_view
    from probe.viewers._plot import coref_rows, unknown_options

    report = _coref_report(s)
    tr = s.trace()
    links = sorted(report.per_head, key=lambda lk: (-lk.weight, lk.layer, lk.head))
    best = links[0]
    weights = word_rows(tr, report.word_index)[0]  # [layer, head, words]
    fig = coref_view(
        list(tr.words[0]), report.word_index,  # type: ignore[index]
        weights[tr.layer_position(best.layer), tr.head_position(best.head)],
        top=coref_rows(tr.words[0], links[:8]),  # type: ignore[index]
        candidates=list(report.candidates), direction=s.args.direction,
        context=s.args.context or "excerpt", model_name=s.model_name, layer=best.layer,
        head=best.head, **unknown_options(tr, 0),
    )
    return [(_stem(s, "coref", _coref_suffix(s)), fig)]


@register_view("rollout")
def _rollout(s: Session) -> list[tuple[str, Figure]]:
    suffix = f"{s.args.fusion}-d{s.args.discard:g}"
    return _single_method(s, "rollout", "rollout", suffix, head_fusion=s.args.fusion)


@register_view("saliency")
def _saliency(s: Session) -> list[tuple[str, Figure]]:
    if len(s.args.methods) > 1:
        raise ProbeError("the saliency view shows one --method; use the compare view for several")
    method = s.args.methods[0] if s.args.methods else ("rollout" if s.captures() else "gradcam")
    if s.args.layer is not None and not s.captures():
        raise ProbeError(
            f"--layer adds per-head CLS maps of a vision transformer; {s.model_name} is a CNN "
            "without attention heads: drop --layer (the gates view shows its attention gates)"
        )
    out = _single_method(s, method, "saliency", _methods_part(s, [method], named=True))
    if s.modality == "vision" and s.args.layer is not None:
        import probe
        from probe.viewers import cls_head_grid

        layer = s.layer()
        tr = s.trace()
        maps = probe.patch_maps(tr, batch_index=0)[tr.layer_position(layer), 0]
        fig = cls_head_grid(s.display, maps, model_name=s.model_name, layer=layer,
                            image_size=s.display_size)
        out.append((_stem(s, "saliency", "cls-heads", f"L{layer}"), fig))
    return out


def _single_method(
    s: Session, method: str, view: str, suffix: str, **options: Any
) -> list[tuple[str, Figure]]:
    from probe.viewers import saliency_overlay, token_strip

    _needs_target(s, [method])
    attr = _attribution(s, method, **options)
    # one label for one quantity, over an image or over tokens: "rollout score", "ig attribution"
    label = f"{attr.label} {'attribution' if attr.signed else 'score'}"
    if s.modality == "vision":
        fig = saliency_overlay(  # at the image file's proportions, not the model input's
            s.display, attr.as_grid()[0], model_name=s.model_name, method=attr.label,
            image_size=s.display_size, colorbar_label=label,
        )
    else:
        from probe.viewers._plot import strip_note

        keep = s.content_positions()
        fig = token_strip(
            s.content_tokens(), {attr.label: attr.scores[0, keep]}, signed=attr.signed,
            direction=s.args.direction,
            model_name=s.model_name, method=attr.label, colorbar_label=label,
            # the rows read (attention methods) and the tokens left out, as probe.plot says
            note=strip_note(s.trace(), 0, attr.options.get("query"), s.model),
        )
    return [(_stem(s, view, suffix), fig)]


@register_view("compare")
def _compare(s: Session) -> list[tuple[str, Figure]]:
    import probe
    from probe.viewers import comparison_panel

    methods = _methods(s)
    _needs_target(s, methods)
    attrs = _compute_all(s, methods)
    table = probe.compare(list(attrs.values()), metric="spearman",
                          mask=s.trace() if s.captures() else None)
    faith = _faithfulness(s, attrs)
    if s.modality == "vision":
        maps = {m: a.as_grid()[0] for m, a in attrs.items()}
        subject: Any = s.display
    else:
        keep = s.content_positions()
        maps = {m: a.scores[0, keep] for m, a in attrs.items()}
        subject = s.content_tokens()
    fig = comparison_panel(
        subject, maps, agreement=table.values, methods=list(table.methods), units=table.units,
        faithfulness=faith, direction=s.args.direction, model_name=s.model_name,
        image_size=s.display_size if s.modality == "vision" else None,
    )
    return [(_stem(s, "compare", _methods_part(s, methods)), fig)]


@register_view("curves")
def _curves(s: Session) -> list[tuple[str, Figure]]:
    from probe.evaluation._curves import score_label
    from probe.viewers import curves_view

    methods = _methods(s)
    _needs_target(s, methods)
    if s.modality == "text" and not s.args.pair:
        raise ProbeError("text curves need a target: pass --pair \"second sentence\"")
    curves = _curves_for(s, _compute_all(s, methods))
    deletion = {m: (c[0].fractions, c[0].values[0]) for m, c in curves.items()}
    insertion = {m: (c[1].fractions, c[1].values[0]) for m, c in curves.items()}
    unit = "images" if s.modality == "vision" else "inputs"  # the curves of this one input
    ylabel = score_label(s.target())  # a class, or the similarity to --pair
    fig_d = curves_view(deletion, kind="deletion", model_name=s.model_name, n=1, unit=unit,
                        ylabel=ylabel)
    fig_i = curves_view(insertion, kind="insertion", model_name=s.model_name, n=1, unit=unit,
                        ylabel=ylabel)
    part = _methods_part(s, methods)
    return [(_stem(s, "curves", "deletion", part), fig_d),
            (_stem(s, "curves", "insertion", part), fig_i)]
