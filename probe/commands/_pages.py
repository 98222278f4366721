"""The HTML pages that need more than one trace (a detector's predictions, attribution methods
run through deletion and insertion, a CNN's gates with GradCAM beside), built once for both
``probe render VIEW --format html`` (``render/_html.py``) and :func:`probe.show`.

Each builder takes plain values (model, input, trace, options) and a :class:`Wording`, so an
error names the option as its caller spells it (``--layer`` on the command line, ``layer=``
in Python).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError, UnsupportedModelError
from probe._index import batch_position, model_position

if TYPE_CHECKING:
    import torch

    from probe.viewers.html import HtmlView

__all__ = [
    "CLI",
    "MAX_DEFAULT_QUERIES",
    "PYTHON",
    "SCORE_THRESHOLD",
    "Wording",
    "captures",
    "check_layer_shown",
    "compute_attributions",
    "curve_methods",
    "curves_page",
    "deletion_insertion",
    "detections",
    "detr_page",
    "gates_page",
    "has_gates",
    "pick_queries",
    "select_cross",
]

SCORE_THRESHOLD = 0.5
"""Without chosen queries, the DETR views show the queries whose class probability reaches
this."""

MAX_DEFAULT_QUERIES = 6
"""... at most this many, highest score first (the best 3 when none reaches the threshold)."""


@dataclass(frozen=True)
class Wording:
    """How the caller names each option in an error message (``layer``: what begins the DETR
    layer error, before the message of :func:`probe.analysis.decoder_layer_position`)."""

    layer: str
    query: str
    stage: str
    method: str
    static: str


CLI = Wording(layer="--layer: ", query="--query", stage="--layer", method="--method",
              static="--format png")
PYTHON = Wording(layer="", query="queries=", stage="stage=", method="methods=",
                 static="probe.viewers.gate_figures")


def captures(model: Any) -> bool:
    """Whether probe can capture this model's attention (CNNs: no, they have gates)."""
    from probe.capture import adapter_for

    try:
        adapter_for(model).sites()
    except UnsupportedModelError:
        return False
    return True


def has_gates(adapter: Any) -> bool:
    """Whether the model of ``adapter`` has attention gates for :func:`probe.trace_gates`."""
    find = getattr(adapter, "find_gates", None)
    if find is None:
        return False
    try:
        return bool(find()[0])
    except ProbeError:
        return False


# ----------------------------------------------------------------------------- DETR
def pick_queries(scores: Sequence[float], asked: Sequence[int], *,
                 threshold: float = SCORE_THRESHOLD,
                 words: Wording = CLI) -> tuple[list[int], str]:
    """The queries to show and a note for the title.

    ``asked`` are taken as given, after a range check; else the queries scoring at least
    ``threshold``, best first, at most :data:`MAX_DEFAULT_QUERIES`, or the best 3 when none
    does.
    """
    n = len(scores)
    if asked:
        bad = [q for q in asked if not -n <= q < n]
        if bad:
            raise ProbeError(
                f"{words.query} {bad[0]} is out of range: the model has {n} object queries "
                f"(use {-n}..{n - 1}; negative counts from the end)"
            )
        return list(dict.fromkeys(q % n for q in asked)), "chosen queries"  # -1 is n-1
    order = sorted(range(n), key=lambda q: -scores[q])
    kept = [q for q in order if scores[q] >= threshold][:MAX_DEFAULT_QUERIES]
    # two decimals, as the figure's panels write the scores (rounded down), unless it has more
    at = f"{threshold:.2f}" if round(threshold, 2) == threshold else f"{threshold:g}"
    if kept:
        return kept, f"queries with score >= {at}"
    return order[:3], f"no query scores >= {at}: the best 3"


def detections(adapter: Any, trace: Any, batch_index: int = 0) -> tuple[Any, list[str],
                                                                          list[float]]:
    """A DETR trace's predictions for item ``batch_index``: boxes ``[query, 4]`` (``cx, cy, w,
    h`` relative), each query's class name and its score (``probe.analysis.detr_predictions``
    of the output, names from the detector's config)."""
    from probe.analysis._detr import detr_predictions

    logits, boxes = adapter.detection_outputs(trace.output)
    classes, scores, boxes = detr_predictions(logits, boxes)
    names = adapter.class_names()
    return (boxes[batch_index], [names[int(c)] for c in classes[batch_index]],
            scores[batch_index].tolist())


