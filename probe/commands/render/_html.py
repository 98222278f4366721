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
    _curves_for,
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
    from probe.viewers.html import BudgetError

    if view not in HTML_VIEWS:
        raise ProbeError(
            f"the {view} view has no HTML form: use --format html with one of "
            f"{', '.join(sorted(HTML_VIEWS))}"
        )
    try:
        return HTML_VIEWS[view](session)
    except BudgetError as exc:  # named as the command line spells the options
        keyword = exc.what.isidentifier()  # "attn", "patch_attn": the viewer's argument
        what = f"the {view} page's attention" if keyword else None
        raise exc.reworded(_budget_hint(view, session.args), "--max-values N", what) from None


def _budget_hint(view: str, args: Any) -> str:
    """:data:`_BUDGET_HINTS` without the selection already made (``--layer 0`` was told to
    "show one layer (--layer L)")."""
    hint = _BUDGET_HINTS.get(view, "")
    given = {"heads": ("layer", "show one layer (--layer L), "),
             "links": ("head", "show one head (--head H), "),
             "gates": ("layer", "show one stage's blocks (--layer S)")}.get(view)
    if given is not None and getattr(args, given[0], None) is not None:
        hint = hint.replace(given[1], "")
    return hint


# how to select less in each view's page on the command line ("": only --max-values)
_BUDGET_HINTS = {
    "heads": "show one layer (--layer L), a shorter --text",
    "head": "a shorter --text", "links": "show one head (--head H), a shorter --text",
    "alignment": "a shorter --text or fewer --generate tokens",
    "gates": "show one stage's blocks (--layer S)",
    "window": "pick a block of a later stage with --layer (later stages hold fewer tokens)",
}


def _budget(s: Session) -> int:
    """``--max-values``, else the views' default size budget."""
    from probe.viewers.html import DEFAULT_MAX_VALUES

    return DEFAULT_MAX_VALUES if s.args.max_values is None else s.args.max_values


@_register("heads")
def _heads(s: Session) -> list[tuple[str, HtmlView]]:
    from probe.viewers.html import model_view_html

    tr = s.trace()
    if s.args.layer is None:
        page = model_view_html(s.attention(), s.tokens(), layers=list(tr.layer_indices),
                               heads=_heads_of(tr), direction=s.args.direction,
                               model_name=s.model_name,
                               max_values=_budget(s))
        return [(_stem(s, "heads", "all"), page)]
    layer = s.layer()  # --layer: that layer's heads, as the figure shows them
    pos = tr.layer_position(layer)
    page = model_view_html(s.attention()[pos:pos + 1], s.tokens(), layers=[layer],
                           heads=_heads_of(tr), direction=s.args.direction,
                           model_name=s.model_name, max_values=_budget(s))
    return [(_stem(s, "heads", f"L{layer}"), page)]


@_register("links", "head")
def _links(s: Session) -> list[tuple[str, HtmlView]]:
    from probe.viewers.html import head_view_html

    tr = s.trace()
    layer = s.layer()
    attn, heads, suffix = s.attention(), _heads_of(tr), f"L{layer}"
    if s.args.view == "head" or s.args.head is not None:  # one head, as the figure draws it
        head = s.head()
        pos = tr.head_position(head)
        attn, heads, suffix = attn[:, pos:pos + 1], [head], f"{suffix}H{head}"
    page = head_view_html(attn, s.tokens(), layers=list(tr.layer_indices), heads=heads,
                          layer=tr.layer_position(layer), direction=s.args.direction,
                          model_name=s.model_name,
                          max_values=_budget(s))
    return [(_stem(s, s.args.view, suffix), page)]


def _heads_of(tr: Any) -> list[int]:
    return list(tr.head_indices) if tr.head_indices is not None else [-1]


@_register("coref")
def _coref(s: Session) -> list[tuple[str, HtmlView]]:
    from probe.analysis._coref import word_rows
    from probe.viewers._plot import unknown_options
    from probe.viewers.html import coref_view_html

    report = _coref_report(s)
    tr = s.trace()
    i = report.word_index
    ranked = sorted(report.per_head, key=lambda lk: (-lk.weight, lk.layer, lk.head))
    page = coref_view_html(
        list(tr.words[0]), {i: word_rows(tr, i)[0]},  # type: ignore[index]
        top={i: [(lk.layer, lk.head, lk.antecedent_index, lk.weight) for lk in ranked]},
        candidates={i: list(report.candidates)}, layers=list(tr.layer_indices),
        heads=_heads_of(tr), direction=s.args.direction, model_name=s.model_name,
        **unknown_options(tr, 0),
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
                         units=table.units,
                         faithfulness=_faithfulness(s, attrs))
        page = patches_html(s.trace(), image=s.display, maps=maps,  # at the file's proportions
                            image_size=s.display_size, max_values=_budget(s), **extra)
    else:
        keep = s.content_positions()
        page = token_view_html(s.content_tokens(), {m: a.scores[0, keep] for m, a in attrs.items()},
                               signed={m: bool(a.signed) for m, a in attrs.items()},
                               direction=s.args.direction, model_name=s.model_name)
    if view == "rollout":  # named like the figure of the same view
        return [(_stem(s, view, f"{s.args.fusion}-d{s.args.discard:g}"), page)]
    # named like the figure: the saliency view's one method by its name, even by default
    return [(_stem(s, view, _methods_part(s, methods, named=view == "saliency")), page)]


