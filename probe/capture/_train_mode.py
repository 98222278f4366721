"""Warning about captures from a model whose attention dropout is active (training mode).

In training mode with attention dropout ``p > 0``, every attention weight the model uses is
the softmax with a random mask applied (zeros, the rest scaled by ``1 / (1 - p)``): the
captured weights are exactly what the model used, as with HF's own ``output_attentions``,
but they change from run to run and rows do not sum to 1. probe neither switches the mode
nor refuses: it warns once per call. The capture sites (HF attention function, timm
``attn_drop`` hook) set ``recorder.dropout_active`` when a recorded layer ran with dropout.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from probe._errors import outside_probe_stacklevel

__all__ = ["current_call", "public_call", "warn_if_dropout"]

#: the outermost public call running (``"probe.attribute"``), named by the warning
_CALL: ContextVar[str | None] = ContextVar("probe_public_call", default=None)


@contextmanager
def public_call(name: str) -> Iterator[None]:
    """Name the public call that captures inside this block (``probe.attribute`` tracing):
    the warning names it, not the capture it made. An outer name stands."""
    token = _CALL.set(_CALL.get() or name)
    try:
        yield
    finally:
        _CALL.reset(token)


def current_call() -> str | None:
    """The outermost :func:`public_call` running (``"probe.attribute"``), else ``None``."""
    return _CALL.get()


def warn_if_dropout(recorders: Iterable[Any], what: str) -> None:
    """Warn once if any recorder saw an attention layer run with active dropout; the warning
    points at the first caller outside probe (the user's line, also when
    ``probe.attribute`` or a public wrapper called the capture).

    Args:
        recorders: the capture's recorders (their ``dropout_active`` flags).
        what: the public call, first in the message (``"probe.trace"``), unless a
            :func:`public_call` block names another.
    """
    what = _CALL.get() or what
    if any(getattr(r, "dropout_active", False) for r in recorders):
        warnings.warn(
            f"{what}: the model is in training mode with attention dropout active, so the "
            "captured weights are random (dropout applied; rows do not sum to 1); call "
            "model.eval() for deterministic attention",
            UserWarning,
            stacklevel=outside_probe_stacklevel(),
        )
