"""The ``detr`` view of ``probe render``: each object query's decoder cross-attention over the
image, with its predicted box and class (the decoder-attention figure of the DETR paper)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.commands.render._figures import register_view
from probe.commands.render._session import Session, _stem

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["MAX_DEFAULT_QUERIES", "SCORE_THRESHOLD", "pick_queries"]

SCORE_THRESHOLD = 0.5
"""Without ``--query``, the view shows the queries whose class probability reaches this."""

MAX_DEFAULT_QUERIES = 6
"""... at most this many, highest score first (the best 3 when none reaches the threshold)."""


def pick_queries(scores: list[float], asked: tuple[int, ...]) -> tuple[list[int], str]:
    """The queries to show and a note for the title.

    ``asked`` (``--query``, repeatable) are taken as given, after a range check; else the
    queries scoring at least :data:`SCORE_THRESHOLD`, best first, at most
    :data:`MAX_DEFAULT_QUERIES`, or the best 3 when none does.
    """
    n = len(scores)
    if asked:
        bad = [q for q in asked if not -n <= q < n]
        if bad:
            raise ProbeError(
                f"--query {bad[0]} is out of range: the model has {n} object queries (0..{n - 1})"
            )
        return [q % n for q in dict.fromkeys(asked)], "chosen queries"
    order = sorted(range(n), key=lambda q: -scores[q])
    kept = [q for q in order if scores[q] >= SCORE_THRESHOLD][:MAX_DEFAULT_QUERIES]
    if kept:
        return kept, f"queries with score >= {SCORE_THRESHOLD:g}"
    return order[:3], f"no query scores >= {SCORE_THRESHOLD:g}: the best 3"


def _detector(s: Session) -> Any:
    adapter = s.extra.get("adapter")
    if adapter is None or not hasattr(adapter, "detection_outputs"):
        raise ProbeError(
            f"the detr view needs a DETR object detector (DetrForObjectDetection: --model "
            f"detr-shapes or a local DETR folder); {s.model_name} is not one: use heads, "
            "rollout or saliency"
        )
    return adapter


@register_view("detr")
def _detr(s: Session) -> list[tuple[str, Figure]]:
    """Cross-attention of the shown object queries (heads averaged) of decoder ``--layer``
    (default the last) over the image, each with its predicted box, class and score."""
    from probe.analysis._detr import detr_predictions, query_maps
    from probe.viewers import detr_queries_view

    adapter = _detector(s)
    tr = s.trace()
    layer = -1 if s.args.layer is None else s.args.layer
    try:
        maps = query_maps(tr, layer)[0]
    except ProbeError as exc:
        raise ProbeError(f"--layer: {exc}") from None
    logits, boxes = adapter.detection_outputs(tr.output)
    classes, scores, boxes = detr_predictions(logits, boxes)
    shown, note = pick_queries(scores[0].tolist(), s.args.queries)
    names = adapter.class_names()
    labels = [f"q{q} {names[int(classes[0, q])]}" for q in shown]
    n_layers = tr.cross.attentions.shape[0]
    fig = detr_queries_view(
        s.display, maps[shown], boxes[0, shown], labels,
        scores=[float(scores[0, q]) for q in shown],
        title=f"{s.model_name}: object queries' cross-attention, decoder layer "
        f"{layer % n_layers}\n(heads averaged; {note})",
        image_size=s.display_size,  # the image file's proportions, not the model input's
    )
    part = "q" + "-".join(str(q) for q in shown) if s.args.queries else "top"
    return [(_stem(s, "detr", f"L{layer % n_layers}", part), fig)]
