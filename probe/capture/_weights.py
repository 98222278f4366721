"""The check every entry that runs a model makes first: its weights hold values.

A model built under ``torch.device("meta")`` or accelerate's ``init_empty_weights`` (or moved
with ``.to("meta")``) has parameters without data. Its forward failed deep inside torch or
transformers (``Tensor.item() cannot be called on meta tensors``, ``Tensor on device cpu is not
on the expected device meta``). A model dispatched by accelerate keeps offloaded weights on
``meta`` too, but its hooks load them for each forward: it is left alone.
"""

from __future__ import annotations

import itertools
from typing import Any

from probe._errors import ProbeError

__all__ = ["require_weights"]


def require_weights(model: Any, what: str) -> None:
    """Raise :class:`ProbeError` when a parameter or buffer of ``model`` is on the ``meta``
    device and no accelerate hook loads it.

    Args:
        model: the ``nn.Module`` the caller passed (anything else passes: the adapter judges it).
        what: the public entry, for the message (``"probe.trace"``).
    """
    named = getattr(model, "named_parameters", None)
    if not callable(named):
        return
    tensors = itertools.chain(model.named_parameters(), model.named_buffers())
    empty = next((name for name, t in tensors if getattr(t, "is_meta", False)), None)
    if empty is None:
        return
    from probe.capture.adapters._dispatch import is_dispatched

    if is_dispatched(model):  # accelerate loads offloaded weights for each forward
        return
    raise ProbeError(
        f"{what}: the model's weights are on the meta device and hold no values (e.g. "
        f"{empty!r}; built under torch.device('meta') or init_empty_weights?): load real "
        "weights first (from_pretrained, or load_state_dict(..., assign=True))"
    )
