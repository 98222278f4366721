"""Agreement over few units is no evidence: the tables and figures say N and bold only the
values a permutation test at that N tells from chance (p < 0.05, two-sided)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import probe
from probe.evaluation._significance import (
    agreement_p_value,
    agreement_threshold,
    significance_note,
)
from probe.viewers import comparison_panel

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("n", [4, 5, 6, 7])
def test_exact_p_matches_scipy_permutation_tests(n):
    rng = np.random.default_rng(n)
    for _ in range(5):
        x, y = rng.permutation(n).astype(float), rng.permutation(n).astype(float)
        rho = scipy_stats.spearmanr(x, y).statistic
        exact = scipy_stats.permutation_test(
            (x,), lambda a: scipy_stats.spearmanr(a, y).statistic, permutation_type="pairings",
            alternative="two-sided", n_resamples=10**6).pvalue
        assert agreement_p_value(rho, n) == pytest.approx(exact)
        tau = scipy_stats.kendalltau(x, y).statistic
        assert agreement_p_value(tau, n, "kendall") == pytest.approx(
            scipy_stats.kendalltau(x, y, method="exact").pvalue)


def test_thresholds_are_the_textbook_critical_values():
    # two-sided 0.05 critical values of Spearman's rho (Zar 1972, Table 1)
    assert agreement_threshold(3) is None and agreement_threshold(4) is None
    assert agreement_threshold(5) == 1.0
    assert agreement_threshold(6) == pytest.approx(0.886, abs=1e-3)
    assert agreement_threshold(7) == pytest.approx(0.786, abs=1e-3)
    assert agreement_threshold(8) == pytest.approx(0.738, abs=1e-3)
    assert agreement_threshold(30) == pytest.approx(0.362, abs=0.01)  # drawn orderings
    assert agreement_p_value(1.0, 3) == pytest.approx(1 / 3)  # 2 of the 6 orderings
    assert "no \u03c1 can reach p < 0.05" in significance_note(3, unit="tokens")
    # many units: drawn orderings up to 1000 (Kendall: 100), then the normal approximation
    assert "permutation test, 20000 orderings" in significance_note(100, "kendall")
    assert "(normal approximation: |\u03c4| \u2265 0.03)" in significance_note(2000, "kendall")
    assert agreement_threshold(5000) == pytest.approx(1.96 / 4999 ** 0.5, rel=1e-3)


def test_compare_prints_n_and_bolds_only_what_chance_does_not_explain():
    three = probe.compare({"a": torch.tensor([1.0, 2, 3]), "b": torch.tensor([1.0, 2, 3])})
    assert three.units == (3,) and three["a", "b"] == 1.0
    text = str(three)
    assert "**" not in text.split("\n\n")[0]  # rho = 1 over 3 units: p = 1/3
    assert text.endswith("N = 3 units: no \u03c1 can reach p < 0.05 at this N, so none is "
                         "**bold**")
    seven = probe.compare({"a": torch.arange(7.0), "b": torch.tensor([0.0, 1, 2, 3, 4, 6, 5]),
                           "c": torch.tensor([6.0, 0, 5, 1, 4, 3, 2])})
    md = seven.to_markdown()
    assert "| a | 1.000 | **0.964** | -0.250 |" in md  # the diagonal is never bold
    assert str(seven).endswith("N = 7 units \u00b7 **bold**: p < 0.05, two-sided (exact "
                               "permutation test: |\u03c1| \u2265 0.79)")
    p = seven.p_values()
    assert torch.isnan(p.diagonal()).all() and p[0, 1] < 0.05 < p[0, 2]
    batch = probe.compare({"a": torch.rand(4, 12), "b": torch.rand(4, 12)},
                          mask=torch.tensor([True] * 10 + [False] * 2))
    assert batch.units == (10, 10, 10, 10)
    assert "N = 10 units per item, 4 items" in str(batch)


def test_text_attributions_count_tokens(minilm):
    model, tokenizer = minilm
    attrs = [probe.attribute(model, "A man is playing a guitar.", m, tokenizer=tokenizer)
             for m in ("attention", "random")]
    table = probe.compare(attrs)
    assert table.units == (7,) and table.unit == "tokens"  # [CLS] and [SEP] are not units
    assert "N = 7 tokens" in str(table)


def _cells(fig):
    [ax] = [ax for ax in fig.axes if ax.get_title().startswith("rank agreement")]
    return {t.get_text(): t.get_fontweight() for t in ax.texts}


def test_comparison_panel_states_n_and_bolds_by_the_test():
    tokens = ["a", "man", "is", "playing", "a", "guitar", "."]
    maps = {"rollout": np.arange(7.0), "ig": np.array([0.0, 1, 2, 3, 4, 6, 5]),
            "random": np.array([0.0, 1, 2, 6, 3, 4, 5])}
    agreement = np.array([[1.0, 0.964, 0.61], [0.964, 1.0, 0.5], [0.61, 0.5, 1.0]])
    fig = comparison_panel(tokens, maps, agreement=agreement)
    cells = _cells(fig)
    assert cells["0.96"] == "bold" and cells["0.61"] == "normal"  # 0.61 over 7: p = 0.17
    assert cells["1.00"] == "normal"
    caption = next(t.get_text() for t in fig.texts if t.get_gid() == "agreement-n")
    caption = caption.replace("\n", " ")  # wrapped at the block's width
    assert caption.startswith("N = 7 tokens") and caption.endswith(
        "bold: p < 0.05, two-sided (exact permutation test: |\u03c1| \u2265 0.79)")
    fig = comparison_panel(tokens[:3], {k: v[:3] for k, v in maps.items()},
                           agreement=np.array([[1, 1, -1], [1, 1, -1], [-1, -1, 1.0]]))
    assert "bold" not in _cells(fig).values()
    caption = next(t.get_text() for t in fig.texts if t.get_gid() == "agreement-n")
    assert caption.replace("\n", " ").startswith("N = 3 tokens: no \u03c1 can reach")
    fig = comparison_panel(tokens, maps, agreement=agreement, units=[7] * 20)  # a mean
    assert _cells(fig)["0.61"] == "bold"
    with pytest.raises(probe.ProbeError, match="units must be a count of units"):
        comparison_panel(tokens, maps, agreement=agreement, units="seven")


def test_image_page_bolds_by_the_test_and_says_n():
    from probe.viewers.html import image_view_html

    rng = np.random.default_rng(0)
    maps = {"rollout": rng.random((2, 2)), "random": rng.random((2, 2))}
    page = image_view_html(rng.random((16, 16, 3)), maps,
                           agreement=np.array([[1.0, 1.0], [1.0, 1.0]])).html
    data = json.loads(re.search(r'id="probe-data">(.*?)</script>', page, re.S).group(1))
    assert data["agreement"]["bold"] == [[False, False], [False, False]]  # 4 patches
    assert data["agreement"]["note"].startswith("N = 4 patches: no \u03c1 can reach")
    page = image_view_html(rng.random((16, 16, 3)), maps, units=[4] * 50,
                           agreement=np.array([[1.0, 0.9], [0.9, 1.0]])).html
    data = json.loads(re.search(r'id="probe-data">(.*?)</script>', page, re.S).group(1))
    assert data["agreement"]["bold"] == [[False, True], [True, False]]


def test_render_compare_says_n_on_the_sentence_of_the_report(minilm):
    """``probe render compare --text "A man is playing a guitar."``: 7 tokens, and the
    rollout-vs-random value is in bold only if a permutation test at N = 7 says so."""
    from probe.commands.render._args import RenderArgs
    from probe.commands.render._figures import _compare
    from probe.commands.render._session import _session

    s = _session(RenderArgs(view="compare", text="A man is playing a guitar.",
                            methods=("attention", "rollout", "random")))
    [(_, fig)] = _compare(s)
    caption = next(t.get_text() for t in fig.texts if t.get_gid() == "agreement-n")
    assert caption.startswith("N = 7 tokens")
    [ax] = [ax for ax in fig.axes if ax.get_title().startswith("rank agreement")]
    for t in ax.texts:  # bold: off the diagonal and |rho| >= 0.786 (p < 0.05 at N = 7)
        value = float(t.get_text().replace("\u2212", "-"))
        j, i = t.get_position()
        if t.get_fontweight() == "bold":
            assert i != j and abs(value) >= 0.785
        elif i != j:
            assert abs(value) <= 0.79
