"""``probe.attribute(..., trace=tr)``: the trace must be a capture of the very inputs passed,
by the model passed.

A trace saves the attention methods a forward pass, but they then read the trace alone: one of
other inputs (other images, another sentence, another batch) would silently give that other
input's scores. The inputs are prepared as a capture prepares them (tokenised, no forward
pass) and compared with the ids or pixels the trace recorded. The model is compared with the
one the trace recorded: its family, its number of layers per attention stack, the module name
of every captured layer and its number of heads. A trace of another architecture is refused;
one of the same architecture with other weights cannot be told apart without a forward pass
and is taken (the same model, a copy of it, or its reload).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["check_trace_inputs", "check_trace_model"]


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
    adapter = adapter_for(model)
    check_trace_model(adapter, trace)
    recorded = [(trace.input_ids, "token ids"), (trace.pixel_values, "pixels")]
    if all(value is None for value, _ in recorded):
        return
    # checked as captured (ViT-MAE: in grid order, which probe.attribute alone cannot ask for)
    prepared = adapter.prepare_unchecked(inputs, tokenizer=tokenizer)
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


def _heads(modules: list[Any]) -> int | None:
    """The number of heads all ``modules`` (one stack's attention modules) declare, or ``None``
    when one declares none or they differ (Swin: more heads per stage)."""
    found = set()
    for module in modules:
        n = None
        for owner, attr in ((module, "num_heads"), (module, "num_attention_heads"),
                            (module, "n_head"), (module, "n_heads"),
                            (getattr(module, "config", None), "num_attention_heads")):
            value = getattr(owner, attr, None) if owner is not None else None
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                n = value
                break
        if n is None:
            return None
        found.add(n)
    return found.pop() if len(found) == 1 else None


def check_trace_model(adapter: Any, trace: Any) -> None:
    """Raise unless ``trace`` was captured from a model of ``adapter``'s architecture: the same
    family, layers per stack, module name of every captured layer and heads per layer.

    Traces without a recorded model geometry (built by hand: ``num_model_layers == 0``) pass.
    """
    sites = adapter.sites()
    stacks: dict[str, list[Any]] = {}
    for site in sites:
        stacks.setdefault(site.stack, []).append(site)
    fix = ("pass a trace of this model (probe.trace(model, inputs)), or drop trace= to capture "
           "it")
    from probe._text import with_article

    theirs, ours = f"the trace's {trace.model_name!r}", f"the {adapter.name!r} passed"

    def refuse(detail: str) -> ProbeError:
        return ProbeError(f"trace= was captured from another model than the one passed "
                          f"({detail}): {fix}")

    if trace.num_model_layers and trace.family and trace.family != adapter.family:
        raise refuse(f"{theirs} is {with_article(trace.family)} model, {ours} "
                     f"{with_article(adapter.family)}")
    for kind, stack in (("self", trace), ("decoder", trace.decoder), ("cross", trace.cross)):
        if stack is None or not stack.num_model_layers:
            continue
        what = {"self": "", "decoder": "decoder ", "cross": "cross-attention "}[kind]
        own = stacks.get(kind, [])
        names = [s.name for s in own]
        if stack.num_model_layers != len(names):
            raise refuse(f"{theirs} has {stack.num_model_layers} {what}attention layers, "
                         f"{ours} {len(names)}")
        for name, index in zip(stack.layer_names, stack.layer_indices):
            if not 0 <= index < len(names) or names[index] != name:
                mine = names[index] if 0 <= index < len(names) else "none"
                raise refuse(f"{what}layer {index} is {name!r} in {theirs}, {mine!r} in "
                             f"{ours}")
        heads = _heads([s.module for s in own])
        if stack.num_heads and heads is not None and stack.num_heads != heads:
            raise refuse(f"{theirs} has {stack.num_heads} heads per {what}layer, {ours} "
                         f"{heads}")
