"""``dtype=`` of ``probe.trace`` and ``probe.trace_gates``: one check, the same words for both."""

from __future__ import annotations

import re

import pytest
import torch

import probe
from tests._cnn import timm_cnn
from tests._tiny import bert

BAD = [
    ("int8", "dtype 'int8' is not supported: use one of ['float32', 'float16', 'bfloat16', "
             "'float64']"),
    (torch.int64, "dtype must be a floating torch dtype such as torch.float16, got torch.int64"),
    (3, "dtype must be a floating torch dtype such as torch.float16, got 3"),
]


@pytest.mark.parametrize(("dtype", "message"), BAD)
def test_bad_dtype_is_refused_alike(dtype: object, message: str) -> None:
    model, inputs = bert()
    with pytest.raises(probe.ProbeError, match=f"^{re.escape(message)}$"):
        probe.trace(model, inputs, dtype=dtype)
    cnn = timm_cnn("resnet10t", "se")
    with pytest.raises(probe.ProbeError, match=f"^{re.escape(message)}$"):
        probe.trace_gates(cnn, torch.zeros(1, 3, 32, 32), dtype=dtype)


def test_dtype_by_name_or_object() -> None:
    model, inputs = bert()
    assert probe.trace(model, inputs, dtype="bfloat16").attentions.dtype == torch.bfloat16
    cnn = timm_cnn("resnet10t", "se")
    gt = probe.trace_gates(cnn, torch.zeros(1, 3, 32, 32), dtype=torch.float16)
    assert all(g.values.dtype == torch.float16 for g in gt.gates)
