"""The public building blocks ``fuse_heads`` and ``residual_attention`` refuse NaN and inf on
their own, with the analyzers' message shape (see ``tests/test_nonfinite.py``), naming the
index of the first bad value; finite inputs give the results they always gave."""

from __future__ import annotations

import pytest
import torch

import probe
from probe.analysis._rollout import residual_attention
from tests._factories import random_attention

CAUSES = ("likely causes: a float16 overflow (load the model in float32 or bfloat16) or a query "
          "row with every key masked (give each item at least one real token); capture again "
          "once fixed")


def _attn(*lead: int) -> torch.Tensor:
    """Softmax rows ``[*lead, head=4, 6, 6]``."""
    return torch.softmax(torch.randn(*lead, 4, 6, 6, generator=torch.Generator().manual_seed(0)),
                         dim=-1)


@pytest.mark.parametrize("lead, at, where", [
    ((), (2, 1, 3), "head 2, query 1, key 3"),
    ((2,), (1, 2, 1, 3), "batch 1, head 2, query 1, key 3"),
    ((3, 2), (2, 1, 2, 1, 3), "layer 2, batch 1, head 2, query 1, key 3"),
    ((2, 3, 2), (1, 2, 1, 2, 1, 3),
     "index (1,) of the leading dimensions, layer 2, batch 1, head 2, query 1, key 3"),
])
@pytest.mark.parametrize("fusion, value, kind", [
    ("mean", float("nan"), "NaN"), ("mean", float("inf"), "+inf"),
    ("mean", float("-inf"), "-inf"), ("max", float("nan"), "NaN"), ("max", float("inf"), "+inf"),
    ("min", float("nan"), "NaN"), ("min", float("-inf"), "-inf"),
])
def test_fuse_heads_names_the_first_non_finite_value(lead, at, where, value, kind, fusion):
    attn = _attn(*lead)
    attn[at] = value
    head = len(at) - 3
    attn[at[:head] + (3,) + at[head + 1:]] = float("nan")  # a later head: not the first
    with pytest.raises(probe.ProbeError) as err:
        probe.fuse_heads(attn, fusion)
    assert str(err.value) == (f"fuse_heads: the attention is not finite: {kind} at {where}, 2 "
                              f"non-finite value(s) in the tensor passed; {CAUSES}")


def test_fuse_heads_check_false_passes_nan_through():
    attn = _attn(2)
    attn[0, 0, 0, 0] = float("nan")
    with pytest.raises(probe.ProbeError, match="^fuse_heads: .*NaN at batch 0, head 0"):
        probe.fuse_heads(attn)
    fused = probe.fuse_heads(attn, check=False)  # what streaming capture records
    assert torch.isnan(fused[0, 0, 0]) and torch.isfinite(fused[1]).all()


def test_a_value_the_fusion_drops_is_not_refused_and_a_fusion_making_nan_is_named():
    attn = _attn(2)
    attn[0, 1, 2, 3] = float("-inf")  # max over heads never picks it: a finite, exact result
    torch.testing.assert_close(probe.fuse_heads(attn, "max"), attn.amax(dim=-3), rtol=0, atol=0)

    @probe.register_head_fusion("_test_log")
    def _log(attn: torch.Tensor) -> torch.Tensor:
        return (attn - 0.5).log().mean(dim=-3)  # NaN wherever a weight is below 0.5

    try:
        with pytest.raises(probe.ProbeError, match=r"^fuse_heads \(the '_test_log' fusion's "
                           r"output\): the attention is not finite: NaN at batch 0, query 0"):
            probe.fuse_heads(_attn(2), "_test_log")
    finally:
        probe.unregister_head_fusion("_test_log")


def test_fuse_heads_finite_and_integer_inputs_are_unchanged():
    attn = _attn(3, 2)
    torch.testing.assert_close(probe.fuse_heads(attn), attn.mean(dim=-3), rtol=0, atol=0)
    torch.testing.assert_close(probe.fuse_heads(attn, "max"), attn.amax(dim=-3), rtol=0, atol=0)
    counts = torch.ones(2, 4, 6, 6, dtype=torch.long)
    assert torch.equal(probe.fuse_heads(counts, "max"), counts.amax(dim=-3))
    big = torch.full((1, 2, 3, 3), 3e38)  # its float32 sum overflows; every value is finite
    assert torch.equal(probe.fuse_heads(big, "max"), big.amax(dim=-3))


@pytest.mark.parametrize("value, kind", [(float("nan"), "NaN"), (float("-inf"), "-inf")])
def test_residual_attention_names_the_first_non_finite_value(value, kind):
    fused = probe.fuse_heads(_attn(2))
    fused[1, 4, 2] = value
    with pytest.raises(probe.ProbeError) as err:
        residual_attention(fused, discard_ratio=0.5)
    assert str(err.value) == (f"residual_attention: the attention is not finite: {kind} at "
                              f"batch 1, query 4, key 2, 1 non-finite value(s) in the tensor "
                              f"passed; {CAUSES}")
    assert torch.isnan(fused[1, 4, 2]) or fused[1, 4, 2] == value  # input untouched


def test_rollout_step_still_checks_once_and_names_the_fused_attention():
    fused = probe.fuse_heads(_attn(1))
    fused[0, 1, 1] = float("nan")
    with pytest.raises(probe.ProbeError, match="^rollout_step: .*fused attention"):
        probe.rollout_step(fused, None)


def test_rollout_of_a_trace_keeps_its_layer_and_head_message():
    from tests._factories import make_trace

    att = random_attention(2, 1, 4, 6, seed=3).clone()
    att[1, 0, 2, 3, 4] = float("nan")
    with pytest.raises(probe.ProbeError, match=r"^rollout: .*NaN at layer 1, head 2 of the "
                       r"self-attention"):
        probe.rollout(make_trace(att))
