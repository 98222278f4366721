"""``probe render VIEW --format html``: the interactive HTML form of each render view that
has one, built from the same session data as the figure (see ``_figures.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.commands.render._methods import (
    _attribution,
    _compute_all,
    _coref_report,
    _coref_suffix,
    _faithfulness,
    _methods,
    _methods_part,
    _needs_target,
)
from probe.commands.render._session import _stem

if TYPE_CHECKING:
    from probe.commands.render._session import Session
    from probe.viewers.html import HtmlView

__all__ = ["HTML_VIEWS", "html_pages"]

PageFn = Callable[["Session"], "list[tuple[str, HtmlView]]"]
HTML_VIEWS: dict[str, PageFn] = {}


def _register(*names: str) -> Callable[[PageFn], PageFn]:
    def deco(fn: PageFn) -> PageFn:
        for name in names:
            HTML_VIEWS[name] = fn
        return fn
    return deco


def html_pages(view: str, session: Session) -> list[tuple[str, HtmlView]]:
    """The ``(file stem, page)`` pairs of ``view``; a view without an HTML form is an error."""
    if view not in HTML_VIEWS:
        raise ProbeError(
            f"the {view} view has no HTML form: use --format html with one of "
            f"{', '.join(sorted(HTML_VIEWS))}"
        )
    return HTML_VIEWS[view](session)


@_register("heads")
def _heads(s: Session) -> list[tuple[str, HtmlView]]:
    from probe.viewers.html import model_view_html

    tr = s.trace()
    if s.args.layer is None:
        page = model_view_html(s.attention(), s.tokens(), layers=list(tr.layer_indices),
                               heads=_heads_of(tr), model_name=s.model_name)
        return [(_stem(s, "heads", "all"), page)]
    layer = s.layer()  # --layer: that layer's heads, as the figure shows them
    pos = tr.layer_position(layer)
    page = model_view_html(s.attention()[pos:pos + 1], s.tokens(), layers=[layer],
                           heads=_heads_of(tr), model_name=s.model_name)
    return [(_stem(s, "heads", f"L{layer}"), page)]


@_register("links", "head")
def _links(s: Session) -> list[tuple[str, HtmlView]]:
    from probe.viewers.html import head_view_html

    tr = s.trace()
    layer = s.layer()
    page = head_view_html(s.attention(), s.tokens(), layers=list(tr.layer_indices),
                          heads=_heads_of(tr), layer=tr.layer_position(layer),
                          model_name=s.model_name)
    return [(_stem(s, s.args.view, f"L{layer}"), page)]


def _heads_of(tr: Any) -> list[int]:
    return list(tr.head_indices) if tr.head_indices is not None else [-1]


@_register("coref")
def _coref(s: Session) -> list[tuple[str, HtmlView]]:
    import probe
    from probe.viewers.html import coref_view_html

    report = _coref_report(s)
    tr = s.trace()
    i = report.word_index
    ranked = sorted(report.per_head, key=lambda lk: (-lk.weight, lk.layer, lk.head))
    page = coref_view_html(
        list(tr.words[0]), {i: probe.word_attention(tr, i)},  # type: ignore[index]
        top={i: [(lk.layer, lk.head, lk.antecedent_index, lk.weight) for lk in ranked]},
        candidates={i: list(report.candidates)}, layers=list(tr.layer_indices),
        heads=_heads_of(tr), model_name=s.model_name,
    )
    return [(_stem(s, "coref", _coref_suffix(s)), page)]


@_register("saliency", "rollout", "compare")
def _attributions(s: Session) -> list[tuple[str, HtmlView]]:
    import probe
    from probe.viewers.html import patches_html, token_view_html

    view = s.args.view
    if view == "rollout":
        methods = ["rollout"]
    elif view == "saliency":
        methods = list(s.args.methods) or (["rollout"] if s.captures() else ["gradcam"])
    else:
        methods = _methods(s)
    _needs_target(s, methods)
    if view == "rollout":
        attrs = {"rollout": _attribution(s, "rollout", head_fusion=s.args.fusion)}
    else:
        attrs = _compute_all(s, methods)
    if s.modality == "vision":
        maps = {m: a.as_grid()[0] for m, a in attrs.items()}
        extra: dict[str, Any] = {}
        if len(attrs) > 1:
            table = probe.compare(list(attrs.values()), metric="spearman",
                          mask=s.trace() if s.captures() else None)
            extra = dict(agreement=table.values.numpy(), methods=list(table.methods),
                         faithfulness=_faithfulness(s, attrs))
        page = patches_html(s.trace(), image=s.display, maps=maps,  # at the file's proportions
                            image_size=s.display_size, **extra)
    else:
        keep = s.content_positions()
        page = token_view_html(s.content_tokens(), {m: a.scores[0, keep] for m, a in attrs.items()},
                               signed={m: bool(a.signed) for m, a in attrs.items()},
                               model_name=s.model_name)
    if view == "rollout":  # named like the figure of the same view
        return [(_stem(s, view, f"{s.args.fusion}-d{s.args.discard:g}"), page)]
    return [(_stem(s, view, _methods_part(s, methods)), page)]
