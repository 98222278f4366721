"""``probe.attribute(..., trace=tr)``: the trace must be a capture of the very inputs passed.

A trace saves the attention methods a forward pass, but they then read the trace alone: one of
other inputs (other images, another sentence, another batch) would silently give that other
input's scores. The inputs are prepared as a capture prepares them (tokenised, no forward
pass) and compared with the ids or pixels the trace recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["check_trace_inputs"]


def check_trace_inputs(model: nn.Module, inputs: Any, tokenizer: Any, trace: Any) -> None:
    """Raise unless ``trace`` is a :class:`probe.Trace` captured from ``inputs``.

    Traces that recorded neither ids nor pixels (built by hand) cannot be checked and pass.

    Raises:
        ProbeError: not a Trace, or its recorded ids / pixels differ from ``inputs``
            (shape or values).
    """
    import torch

    from probe.capture._trace import Trace
    from probe.capture.adapters import adapter_for

    if not isinstance(trace, Trace):
        raise ProbeError(
            f"trace= must be a probe.Trace of these inputs (probe.trace(model, inputs)), got "
            f"{type(trace).__name__}"
        )
    recorded = [(trace.input_ids, "token ids"), (trace.pixel_values, "pixels")]
    if all(value is None for value, _ in recorded):
        return
    adapter = adapter_for(model)
    # checked as captured (ViT-MAE: in grid order, which probe.attribute alone cannot ask for)
    prepare = getattr(adapter, "prepare_unchecked", adapter.prepare)
    prepared = prepare(inputs, tokenizer=tokenizer)
    for (value, what), now in zip(recorded, (prepared.input_ids, prepared.pixel_values)):
        if value is None or now is None:
            continue
        a, b = value.detach().cpu(), now.detach().cpu()
        if a.shape != b.shape or not torch.equal(a, b.to(a.dtype)):
            raise ProbeError(
                f"trace= was captured from other inputs than these ({what} {tuple(a.shape)} "
                f"differ from {tuple(b.shape)} passed): pass the trace of these inputs, or drop "
                "trace= to capture them"
            )
