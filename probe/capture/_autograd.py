"""Gradients need autograd: refuse ``torch.inference_mode()`` with the fix, up front.

``torch.no_grad()`` is harmless (probe turns gradients on where it needs them), but inside
``torch.inference_mode()`` autograd cannot be turned back on, and the model's tensors would
fail deep inside the backward with "element 0 of tensors does not require grad".
"""

from __future__ import annotations

from probe._errors import ProbeError

__all__ = ["require_autograd"]


def require_autograd(what: str) -> None:
    """Raise :class:`ProbeError` when ``what`` (which takes gradients) runs in inference mode."""
    import torch

    if torch.is_inference_mode_enabled():
        raise ProbeError(
            f"{what} needs gradients, but torch.inference_mode() is on: call it outside the "
            "inference_mode block (torch.no_grad() is fine: probe turns gradients on itself)"
        )
