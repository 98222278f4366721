"""Printed evaluation tables carry the uncertainty their JSON holds.

``probe eval sanity`` computed a standard error per step (``spearman_se`` in the JSON, shown as
``mean ± se`` in the README's table) but printed the means alone.
"""

from __future__ import annotations

from probe.evaluation.tasks import sanity_markdown


def test_sanity_table_prints_standard_errors() -> None:
    result = {
        "model": "vit-shapes", "n": 4, "image_seed": 20000, "skipped": {},
        "methods": {
            "rollout": {"steps": ["original", "head", "blocks.0"], "spearman": [1.0, 0.934, 0.05],
                        "spearman_se": [0.0, 0.036, 0.152]},
            "flow": {"steps": ["original", "head", "blocks.0"],
                     "spearman": [1.0, float("nan"), 0.2], "spearman_se": [0.0, float("nan"), 0.1]},
        },
    }
    table = sanity_markdown(result)
    assert "| rollout | 1.00 | 0.93 ± 0.04 | 0.05 ± 0.15 |" in table, table
    assert "| flow | 1.00 | – | 0.20 ± 0.10 |" in table, table  # a missing step stays a dash
    assert "standard error" in table


def test_coref_heads_expected_below_0_05_by_chance_is_exact() -> None:
    """The coref eval said "3.6 would by chance" (0.05 x 72 heads) whatever the number of
    sentences: on 2 sentences no outcome reaches p < 0.05, and the exact binomial test's rate
    at 92 sentences is 0.047, not 0.05."""
    from scipy.stats import binom, binomtest

    from probe.evaluation.tasks._coref import _chance_below_0_05

    assert _chance_below_0_05(2) == 0.0
    for n in (10, 92):
        by_hand = sum(binom.pmf(k, n, 0.5) for k in range(n + 1)
                      if binomtest(k, n, 0.5).pvalue < 0.05)
        assert abs(_chance_below_0_05(n) - by_hand) < 1e-12
    assert abs(72 * _chance_below_0_05(92) - 3.385) < 1e-3


def test_faithfulness_table_prints_standard_errors() -> None:
    """The JSON holds a standard error per metric; the printed table had the means only."""
    import json
    from pathlib import Path

    from probe.evaluation.tasks._faithfulness import faithfulness_markdown

    saved = Path(__file__).resolve().parents[1] / "benchmarks" / "eval-faithfulness.json"
    result = json.loads(saved.read_text(encoding="utf-8"))
    row = result["methods"]["rollout"]
    table = faithfulness_markdown(result)
    expected = (f"| rollout | {row['pointing_game']:.3f} ± {row['pointing_game_se']:.3f} | "
                f"{row['mass_on_object']:.3f} ± {row['mass_on_object_se']:.3f} | "
                f"{row['deletion_auc']:.3f} ± {row['deletion_auc_se']:.3f} | ")
    assert expected in table, table
    assert "Mean ± standard error over images" in table
    del row["deletion_auc_se"]  # results without a standard error print the mean alone
    assert f"| {row['deletion_auc']:.3f} | " in faithfulness_markdown(result)


def test_random_baseline_is_the_last_row_by_default() -> None:
    """The printed tables listed ``random`` mid-table (registration order: before ig,
    saliency, ...), the README's tables last. Every method is seeded per item, so the order
    changes no number; an explicit ``--method`` order is kept."""
    from probe.attribution._registry import list_methods
    from probe.evaluation.tasks._common import _select_methods

    for modality, needs in (("text", None), ("vision", None), ("vision", "gates")):
        names = _select_methods(modality, (), needs=needs)
        assert names[-1] == "random" and sorted(names) == sorted(list_methods(modality,
                                                                              needs=needs))
        assert names.index("ig") < names.index("random")
    assert _select_methods("text", ("random", "ig")) == ("random", "ig")
