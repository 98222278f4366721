"""The ``detr`` view of ``probe render``: each object query's decoder cross-attention over the
image, with its predicted box and class (the decoder-attention figure of the DETR paper)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError
from probe.commands._pages import detections, pick_queries
from probe.commands.render._figures import register_view
from probe.commands.render._session import Session, _stem

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__: list[str] = []

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
    (the model's decoder layer, negative from its last; default the last) over the image, each
    with its predicted box, class and score."""
    from probe.analysis._detr import decoder_layer_position, query_maps
    from probe.viewers import detr_queries_view

    adapter = _detector(s)
    tr = s.trace()
    try:
        layer = tr.cross.layer_indices[decoder_layer_position(tr.cross, s.args.layer)]
    except ProbeError as exc:
        raise ProbeError(f"--layer: {exc}") from None
    maps = query_maps(tr, layer)[0]
    boxes, classes, scores = detections(adapter, tr)
    shown, note = pick_queries(scores, s.args.queries)
    labels = [f"q{q} {classes[q]}" for q in shown]
    fig = detr_queries_view(
        s.display, maps[shown], boxes[shown], labels, scores=[float(scores[q]) for q in shown],
        title=f"{s.model_name}: object queries' cross-attention, decoder layer "
        f"{layer}\n(heads averaged; {note})",
        image_size=s.display_size,  # the image file's proportions, not the model input's
        colorbar_label=f"cross-attention weight\n(layer {layer}, heads averaged)",
    )
    part = "q" + "-".join(str(q) for q in shown) if s.args.queries else "top"
    return [(_stem(s, "detr", f"L{layer}", part), fig)]
