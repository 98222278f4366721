"""Area under deletion / insertion curves: the one trapezoid rule of probe.

:func:`trapezoid_auc` works on torch tensors and numpy arrays alike (it only slices,
subtracts, multiplies and sums), so the evaluation (:func:`curve_auc`, tensors) and the
viewers (:func:`probe.viewers.curve_auc`, arrays) share it without the viewers importing
torch. Importing this module imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from probe._errors import ProbeError

if TYPE_CHECKING:
    import torch

__all__ = ["auc64", "curve_auc", "trapezoid_auc"]

ArrayT = TypeVar("ArrayT")


def trapezoid_auc(fractions: Any, values: ArrayT) -> ArrayT:
    """Area under curves by the trapezoid rule, for torch tensors or numpy arrays.

    Args:
        fractions: ``[points]`` increasing x coordinates (at least 2).
        values: ``[points]`` or ``[..., points]`` y values, the same array type.

    Returns:
        ``[]`` or ``[...]`` in the dtype of the inputs:
        ``sum_i (x_{i+1} - x_i) (y_i + y_{i+1}) / 2`` (bit for bit ``torch.trapezoid``).

    Raises:
        ProbeError: mismatched shapes, fewer than 2 points, or decreasing fractions.
    """
    x, y = fractions, values
    if len(x.shape) != 1 or x.shape[0] < 2 or len(y.shape) < 1 or y.shape[-1] != x.shape[0]:
        raise ProbeError(
            f"curve_auc needs fractions [points] (at least 2) and values [..., points], got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    if bool((x[1:] < x[:-1]).any()):
        raise ProbeError("curve_auc needs increasing fractions")
    return ((y[..., 1:] + y[..., :-1]) * (x[1:] - x[:-1])).sum(-1) / 2


def curve_auc(fractions: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Area under curves by the trapezoid rule, in float64.

    Args:
        fractions: ``[points]`` increasing x coordinates.
        values: ``[points]`` or ``[batch, points]`` y values.

    Both may be tensors, numpy arrays or lists of numbers.

    Returns:
        ``[]`` or ``[batch]``: ``sum_i (x_{i+1} - x_i) (y_i + y_{i+1}) / 2``.

    Raises:
        ProbeError: not numbers, fewer than 2 points, mismatched shapes, decreasing fractions,
            or a NaN or infinite point (its area would be NaN or infinite).
    """
    import torch

    fractions, values = _float64(fractions, "fractions"), _float64(values, "values")
    for name, x in (("fractions", fractions), ("values", values)):
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            at = [int(i) for i in bad.nonzero()[0]]
            raise ProbeError(
                f"curve_auc: {name} holds {int(bad.sum())} NaN or infinite point(s), the first "
                f"{x[tuple(at)].item()} at index {at}: the area would be undefined; drop or "
                "replace those points first"
            )
    return trapezoid_auc(fractions, values)


def auc64(fractions: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """:func:`curve_auc` of probe's own curves, in float64, NaN kept (a model that scored NaN
    has a NaN area)."""
    return trapezoid_auc(_float64(fractions, "fractions"), _float64(values, "values"))


def _float64(x: Any, name: str) -> torch.Tensor:
    import numpy as np
    import torch

    if isinstance(x, torch.Tensor):
        if x.is_meta:
            raise ProbeError(f"curve_auc: {name} are on the meta device and hold no values: "
                             "pass real numbers")
        return x.detach().to(torch.float64)
    try:  # a list or numpy array (was "'list' object has no attribute 'to'")
        return torch.as_tensor(np.asarray(x, dtype=np.float64))
    except (TypeError, ValueError):
        raise ProbeError(
            f"curve_auc: {name} must be numbers (a tensor, array or list), got "
            f"{type(x).__name__}"
        ) from None
