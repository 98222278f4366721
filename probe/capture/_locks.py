"""One re-entrant lock per model: captures and gradient methods on one model take turns.

A capture switches the model's attention path for the length of one forward pass (config
``_attn_implementation``, timm ``fused_attn`` flags, hooks) and gradient methods switch
``requires_grad`` on frozen parameters. Two threads doing this on the same model at once would
see each other's switches and could restore them in the wrong order, so every such block runs
under :func:`model_lock`. The lock is re-entrant: a gradient method may capture attention on
the model it already holds. Different models never wait for each other.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["model_lock"]

_LOCKS: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def _lock_of(model: Any) -> threading.RLock:
    with _GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = threading.RLock()
            _LOCKS[model] = lock
        return lock


@contextmanager
def model_lock(model: Any) -> Iterator[None]:
    """Hold ``model``'s re-entrant lock for the block (other threads on it wait)."""
    lock = _lock_of(model)
    with lock:
        yield
