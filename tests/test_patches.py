"""ViT patch maps on a non-square 2x3 grid with 1, 2 and 5 prefix tokens."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from probe._errors import ProbeError
from probe.analysis._patches import patch_maps, relevance_map, rollout_map, to_grid, upsample
from probe.analysis._rollout import rollout
from tests._factories import make_trace

ROWS, COLS = 2, 3
PREFIXES = [1, 2, 5]


def coded_attention(prefix: int, layers: int = 2, batch: int = 2, heads: int = 3) -> torch.Tensor:
    """Not a distribution: every entry encodes where it is, to check where values land."""
    n = prefix + ROWS * COLS
    index = torch.meshgrid(*(torch.arange(s) for s in (layers, batch, heads, n, n)), indexing="ij")
    weights = (10**6, 10**5, 10**4, 100, 1)
    return sum(w * i for w, i in zip(weights, index)).double()


def code(layer: int, b: int, head: int, query: int, key: int) -> float:
    return float(10**6 * layer + 10**5 * b + 10**4 * head + 100 * query + key)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_patch_maps_land_in_the_right_cells(prefix: int) -> None:
    att = coded_attention(prefix)
    trace = make_trace(att, grid=(ROWS, COLS), num_prefix_tokens=prefix)
    maps = patch_maps(trace)
    assert maps.shape == (2, 2, 3, ROWS, COLS)
    for r in range(ROWS):
        for c in range(COLS):
            assert maps[1, 1, 2, r, c] == code(1, 1, 2, 0, prefix + r * COLS + c)
    # another query (the last patch) and one batch item, kept as a size-1 dimension
    last = prefix + ROWS * COLS - 1
    one = patch_maps(trace, query=-1, batch_index=1)
    assert one.shape == (2, 1, 3, ROWS, COLS)
    assert one[0, 0, 1, 1, 0] == code(0, 1, 1, last, prefix + 3)
    one += 1  # a new tensor
    assert torch.equal(trace.attentions, coded_attention(prefix))


@pytest.mark.parametrize("prefix", PREFIXES)
def test_to_grid_drops_prefix_tokens(prefix: int) -> None:
    att = coded_attention(prefix, 1, 1, 1)
    trace = make_trace(att, grid=(ROWS, COLS), num_prefix_tokens=prefix)
    tokens = torch.arange(prefix + 6, dtype=torch.float32).expand(2, -1)
    expected = (prefix + torch.arange(6.0)).reshape(2, 3).expand(2, 2, 3)
    assert_close(to_grid(tokens, trace), expected)
    assert_close(to_grid(tokens[:, prefix:], trace), expected)  # patch scores only
    with pytest.raises(ProbeError, match="do not fit"):
        to_grid(tokens[:, :4], trace)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_rollout_map_by_hand(prefix: int) -> None:
    n = prefix + 6
    att = torch.eye(n)
    att[0] = 0.0
    att[0, prefix + 5] = 1.0  # CLS attends only to patch (1, 2)
    trace = make_trace(att[None, None, None], grid=(ROWS, COLS), num_prefix_tokens=prefix)
    # A_hat row 0 = 0.5 * e_0 + 0.5 * e_{patch (1, 2)}
    expected = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.5]]])
    assert_close(rollout_map(trace), expected)
    # any other query row works too, e.g. patch (0, 1) attends to itself only
    assert_close(rollout_map(trace, query=prefix + 1),
                 torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]))
    assert_close(rollout_map(trace, discard_ratio=0.5),
                 to_grid(rollout(trace, discard_ratio=0.5)[:, 0], trace))


@pytest.mark.parametrize("prefix", PREFIXES)
def test_relevance_map_by_hand(prefix: int) -> None:
    n = prefix + 6
    att = torch.eye(n)
    att[0] = 0.0
    att[0, prefix + 4] = 1.0  # CLS attends only to patch (1, 1)
    leaf = att[None, None].clone().requires_grad_(True)  # [batch, head, query, key]
    leaf.sum().backward()  # gradient 1 everywhere: A_bar = A, R = I + A
    trace = make_trace(att[None, None, None], grid=(ROWS, COLS), num_prefix_tokens=prefix,
                       layer_tensors=(leaf,))
    assert_close(relevance_map(trace), torch.tensor([[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]))


def test_upsample() -> None:
    maps = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).expand(2, 4, 2, 3)
    near = upsample(maps, (4, 6), mode="nearest")
    assert near.shape == (2, 4, 4, 6)
    assert_close(near[1, 3], maps[0, 0].repeat_interleave(2, 0).repeat_interleave(2, 1))
    flat = upsample(torch.full((2, 3), 0.25), (32, 48))
    assert_close(flat, torch.full((32, 48), 0.25))
    assert upsample(torch.ones(2, 3, dtype=torch.long), (5, 7), mode="bicubic").shape == (5, 7)
    with pytest.raises(ProbeError, match="mode"):
        upsample(maps, (4, 6), mode="area")  # type: ignore[arg-type]
    with pytest.raises(ProbeError, match="size"):
        upsample(maps, (4,))  # type: ignore[arg-type]


def test_errors_for_non_vision_traces() -> None:
    text = make_trace(torch.full((1, 1, 1, 3, 3), 1 / 3), tokens=["[CLS]", "a", "[SEP]"])
    for fn in (patch_maps, rollout_map, lambda t: to_grid(torch.ones(1, 3), t)):
        with pytest.raises(ProbeError, match="vision"):
            fn(text)
    bad = make_trace(torch.full((1, 1, 1, 6, 6), 1 / 6), grid=(ROWS, COLS), num_prefix_tokens=1)
    with pytest.raises(ProbeError, match="need 7"):
        patch_maps(bad)
    good = make_trace(coded_attention(1), grid=(ROWS, COLS), num_prefix_tokens=1)
    with pytest.raises(ProbeError, match="query"):
        patch_maps(good, query=7)
    with pytest.raises(ProbeError, match="batch_index"):
        patch_maps(good, batch_index=2)