def select_cross(trace: Any, layers: Sequence[int] | None,
                 heads: Sequence[int] | None) -> Any:
    """``trace`` with only these cross-attention layers and heads kept (the model's numbering;
    a negative one counts from the model's last decoder layer / head when the stack knows
    their number, ``cross.num_model_layers`` / ``cross.num_heads``, else from the last kept),
    for a smaller page."""
    import dataclasses

    from probe.capture._trace import stored_attentions

    cross = getattr(trace, "cross", None)
    if (layers is None and heads is None) or cross is None or stored_attentions(cross) is None:
        return trace  # (read as stored: ``cross.attentions`` would stack every layer)
    lpos = list(range(len(cross.layer_indices)))
    if layers is not None:
        import torch

        total = int(getattr(cross, "num_model_layers", 0))
        lpos = list(dict.fromkeys(_selected(lay, cross.layer_indices, total, "layer",
                                            "layers", "the decoder") for lay in layers))
        att = torch.stack([cross.layer_attentions(p) for p in lpos])  # only the kept layers
    else:
        att = cross.attentions
    hids = cross.head_indices
    if heads is not None:
        if hids is None:
            raise ProbeError("heads=: this trace averaged the heads: drop heads=")
        total = int(getattr(cross, "num_heads", 0))
        hpos = list(dict.fromkeys(_selected(h, hids, total, "head", "heads",
                                            "the cross-attention") for h in heads))
        att, hids = att[:, :, hpos], tuple(hids[p] for p in hpos)
    kept = dataclasses.replace(
        cross, attentions=att, layer_tensors=None,
        layer_names=tuple(cross.layer_names[p] for p in lpos),
        layer_indices=tuple(cross.layer_indices[p] for p in lpos), head_indices=hids,
    )
    if hasattr(trace, "replace"):  # Trace.replace keeps its attention as stored: unstacked
        return trace.replace(cross=kept)
    return dataclasses.replace(trace, cross=kept)


def check_layer_shown(cross: Any, shown: Any, layer: Any) -> None:
    """Refuse a ``layer=`` (the model's decoder layer) that the trace kept but ``layers=`` left
    out of the page."""
    from probe.analysis._detr import decoder_layer_position

    index = cross.layer_indices[decoder_layer_position(cross, layer)]
    if index not in shown.layer_indices:
        alias = "" if index == layer else f" (the model's decoder layer {index})"
        raise ProbeError(f"layer {layer}{alias} is not among the layers= shown "
                         f"{list(shown.layer_indices)}: add it to layers=, or drop layer=")


def _selected(value: Any, kept: Sequence[int], total: int, name: str, unit: str,
              owner: str) -> int:
    """:func:`~probe._index.model_position` of one of ``layers=`` / ``heads=`` (the message
    begins with the option)."""
    try:
        return model_position(value, kept, total, name=name, unit=unit, owner=owner)
    except ProbeError as exc:
        raise ProbeError(f"{name}s=: {exc}") from None


