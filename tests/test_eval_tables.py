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
