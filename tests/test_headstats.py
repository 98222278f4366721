"""Head statistics: hand-computed text and vision heads, padding and batch averaging."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from probe._errors import ProbeError
from probe.analysis._headstats import head_stats
from tests._factories import make_trace

TOKENS = ["[CLS]", "a", "b", "[SEP]"]
PREV_HEAD = torch.tensor([[1.0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
UNIFORM_HEAD = torch.full((4, 4), 0.25)


def _stats_tensor(values: list[float]) -> torch.Tensor:
    return torch.tensor([values], dtype=torch.float64)  # [layer=1, head=2]


def test_text_heads_by_hand() -> None:
    trace = make_trace(torch.stack([PREV_HEAD, UNIFORM_HEAD])[None, None], tokens=TOKENS)
    stats = head_stats(trace)
    # previous-token head: one-hot rows (entropy 0); distances 0, 1, 1, 1 -> mean 0.75
    # uniform head: entropy ln 4; distances (0+1+2+3)/4, (1+0+1+2)/4, 1, 1.5 -> mean 1.25
    assert_close(stats.entropy, _stats_tensor([0.0, math.log(4)]))
    assert_close(stats.mean_distance, _stats_tensor([0.75, 1.25]))
    # special keys are positions 0 and 3: prev head rows 0, 1 put all weight on CLS
    assert_close(stats.special_mass, _stats_tensor([0.5, 0.5]))
    assert_close(stats.self_mass, _stats_tensor([0.25, 0.25]))
    # prev: queries 1..3 only (query 0 has no previous token); next: queries 0..2 only
    assert_close(stats.prev_mass, _stats_tensor([1.0, 0.25]))
    assert_close(stats.next_mass, _stats_tensor([0.0, 0.25]))
    rows = stats.to_rows()
    assert [(r["layer"], r["head"]) for r in rows] == [(0, 0), (0, 1)]
    assert rows[0]["prev_mass"] == pytest.approx(1.0)
    assert set(stats.as_dict()) == {"entropy", "mean_distance", "special_mass", "self_mass",
                                    "prev_mass", "next_mass"}


def test_padding_is_excluded_and_batch_is_averaged() -> None:
    att = torch.zeros(1, 2, 2, 5, 5)
    att[0, 0, :, :4, :4] = torch.stack([PREV_HEAD, UNIFORM_HEAD])
    att[0, 0, :, 4, :] = 0.2  # item 0: 4 real tokens + 1 pad whose garbage row must not count
    att[0, 1] = torch.full((5, 5), 0.2)  # item 1: 5 real tokens, uniform everywhere
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    trace = make_trace(att, tokens=[TOKENS + ["[PAD]"], ["[CLS]", "a", "b", "c", "[SEP]"]],
                       attention_mask=mask)
    before = att.clone()
    first = head_stats(trace, batch_index=0)
    alone = head_stats(make_trace(att[:, :1, :, :4, :4].contiguous(), tokens=TOKENS))
    for name, value in first.as_dict().items():
        assert_close(value, alone.as_dict()[name], msg=name)
    second = head_stats(trace, batch_index=-1)
    assert_close(second.entropy, _stats_tensor([math.log(5), math.log(5)]))
    both = head_stats(trace)
    for name, value in both.as_dict().items():
        assert_close(value, (first.as_dict()[name] + second.as_dict()[name]) / 2, msg=name)
    assert torch.equal(att, before)


@pytest.mark.parametrize("prefix", [1, 2])
def test_vision_distance_in_patch_units(prefix: int) -> None:
    rows, cols = 2, 3
    n = prefix + rows * cols
    head = torch.zeros(n, n)
    head[:, 0] = 0.5  # half of every row on the first prefix token (CLS) ...
    head[:, prefix] = 0.5  # ... half on the top-left patch (0, 0)
    trace = make_trace(head[None, None, None], grid=(rows, cols), num_prefix_tokens=prefix)
    stats = head_stats(trace)
    # patch (r, c) -> (0, 0): sqrt(r^2 + c^2); CLS weight is renormalised away, CLS row skipped
    expected = (0 + 1 + 2 + 1 + math.sqrt(2) + math.sqrt(5)) / 6
    assert_close(stats.mean_distance, torch.tensor([[expected]], dtype=torch.float64))
    # the prefix tokens are special: half of every row
    assert_close(stats.special_mass, torch.tensor([[0.5]], dtype=torch.float64))


def test_averaged_heads_and_errors() -> None:
    trace = make_trace(UNIFORM_HEAD[None, None, None], head_indices=None)
    assert head_stats(trace).to_rows()[0]["head"] is None
    with pytest.raises(ProbeError, match="batch_index"):
        head_stats(trace, batch_index=2)
    with pytest.raises(ProbeError, match="streaming"):
        head_stats(make_trace(None, shape=(1, 1, 1, 4, 4)))
    with pytest.raises(ProbeError, match="grid"):
        head_stats(make_trace(torch.full((1, 1, 1, 5, 5), 0.2), grid=(2, 3), num_prefix_tokens=1))
