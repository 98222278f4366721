"""Attention rollout and the head-fusion registry: hand-computed cases and a loop reference."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from probe._errors import ProbeError
from probe.analysis._fusion import fuse_heads, list_head_fusions, register_head_fusion
from probe.analysis._rollout import residual_attention, rollout, rollout_step
from tests._factories import make_trace, random_attention

FUSIONS = ("mean", "max", "min")


def reference_rollout(
    attentions: torch.Tensor,
    mask: torch.Tensor,
    fusion: str,
    discard_ratio: float,
    num_prefix: int,
) -> torch.Tensor:
    """Straightforward per-row loop over Python floats, independent of probe.analysis._rollout."""
    n_layers, batch, n_heads, n, _ = attentions.shape
    reduce = {"mean": lambda xs: sum(xs) / len(xs), "max": max, "min": min}[fusion]
    out = []
    for b in range(batch):
        real = [i for i in range(n) if bool(mask[b, i])]
        result = None
        for layer in range(n_layers):
            att = attentions[layer, b].tolist()
            a_hat = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
            for i in real:
                row = [reduce([att[h][i][j] for h in range(n_heads)]) if j in real else 0.0
                       for j in range(n)]
                discardable = [j for j in real if j >= num_prefix]
                count = math.floor(discard_ratio * len(discardable))
                for j in sorted(discardable, key=lambda j: (row[j], j))[:count]:
                    row[j] = 0.0
                row = [0.5 * row[j] + (0.5 if i == j else 0.0) for j in range(n)]
                total = sum(row)
                a_hat[i] = [x / total for x in row]
            if result is None:
                result = a_hat
            else:
                result = [[sum(a_hat[i][m] * result[m][j] for m in range(n)) for j in range(n)]
                          for i in range(n)]
        out.append(result)
    return torch.tensor(out, dtype=torch.float64)


def test_two_layers_three_tokens_by_hand() -> None:
    a0 = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    a1 = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    trace = make_trace(torch.stack([a0, a1])[:, None, None])  # [2, 1, 1, 3, 3]
    # A_hat0 = [[1, 0, 0], [.25, .75, 0], [0, .25, .75]]
    # A_hat1 = [[.5, .5, 0], [0, .5, .5], [.5, 0, .5]];  R = A_hat1 @ A_hat0
    expected = torch.tensor(
        [[[0.625, 0.375, 0.0], [0.125, 0.5, 0.375], [0.5, 0.125, 0.375]]]
    )
    assert_close(rollout(trace), expected)
    # start_layer=1 keeps only A_hat1
    assert_close(rollout(trace, start_layer=1), torch.tensor([[[0.5, 0.5, 0.0], [0.0, 0.5, 0.5],
                                                              [0.5, 0.0, 0.5]]]))
    assert_close(rollout(trace, start_layer=-1), rollout(trace, start_layer=1))


def test_fusions_by_hand_and_renormalised_with_keepdim() -> None:
    h0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    h1 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    trace = make_trace(torch.stack([h0, h1])[None, None])  # [1, 1, 2, 2, 2]
    # mean = all 0.5 -> A_hat = [[.75, .25], [.25, .75]]
    assert_close(rollout(trace, "mean"), torch.tensor([[[0.75, 0.25], [0.25, 0.75]]]))
    # max = all 1 -> 0.5 * A + 0.5 * I = [[1, .5], [.5, 1]] -> rows / 1.5
    assert_close(rollout(trace, "max"), torch.tensor([[[2 / 3, 1 / 3], [1 / 3, 2 / 3]]]))
    # min = all 0 -> identity
    assert_close(rollout(trace, "min"), torch.eye(2)[None])


def test_discard_by_hand_protects_prefix() -> None:
    row = torch.tensor([0.1, 0.2, 0.3, 0.4])
    fused = row.expand(4, 4)[None].clone()  # every query has the same row
    # 1 prefix token: 3 discardable keys, floor(0.5 * 3) = 1 dropped: key 1 (0.2), not key 0
    a_hat = residual_attention(fused, discard_ratio=0.5, num_prefix_tokens=1)
    assert_close(a_hat[0, 0], torch.tensor([11 / 18, 0.0, 1 / 6, 2 / 9]))
    # no prefix: 4 discardable keys, 2 dropped: keys 0 and 1; row 0 gets 0.5 back on its diagonal
    a_hat = residual_attention(fused, discard_ratio=0.5, num_prefix_tokens=0)
    assert_close(a_hat[0, 0], torch.tensor([0.5, 0.0, 0.15, 0.2]) / 0.85)
    assert_close(a_hat[0, 3], torch.tensor([0.0, 0.0, 0.15, 0.7]) / 0.85)


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("discard_ratio", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("num_prefix", [0, 1, 5])
def test_matches_loop_reference_and_rows_sum_to_one(
    fusion: str, discard_ratio: float, num_prefix: int
) -> None:
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    att = random_attention(3, 2, 3, 8, seed=7, attention_mask=mask)
    trace = make_trace(att, num_prefix_tokens=num_prefix, attention_mask=mask)
    result = rollout(trace, fusion, discard_ratio)
    assert result.shape == (2, 8, 8)
    assert_close(result, reference_rollout(att, mask, fusion, discard_ratio, num_prefix))
    assert_close(result.sum(-1), torch.ones(2, 8, dtype=result.dtype))


@pytest.mark.parametrize("num_prefix", [0, 1, 5])
def test_prefix_keys_never_discarded(num_prefix: int) -> None:
    att = random_attention(1, 1, 2, 9, seed=3)
    fused = fuse_heads(att[0], "mean")
    a_hat = residual_attention(fused, discard_ratio=0.9, num_prefix_tokens=num_prefix)
    assert bool((a_hat[..., :num_prefix] > 0).all())
    # among the 9 - P discardable keys, floor(0.9 * (9 - P)) are zeroed in each row, except
    # that a dropped diagonal entry comes back through the residual term
    zeros = (a_hat[0, :, num_prefix:] == 0).sum(-1)
    count = math.floor(0.9 * (9 - num_prefix))
    assert bool(((zeros == count) | (zeros == count - 1)).all())


def test_padding_real_block_equals_unpadded_rollout() -> None:
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    att = random_attention(2, 2, 2, 5, seed=11, attention_mask=mask)
    result = rollout(make_trace(att, num_prefix_tokens=1, attention_mask=mask), discard_ratio=0.5)
    alone = rollout(make_trace(att[:, 1:, :, :3, :3].contiguous(), num_prefix_tokens=1),
                    discard_ratio=0.5)
    assert_close(result[1, :3, :3], alone[0])
    assert bool((result[1, :3, 3:] == 0).all())  # real rows ignore padded keys
    assert_close(result[1, 3:], torch.eye(5, dtype=result.dtype)[3:])  # padded rows: identity


def test_rollout_step_folds_to_rollout() -> None:
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    att = random_attention(4, 1, 2, 6, seed=5, attention_mask=mask)
    state = None
    for layer in range(1, 4):
        state = rollout_step(fuse_heads(att[layer], "max"), state, 0.3, 2, mask)
    trace = make_trace(att, num_prefix_tokens=2, attention_mask=mask)
    assert_close(state, rollout(trace, "max", 0.3, start_layer=1))


def test_input_not_modified() -> None:
    mask = torch.tensor([[1, 1, 1, 0]], dtype=torch.bool)
    att = random_attention(2, 1, 2, 4, seed=2, attention_mask=mask)
    trace = make_trace(att, num_prefix_tokens=1, attention_mask=mask)
    before, mask_before = att.clone(), trace.attention_mask.clone()
    for fusion in FUSIONS:
        out = rollout(trace, fusion, discard_ratio=0.5)
        out += 1.0  # results are new tensors
    assert torch.equal(trace.attentions, before)
    assert torch.equal(trace.attention_mask, mask_before)


def test_streaming_trace_returns_stored_rollout_for_matching_options() -> None:
    stored = torch.rand(1, 4, 4)
    trace = make_trace(
        None, shape=(3, 1, 2, 4, 4), rollout_result=stored,
        rollout_options={"head_fusion": "max", "discard_ratio": 0.5, "start_layer": 1},
    )
    out = rollout(trace, head_fusion="max", discard_ratio=0.5, start_layer=1)
    assert torch.equal(out, stored) and out is not stored
    with pytest.raises(ProbeError, match="streaming"):
        rollout(trace)  # default options differ from the stored ones


def test_half_precision_is_computed_in_float32() -> None:
    att = random_attention(2, 1, 2, 4, seed=1).half()
    out = rollout(make_trace(att))
    assert out.dtype == torch.float32
    assert_close(out.sum(-1), torch.ones(1, 4))


def test_layer_selection_follows_layer_indices() -> None:
    att = random_attention(2, 1, 1, 3, seed=4)
    # captured model layers 4 and 5 of a 6-layer model
    trace = make_trace(att, layer_indices=(4, 5), num_model_layers=6)
    assert_close(rollout(trace, start_layer=4), rollout(make_trace(att)))
    assert_close(rollout(trace, start_layer=5), rollout(make_trace(att[1:])))
    with pytest.raises(ProbeError, match=r"layers \[0, 1, 2, 3\] were not captured"):
        rollout(trace)
    skipped = make_trace(att, layer_indices=(0, 2), num_model_layers=3)
    with pytest.raises(ProbeError, match=r"start_layer=2"):
        rollout(skipped)
    with pytest.raises(ProbeError, match="out of range"):
        rollout(trace, start_layer=6)


def test_bad_options_raise() -> None:
    trace = make_trace(random_attention(1, 1, 2, 3))
    with pytest.raises(ProbeError, match="unknown head_fusion"):
        rollout(trace, head_fusion="median-nope")
    for ratio in (-0.1, 1.0, 2):
        with pytest.raises(ProbeError, match="discard_ratio"):
            rollout(trace, discard_ratio=ratio)
    averaged = make_trace(random_attention(1, 1, 1, 3), head_indices=None)
    with pytest.raises(ProbeError, match="averaged"):
        rollout(averaged, head_fusion="max")
    assert rollout(averaged).shape == (1, 3, 3)


def test_fuse_heads_refuses_a_trace_saying_what_to_pass() -> None:
    trace = make_trace(random_attention(2, 1, 2, 3))
    with pytest.raises(ProbeError, match=r"attention tensor \[\.\.\., head, query, key\], got "
                       r"Trace: pass trace\.attentions\[layer\], not the Trace"):
        fuse_heads(trace)  # type: ignore[arg-type]
    with pytest.raises(ProbeError, match="got list: pass a tensor"):
        fuse_heads([[0.5, 0.5]])  # type: ignore[arg-type]
    assert fuse_heads(trace.attentions[0]).shape == (1, 3, 3)


def test_registered_fusion_plugs_into_rollout() -> None:
    @register_head_fusion("test-first-head")  # unregistered by conftest.py
    def _first(attn: torch.Tensor) -> torch.Tensor:
        return attn[..., 0, :, :].clone()

    assert "test-first-head" in list_head_fusions()
    att = random_attention(2, 1, 3, 4, seed=9)
    assert_close(rollout(make_trace(att), "test-first-head"), rollout(make_trace(att[:, :, :1])))
    with pytest.raises(ProbeError, match="already registered"):
        register_head_fusion("mean")(lambda a: a.mean(-3))

    @register_head_fusion("test-bad-shape")
    def _bad(attn: torch.Tensor) -> torch.Tensor:
        return attn

    with pytest.raises(ProbeError, match="dim=-3"):
        fuse_heads(att, "test-bad-shape")
