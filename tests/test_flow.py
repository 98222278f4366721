"""Attention flow: hand-computed max flows, an independent max-flow solver, padding, limits."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from probe._errors import ProbeError
from probe.analysis._flow import attention_flow
from probe.analysis._fusion import fuse_heads
from probe.analysis._rollout import residual_attention
from tests._factories import make_trace, random_attention

# A_hat0 = [[1, 0, 0], [.25, .75, 0], [0, .25, .75]]
# A_hat1 = [[.5, .5, 0], [0, .5, .5], [.5, 0, .5]]
A0 = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
A1 = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


def test_one_layer_flow_is_the_residual_attention() -> None:
    # one layer: the only path from (0, j) to (1, i) is the edge itself, capacity A_hat[i, j]
    trace = make_trace(A0[None, None, None])
    expected = torch.tensor([[1.0, 0.0, 0.0], [0.25, 0.75, 0.0], [0.0, 0.25, 0.75]])
    assert_close(attention_flow(trace, normalize=False)[0], expected.double())


def test_two_layer_flow_by_hand() -> None:
    # two layers: the paths (0,j) -> (1,m) -> (2,i) are edge-disjoint, so the max flow (= min
    # cut) is sum_m min(A_hat0[m, j], A_hat1[i, m]):
    #   i=0: j=0 .5+.25=.75, j=1 .5, j=2 0         -> [.75, .5, 0],   sum 1.25
    #   i=1: j=0 .25, j=1 .5+.25=.75, j=2 .5        -> [.25, .75, .5], sum 1.5
    #   i=2: j=0 .5, j=1 .25, j=2 .5                -> [.5, .25, .5],  sum 1.25
    trace = make_trace(torch.stack([A0, A1])[:, None, None])
    raw = torch.tensor([[0.75, 0.5, 0.0], [0.25, 0.75, 0.5], [0.5, 0.25, 0.5]], dtype=torch.float64)
    assert_close(attention_flow(trace, normalize=False)[0], raw)
    normalised = torch.tensor([[0.6, 0.4, 0.0], [1 / 6, 0.5, 1 / 3], [0.4, 0.2, 0.4]])
    assert_close(attention_flow(trace)[0], normalised.double())


def networkx_flow(
    a_hats: list[torch.Tensor], scale: int = 10**9, sinks: list[int] | None = None
) -> torch.Tensor:
    """Raw flows with networkx's Boykov-Kolmogorov solver (independent of scipy, which probe
    uses) on integer capacities in units of 1e-9: probe's previous implementation."""
    import networkx as nx
    from networkx.algorithms.flow import boykov_kolmogorov, build_residual_network

    n, layers = a_hats[0].shape[0], len(a_hats)
    graph = nx.DiGraph()
    for layer, a_hat in enumerate(a_hats):
        for i in range(n):
            for j in range(n):
                capacity = round(float(a_hat[i, j]) * scale)
                if capacity > 0:
                    graph.add_edge((layer, j), (layer + 1, i), capacity=capacity)
    residual = build_residual_network(graph, "capacity")
    out = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n) if sinks is None else sinks:
        for j in range(n):
            out[i, j] = nx.maximum_flow_value(
                graph, (0, j), (layers, i), flow_func=boykov_kolmogorov, residual=residual
            ) / scale
    return out


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
def test_matches_independent_solver_and_rows_sum_to_one(fusion: str) -> None:
    att = random_attention(3, 2, 2, 5, seed=13, sharpness=1.0)
    trace = make_trace(att)
    raw = attention_flow(trace, fusion, normalize=False)
    flow = attention_flow(trace, fusion)
    for b in range(2):
        a_hats = [residual_attention(fuse_heads(att[layer, b : b + 1], fusion))[0]
                  for layer in range(3)]
        assert_close(raw[b], networkx_flow(a_hats), atol=1e-6, rtol=0)
    assert_close(flow.sum(-1), torch.ones(2, 5, dtype=torch.float64))
    assert_close(flow, raw / raw.sum(-1, keepdim=True))


def test_padding_and_batch_index() -> None:
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    att = random_attention(2, 2, 2, 4, seed=21, attention_mask=mask)
    before = att.clone()
    trace = make_trace(att, attention_mask=mask)
    flow = attention_flow(trace)
    one = attention_flow(trace, batch_index=1)
    assert one.shape == (1, 4, 4)
    assert_close(one[0], flow[1])
    alone = attention_flow(make_trace(att[:, 1:, :, :3, :3].contiguous()))
    assert_close(flow[1, :3, :3], alone[0])
    assert bool((flow[1, :3, 3] == 0).all())
    assert_close(flow[1, 3], torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64))
    assert torch.equal(att, before)


def test_size_limit_and_bad_input() -> None:
    trace = make_trace(random_attention(1, 1, 1, 5))
    with pytest.raises(ProbeError, match="use probe.rollout"):
        attention_flow(trace, max_tokens=4)
    assert attention_flow(trace, max_tokens=5).shape == (1, 5, 5)
    with pytest.raises(ProbeError, match="batch_index"):
        attention_flow(trace, batch_index=3)
    with pytest.raises(ProbeError, match="unknown head_fusion"):
        attention_flow(trace, head_fusion="nope")
    with pytest.raises(ProbeError, match="streaming"):
        attention_flow(make_trace(None, shape=(1, 1, 1, 3, 3)))


def test_rows_equal_the_rows_of_the_full_matrix() -> None:
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    att = random_attention(3, 2, 2, 6, seed=5, attention_mask=mask)
    trace = make_trace(att, attention_mask=mask)
    full = attention_flow(trace, "max")
    part = attention_flow(trace, "max", rows=[0, -1])
    assert_close(part[:, 0], full[:, 0])
    assert_close(part[0, 5], full[0, 5])
    assert_close(part[1, 5], full[1, 5])  # a padded row stays the identity row
    assert bool((part[:, 1:5] == 0).all())
    assert_close(attention_flow(trace, rows=2), attention_flow(trace, rows=[2, 2]))
    with pytest.raises(ProbeError, match="out of range"):
        attention_flow(trace, rows=[6])
    with pytest.raises(ProbeError, match="rows must be"):
        attention_flow(trace, rows=[True])
    with pytest.raises(ProbeError, match="rows is empty"):
        attention_flow(trace, rows=[])


def test_rows_lift_the_default_size_limit() -> None:
    trace = make_trace(random_attention(2, 1, 2, 40, seed=3))
    with pytest.raises(ProbeError, match="rows="):
        attention_flow(trace)
    cls = attention_flow(trace, rows=[0])
    assert_close(cls[0, 0].sum(), torch.tensor(1.0, dtype=torch.float64))
    a_hats = [residual_attention(fuse_heads(trace.attentions[layer, :1], "mean"))[0]
              for layer in range(2)]
    ref = networkx_flow(a_hats, sinks=[0])[0]
    assert_close(cls[0, 0], ref / ref.sum(), atol=2e-6, rtol=0)
