"""Plain copies of models dispatched by ``accelerate``.

A model loaded with ``device_map=...`` or passed through ``dispatch_model``, ``cpu_offload`` or
``disk_offload`` keeps its offloaded weights on the ``meta`` device and an accelerate hook
(``module._hf_hook``, with a wrapped ``forward``) loads them for each forward from the hook's
``weights_map`` (CPU memory or memory-mapped files). Analyses that must *change* weights, such
as the sanity check's randomisation cascade, cannot work on such a model: they take a
:func:`working_copy` instead, a deep copy whose weights are all materialised on one device and
which carries no accelerate hook. The user's model and its hooks are never touched. Read by
duck typing: probe does not import accelerate.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["is_dispatched", "working_copy"]

#: instance attributes accelerate sets: the hook and the wrapped ``forward`` on each hooked
#: module, and on a dispatched model the wrapped device-moving methods that refuse to move it
_HOOK_ATTRS = ("_hf_hook", "_old_forward", "forward", "to", "cuda", "npu", "xpu", "mlu", "sdaa",
               "musa")


def _hooks(module: nn.Module) -> list[Any]:
    hook = module.__dict__.get("_hf_hook")
    if hook is None:
        return []
    return [hook, *getattr(hook, "hooks", ())]


def is_dispatched(model: nn.Module) -> bool:
    """Whether any module of ``model`` carries an accelerate hook."""
    return any("_hf_hook" in m.__dict__ for m in model.modules())


def _offloaded_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Fully qualified name -> the tensor accelerate keeps for every offloaded (``meta``)
    parameter or buffer, read from the hooks' ``weights_map`` (loaded to CPU memory)."""
    found: dict[str, torch.Tensor] = {}
    for prefix, module in model.named_modules():
        for hook in _hooks(module):
            weights = getattr(hook, "weights_map", None)
            if weights is None:
                continue
            tensors = [
                *module.named_parameters(remove_duplicate=False),
                *module.named_buffers(remove_duplicate=False),
            ]
            for name, tensor in tensors:
                full = f"{prefix}.{name}" if prefix else name
                if tensor.device.type != "meta" or full in found:
                    continue
                try:
                    found[full] = weights[name]
                except KeyError:
                    continue
    return found


def working_copy(model: nn.Module, device: str | torch.device = "cpu") -> nn.Module:
    """A deep copy of ``model`` that probe may modify.

    A plain model is deep-copied as it is (same devices). A model dispatched by accelerate is
    copied without its hooks, with every offloaded weight loaded from accelerate's
    ``weights_map``, tied weights tied again (HF ``tie_weights``) and the whole copy on
    ``device`` (default: CPU). The copy needs the model's full size in memory on that device.

    Raises:
        ProbeError: an offloaded weight cannot be found in any hook's ``weights_map``.
    """
    import torch

    if not is_dispatched(model):
        return copy.deepcopy(model)
    memo: dict[int, Any] = {}
    for module in model.modules():
        for hook in _hooks(module):
            memo[id(hook)] = None  # never copy a hook (nor the weights it holds)
    clone = copy.deepcopy(model, memo)
    for module in clone.modules():
        for attr in _HOOK_ATTRS:
            module.__dict__.pop(attr, None)  # back to the class's own forward
    gathered = _offloaded_tensors(model)
    owners: dict[int, list[tuple[dict[str, Any], str, str]]] = {}  # tied weights: one entry
    for prefix, module in clone.named_modules(remove_duplicate=False):
        for table in (module._parameters, module._buffers):
            for leaf, tensor in table.items():
                if tensor is not None and tensor.device.type == "meta":
                    name = f"{prefix}.{leaf}" if prefix else leaf
                    owners.setdefault(id(tensor), []).append((table, leaf, name))
    with torch.no_grad():
        for places in owners.values():
            names = [name for _, _, name in places]
            source = next((gathered[n] for n in names if n in gathered), None)
            if source is None:
                raise ProbeError(
                    f"cannot find the offloaded weight {names[0]!r} in accelerate's "
                    "weights_map: load the model without offloading (device_map=None) to run "
                    "this analysis"
                )
            table, leaf, _ = places[0]
            current = table[leaf]
            value = source.detach().to(device=device, dtype=current.dtype).clone()
            if isinstance(current, torch.nn.Parameter):
                value = torch.nn.Parameter(value, current.requires_grad)
            for table, leaf, _ in places:
                table[leaf] = value
    tie = getattr(clone, "tie_weights", None)
    if callable(tie):
        tie()  # accelerate unties weights by identity (it ties them per forward): HF re-ties
    return clone.to(device)
