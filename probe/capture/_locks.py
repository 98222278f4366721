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
other. The outermost hold also takes off the output-capturing hooks transformers installs
during it (:mod:`probe.capture._leftovers`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from probe.capture._leftovers import new_output_hooks_removed

__all__ = ["model_lock"]

_COND = threading.Condition()
# id(unit) -> (owning thread ident, depth); entries exist only while held, so the unit (a
# module of a model in use by the holder) is alive and its id cannot be reused meanwhile
_HELD: dict[int, tuple[int, int]] = {}


def _units(model: Any) -> list[int]:
    """The ids of what a lock on ``model`` covers: all its modules, or the object itself."""
    modules = getattr(model, "modules", None)
    if callable(modules):
        try:
            return list(dict.fromkeys(id(m) for m in modules()))
        except TypeError:  # not an nn.Module-style ``modules()``
            pass
    return [id(model)]


def _free_for(units: list[int], me: int) -> bool:
    return all(_HELD.get(u, (me,))[0] == me for u in units)


@contextmanager
def model_lock(model: Any) -> Iterator[None]:
    """Hold ``model``'s modules for the block (other threads touching any of them wait).

    A ``KeyboardInterrupt`` (or any exception) while waiting or while taking the modules
    leaves none of them held: the new entries are computed first and committed by one
    ``dict.update`` (no Python code runs inside it, so no signal handler can split it), and
    the ``finally`` recognises a commit the interrupt cut off by the entries' identity.
    """
    units = _units(model)
    me = threading.get_ident()
    new: dict[int, tuple[int, int]] = {}
    committed = False
    try:
        with _COND:
            _COND.wait_for(lambda: _free_for(units, me))
            new = {u: (me, _HELD[u][1] + 1 if u in _HELD else 1) for u in units}
            _HELD.update(new)
            committed = True
        if all(depth == 1 for _, depth in new.values()):  # the outermost hold
            with new_output_hooks_removed(model):
                yield
        else:
            yield
    finally:
        with _COND:
            if committed or (new and all(_HELD.get(u) is v for u, v in new.items())):
                for u in new:
                    depth = _HELD[u][1] - 1
                    if depth:
                        _HELD[u] = (me, depth)
                    else:
                        del _HELD[u]
            _COND.notify_all()
