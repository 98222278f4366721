"""Cascading randomisation: original model untouched, cumulative top-down steps, honest values."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from probe._errors import ProbeError
from probe.evaluation._sanity import ORIGINAL, SanityResult, cascade_order, sanity_check


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _builtin(name: str) -> None:
    from probe.attribution._registry import list_methods

    assert name in list_methods(), f"built-in method {name!r} is not registered"


def test_order_is_top_down_for_timm_vit(vit_square) -> None:
    model, _ = vit_square
    order = cascade_order(model)
    assert [name for name, _ in order] == ["head", "norm", "blocks.1", "blocks.0", "embeddings"]
    params = [p for _, names in order for p in names]
    assert sorted(params) == sorted(n for n, _ in model.named_parameters())  # each exactly once
    assert set(dict(order)["embeddings"]) == {
        "cls_token",
        "pos_embed",
        "patch_embed.proj.weight",
        "patch_embed.proj.bias",
    }


def test_steps_cumulative_and_original_untouched(vit_square) -> None:
    model, x = vit_square  # depth 2, 32x32 images, 4x4 grid
    model.train()
    before = _snapshot(model)
    flags = [m.training for m in model.modules()]
    ids = {k: id(v) for k, v in model.named_parameters()}
    seen: list[dict[str, torch.Tensor]] = []

    def fingerprint(m: nn.Module) -> torch.Tensor:
        seen.append(_snapshot(m))
        return torch.arange(16.0).repeat(2, 1)

    result = sanity_check(model, x, {"const": fingerprint}, seed=3)
    assert isinstance(result, SanityResult)
    assert result.steps == (ORIGINAL, "head", "norm", "blocks.1", "blocks.0", "embeddings")
    # the original: bit-identical parameters and buffers, same objects, same modes
    after = _snapshot(model)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert {k: id(v) for k, v in model.named_parameters()} == ids
    assert [m.training for m in model.modules()] == flags
    model.eval()
    # seen[0]: reference, seen[1]: step "original", seen[i + 1]: after step i
    order = dict(cascade_order(model))
    assert all(torch.equal(seen[0][k], before[k]) for k in before)
    assert all(torch.equal(seen[1][k], before[k]) for k in before)
    for i, step in enumerate(result.steps[1:], start=1):
        state = seen[i + 1]
        randomised = {p for s in result.steps[1 : i + 1] for p in order[s]}
        for name in (n for names in order.values() for n in names):
            changed = not torch.equal(state[name], before[name])
            assert changed == (name in randomised), (step, name)
    # a map that does not depend on the weights keeps correlation 1 at every step
    assert torch.equal(result.correlations["const"], torch.ones(6, dtype=torch.float64))
    assert result.maps["const"].shape == (6, 2, 16)
    assert result.per_item["const"].shape == (6, 2)


def test_seeded_and_weight_dependent_maps_react(vit_square) -> None:
    from probe.capture._capture import trace

    model, x = vit_square

    def cls_attention(m: nn.Module) -> torch.Tensor:
        tr = trace(m, x)
        return tr.attentions[-1, :, :, 0, tr.num_prefix_tokens :].mean(1)

    def input_gradient(m: nn.Module) -> torch.Tensor:
        xx = x.clone().requires_grad_(True)
        m(xx)[:, 0].sum().backward()
        g = xx.grad.abs().sum(1)  # [batch, 32, 32]
        return g.unfold(1, 8, 8).unfold(2, 8, 8).sum((-1, -2)).flatten(1)

    r1 = sanity_check(model, x, [cls_attention, input_gradient], seed=0)
    r2 = sanity_check(model, x, [cls_attention, input_gradient], seed=0)
    for name in ("cls_attention", "input_gradient"):
        assert torch.equal(r1.correlations[name], r2.correlations[name])
        assert r1.correlations[name][0] == 1.0  # deterministic: step "original" reproduces the map
    att = r1.correlations["cls_attention"]
    # last-layer attention cannot see the head or the final norm: exactly 1 there (reported)
    assert att[1] == 1.0 and att[2] == 1.0
    assert att[3] < 0.9  # randomising the last block changes its attention
    assert r1.correlations["input_gradient"][1] < 1.0  # gradients of the head's logit react at once
    assert r1.absolute == {"cls_attention": False, "input_gradient": False}
    assert "| randomised up to | cls_attention | input_gradient |" in str(r1)
    rows = r1.to_rows()
    assert len(rows) == 12 and rows[0] == {
        "method": "cls_attention",
        "step": 0,
        "randomised": ORIGINAL,
        "correlation": 1.0,
    }


def test_signed_maps_compared_by_absolute_value(vit_square) -> None:
    model, x = vit_square
    calls = []

    def flips(m: nn.Module) -> torch.Tensor:
        calls.append(None)
        base = torch.arange(1.0, 17.0).repeat(2, 1)
        sign = -1.0 if len(calls) % 2 else 1.0  # same magnitudes, alternating sign
        return sign * base

    result = sanity_check(model, x, {"flips": flips})
    assert result.absolute["flips"] is True  # negative values on the trained model
    assert torch.equal(result.correlations["flips"], torch.ones(6, dtype=torch.float64))
    calls.clear()
    raw = sanity_check(model, x, {"flips": flips}, absolute=False)
    assert raw.correlations["flips"][0] == -1.0  # the second call returned the flipped map


def test_registered_methods_through_attribute(vit_square) -> None:
    _builtin("random")
    model, x = vit_square
    before = _snapshot(model)
    result = sanity_check(model, x, ["random", "attention"], seed=5)
    assert torch.equal(result.correlations["random"], torch.ones(6, dtype=torch.float64))
    att = result.correlations["attention"]
    assert att.shape == (6,) and att[0] == 1.0 and not torch.isnan(att).any()
    assert att[1] == 1.0 and att[2] == 1.0  # attention cannot react to the head: reported as is
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_constant_map_gives_nan_not_a_fake_one(vit_square) -> None:
    model, x = vit_square
    result = sanity_check(model, x, {"flat": lambda m: torch.ones(2, 16)})
    assert all(math.isnan(v) for v in result.correlations["flat"].tolist())


def test_errors(vit_square) -> None:
    model, x = vit_square
    with pytest.raises(ProbeError, match="transformer blocks"):
        sanity_check(nn.Linear(3, 3), x, {"c": lambda m: torch.rand(2, 4)})
    with pytest.raises(ProbeError, match="no methods"):
        sanity_check(model, x, [])
    with pytest.raises(ProbeError, match="duplicate"):
        sanity_check(model, x, [len, len])
    with pytest.raises(ProbeError, match="scores"):
        sanity_check(model, x, {"bad": lambda m: "nope"})
    with pytest.raises(ProbeError, match="same units"):
        shapes = iter([16, 16, 16, 9])
        sanity_check(model, x, {"shifty": lambda m: torch.rand(2, next(shapes))})
    with pytest.raises(ProbeError, match="seed"):
        bad_seed: Any = 1.5
        sanity_check(model, x, {"c": lambda m: torch.rand(2, 16)}, seed=bad_seed)


def test_order_of_hf_models() -> None:
    from tests._tiny import bert, hf_vit

    vit_model, _ = hf_vit()
    names = [n for n, _ in cascade_order(vit_model)]
    assert names[:2] == ["classifier", "vit.layernorm"]
    assert names[-1] == "vit.embeddings"
    blocks = [n for n in names if n.startswith(("vit.encoder.layer.", "vit.layers."))]
    assert len(blocks) == 2 and blocks[0].endswith(".1") and blocks[1].endswith(".0")
    bert_model, inputs = bert()
    bert_names = [n for n, _ in cascade_order(bert_model)]
    assert bert_names == [
        "pooler.dense",
        "encoder.layer.2",
        "encoder.layer.1",
        "encoder.layer.0",
        "embeddings",
    ]

    # text: the default mask leaves out padding; a BertModel has no logits, so no fixed target
    def first_token_norm(m: nn.Module) -> torch.Tensor:
        return m(**inputs).last_hidden_state.norm(dim=-1)

    result = sanity_check(bert_model, inputs, {"norm": first_token_norm})
    assert result.steps[1] == "pooler.dense"
    assert result.correlations["norm"][1] == 1.0  # the pooler does not feed the hidden states
    assert result.correlations["norm"].shape == (len(bert_names) + 1,)


def test_empty_or_unbatched_inputs_refused_before_any_work(vit_square) -> None:
    model, x = vit_square
    with pytest.raises(ProbeError, match="no inputs: pass at least one item"):
        sanity_check(model, x[:0], ["rollout"])
    with pytest.raises(ProbeError, match="no inputs"):
        sanity_check(model, [], ["rollout"])
    with pytest.raises(ProbeError, match=r"\[batch, channel, height, width\].*unsqueeze\(0\)"):
        sanity_check(model, x[0], ["rollout"])


def test_name_options_pairs_as_compare_batches_takes_them(vit_square) -> None:
    model, x = vit_square
    pair = ("rollout", {"head_fusion": "max"})
    result = sanity_check(model, x, ["rollout", pair], seed=3)
    assert result.methods == ("rollout", "rollout[head_fusion=max]")
    alone = sanity_check(model, x, "rollout", seed=3, head_fusion="max")
    assert torch.equal(result.correlations["rollout[head_fusion=max]"],
                       alone.correlations["rollout"])
    assert not torch.equal(result.maps["rollout"], result.maps["rollout[head_fusion=max]"])
    assert sanity_check(model, x, {"mx": pair}, seed=3).methods == ("mx",)
    with pytest.raises(ProbeError, match="duplicate"):
        sanity_check(model, x, ["rollout", ("rollout", {})])
    with pytest.raises(ProbeError, match="head_fusion"):
        sanity_check(model, x, [("rollout", {"head_fusion": "nope"})])
