"""Agreement metrics: known orderings, hand-computed ties, scipy as reference, masks, table."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from probe.evaluation._agreement import (
    AgreementTable,
    average_ranks,
    compare,
    kendall,
    spearman,
    topk_overlap,
    unit_mask,
)
from probe.attribution._registry import Attribution
from probe._errors import ProbeError
from tests._factories import make_trace, random_attention


def _close(value: torch.Tensor, expected: float) -> None:
    assert value.dim() == 0
    assert math.isclose(float(value), expected, rel_tol=0, abs_tol=1e-12), (float(value), expected)


# ------------------------------------------------------------------ known orderings
@pytest.mark.parametrize("fn", [spearman, kendall])
def test_identical_and_reversed(fn) -> None:
    x = torch.tensor([0.3, 2.0, -1.0, 5.0, 0.1])
    _close(fn(x, x), 1.0)
    _close(fn(x, -x), -1.0)
    _close(fn(x, 3 * x + 7), 1.0)  # rank-based: invariant to increasing maps
    _close(fn(x, x.exp()), 1.0)


def test_average_ranks_by_hand() -> None:
    assert average_ranks(torch.tensor([10.0, 20.0, 20.0, 30.0])).tolist() == [1, 2.5, 2.5, 4]
    assert average_ranks(torch.tensor([3.0, 1.0, 3.0, 3.0, 0.0])).tolist() == [4, 2, 4, 4, 1]


def test_spearman_with_ties_by_hand() -> None:
    a = torch.tensor([1.0, 2.0, 2.0, 3.0])  # ranks 1, 2.5, 2.5, 4
    b = torch.tensor([1.0, 2.0, 3.0, 4.0])  # ranks 1, 2, 3, 4
    # centred ranks: a -1.5, 0, 0, 1.5 ; b -1.5, -.5, .5, 1.5
    # cov = 2.25 + 2.25 = 4.5 ; |a| = sqrt(4.5) ; |b| = sqrt(5)  -> 4.5 / sqrt(22.5)
    _close(spearman(a, b), 4.5 / math.sqrt(22.5))


def test_kendall_tau_b_with_ties_by_hand() -> None:
    a = torch.tensor([1.0, 2.0, 2.0, 3.0])
    b = torch.tensor([1.0, 2.0, 3.0, 4.0])
    # 6 pairs: (2,3) tied in a; the other 5 concordant, 0 discordant
    # tau_b = 5 / sqrt((6 - 1) * (6 - 0)) = 5 / sqrt(30)
    _close(kendall(a, b), 5 / math.sqrt(30))
    # a discordant pair: swap the last two of b
    b2 = torch.tensor([1.0, 2.0, 4.0, 3.0])
    # pairs: (0,1)+ (0,2)+ (0,3)+ (1,2) tie-a (1,3)+ (2,3): a 2<3, b 4>3 -> discordant
    _close(kendall(a, b2), (4 - 1) / math.sqrt(30))


def test_against_scipy_reference() -> None:
    stats = pytest.importorskip("scipy.stats")
    gen = torch.Generator().manual_seed(0)
    for trial in range(20):
        n = 3 + trial
        # integer-valued scores: many ties
        a = torch.randint(0, 4, (n,), generator=gen).double()
        b = torch.randint(0, 4, (n,), generator=gen).double()
        if a.unique().numel() < 2 or b.unique().numel() < 2:
            continue
        ref_s = stats.spearmanr(a.numpy(), b.numpy()).statistic
        ref_k = stats.kendalltau(a.numpy(), b.numpy()).statistic
        assert math.isclose(float(spearman(a, b)), ref_s, abs_tol=1e-12)
        assert math.isclose(float(kendall(a, b)), ref_k, abs_tol=1e-12)


def test_constant_map_is_nan_and_skipped_in_mean() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    y = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    per_item = spearman(x, y, reduction="none")
    assert per_item[0] == 1 and math.isnan(per_item[1])
    _close(spearman(x, y), 1.0)
    assert math.isnan(float(kendall(x[1], y[1])))


# ------------------------------------------------------------------ top-k
def test_topk_overlap_by_hand() -> None:
    a = torch.tensor([0.9, 0.8, 0.1, 0.7, 0.0])  # top-3: {0, 1, 3}
    b = torch.tensor([0.9, 0.0, 0.8, 0.7, 0.1])  # top-3: {0, 2, 3}
    _close(topk_overlap(a, b, 3), 2 / 3)
    _close(topk_overlap(a, b, 1), 1.0)
    _close(topk_overlap(a, b, 2), 0.5)  # {0, 1} vs {0, 2}
    _close(topk_overlap(a, b, 5), 1.0)
    _close(topk_overlap(a, b, 0.4), 0.5)  # 40% of 5 units = 2
    _close(topk_overlap(a, -a, 2), 0.0)
    # k larger than the number of units is capped
    _close(topk_overlap(a, b, 50), 1.0)


def test_topk_ties_broken_by_position() -> None:
    a = torch.tensor([1.0, 1.0, 1.0, 0.0])
    b = torch.tensor([0.0, 1.0, 1.0, 1.0])
    # a's top-2: positions 0, 1 ; b's: 1, 2
    _close(topk_overlap(a, b, 2), 0.5)


@pytest.mark.parametrize("bad", [0, -1, 0.0, 1.5, True, "3"])
def test_topk_bad_k(bad) -> None:
    with pytest.raises(ProbeError, match="k"):
        topk_overlap(torch.rand(4), torch.rand(4), bad)


# ------------------------------------------------------------------ masks and batches
def test_mask_excludes_units() -> None:
    a = torch.tensor([1.0, 2.0, 3.0, 100.0, -100.0])
    b = torch.tensor([1.0, 2.0, 3.0, -100.0, 100.0])
    mask = torch.tensor([True, True, True, False, False])
    assert float(spearman(a, b)) < 0
    _close(spearman(a, b, mask), 1.0)
    _close(kendall(a, b, mask), 1.0)
    _close(topk_overlap(a, b, 1, mask), 1.0)
    assert float(topk_overlap(a, b, 1)) == 0.0


def test_batched_per_item_then_mean_with_per_item_masks() -> None:
    a = torch.tensor([[1.0, 2.0, 3.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    b = torch.tensor([[1.0, 2.0, 3.0, 9.0], [4.0, 3.0, 2.0, 1.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    per = spearman(a, b, mask, reduction="none")
    assert per.shape == (2,)
    assert_close(per, torch.tensor([1.0, -1.0], dtype=torch.float64))
    _close(spearman(a, b, mask), 0.0)
    # one map broadcast against a batch
    assert_close(kendall(a[1], b, reduction="none"), torch.tensor([1.0, -1.0], dtype=torch.float64))


def test_unit_mask_from_trace_text_and_vision() -> None:
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    att = random_attention(1, 2, 1, 4, attention_mask=mask)
    tr = make_trace(
        att,
        tokens=[["[CLS]", "a", "b", "[SEP]"], ["[CLS]", "c", "[SEP]", "[PAD]"]],
        attention_mask=mask,
    )
    assert unit_mask(tr).tolist() == [[False, True, True, False], [False, True, False, False]]
    a = torch.tensor([[5.0, 1.0, 2.0, 5.0], [0.0, 1.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 1.0, 2.0, 0.0], [9.0, 1.0, 0.0, 0.0]])
    # item 1 has a single valid unit -> nan, skipped; item 0 agrees perfectly
    _close(spearman(a, b, tr), 1.0)
    vis = make_trace(random_attention(1, 2, 1, 5), grid=(2, 2), num_prefix_tokens=1)
    assert unit_mask(vis).shape == (2, 4) and bool(unit_mask(vis).all())


def test_inputs_not_modified() -> None:
    a = torch.tensor([[3.0, 1.0, 2.0]], requires_grad=True)
    b = torch.tensor([[1.0, 2.0, 3.0]])
    a0, b0 = a.detach().clone(), b.clone()
    spearman(a, b)
    kendall(a, b)
    topk_overlap(a, b, 2)
    assert torch.equal(a.detach(), a0) and torch.equal(b, b0)


@pytest.mark.parametrize(
    ("a", "b", "mask", "match"),
    [
        (torch.rand(4), torch.rand(5), None, "different units"),
        (torch.rand(2, 4), torch.rand(3, 4), None, "batch sizes"),
        (torch.rand(4), torch.rand(4), torch.ones(5, dtype=torch.bool), "mask shape"),
        (torch.rand(2, 2, 2), torch.rand(2, 2, 2), None, "shape"),
        (torch.tensor([1.0, float("nan")]), torch.rand(2), None, "NaN"),
        (["a", "b"], torch.rand(2), None, "tensor, numpy array or list of numbers"),
    ],
)
def test_bad_input(a, b, mask, match) -> None:
    with pytest.raises(ProbeError, match=match):
        spearman(a, b, mask)


# ------------------------------------------------------------------ compare
def _attr(scores: torch.Tensor, method: str, signed: bool = False) -> Attribution:
    return Attribution(scores, method, "vision", signed, grid=(2, 3), image_size=(8, 12))


def test_compare_table_symmetric_unit_diagonal() -> None:
    gen = torch.Generator().manual_seed(3)
    base = torch.rand(3, 6, generator=gen)
    maps = {
        "a": base,
        "b": base + 0.3 * torch.rand(3, 6, generator=gen),
        "c": -base,
        "d": torch.rand(3, 6, generator=gen),
    }
    for metric, k in (("spearman", None), ("kendall", None), ("topk", 2)):
        table = compare(maps, metric, k=k)
        assert isinstance(table, AgreementTable)
        assert table.methods == ("a", "b", "c", "d")
        assert table.values.shape == (4, 4)
        assert torch.equal(table.values, table.values.T)
        assert torch.equal(table.values.diagonal(), torch.ones(4, dtype=torch.float64))
        fn = {"spearman": spearman, "kendall": kendall}.get(metric)
        expected = topk_overlap(maps["a"], maps["d"], 2) if fn is None else fn(maps["a"], maps["d"])
        assert table["a", "d"] == float(expected)
    table = compare(maps, "spearman")
    assert table["a", "c"] == -1.0


def test_compare_attributions_abs_for_signed_and_mask() -> None:
    pos = _attr(torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]), "attention")
    ig = _attr(torch.tensor([[-1.0, 2.0, -3.0, 4.0, -5.0, 6.0]]), "ig", signed=True)
    table = compare([pos, ig])
    assert table.methods == ("attention", "ig")
    assert table["attention", "ig"] == pytest.approx(1.0)  # |ig| ranks like attention
    assert compare([pos, ig], absolute=False)["ig", "attention"] < 1.0
    mask = torch.tensor([False, True, False, True, False, True])
    assert compare([pos, ig], absolute=False, mask=mask)["ig", "attention"] == pytest.approx(1.0)


def test_compare_rows_and_markdown() -> None:
    table = compare(
        {"x": torch.tensor([1.0, 2.0, 3.0]), "y": torch.tensor([3.0, 2.0, 1.0])}, "kendall"
    )
    rows = table.to_rows()
    assert len(rows) == 4
    assert rows[1] == {
        "method_a": "x",
        "method_b": "y",
        "metric": "kendall",
        "k": None,
        "value": -1.0,
    }
    md = table.to_markdown()
    assert md.splitlines()[0] == "| kendall | x | y |"
    assert "| x | 1.000 | -1.000 |" in md
    # printed: the table, then N and what bold means (over 3 units no value can be)
    assert str(table) == (md + "\n\nN = 3 units: no \u03c4 can reach p < 0.05 at this N, so "
                          "none is **bold**")
    assert "top-2 overlap" in str(compare({"x": torch.rand(4), "y": torch.rand(4)}, "topk", k=2))


def test_compare_errors() -> None:
    x = torch.rand(2, 4)
    with pytest.raises(ProbeError, match="at least two"):
        compare({"x": x})
    with pytest.raises(ProbeError, match="unknown metric"):
        compare({"x": x, "y": x}, "pearson")  # type: ignore[arg-type]
    with pytest.raises(ProbeError, match="needs k"):
        compare({"x": x, "y": x}, "topk")
    with pytest.raises(ProbeError, match="k applies"):
        compare({"x": x, "y": x}, "spearman", k=3)
    with pytest.raises(ProbeError, match="different shapes"):
        compare({"x": x, "y": torch.rand(2, 5)})
    with pytest.raises(ProbeError, match="duplicate"):
        compare([_attr(torch.rand(1, 6), "ig"), _attr(torch.rand(1, 6), "ig")])
    with pytest.raises(ProbeError, match="mapping"):
        compare([x, x])
    with pytest.raises(ProbeError, match="no method"):
        compare({"x": x, "y": x})["x", "z"]