def detr_page(
    trace: Any,
    boxes: Any,
    classes: Sequence[str],
    scores: Sequence[float],
    *,
    queries: Sequence[int] = (),
    threshold: float = SCORE_THRESHOLD,
    layer: int | None = None,
    image: Any = None,
    image_size: tuple[int, int] | None = None,
    model_name: str | None = None,
    batch_index: int = 0,
    words: Wording = CLI,
    **options: Any,
) -> tuple[HtmlView, list[int], int]:
    """The DETR page of ``trace`` (every decoder layer and head it kept): the chosen queries'
    boxes drawn (``queries``, else :func:`pick_queries` by ``threshold``), opened on decoder
    layer ``layer``: the model's decoder layer, as ``layer=`` everywhere (negative counts back
    from the model's last; a layer the trace did not keep is refused naming the kept ones),
    default the last kept.

    Returns:
        The page, the queries drawn, and the opening layer (the model's decoder layer).
    """
    from probe.analysis._detr import decoder_layer_position
    from probe.viewers.html import detr_html

    cross = getattr(trace, "cross", None)
    if cross is None or getattr(cross, "attentions", None) is None:
        raise ProbeError("the detr view needs a trace of a DETR detector (DetrForObjectDetection) "
                         "with its cross-attention (not stream=True)")
    try:
        at = cross.layer_indices[decoder_layer_position(cross, layer)]  # the model's layer
    except ProbeError as exc:
        raise ProbeError(f"{words.layer}{exc}") from None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or \
            not 0 <= threshold <= 1:
        raise ProbeError(f"threshold must be a score in [0, 1], got {threshold!r}")
    shown, note = pick_queries(list(scores), tuple(queries), threshold=threshold, words=words)
    page = detr_html(
        trace, boxes, classes, scores, image=image, image_size=image_size, kept=shown, layer=at,
        batch_index=batch_index,
        title=f"{model_name or trace.model_name} \u00b7 object queries' cross-attention "
        f"({note})", **options,
    )
    return page, shown, at


# ----------------------------------------------------------------------------- curves
def curve_methods(model: Any, modality: str, asked: Sequence[str], *, captures: bool,
                  has_target: bool, words: Wording = CLI) -> list[str]:
    """The methods of the compare and curves views: ``asked`` (checked against the registry),
    else the defaults for the modality (a CNN's: its gate methods, GradCAM, IG and random; a
    Swin's: IG, saliency, GradCAM and random);
    without a target (``has_target`` false) only the methods that need none."""
    import probe
    from probe.capture import adapter_for
    from probe.commands.render._args import (
        DEFAULT_IMAGE_METHODS,
        DEFAULT_TEXT_METHODS,
        DEFAULT_WINDOWED_METHODS,
    )

    gates = None if captures else "gates"  # CNNs: the gate methods join the list
    available = probe.list_methods(modality, needs=gates)  # type: ignore[arg-type]
    if asked:
        for m in asked:
            if m not in available:
                raise ProbeError(
                    f"unknown {words.method} {m!r} for {modality} models: use {list(available)}")
        return list(dict.fromkeys(asked))
    default = DEFAULT_IMAGE_METHODS if modality == "vision" else DEFAULT_TEXT_METHODS
    if getattr(adapter_for(model), "windowed", False):  # Swin: gradients, GradCAM, random
        default = DEFAULT_WINDOWED_METHODS
    if gates is not None and modality != "vision":  # nothing to read attention from
        raise ProbeError(
            f"probe cannot capture attention from this {modality} model ({type(model).__name__}"
            f"), which the default methods read: pass {words.method} with methods that need "
            "none, e.g. ig, saliency, inputxgrad, random"
        )
    if gates is not None:  # a CNN: no attention to read; its gates, GradCAM, IG and random
        from probe.evaluation._cnn_eval import default_methods

        default = tuple(dict.fromkeys(m for m, _ in default_methods(model)))
    if not has_target:  # text without a target: only the methods that need no target
        from probe.attribution._registry import method_spec

        default = tuple(m for m in default if not method_spec(m).uses_gradients)
    return [m for m in default if m in available]


def compute_attributions(model: Any, inputs: Any, methods: Sequence[str], *, tokenizer: Any,
                         target: Any, trace: Any, discard: float = 0.0,
                         quiet: bool = True,
                         options: Mapping[str, Mapping[str, Any]] | None = None
                         ) -> dict[str, Any]:
    """``probe.attribute`` of every method, keyed by the attribution's label (as
    ``probe.compare`` names it); ``trace`` is reused by every method but relevance (which
    captures its own), ``discard`` goes to the methods that declare ``discard_ratio``,
    ``options[method]`` (e.g. ``{"gradcam": {"block": 3}}``) to that method."""
    import probe
    from probe.attribution._registry import method_spec
    from tqdm.auto import tqdm

    out = {}
    for m in tqdm(methods, desc="methods", disable=quiet, leave=False):
        given = dict((options or {}).get(m, {}))
        if discard and method_spec(m).option("discard_ratio") is not None:
            given["discard_ratio"] = discard
        attr = probe.attribute(model, inputs, m, tokenizer=tokenizer, target=target,
                               trace=None if m == "relevance" else trace, **given)
        out[attr.label] = attr
    return out


