"""Chefer et al. relevance rule: hand-computed cases, a loop reference, trace plumbing."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from probe._errors import ProbeError
from probe.analysis._relevance import relevance, relevance_from_gradients
from tests._factories import make_trace, random_attention


def reference_relevance(att: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Element-by-element loop: R = I; R += mean_h(max(g * a, 0)) @ R, layer by layer."""
    n_layers, batch, n_heads, n, _ = att.shape
    out = []
    for b in range(batch):
        r = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
        for layer in range(n_layers):
            a_bar = [[sum(max(float(grad[layer, b, h, i, j] * att[layer, b, h, i, j]), 0.0)
                          for h in range(n_heads)) / n_heads for j in range(n)] for i in range(n)]
            r = [[r[i][j] + sum(a_bar[i][m] * r[m][j] for m in range(n)) for j in range(n)]
                 for i in range(n)]
        out.append(r)
    return torch.tensor(out, dtype=torch.float64)


def test_one_layer_by_hand() -> None:
    att = torch.tensor([[[0.6, 0.4], [0.3, 0.7]], [[1.0, 0.0], [0.0, 1.0]]])[None, None]
    grad = torch.tensor([[[1.0, -1.0], [2.0, 0.5]], [[2.0, 2.0], [2.0, 2.0]]])[None, None]
    # head 0: clamp(g * a) = [[.6, 0], [.6, .35]]; head 1: [[2, 0], [0, 2]]
    # mean = [[1.3, 0], [.3, 1.175]]; R = I + mean
    expected = torch.tensor([[[2.3, 0.0], [0.3, 2.175]]])
    assert_close(relevance_from_gradients(att, grad), expected)
    # the first head alone: R = I + [[.6, 0], [.6, .35]]
    assert_close(relevance_from_gradients(att[:, :, :1], grad[:, :, :1]),
                 torch.tensor([[[1.6, 0.0], [0.6, 1.35]]]))


def test_two_layers_by_hand_in_layer_order() -> None:
    half = torch.full((2, 2), 0.5)
    att = torch.stack([half, half])[:, None, None]
    grad = torch.stack([torch.tensor([[0.0, 2.0], [0.0, 0.0]]),
                        torch.tensor([[0.0, 0.0], [2.0, 0.0]])])[:, None, None]
    # A_bar0 = [[0, 1], [0, 0]] -> R = [[1, 1], [0, 1]]
    # A_bar1 = [[0, 0], [1, 0]] -> R = R + A_bar1 @ R = [[1, 1], [0, 1]] + [[0, 0], [1, 1]]
    assert_close(relevance_from_gradients(att, grad), torch.tensor([[[1.0, 1.0], [1.0, 2.0]]]))
    # the other order gives [[2, 1], [1, 1]]: layer order matters
    assert_close(relevance_from_gradients(att.flip(0), grad.flip(0)),
                 torch.tensor([[[2.0, 1.0], [1.0, 1.0]]]))


def test_matches_loop_reference() -> None:
    att = random_attention(3, 2, 4, 5, seed=3)
    grad = torch.randn(att.shape, generator=torch.Generator().manual_seed(4), dtype=att.dtype)
    att_before, grad_before = att.clone(), grad.clone()
    assert_close(relevance_from_gradients(att, grad), reference_relevance(att, grad))
    assert torch.equal(att, att_before) and torch.equal(grad, grad_before)


def test_zero_gradients_give_identity() -> None:
    att = random_attention(2, 3, 2, 4, seed=1)
    out = relevance_from_gradients(att, torch.zeros_like(att))
    assert_close(out, torch.eye(4, dtype=att.dtype).expand(3, 4, 4))


def test_shape_errors() -> None:
    att = random_attention(2, 1, 2, 3)
    with pytest.raises(ProbeError, match="shape of attentions"):
        relevance_from_gradients(att, att[:1])
    with pytest.raises(ProbeError, match=r"\[layer, batch, head, query, key\]"):
        relevance_from_gradients(att[0], att[0])


def test_relevance_reads_trace_gradients() -> None:
    att = random_attention(2, 1, 3, 4, seed=8, dtype=torch.float32)
    weights = torch.randn(att.shape, generator=torch.Generator().manual_seed(2))
    leaves = tuple(att[layer].clone().requires_grad_(True) for layer in range(2))
    trace = make_trace(att, layer_tensors=leaves)
    with pytest.raises(ProbeError, match="backward"):
        relevance(trace)
    sum((w * t).sum() for w, t in zip(weights, leaves)).backward()
    assert_close(relevance(trace), relevance_from_gradients(att, weights))
    # layers stored out of model order are put back in order
    swapped = make_trace(att.flip(0), layer_tensors=leaves[::-1], layer_indices=(1, 0))
    assert_close(relevance(swapped), relevance_from_gradients(att, weights))


def test_relevance_needs_all_layers_and_heads() -> None:
    att = random_attention(2, 1, 1, 3)
    leaves = tuple(att[i].clone().requires_grad_(True) for i in range(2))
    with pytest.raises(ProbeError, match="heads were averaged"):
        relevance(make_trace(att, layer_tensors=leaves, head_indices=None))
    with pytest.raises(ProbeError, match=r"layers \[0\] were not captured"):
        relevance(make_trace(att, layer_tensors=leaves, layer_indices=(1, 2)))
    with pytest.raises(ProbeError, match="no gradients"):
        relevance(make_trace(att))
