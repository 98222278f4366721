"""Capture: the one room that runs models.

Model adapters (:mod:`probe.capture.adapters`, one per model family) know HuggingFace and
timm: they prepare inputs, run the forward pass, report geometry and intercept attention.
:func:`probe.trace` drives an adapter and a recorder per attention stack and returns the
frozen :class:`~probe.capture._trace.Trace` that every later room reads.
"""

from probe.capture.adapters import ModelAdapter, Prepared, adapter_for, register_adapter

__all__ = ["ModelAdapter", "Prepared", "adapter_for", "register_adapter"]
