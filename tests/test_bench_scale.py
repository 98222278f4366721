"""``probe bench`` parts added for scale: attention flow next to rollout."""

from __future__ import annotations

import math

from probe.commands.bench._command import BenchArgs
from probe.commands.bench._flow import bench_flow
from probe.commands.bench._goals import evaluate_goals
from probe.commands.bench._markdown import to_markdown
from probe.commands.bench._settings import make_settings


def test_flow_part_times_the_cls_row_next_to_rollout():
    settings = make_settings(BenchArgs(device="cpu", quick=True, repeats=1, parts=("flow",)))
    result = bench_flow(settings, "cpu")
    assert (result["tokens"], result["layers"]) == (65, 4)
    assert set(result["median_s"]) == {"flow_cls_row", "rollout"}
    assert all(t > 0 for t in result["median_s"].values())
    assert math.isclose(result["flow_row_sum"], 1.0, abs_tol=1e-5)  # a normalised row
    doc = {"results": {"cpu": {"flow": result}}}
    (goal,) = [g for g in evaluate_goals(doc) if g["id"] == "flow_cls_row_s"]
    assert goal["measured"] == result["median_s"]["flow_cls_row"]
    assert goal["met"] == (result["median_s"]["flow_cls_row"] < 2.0)
    assert "### Attention flow on vit-shapes" in to_markdown(doc)
