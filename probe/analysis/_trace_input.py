"""The one check every trace analysis makes first: its input is a probe ``Trace``.

Without it a tensor, ``None`` or a :class:`~probe.Generation` reached an attribute lookup and
the user saw ``AttributeError: 'Tensor' object has no attribute 'require_attentions'``. The
``Trace`` class lives in a later room (capture), so the check is by its interface.
"""

from __future__ import annotations

from typing import Any

from probe._errors import ProbeError

__all__ = ["require_trace"]


def require_trace(trace: Any, analysis: str) -> None:
    """Raise :class:`ProbeError` unless ``trace`` is a probe ``Trace``.

    Args:
        trace: what the caller passed.
        analysis: the public name of the analysis, for the message (``"probe.rollout"``).
    """
    if callable(getattr(trace, "require_attentions", None)):
        return
    if callable(getattr(trace, "to_trace", None)):
        raise ProbeError(
            f"{analysis} was given a {type(trace).__name__}, not a probe.Trace: pass "
            "gen.to_trace() (the attention over every token the model read)"
        )
    raise ProbeError(f"{analysis} needs a probe Trace, got {type(trace).__name__}: pass what "
                     "probe.trace(model, inputs) returned")
