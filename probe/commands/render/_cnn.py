"""The ``gates`` view of ``probe render``: the attention gates of a CNN (``probe.trace_gates``)
over the image, one panel per stage, beside GradCAM; and the one-line refusal of the
attention-matrix views on a CNN."""

from __future__ import annotations

from typing import TYPE_CHECKING

from probe._errors import ProbeError
from probe.commands.render._figures import register_view
from probe.commands.render._session import Session, _stem

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["check_attention_view"]

# views that read attention matrices (probe.trace), which a CNN does not have
_MATRIX_VIEWS = ("heads", "head", "links", "rollout")


def _has_matrices(s: Session) -> bool:
    """True when the model has attention matrices for :func:`probe.trace` (not a CNN)."""
    adapter = s.extra.get("adapter")
    if adapter is None or s.modality != "vision":
        return True
    try:
        return bool(adapter.sites())
    except ProbeError:
        return False


def _has_gates(s: Session) -> bool:
    """True when the model has attention gates for :func:`probe.trace_gates`."""
    find = getattr(s.extra.get("adapter"), "find_gates", None)
    if find is None:
        return False
    try:
        return bool(find()[0])
    except ProbeError:
        return False


def check_attention_view(s: Session) -> None:
    """A CNN with gates has no attention matrices: refuse the matrix views and name the gates
    view (a CNN without gates gets the capture's own message, which names gradient methods)."""
    if s.args.view in _MATRIX_VIEWS and not _has_matrices(s) and _has_gates(s):
        raise ProbeError(
            f"{s.model_name} is a convolutional network: it has no attention matrices for the "
            f"{s.args.view} view; use the gates view (probe render gates --model ...) for its "
            "attention gates, or gradient methods from Python (probe.attribute(model, pixels, "
            "'gradcam'))"
        )
    if s.args.view == "gates" and (_has_matrices(s) or not _has_gates(s)):
        raise ProbeError(
            f"the gates view needs a CNN with attention gates (SE, CBAM, ...; e.g. --model "
            f"cnn-shapes); {s.model_name} has none: use heads, rollout or saliency"
        )


@register_view("gates")
def _gates(s: Session) -> list[tuple[str, Figure]]:
    """Every spatial gate (CBAM) and global-context pooling map per stage over the image, the
    attention of a non-local block's query at the GradCAM peak, then GradCAM on the last stage;
    a CNN with only channel or branch gates shows GradCAM alone (those gates have no map)."""
    import torch.nn.functional as F

    import probe
    from probe.viewers import gate_maps

    gt = probe.trace_gates(s.model, s.pixel_values)
    cam = probe.attribute(s.model, s.pixel_values, "gradcam").as_grid()[0]
    maps = {}
    units = {}
    for g in gt.gates:
        if g.kind == "spatial":
            maps[f"stage {g.stage} spatial gate"] = g.values[0]
        elif g.kind == "context":
            maps[f"stage {g.stage} context pooling"] = g.values[0]
            units[f"stage {g.stage} context pooling"] = "weight"
        elif g.kind == "nonlocal":
            h, w = g.feature_size
            peak = F.interpolate(cam[None, None].float(), size=(h, w), mode="bilinear")
            row, col = divmod(int(peak.flatten().argmax()), w)
            title = f"stage {g.stage} non-local, query ({row}, {col})"
            maps[title] = probe.query_point_map(g.values, g.feature_size, (row, col))[0]
            units[title] = "attention"
    drawn = bool(maps)
    maps["GradCAM (last stage)"] = cam
    kinds = ", ".join(f"{sum(g.kind == k for g in gt.gates)} {k}" for k in gt.kinds) or "no"
    if drawn:
        title = f"{s.model_name}: attention maps and GradCAM\n({kinds} gates captured)"
    else:  # channel or branch gates only: one number per channel, nothing to draw on the image
        title = f"{s.model_name}: GradCAM\n({kinds} gates captured, none with a spatial map)"
    fig = gate_maps(s.display, maps, units=units, title=title)
    return [(_stem(s, "gates", "spatial-gradcam" if drawn else "gradcam"), fig)]
