"""One call from a trace, or a model and its input, to an interactive HTML view:
:func:`show`. Views that need the model (attribution methods, faithfulness) run them here;
the pages themselves are built by ``probe.viewers.html`` from plain data, those of the detr,
curves and gates views by ``probe.commands._pages``, as ``probe render --format html``
builds them."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from probe._errors import ProbeError, unexpected_keyword
from probe._index import batch_position

if TYPE_CHECKING:
    from probe.viewers.html import HtmlView

__all__ = ["show", "SHOW_VIEWS"]

ShowView = Literal["heads", "cross", "alignment", "model", "coref", "tokens", "image", "detr",
                   "curves", "gates", "window"]
SHOW_VIEWS: tuple[str, ...] = ("heads", "cross", "alignment", "model", "coref", "tokens", "image",
                               "detr", "curves", "gates", "window")
DEFAULT_TEXT_METHODS = ("attention", "rollout", "relevance", "ig", "saliency")
DEFAULT_IMAGE_METHODS = ("attention", "rollout", "relevance", "ig", "saliency", "gradcam")
_MAX_COREF_WORDS = 40


#: The keyword options each view reads: the one declaration that the refusal of an option on
#: a view that ignores it names its views from.
_VIEW_OPTIONS: dict[str, frozenset[str]] = {
    "heads": frozenset({"layers", "heads", "window"}),
    "cross": frozenset({"layers", "heads"}),
    "alignment": frozenset({"layers", "heads"}),
    "model": frozenset({"layers", "heads", "window"}),
    "coref": frozenset({"word"}),
    "tokens": frozenset({"methods", "target"}),
    "image": frozenset({"methods", "target", "layers", "heads"}),
    "detr": frozenset({"layers", "heads", "layer", "queries", "threshold", "detections",
                       "class_names"}),
    "curves": frozenset({"methods", "target"}),
    "gates": frozenset({"stage"}),
    "window": frozenset({"layers", "layer"}),
}
#: the views that lay tokens out, and so read direction= ("auto" | "ltr" | "rtl")
_TOKEN_VIEWS = ("heads", "cross", "alignment", "model", "coref", "tokens", "curves")
#: views that refuse every option they do not read; the others refuse only the options of
#: the views added later (they ignore the other shared ones, as they always did)
_STRICT = ("detr", "curves", "gates", "window", "alignment")
_NEW_OPTIONS = {"layer", "queries", "threshold", "detections", "class_names", "stage"}
#: the message of an option whose name alone reads as the refusing view's own thing
_CONFUSABLE = {
    ("window", "window"): (
        "window=(start, stop) is a token window of the heads and model views, not something "
        "the window view reads (it draws the Swin model's own attention windows): drop it; "
        "pick the blocks with layers= and the block the page opens on with layer="
    ),
    **{("layer", view): (  # was "... used by the detr and window views only; drop it"
        f"layer= does not apply to the {view} view (it picks the page's layer in the detr and "
        f"window views only): pick this view's layers with layers=[...], e.g. layers=[0]"
    ) for view in ("heads", "cross", "alignment", "model", "image")},
}


def _check_options(view: str, given: set[str]) -> None:
    """An option the view would ignore is an error naming every view that reads it
    (``word= does not apply to the detr view: it is used by the coref view only; drop it``)."""
    ignored = given - _VIEW_OPTIONS[view]
    extra = sorted(ignored if view in _STRICT else ignored & _NEW_OPTIONS)
    if extra:
        from probe.commands.render._args import views_phrase

        users = [v for v in SHOW_VIEWS if extra[0] in _VIEW_OPTIONS[v]]
        raise ProbeError(_CONFUSABLE.get(
            (extra[0], view), f"{extra[0]}= does not apply to the {view} view: it is used by "
            f"{views_phrase(users)} only; drop it"))


def _is_trace(value: Any) -> bool:
    import probe

    return isinstance(value, probe.Trace)  # not hasattr: a Swin trace's attentions raise


def show(
    source: Any,
    view: ShowView = "heads",
    inputs: Any = None,
    *,
    tokenizer: Any = None,
    methods: Sequence[str] | None = None,
    target: Any = None,
    word: str | Sequence[str] | None = None,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    window: tuple[int, int] | None = None,
    faithfulness: bool = True,
    layer: int | None = None,
    queries: Sequence[int] | None = None,
    threshold: float | None = None,
    detections: tuple[Any, Sequence[str], Sequence[float]] | None = None,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    stage: int | None = None,
    **options: Any,
) -> HtmlView:
    """An interactive view of a trace, or of a model and its input.

    Args:
        source: a :class:`probe.Trace`, or a model (then ``inputs`` and, for text,
            ``tokenizer``; a :class:`probe.LoadedModel` or ``(model, tokenizer)`` also works).
        view: ``"heads"`` (head view), ``"cross"`` (head view of an encoder-decoder's
            cross-attention: target tokens left, source tokens right; of an image-to-text
            model, the written tokens and, for the one hovered, where it looked in the
            image), ``"alignment"`` (the
            word-alignment matrices of ``source = probe.alignment(...)``), ``"model"`` (model view),
            ``"coref"`` (coreference, text), ``"tokens"`` (token attribution, needs the model),
            ``"image"`` (image
            view: per-head CLS maps and hover-a-patch maps from the trace; with the model also
            the methods' saliency maps, their agreement and faithfulness), ``"detr"`` (a DETR
            detector's object queries: boxes, classes, each query's cross-attention per
            decoder layer and head), ``"curves"`` (deletion and insertion curves of the
            methods, hover a point for the input at that step; needs the model), ``"gates"``
            (a timm CNN's attention gates with a map over the image, GradCAM beside; needs
            the model). These three are ``probe render detr|curves|gates --format html``.
            ``"window"``: a Swin model's windowed attention, block by block (hover a patch
            for where it attends within its window; ``probe render window --format html``).
        inputs: the text or image (``probe.trace`` inputs) when ``source`` is a model.
        methods: attribution methods of the tokens / image views (default: attention,
            rollout, relevance, ig, saliency, and gradcam for images); of the curves view
            (default as ``probe render curves``: those plus inputxgrad for text, and random,
            the baseline; a CNN's gate methods, GradCAM, IG and random).
        target: attribution target (see ``probe.attribute``); text curves need one unless
            the model is a classifier (``probe.similarity_target(model, tokenizer, "...")``).
        word: coref: the word(s) to offer (default: every word with a candidate antecedent).
        layers, heads, window: select the model's layers / heads and a token window
            ``(start, stop)`` (heads / model views) to stay within the size budget; detr: the
            decoder layers and heads embedded (default all); alignment: the alignment's
            layers and heads embedded (default all); window: the Swin blocks embedded.
        faithfulness: image view: compute deletion / insertion AUC per method.
        layer: detr: the decoder layer the page opens on (the model's decoder layer,
            negative from its last, one the trace kept and ``layers=`` embeds; default the
            last embedded; ``--layer``); window: the Swin block it opens on (a model block
            index, default the last embedded).
        queries: detr: the object queries whose boxes are drawn (``--query``); default those
            scoring at least ``threshold`` (default 0.5), best first, at most 6 (the best 3
            when none does).
        detections: detr from a trace: ``(boxes [query, 4], class names [query], scores
            [query])`` of batch item ``batch_index``; default the trace's own predictions
            (``detr_predictions`` of its output's ``logits`` and ``pred_boxes``; with the
            model they are its own).
        class_names: detr from a trace without ``detections``: the detector's class names,
            a list by class index or ``model.config.id2label`` (default ``class i``: a trace
            does not hold the detector's config).
        stage: gates: show only this stage's blocks (``--layer S``; default every stage).
        direction: (in ``**options``) heads, cross, alignment, model, coref, tokens and
            (text) curves views: ``"auto"`` (default: an Arabic or Hebrew sentence runs right
            to left), ``"ltr"`` or ``"rtl"``; the other views refuse it.
        **options: passed to the view function in ``probe.viewers.html`` (detr, curves,
            gates: ``image=`` the picture to draw on, default the model input min-max scaled,
            ``image_size=``, ``title=``, ...); ``batch_index=`` picks the batch item of the
            heads, model, cross, coref, image, detr, curves, gates and window views (default
            0).

    Returns:
        An :class:`~probe.viewers.html.HtmlView` (displays itself in Jupyter; ``.save(path)``).

    The detr, curves and gates views run the model in the mode it is in (train mode: a CNN's
    BatchNorm uses the batch's statistics) and leave it as it was (modes, ``requires_grad``,
    gradients, hooks, weights).
    """
    from probe.viewers import html as H

    if view not in SHOW_VIEWS:
        raise ProbeError(f"unknown view {view!r}: use one of {', '.join(SHOW_VIEWS)}")
    given = dict(methods=methods, target=target, word=word, layers=layers, heads=heads,
                 window=window, layer=layer, queries=queries, threshold=threshold,
                 detections=detections, class_names=class_names, stage=stage)
    _check_options(view, {k for k, v in given.items() if v is not None})
    if "batch_index" in options:  # its range is checked where the batch size is known
        b = options["batch_index"]
        if isinstance(b, bool) or not isinstance(b, numbers.Integral):
            raise ProbeError(f"batch_index must be an integer (the batch item: from 0, or "
                             f"negative from the end), got {b!r}")
        options["batch_index"] = int(b)
    if "direction" in options and view not in _TOKEN_VIEWS:
        raise ProbeError(f"direction= lays out tokens: it does not apply to the {view} view "
                         f"(it is for the {' / '.join(_TOKEN_VIEWS)} views): drop it")
    try:
        return _view(source, view, inputs, tokenizer, methods, target, word, layers, heads,
                     window, faithfulness, layer, queries, threshold,
                     (detections, class_names), stage, **options)
    except H.BudgetError as exc:  # named as this call spells the options
        raise exc.reworded(_BUDGET_HINTS[view], "max_values=") from None
    except TypeError as exc:
        refusal = _option_refusal(view, exc, options)
        if refusal is None:
            raise
        raise refusal from None


def _option_refusal(view: str, exc: TypeError, options: dict[str, Any]) -> ProbeError | None:
    """The ``ProbeError`` for a keyword of ``**options`` the view's page function does not take
    or sets itself (``probe.show(trace, "heads", foo=1)`` was ``TypeError: head_view_html() got
    an unexpected keyword argument 'foo'``); ``None`` for any other TypeError."""
    found = unexpected_keyword(exc)
    if found is None or found[2] not in options:
        return None
    function, kind, name = found
    if kind == "multiple":
        return ProbeError(f"{name}= is set by probe.show itself for the {view} view: drop it")
    return ProbeError(f"{name}= is not an option of the {view} view (its page is "
                      f"probe.viewers.html.{function}: see its help for the options): drop it")


# how to select less in each view of probe.show, for its size-budget refusals
_TOKEN_WINDOW = ("select fewer layers or heads (layers=, heads=), a token window "
                 "(window=(start, stop))")
_BUDGET_HINTS = {
    "heads": _TOKEN_WINDOW, "model": _TOKEN_WINDOW,
    "cross": "select fewer layers or heads (layers=, heads=)",
    "image": "select fewer layers or heads (layers=, heads=)",
    "alignment": "select fewer layers or heads (layers=, heads=), a shorter source text or "
                 "generation",
    "detr": "embed fewer decoder layers or heads (layers=, heads=), a smaller image",
    "window": "embed fewer blocks (layers=[...]), a smaller image",
    "gates": "show one stage's blocks (stage=S), a smaller image",
    "coref": "fewer words (word=)", "tokens": "a shorter text", "curves": "a shorter text",
}


def _view(source: Any, view: str, inputs: Any, tokenizer: Any, methods: Any, target: Any,
          word: Any, layers: Any, heads: Any, window: Any, faithfulness: bool, layer: Any,
          queries: Any, threshold: Any, detections: Any, stage: Any,
          **options: Any) -> HtmlView:
    """:func:`show` once its options are checked."""
    from probe.viewers import html as H

    if view == "detr":
        return _detr(source, inputs, tokenizer, layers, heads, layer, queries, threshold,
                     *detections, **options)
    if view in ("curves", "gates"):
        if _is_trace(source):
            raise ProbeError(f"the {view} view runs the model: pass the model and inputs "
                             "(show(model, view, inputs)), not a trace")
        model, tokenizer = _unpack(source, tokenizer)
        if inputs is None:
            raise ProbeError(f"pass inputs= (the {'image' if view == 'gates' else 'text or image'}"
                             ") when showing a model")
        if view == "gates":
            return _gates(model, inputs, stage, **options)
        return _curves(model, tokenizer, inputs, methods, target, **options)
    if view == "alignment":  # the word alignment of probe.alignment(...)
        return H.alignment_html(source, layers=layers, heads=heads, **options)
    import probe

    if isinstance(source, probe.GenerationTrace):  # not a model: it has no inputs to take
        raise ProbeError(f"this is a GenerationTrace, not a probe.Trace: pass gen.to_trace() "
                         f"to probe.show(..., {view!r})")
    model = None
    if _is_trace(source):
        trace = source
    else:
        model, tokenizer = _unpack(source, tokenizer)
        if not callable(model):  # a tensor, an array, an Alignment in a trace view...
            raise ProbeError(
                f"probe.show({view!r}) takes a probe Trace, or a model (with inputs=), got "
                f"{type(source).__name__}: pass what probe.trace(...) returned"
                + (" (an Alignment is shown with probe.show(al, 'alignment'))"
                   if hasattr(source, "target_words") else "")
            )
        if inputs is None:
            raise ProbeError("pass inputs= (the text or image) when showing a model")
        trace = probe.trace(model, inputs, tokenizer=tokenizer)
    if view == "window":
        return H.windows_html(trace, layers=layers, layer=-1 if layer is None else layer,
                              **options)
    if view == "cross" and getattr(trace, "grid", None) is not None:  # image-to-text
        return H.token_patches_html(trace, layers=layers, heads=heads, **options)
    if view == "cross":
        return H.cross_html(trace, layers=layers, heads=heads, **options)
    if view == "heads":
        return H.heads_html(trace, layers=layers, heads=heads, window=window, **options)
    if view == "model":
        return H.model_html(trace, layers=layers, heads=heads, window=window, **options)
    if view == "coref":
        return _coref(trace, word, **options)
    if model is None:
        if view == "image":
            return H.patches_html(trace, layers=layers, heads=heads, **options)
        raise ProbeError(f"the {view} view runs attribution methods: pass the model and inputs, "
                         "not a trace")
    if view == "tokens":
        return _tokens(model, tokenizer, inputs, trace, methods, target, **options)
    return _image(model, inputs, trace, methods, target, faithfulness, layers, heads, **options)


def _unpack(source: Any, tokenizer: Any) -> tuple[Any, Any]:
    if isinstance(source, tuple) and len(source) == 2:
        return source[0], tokenizer if tokenizer is not None else source[1]
    if hasattr(source, "model") and hasattr(source, "processor"):  # LoadedModel
        return source.model, tokenizer if tokenizer is not None else source.processor
    return source, tokenizer


#: third-person pronouns the coref page opens on when no word= is given (English, Chinese,
#: Japanese, Korean, Russian, Hindi)
_PRONOUNS = frozenset(
    "it he she they him her them its his their this 它 他 她 它们 他们 她们 牠 祂 "
    "それ 彼 彼女 그 그녀 그것 그들 он она оно они его её их वह वे उसने".split()
)


def _coref(trace: Any, word: Any, batch_index: int = 0, candidates: Any = None,
           occurrence: int = 0, **options: Any) -> HtmlView:
    """``candidates=`` and ``occurrence=`` as ``probe.coref`` and ``probe.plot(..., "coref")``
    take them (they reached ``coref_view_html`` as a second ``candidates``: a TypeError)."""
    from probe.analysis._coref import antecedents, word_rows
    from probe.viewers._plot import unknown_options
    from probe.viewers.html import coref_view_html

    for name, value, default in (("candidates", candidates, None),
                                 ("occurrence", occurrence, 0)):
        if word is None and value != default:
            raise ProbeError(f"{name}= belongs to a word: pass word= (the word whose "
                             f"antecedents to rank), or drop {name}=")

    if trace.words is None or trace.word_ids is None:
        raise ProbeError("the coref view needs a text trace with words (a fast tokenizer)")
    batch_index = batch_position(batch_index, len(trace.words))
    if word is not None:  # "马路" over the words 马 路: one word (probe.group_words)
        from probe.viewers._plot import group_spans

        spelled = [word] if isinstance(word, str) else list(word)
        if isinstance(candidates, (str, list, tuple)):
            spelled += [candidates] if isinstance(candidates, str) else list(candidates)
        trace = group_spans(trace, batch_index, *[w for w in spelled if isinstance(w, str)])
    words = list(trace.words[batch_index])
    if word is None:
        wanted: list[Any] = list(range(len(words)))[:_MAX_COREF_WORDS]
    else:
        wanted = [word] if isinstance(word, (str, int)) else list(word)
    weights, top, cands = {}, {}, {}
    for w in wanted:
        try:
            report = antecedents(trace, w, batch_index, candidates, occurrence=occurrence,
                                 with_rollout=False)  # [UNK] words: named on the page
        except ProbeError:
            if word is not None:
                raise
            continue  # no candidate antecedent (e.g. the first word, punctuation)
        i = report.word_index
        weights[i] = word_rows(trace, i, batch_index)[0]
        ranked = sorted(report.per_head, key=lambda link: (-link.weight, link.layer, link.head))
        top[i] = [(link.layer, link.head, link.antecedent_index, link.weight) for link in ranked]
        cands[i] = list(report.candidates)
    first = [i for i in weights if words[i].lower() in _PRONOUNS][:1]
    order = first + [i for i in weights if i not in first]  # a pronoun is chosen first
    weights = {i: weights[i] for i in order}
    if not weights:
        raise ProbeError("no word of this text has a candidate antecedent: pass word= explicitly")
    heads = list(trace.head_indices) if trace.head_indices is not None else [-1]
    return coref_view_html(words, weights, top=top, candidates=cands,
                           layers=list(trace.layer_indices), heads=heads,
                           model_name=trace.model_name,
                           **unknown_options(trace, batch_index), **options)


def _methods(methods: Sequence[str] | None, modality: str) -> list[str]:
    import probe

    available = probe.list_methods(modality)  # type: ignore[arg-type]
    if methods is None:
        default = DEFAULT_IMAGE_METHODS if modality == "vision" else DEFAULT_TEXT_METHODS
        return [m for m in default if m in available]
    for m in methods:
        if m not in available:
            raise ProbeError(f"unknown method {m!r} for {modality} models: use {list(available)}")
    return list(dict.fromkeys(methods))


def _attributions(model: Any, inputs: Any, tokenizer: Any, trace: Any, methods: list[str],
                  target: Any) -> dict[str, Any]:
    import probe

    return {
        m: probe.attribute(model, inputs, m, tokenizer=tokenizer, target=target,
                           trace=None if m == "relevance" else trace)
        for m in methods
    }


def _tokens(model: Any, tokenizer: Any, inputs: Any, trace: Any, methods: Any, target: Any,
            **options: Any) -> HtmlView:
    from probe.viewers.html import token_view_html

    if trace.tokens is None:
        raise ProbeError("the tokens view is for text models; use view='image' for images")
    b = _item(options.pop("batch_index", 0), len(trace.tokens))
    attrs = _attributions(model, inputs, tokenizer, trace, _methods(methods, "text"), target)
    keep, tokens = _content(trace, b)
    scores = {m: a.scores[b, keep] for m, a in attrs.items()}
    signed = {m: bool(a.signed) for m, a in attrs.items()}
    return token_view_html(tokens, scores, signed=signed, model_name=trace.model_name, **options)


def _image(model: Any, inputs: Any, trace: Any, methods: Any, target: Any, faith: bool,
           layers: Any, heads: Any, **options: Any) -> HtmlView:
    import probe
    from probe.viewers.html import patches_html

    if trace.grid is None:
        raise ProbeError("the image view is for vision models; use view='tokens' for text")
    n = int(trace.batch_size)
    b = _item(options.pop("batch_index", 0), n)
    attrs = _attributions(model, inputs, None, trace, _methods(methods, "vision"), target)
    maps = {m: a.as_grid()[b] for m, a in attrs.items()}
    one = [a if n == 1 else dataclasses.replace(a, scores=a.scores[b:b + 1])
           for a in attrs.values()]  # item b's maps: its agreement and faithfulness
    table = probe.compare(one, metric="spearman", mask=trace if n == 1 else None)
    scores = None
    if faith:
        x, tgt = (inputs, target) if n == 1 else (inputs[b:b + 1], _item_target(target, b))
        ft = probe.faithfulness(model, x, one, target=tgt, n_random=1)
        scores = {
            m: {"deletion AUC \u2193": float(ft.deletion_auc[i]),
                "insertion AUC \u2191": float(ft.insertion_auc[i]),
                "random deletion AUC": float(ft.random_deletion_auc),
                "random insertion AUC": float(ft.random_insertion_auc)}
            for i, m in enumerate(ft.methods)
        }
    return patches_html(trace, maps=maps, agreement=table.values.numpy(),
                        methods=list(table.methods), units=table.units, faithfulness=scores,
                        layers=layers,
                        heads=heads, batch_index=b, **options)


_item = batch_position  # ``batch_index`` checked against a batch of ``n`` (negatives too)


def _item_target(target: Any, b: int) -> Any:
    """A per-item target (``Tensor [batch]``) cut to item ``b``; others as they are."""
    import torch

    if isinstance(target, torch.Tensor) and target.dim() > 0:
        return target[b:b + 1]
    return target


def _content(trace: Any, b: int = 0) -> tuple[list[int], list[str]]:
    """Positions and display labels of the real, non-special tokens of batch item ``b``."""
    keep = trace.attention_mask[b] & ~trace.special_tokens_mask[b]
    positions = [i for i, k in enumerate(keep.tolist()) if k]
    return positions, [trace.labels[b][i] for i in positions]


# ----------------------------------------------------------------------------- the views of
# probe render detr / curves / gates --format html (built by probe.commands._pages)
def _detr(source: Any, inputs: Any, tokenizer: Any, layers: Any, heads: Any, layer: Any,
          queries: Any, threshold: Any, found: Any, names: Any, batch_index: int = 0,
          **options: Any) -> HtmlView:
    from probe.commands._pages import (
        PYTHON,
        SCORE_THRESHOLD,
        check_layer_shown,
        detections,
        detr_page,
        select_cross,
    )

    if _is_trace(source):
        trace = source
        if found is None:
            found = _trace_detections(trace, batch_index, names)
        elif names is not None:
            raise ProbeError("class_names= names the trace's own predictions; detections= "
                             "carry their class names: drop class_names=")
        boxes, classes, scores = found
    else:
        import probe
        from probe.capture import adapter_for

        model, _ = _unpack(source, tokenizer)
        if inputs is None:
            raise ProbeError("pass inputs= (the image) when showing a model")
        if found is not None or names is not None:
            flag = "detections=" if found is not None else "class_names="
            raise ProbeError(f"{flag} goes with a trace; with the model its own predictions "
                             f"and class names are shown: drop {flag}")
        adapter = adapter_for(model)
        if not hasattr(adapter, "detection_outputs"):
            raise ProbeError(
                f"the detr view needs a DETR object detector (DetrForObjectDetection, e.g. "
                f"probe.load_model('detr-shapes')); {adapter.name} is not one: use view='heads' "
                "or 'image'"
            )
        trace = probe.trace(model, inputs)
        batch_index = batch_position(batch_index, int(trace.cross.attentions.shape[1]))
        boxes, classes, scores = detections(adapter, trace, batch_index)
    shown = select_cross(trace, layers, heads)
    if layer is not None and shown is not trace and layers is not None:
        check_layer_shown(trace.cross, shown.cross, layer)
    page, _, _ = detr_page(
        shown, boxes, classes, scores, queries=queries or (),
        threshold=SCORE_THRESHOLD if threshold is None else threshold, layer=layer,
        batch_index=batch_index, words=PYTHON, **options,
    )
    return page


def _trace_detections(trace: Any, batch_index: Any,
                      names: Any) -> tuple[Any, list[str], list[float]]:
    """Item ``batch_index``'s predictions from a DETR trace's own output (``logits``,
    ``pred_boxes``), each class named by ``names`` (a list, or ``{index: name}``)."""
    from probe.analysis._detr import detr_predictions

    cross = getattr(trace, "cross", None)
    if cross is None or getattr(cross, "attentions", None) is None or trace.grid is None:
        raise ProbeError("the detr view needs a trace of a DETR detector (DetrForObjectDetection)"
                         " with its cross-attention (not stream=True)")
    out = trace.output
    logits, boxes = getattr(out, "logits", None), getattr(out, "pred_boxes", None)
    if logits is None or boxes is None:
        raise ProbeError(
            "this trace's output holds no detections (logits and pred_boxes of a "
            "DetrForObjectDetection): pass detections=(boxes, classes, scores), or show the "
            "model and its image")
    b = batch_position(batch_index, int(logits.shape[0]))
    k = int(logits.shape[-1]) - 1  # the last class is "no object"
    if names is None:
        table = [f"class {i}" for i in range(k)]
    elif isinstance(names, Mapping):
        table = [str(names.get(i, names.get(str(i), f"class {i}")))  # type: ignore[call-overload]
                 for i in range(k)]
    elif isinstance(names, Sequence) and not isinstance(names, str) and len(names) == k:
        table = [str(v) for v in names]
    else:
        got = (f"{len(names)} names" if isinstance(names, Sequence) and not
               isinstance(names, str) else repr(names))
        raise ProbeError(f"class_names must name the detector's {k} classes (a list by index "
                         f"or model.config.id2label), got {got}")
    classes, scores, pred = detr_predictions(logits.detach().cpu(), boxes.detach().cpu())
    return pred[b], [table[int(c)] for c in classes[b]], scores[b].tolist()


def _curves(model: Any, tokenizer: Any, inputs: Any, methods: Any, target: Any,
            **options: Any) -> HtmlView:
    import probe
    from probe.attribution._targets import model_logits
    from probe.capture import adapter_for
    from probe.commands._pages import (
        PYTHON,
        captures,
        compute_attributions,
        curve_methods,
        curves_page,
        deletion_insertion,
    )
    from probe.evaluation._curves import score_label

    adapter = adapter_for(model)
    modality = adapter.modality
    options.setdefault("model_name", adapter.name)
    trace = probe.trace(model, inputs, tokenizer=tokenizer) if captures(model) else None
    if modality == "text" and trace is not None and trace.labels is None:
        raise ProbeError("text curves show the tokens: pass tokenizer= (or (model, tokenizer))")
    if modality == "text" and target is None:
        logits = model_logits(trace.output, model) if trace is not None else None
        if logits is None or logits.dim() != 2:  # not a classifier: nothing to score
            raise ProbeError(
                "text curves need a target: pass target=probe.similarity_target(model, "
                "tokenizer, \"second sentence\") (a classifier needs none)"
            )
    chosen = curve_methods(model, modality, methods or (), captures=trace is not None,
                           has_target=True, words=PYTHON)
    attrs = compute_attributions(model, inputs, chosen, tokenizer=tokenizer, target=target,
                                 trace=trace)
    curves = deletion_insertion(model, inputs, attrs, target=target, tokenizer=tokenizer)
    options.setdefault("ylabel", score_label(target))  # a class, or a similarity
    if modality == "vision":  # what the model saw at each step (image=: greyed on yours)
        return curves_page(attrs, curves, model=model, pixels=inputs, **options)
    keep, tokens = _content(trace, _item(options.get("batch_index", 0), len(trace.labels)))
    return curves_page(attrs, curves, keep=keep, tokens=tokens, model=model, inputs=inputs,
                       tokenizer=tokenizer, byte_level=trace.byte_level, **options)


def _gates(model: Any, inputs: Any, stage: int | None, **options: Any) -> HtmlView:
    from probe.capture import adapter_for
    from probe.commands._pages import PYTHON, captures, gates_page, has_gates

    adapter = adapter_for(model)
    if captures(model) or not has_gates(adapter):
        raise ProbeError(
            f"the gates view needs a CNN with attention gates (SE, CBAM, non-local, ...; e.g. "
            f"probe.load_model('cnn-shapes')); {adapter.name} has none: use view='image' or "
            "'curves'"
        )
    page, _ = gates_page(model, inputs, stage=stage, words=PYTHON, **options)
    return page