def deletion_insertion(model: Any, inputs: Any, attrs: Mapping[str, Any], *, target: Any,
                       tokenizer: Any) -> dict[str, tuple[Any, Any]]:
    """``{method: (probe.deletion_curve, probe.insertion_curve)}`` of every attribution."""
    import probe

    return {
        m: (probe.deletion_curve(model, inputs, a, target=target, tokenizer=tokenizer),
            probe.insertion_curve(model, inputs, a, target=target, tokenizer=tokenizer))
        for m, a in attrs.items()
    }


def curves_page(attrs: Mapping[str, Any], curves: Mapping[str, tuple[Any, Any]], *,
                model: Any = None, pixels: Any = None, image: Any = None,
                image_size: tuple[int, int] | None = None,
                keep: Sequence[int] | None = None, tokens: Sequence[str] | None = None,
                inputs: Any = None, tokenizer: Any = None, byte_level: bool = False,
                model_name: str | None = None, batch_index: int = 0,
                **options: Any) -> HtmlView:
    """Both curves of every method of batch item ``batch_index``, with the units each method
    ranked: the image's patches or the text's ``tokens`` at positions ``keep``.

    Images: with ``model`` and its input ``pixels [batch, C, H, W]`` the page shows what the
    model saw at each step: the input and the all-removed input the curves built
    (:func:`probe.perturbed_input`, default baseline), both min-max scaled per channel with
    the input's range (as the image view shows an input); with ``image`` (your picture) the
    replaced patches are greyed instead. Text: with ``model``, its text ``inputs`` and
    ``tokenizer`` a replaced token shows the token the model read in its place (the default
    baseline's, ``[MASK]`` or the padding token, from :func:`probe.perturbed_input`; labels as
    the trace's, byte-level symbols decoded when ``byte_level``); else it is struck through.
    """
    from probe.viewers.html import curves_view_html

    first = next(iter(curves.values()))[0]
    n = int(first.values.shape[0])
    b = batch_position(batch_index, n)
    deletion = {m: (c[0].fractions, c[0].values[b]) for m, c in curves.items()}
    insertion = {m: (c[1].fractions, c[1].values[b]) for m, c in curves.items()}
    if image is not None or pixels is not None:
        scores = {m: a.scores[b] for m, a in attrs.items()}
        grid = attrs[next(iter(attrs))].grid
        baseline = None
        if image is None:
            image, baseline = _model_saw(model, pixels, attrs, int(first.fractions.numel()) - 1,
                                         b)
        return curves_view_html(deletion, insertion, scores, image=image, grid=grid,
                                baseline=baseline, image_size=image_size,
                                model_name=model_name, **options)
    scores = {m: a.scores[b, list(keep or ())] for m, a in attrs.items()}
    replacements, unseen = None, False
    if model is not None and inputs is not None:
        replacements, unseen = _text_model_saw(
            model, inputs, attrs, tokenizer, int(first.fractions.numel()) - 1, list(keep or ()),
            b, byte_level,
        )
    return curves_view_html(deletion, insertion, scores, tokens=tokens,
                            replacements=replacements, unseen=unseen, model_name=model_name,
                            **options)


def _text_model_saw(model: Any, inputs: Any, attrs: Mapping[str, Any], tokenizer: Any,
                    steps: int, keep: list[int], item: int,
                    byte_level: bool) -> tuple[list[str], bool]:
    """The token labels item ``item`` reads at positions ``keep`` once every unit is removed
    (last deletion step, as the curves built it), and whether those positions are masked out
    of attention (the ``"pad"`` baseline)."""
    import probe
    from probe._text import byte_level_labels

    full = probe.perturbed_input(model, inputs, next(iter(attrs.values())), steps,
                                 kind="deletion", steps=steps, tokenizer=tokenizer)
    ids = full["input_ids"][item].tolist()
    mask = full["attention_mask"][item].tolist()
    tokens = tokenizer.convert_ids_to_tokens(ids)
    labels = byte_level_labels(tokens) if byte_level else tuple(tokens)
    return [labels[i] for i in keep], any(not mask[i] for i in keep)


