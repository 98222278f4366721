"""The ``gates`` view of ``probe render``: the attention gates of a CNN (``probe.trace_gates``)
as drawn by :func:`probe.viewers.gate_figures` (maps over the image beside GradCAM, branch and
channel-spatial gates in figures of their own); and the one-line refusal of the
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
    from probe.commands._pages import has_gates

    return has_gates(s.extra.get("adapter"))


def check_attention_view(s: Session) -> None:
    """A CNN has no attention matrices: refuse the matrix views naming the CLI views that do
    apply (gates, when it has attention gates; saliency and compare)."""
    if s.args.view in _MATRIX_VIEWS and not _has_matrices(s):
        gates = ("the gates view (probe render gates --model ...) for its attention gates, or "
                 if _has_gates(s) else "")
        raise ProbeError(
            f"{s.model_name} is a convolutional network: it has no attention matrices for the "
            f"{s.args.view} view; use {gates}its gradient maps: probe render saliency (GradCAM)"
            " or probe render compare (GradCAM, IG, saliency, ...)"
        )
    if s.args.view == "gates" and (_has_matrices(s) or not _has_gates(s)):
        raise ProbeError(
            f"the gates view needs a CNN with attention gates (SE, CBAM, ...; e.g. --model "
            f"cnn-shapes); {s.model_name} has none: use heads, rollout or saliency"
        )


#: file-name part of each figure of :func:`probe.viewers.gate_figures`
_PARTS = {"maps": "spatial-gradcam", "cam": "gradcam", "branch": "branch",
          "channel_spatial": "channel-spatial", "channel": "channel"}


@register_view("gates")
def _gates(s: Session) -> list[tuple[str, Figure]]:
    """The gate figures of :func:`probe.viewers.gate_figures`: spatial gates (CBAM),
    global-context pooling maps and the attention of non-local and bilinear (BAT) blocks' query
    at the GradCAM peak over the image beside GradCAM on the last stage; branch gates (SK,
    ResNeSt), channel-spatial gates (gather-excite, coordinate attention) and channel gates (SE,
    ECA, CBAM's channel part) in figures of their own. ``--layer S`` shows stage ``S``'s blocks
    (at most 6 per kind), else the last block of every stage."""
    import probe
    from probe.analysis._gate_views import resolve_stage
    from probe.viewers import gate_figures

    gt = probe.trace_gates(s.model, s.pixel_values)
    try:
        stage = resolve_stage(gt.stages, s.args.layer)
    except ProbeError as exc:
        raise ProbeError(f"--layer picks a stage in the gates view: {exc}") from None
    cam = probe.attribute(s.model, s.pixel_values, "gradcam").as_grid()[0]
    figures = gate_figures(gt, s.display, cam=cam, stage=stage, image_size=s.display_size)
    part = None if stage is None else f"S{stage}"
    return [(_stem(s, "gates", part, _PARTS[key]), fig) for key, fig in figures.items()]
