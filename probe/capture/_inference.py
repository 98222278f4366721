"""Inputs made in ``torch.inference_mode()`` (a tokenizer or a preprocessing step run under it),
used outside it.

Such "inference tensors" cannot be saved for backward: gradient methods (relevance, saliency)
failed deep inside the model with torch's RuntimeError. Outside inference mode they are copied
into normal tensors once, at the public entry points; the caller's objects are not touched.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["usable_outside_inference"]


def usable_outside_inference(inputs: Any) -> Any:
    """``inputs`` (a tensor, or a mapping such as a tokenizer's ``BatchEncoding``) with every
    inference tensor replaced by a normal copy; the same object when there is none (or when
    inference mode is on, where such tensors are what torch makes anyway)."""
    import torch

    if torch.is_inference_mode_enabled():
        return inputs
    if isinstance(inputs, torch.Tensor):
        return inputs.clone() if inputs.is_inference() else inputs
    if isinstance(inputs, Mapping):
        marked = [k for k, v in inputs.items() if isinstance(v, torch.Tensor) and v.is_inference()]
        if marked:
            fresh = copy.copy(inputs)  # a BatchEncoding keeps its word information
            for key in marked:
                fresh[key] = inputs[key].clone()
            return fresh
    return inputs
