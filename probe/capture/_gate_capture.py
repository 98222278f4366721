"""``probe.trace_gates``: run a CNN once and capture its attention gates into a
:class:`GateTrace`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError, UnsupportedModelError
from probe._index import is_flag
from probe._text import with_article
from probe.capture._gates import GATE_KINDS, Gate, GateSite, GateTrace
from probe.capture._autograd import require_autograd
from probe.capture._capture import _check_dtype, check_model_name
from probe.capture._locks import model_lock
from probe.capture._weights import require_weights
from probe.capture.adapters import adapter_for

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["trace_gates"]


def trace_gates(
    model: nn.Module,
    pixels: torch.Tensor,
    *,
    modules: Sequence[str] | None = None,
    dtype: torch.dtype | str | None = None,
    requires_grad: bool = False,
    model_name: str | None = None,
) -> GateTrace:
    """Run a timm CNN on ``pixels`` once and capture every attention gate exactly.

    Channel gates (squeeze-and-excitation, Hu et al. 2018; ECA, Wang et al. 2020; the channel
    half of CBAM, Woo et al. 2018; gather-excite; global context) come back as ``[batch,
    channel]``, CBAM's spatial gates as ``[batch, height, width]``, channel-spatial gates
    (gather-excite with a local extent, coordinate attention) as ``[batch, channel, height,
    width]``, branch gates (selective kernel, Li et al. 2019; split attention, Zhang et al.
    2020) as ``[batch, branch, channel]``, global-context pooling maps (Cao et al. 2019) as
    ``[batch, height, width]``, non-local blocks (Wang et al. 2018) as their softmax attention
    ``[batch, HW, HW]`` and bilinear ones (BAT) as ``[batch, group, HW, HW]``; each with its
    stage, feature-map size and stride (see :class:`Gate`). The values are the tensors the
    model multiplied by (read by hooks on the gate activations) or, for the modules that
    compute them inline (``LightChannelAttn``, ``NonLocalAttn``, ``BatNonLocalAttn``, GC's
    pooling), recomputed from the module's own layers with the same operations. Outputs are
    unchanged and every hook is removed, also when the forward raises.

    Args:
        model: a timm CNN (e.g. ``seresnet50``, ``ecaresnet50d``, a ResNet built with
            ``block_args=dict(attn_layer="cbam")``, ``probe.load_model("cnn-shapes")``).
        pixels: ``[batch, channel, height, width]`` float images, normalised for the model.
        modules: keep only these gates: module names (``"layer4.0.se.spatial"``) and/or kinds
            (``"channel"``, ``"spatial"``, ``"branch"``, ... :data:`GATE_KINDS`); default all.
        dtype: storage dtype of the values (``torch.float16``, ``"bfloat16"``, ...); with
            ``requires_grad=True`` the values keep the model's dtype (they live in its graph).
        requires_grad: keep the gates in the autograd graph; after a backward pass from
            ``gate_trace.output``, :meth:`Gate.gradient` reads their gradients (hooked gates
            only: recomputed ones are not on the output's path).
        model_name: name recorded in the trace (default: the model's own name).

    Returns:
        A frozen :class:`GateTrace`.

    Raises:
        ProbeError: bad pixels or options (the message says how to fix them).
        UnsupportedModelError: the model has no gate probe can capture.
    """
    import torch

    dtype = _check_dtype(dtype)
    check_model_name(model_name)
    if not is_flag(requires_grad):  # "no" captured with gradients, as probe.trace refuses
        raise ProbeError(f"requires_grad must be True or False, got {requires_grad!r}")
    if requires_grad:
        require_autograd("probe.trace_gates(..., requires_grad=True)")
    adapter = adapter_for(model)
    require_weights(model, "probe.trace_gates")
    find = getattr(adapter, "find_gates", None)
    if find is None:
        raise UnsupportedModelError(
            f"probe.trace_gates captures the gates of timm CNNs (SE, ECA, CBAM, non-local); "
            f"{adapter.name} is {with_article(adapter.family)} model without them: use probe.trace"
        )
    sites, skipped = find()
    if not sites:
        more = f" and {len(skipped) - 2} more" if len(skipped) > 2 else ""
        extra = f" (found but not captured: {', '.join(skipped[:2])}{more})" if skipped else ""
        raise UnsupportedModelError(
            f"{adapter.name} has no attention gates probe captures{extra}; use a model with SE, "
            "ECA, CBAM or non-local blocks (timm ResNets take block_args=dict(attn_layer='cbam')) "
            "or gradient methods (probe.attribute(model, pixels, 'gradcam'))"
        )
    sites = _select(sites, modules)
    prepared = adapter.prepare(pixels)
    x = prepared.main
    image_size = (int(x.shape[-2]), int(x.shape[-1]))
    found: list[Gate] = []

    def record(
        site: GateSite, values: torch.Tensor, size: tuple[int, int], source: Any = None
    ) -> None:
        stride = (image_size[0] / size[0], image_size[1] / size[1])
        if requires_grad:
            if source is not None and source.requires_grad:
                source.retain_grad()
            else:
                source = None
            stored = values
        else:
            source = None
            stored = values.detach().to(dtype or values.dtype).clone()
        found.append(
            Gate(site.name, site.kind, site.module_type, site.stage, size, stride, stored, source,
                 site.branches)
        )

    grad_context = torch.enable_grad() if requires_grad else torch.no_grad()
    with model_lock(adapter.model), adapter.intercept_gates(sites, record), grad_context:
        output = adapter.run(prepared)
    if not found:
        raise UnsupportedModelError(
            f"no gate was recorded during the forward pass of {adapter.name}: its gating modules "
            "were not called"
        )
    return GateTrace(
        gates=tuple(found),
        model_name=model_name or adapter.name,
        image_size=image_size,
        pixel_values=prepared.pixel_values,
        output=output,
        skipped=tuple(skipped),
    )


def _select(sites: list[GateSite], modules: Sequence[str] | None) -> list[GateSite]:
    if modules is None:
        return sites
    if isinstance(modules, str):
        modules = [modules]
    if not modules or not all(isinstance(m, str) for m in modules):
        raise ProbeError(
            f"modules must be a non-empty list of module names or kinds {list(GATE_KINDS)}, got "
            f"{modules!r}"
        )
    names = {s.name for s in sites}
    for m in modules:
        if m not in names and m not in GATE_KINDS:
            import difflib

            close = difflib.get_close_matches(m, sorted(names) + list(GATE_KINDS), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ProbeError(
                f"no gate module {m!r}: {hint}the model's gates are {sorted(names)} (or pass a "
                f"kind: {list(GATE_KINDS)})"
            )
    wanted = set(modules)
    kept = [s for s in sites if s.name in wanted or s.kind in wanted]
    if not kept:
        kinds = sorted({s.kind for s in sites})
        raise UnsupportedModelError(
            f"the model has no {' or '.join(sorted(wanted))} gates: its gates are {kinds}"
        )
    return kept
