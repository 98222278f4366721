"""``probe bench --part parallel``: the JSON comparison, the table, and (slow) the real runs."""

from __future__ import annotations

import math

import pytest

from probe.commands.bench._parallel import bench_parallel, json_differences, parallel_markdown
from probe.commands.bench._settings import BenchSettings


def test_json_differences_sees_values_keys_and_lengths_not_timings():
    a = {"m": {"x": [1.0, float("nan")], "run_time_s": 3.0}, "n": 4, "versions": {"t": "1"}}
    assert json_differences(a, {"m": {"x": [1.0 + 1e-9, float("nan")], "run_time_s": 9.0},
                                "n": 4, "versions": {"t": "2"}}) == []
    assert json_differences(a, {**a, "n": 5}) == [".n: 4 != 5"]
    assert json_differences(a, {**a, "m": {"x": [1.1, float("nan")]}}) == [".m.x[0]: 1.0 != 1.1"]
    assert json_differences(a, {**a, "extra": 1}) == [": keys ['extra']"]
    assert json_differences([1.0], [1.0, 2.0]) == [": [1.0] != [1.0, 2.0]"]


def test_markdown_table_reports_both_runs_and_the_verdict():
    run = {"run_time_s": 10.0, "wall_s": 20.0, "cpu_s": 15.0, "items_per_process": [4]}
    two = {"run_time_s": 6.0, "wall_s": 22.0, "cpu_s": 25.0, "items_per_process": [2, 2]}
    lines = parallel_markdown({
        "eval": "probe eval sanity --n 8", "one_process": run, "two_processes": two,
        "speedup_eval": 1.67, "speedup_wall": 0.91, "identical": False, "usable_cores": 2,
        "load_average": [3.0, None, 4.5],
    })
    text = "\n".join(lines)
    assert "| 2 (torchrun) | 6.00 (1.67x) | 22.0 (0.91x) | 25.0 | [2, 2] |" in text
    assert "identical to float tolerance: NO" in text and "load average 3.0, -, 4.5" in text


@pytest.mark.slow
def test_parallel_part_runs_one_and_two_processes():
    result = bench_parallel(BenchSettings(quick=True))
    assert result["identical"], result["differences"]
    assert result["one_process"]["items_per_process"] == [2]
    assert result["two_processes"]["items_per_process"] == [1, 1]
    for key in ("speedup_eval", "speedup_wall", "cpu_ratio_two_over_one"):
        assert math.isfinite(result[key]) and result[key] > 0
    assert "### Evaluation over processes" in "\n".join(parallel_markdown(result))