@_register("detr")
def _detr_page(s: Session) -> list[tuple[str, HtmlView]]:
    """The figure's queries (``--query``, else those scoring >= 0.5) with boxes drawn; every
    query in the list, each decoder layer and head (or their mean) one hover away; opens on
    ``--layer`` (the model's decoder layer, negative from its last; default the last)."""
    from probe.commands._pages import detections, detr_page
    from probe.commands.render._detr import _detector

    tr = s.trace()
    boxes, classes, scores = detections(_detector(s), tr)
    page, shown, layer = detr_page(tr, boxes, classes, scores, queries=s.args.queries,
                                   layer=s.args.layer, image=s.display,
                                   image_size=s.display_size, model_name=s.model_name,
                                   max_values=_budget(s))
    part = "q" + "-".join(str(q) for q in shown) if s.args.queries else "top"
    return [(_stem(s, "detr", f"L{layer}", part), page)]


@_register("alignment")
def _alignment_page(s: Session) -> list[tuple[str, HtmlView]]:
    """Every layer x head of the word alignment (``probe.alignment`` of the translation of
    ``--text``), opened on ``--layer`` (default the last) and ``--head`` (default 0)."""
    from probe.commands.render._stacks import alignment_choice
    from probe.viewers.html import alignment_html

    al, layer, head = alignment_choice(s)
    layers = list(al.layer_indices)
    hpos = 0
    if head is not None and al.head_indices is not None:
        hpos = list(al.head_indices).index(head)
    page = alignment_html(al, direction=s.args.direction,
                          model_name=s.model_name, selected=(layers.index(layer), hpos),
                          max_values=_budget(s))
    return [(_stem(s, "alignment", f"L{layer}" + ("" if head is None else f"H{head}")), page)]


@_register("curves")
def _curves_page(s: Session) -> list[tuple[str, HtmlView]]:
    """Both curves of every method on one page; hover a point for the input at that step."""
    from probe.commands._pages import curves_page
    from probe.evaluation._curves import score_label

    methods = _methods(s)
    _needs_target(s, methods)
    if s.modality == "text" and not s.args.pair:
        raise ProbeError("text curves need a target: pass --pair \"second sentence\"")
    attrs = _compute_all(s, methods)
    curves = _curves_for(s, attrs)
    ylabel = score_label(s.target())  # a class, or the similarity to --pair
    if s.modality == "vision":
        page = curves_page(attrs, curves, model=s.model, pixels=s.inputs,  # what it saw
                           image_size=s.display_size, model_name=s.model_name, ylabel=ylabel)
    else:
        page = curves_page(attrs, curves, keep=s.content_positions(),
                           tokens=s.content_tokens(), model=s.model, inputs=s.inputs,
                           tokenizer=s.processor, byte_level=s.trace().byte_level,
                           model_name=s.model_name,
                           direction=s.args.direction, ylabel=ylabel)
    return [(_stem(s, "curves", _methods_part(s, methods)), page)]


@_register("gates")
def _gates_page(s: Session) -> list[tuple[str, HtmlView]]:
    """Every gate block with a map (spatial, context) or attention between positions
    (non-local, bilinear with the groups averaged) of every stage, or of stage ``--layer``;
    GradCAM beside. Channel, branch and channel-spatial gates stay in the figures."""
    from probe.commands._pages import gates_page

    page, stage = gates_page(s.model, s.pixel_values, stage=s.args.layer, image=s.display,
                             image_size=s.display_size, model_name=s.model_name,
                             max_values=_budget(s))
    return [(_stem(s, "gates", None if stage is None else f"S{stage}", "interactive"), page)]


@_register("cross")
def _cross_page(s: Session) -> list[tuple[str, HtmlView]]:
    """The caption the model writes, hover a token for where its step looked."""
    from probe.commands.render._image_text import cross_page

    return cross_page(s)


@_register("window")
def _window_page(s: Session) -> list[tuple[str, HtmlView]]:
    """Every captured block of the Swin model on one page (or, over the page's size budget,
    the blocks of ``--layer``'s stage, as the subtitle says), opened on block ``--layer``
    (default the last) and the first ``--query`` token (default the centre)."""
    from probe.commands.render._windows import window_block
    from probe.viewers.html import windows_html

    block, asked = window_block(s)
    tr = s.trace()
    layers = list(tr.layer_indices)
    note = None
    if sum(b.weights[0].numel() * b.layout.num_windows for b in tr.windows) > _budget(s):
        layers = [b.layer for b in tr.windows if b.stage == block.stage]
        note = (f"the blocks of stage {block.stage} only: all {len(tr.windows)} blocks are "
                "over the page's size budget (--layer picks a block of another stage)")
    page = windows_html(tr, image=s.display, image_size=s.display_size, layers=layers,
                        layer=block.layer, query=divmod(asked[0], block.grid[1]),
                        note=note, max_values=_budget(s))
    part = "q" + "-".join(str(q) for q in asked)
    return [(_stem(s, "window", f"L{block.layer}", part), page)]