def _model_saw(model: Any, pixels: Any, attrs: Mapping[str, Any], steps: int,
               item: int) -> tuple[Any, Any]:
    """Item ``item``'s input ``[H, W, 3]`` and its all-removed input (last deletion step, as
    the curves built it), each channel scaled by the input's own min-max; the baseline
    clipped to ``0..1`` (a tensor baseline may leave the input's range)."""
    import numpy as np

    import probe

    full = probe.perturbed_input(model, pixels, next(iter(attrs.values())), steps,
                                 kind="deletion", steps=steps)
    x = pixels[item].detach().cpu().double().numpy().transpose(1, 2, 0)
    base = full[item].detach().cpu().double().numpy().transpose(1, 2, 0)
    lo = x.min(axis=(0, 1), keepdims=True)
    span = np.where(x.max(axis=(0, 1), keepdims=True) > lo,
                    x.max(axis=(0, 1), keepdims=True) - lo, 1.0)
    return (x - lo) / span, np.clip((base - lo) / span, 0.0, 1.0)


# ----------------------------------------------------------------------------- gates
def gates_page(model: Any, pixels: torch.Tensor, *, stage: int | None = None, image: Any = None,
               image_size: tuple[int, int] | None = None, model_name: str | None = None,
               batch_index: int = 0, words: Wording = CLI,
               **options: Any) -> tuple[HtmlView, int | None]:
    """Every gate block with a map (spatial, context) or attention between positions
    (non-local, bilinear with the groups averaged) of every stage, or of ``stage``; GradCAM
    of the last stage beside, each attention block opened on the position under its peak;
    all of batch item ``batch_index``.

    Returns:
        The page and the stage shown (``None``: all).
    """
    import probe
    from probe.analysis._gate_views import resolve_stage
    from probe.viewers.html import gates_view_html, trace_image

    gt = probe.trace_gates(model, pixels)
    n = int(pixels.shape[0])
    b = batch_position(batch_index, n)
    try:
        picked = resolve_stage(gt.stages, stage)
    except ProbeError as exc:
        raise ProbeError(f"{words.stage} picks a stage in the gates view: {exc}") from None
    cam = probe.attribute(model, pixels, "gradcam").as_grid()[b]
    peak = divmod(int(cam.flatten().argmax()), int(cam.shape[1]))
    blocks: dict[str, dict[str, Any]] = {}
    for g in gt.gates:
        if picked is not None and g.stage != picked:
            continue
        if g.kind in ("spatial", "context"):
            values = g.values[b]
        elif g.kind in ("nonlocal", "bilinear"):
            rows, cols = g.feature_size
            att = g.values[b] if g.kind == "nonlocal" else g.values[b].float().mean(0)
            values = att.reshape(rows, cols, rows, cols)
        else:
            continue
        h, w = int(values.shape[0]), int(values.shape[1])
        query = (int((peak[0] + 0.5) * h / cam.shape[0]), int((peak[1] + 0.5) * w / cam.shape[1]))
        blocks[g.name] = {"kind": g.kind, "stage": g.stage, "type": g.module_type,
                          "values": values, "query": query}
    name = model_name or gt.model_name
    if not blocks:
        where = "" if picked is None else f" in stage {picked}"
        raise ProbeError(
            f"{name} has no gate with a map over the image{where} (its gates: "
            f"{', '.join(gt.kinds)}): the HTML gates view shows spatial and context maps and "
            f"non-local attention; use {words.static} for channel and branch gates"
        )
    page = gates_view_html(trace_image(gt, b) if image is None else image, blocks, cam=cam,
                           cam_label="GradCAM (last stage)", image_size=image_size,
                           model_name=name, **options)
    return page, picked
