"""Captures and gradient methods on one model take turns, also through wrappers.

A capture switches the model's attention path for the length of one forward pass (config
``_attn_implementation``, timm ``fused_attn`` flags, hooks) and gradient methods switch
``requires_grad`` on frozen parameters. Two threads doing this on the same modules at once
would see each other's switches and could restore them in the wrong order, so every such
block runs under :func:`model_lock`.

What is locked is every submodule of the model, not the object passed in: a wrapper and the
model inside it (``Wrapper(model)`` traced on one thread, ``model`` on another) share their
inner modules, so they take turns too. All of a model's modules are taken at once or not at
all (a thread waits until none of them is held by another thread), so two captures never hold
half of each other's modules. The lock is re-entrant per thread: a gradient method may capture
attention on the model it already holds. Models that share no module never wait for each
other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["model_lock"]

_COND = threading.Condition()
# id(unit) -> [owning thread ident, depth]; entries exist only while held, so the unit (a
# module of a model in use by the holder) is alive and its id cannot be reused meanwhile
_HELD: dict[int, list[int]] = {}


def _units(model: Any) -> list[int]:
    """The ids of what a lock on ``model`` covers: all its modules, or the object itself."""
    modules = getattr(model, "modules", None)
    if callable(modules):
        try:
            return [id(m) for m in modules()]
        except TypeError:  # not an nn.Module-style ``modules()``
            pass
    return [id(model)]


def _free_for(units: list[int], me: int) -> bool:
    return all(_HELD.get(u, (me,))[0] == me for u in units)


@contextmanager
def model_lock(model: Any) -> Iterator[None]:
    """Hold ``model``'s modules for the block (other threads touching any of them wait)."""
    units = _units(model)
    me = threading.get_ident()
    with _COND:
        _COND.wait_for(lambda: _free_for(units, me))
        for u in units:
            entry = _HELD.setdefault(u, [me, 0])
            entry[1] += 1
    try:
        yield
    finally:
        with _COND:
            for u in units:
                entry = _HELD[u]
                entry[1] -= 1
                if not entry[1]:
                    del _HELD[u]
            _COND.notify_all()
