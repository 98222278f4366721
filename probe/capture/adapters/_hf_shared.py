"""Attention modules that one forward pass runs several times (parameters shared across depth).

ALBERT keeps ``num_hidden_groups`` groups of ``inner_group_num`` layers and runs them
``num_hidden_layers`` times: layer ``i`` runs group ``int(i / (num_hidden_layers /
num_hidden_groups))`` (the formula of ``AlbertTransformer.forward``), so albert-base-v2's one
attention module computes all 12 layers' attention. probe numbers the *calls*: the schedule
below lists the module once per call, in the order the forward makes them, and the
interception hands the k-th call of a module to its k-th entry (see
:func:`~probe.capture.adapters._hf_sites.intercept_hf`). The trace then has one layer per call,
named ``<module name>@<call>``, exactly what ``output_attentions=True`` returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe.capture.adapters._base import StackName

if TYPE_CHECKING:
    from torch import nn

__all__ = ["call_schedule"]

Found = tuple[str, Any, StackName]


def _albert_schedule(prefix: str, transformer: nn.Module, found: list[Found]) -> list[Found]:
    """The attention calls of one ``AlbertTransformer`` (its name and a dot: ``prefix``), in
    call order."""
    cfg = transformer.config
    total, groups = int(cfg.num_hidden_layers), int(cfg.num_hidden_groups)
    by_name = {name: (name, module, stack) for name, module, stack in found}
    calls: list[Found] = []
    for i in range(total):
        group = int(i / (total / groups))
        for j in range(len(transformer.albert_layer_groups[group].albert_layers)):
            name = f"{prefix}albert_layer_groups.{group}.albert_layers.{j}.attention"
            _, module, stack = by_name[name]
            calls.append((f"{name}@{len(calls)}", module, stack))
    return calls


def call_schedule(model: nn.Module, found: list[Found]) -> list[Found]:
    """``found`` (attention modules in model order) with every shared module listed once per
    call, in call order, its name suffixed ``@k``; models without shared layers unchanged."""
    from torch import nn

    shared = [  # (prefix with its dot, or "" for the model itself; the transformer)
        (f"{name}." if name else "", module) for name, module in model.named_modules()
        if isinstance(getattr(module, "albert_layer_groups", None), nn.ModuleList)
        and hasattr(getattr(module, "config", None), "num_hidden_groups")
    ]
    if not shared:
        return found
    out: list[Found] = []
    done: set[str] = set()
    for name, module, stack in found:
        owner = next((p for p, _ in shared if name.startswith(f"{p}albert_layer_groups.")), None)
        if owner is None:
            out.append((name, module, stack))
        elif owner not in done:
            done.add(owner)
            out.extend(_albert_schedule(owner, dict(shared)[owner], found))
    return out
