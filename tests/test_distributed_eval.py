"""``probe eval`` split over processes: the splitting and merging, then two real processes.

The two-process test runs ``torchrun --nproc_per_node 2`` (gloo on CPU) on the quick
vit-shapes faithfulness eval and checks that the JSON equals the one-process JSON to float
tolerance (timings and process metadata aside) and that each process did half the work; the
one-process run takes the default ``--device auto``, the two processes ``--device cpu``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import probe
from probe.evaluation._distributed import block_range, gather, merge, session, shard


@pytest.mark.parametrize("n,size", [(0, 2), (1, 2), (4, 2), (5, 2), (7, 3), (3, 5)])
def test_blocks_cover_the_items_in_order(n, size):
    items = list(range(n))
    blocks = [items[block_range(n, r, size)] for r in range(size)]
    assert [x for b in blocks for x in b] == items
    assert max(map(len, blocks)) - min(map(len, blocks)) <= 1


def test_bad_block_raises():
    with pytest.raises(probe.ProbeError, match="no block"):
        block_range(4, 2, 2)


def test_merge_concatenates_in_rank_order_and_sums_counts():
    parts = [
        {"per": {"ig": [1.0, 2.0]}, "correct": 2, "skipped": {}, "ids": ("a",)},
        None,
        {"per": {"ig": [3.0]}, "correct": 1, "skipped": {"flow": "too long"}, "ids": ("b",)},
    ]
    assert merge(parts) == {
        "per": {"ig": [1.0, 2.0, 3.0]}, "correct": 3, "skipped": {"flow": "too long"},
        "ids": ("a", "b"),
    }


def test_one_process_is_the_identity(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with session() as current:
        assert (current.rank, current.world_size) == (0, 1)
        assert shard([3, 1, 2]) == [3, 1, 2]
        assert gather({"a": [1]}) == {"a": [1]}
        assert current.shards == [3]
    with pytest.raises(probe.ProbeError, match="sequence"):
        shard(iter([1, 2]))


def test_nested_sessions_are_refused():
    with session(), pytest.raises(probe.ProbeError, match="already running"):
        with session():
            pass


# ----------------------------------------------------------------------------- two processes
SKIP = {"run_time_s", "seconds_per_image", "seconds", "versions", "processes"}
# the cheap methods, random included (its seeds are per batch): start-up dominates anyway
EVAL = ["eval", "faithfulness", "--quick", "--n", "4", "--batch-size", "1", "--quiet",
        *(f"--method={m}" for m in ("attention", "rollout", "relevance", "random", "gradcam"))]


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) - SKIP != set(b) - SKIP:
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a if k not in SKIP for d in _differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        same = math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))
        return [] if same else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def test_two_processes_give_the_one_process_json(tmp_path: Path):
    from probe.cli import main

    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert main([*EVAL, "--json", str(one)]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("WORLD_SIZE", None)
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "--no-python", "--", sys.executable, "-m", "probe.cli", *EVAL, "--device", "cpu",
         "--json", str(two)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stdout.count("wrote ") == 1  # the main process alone writes
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    auto = "cuda:0" if torch.cuda.is_available() else "cpu"  # --device auto
    assert a["processes"] == {"count": 1, "items_per_process": [4], "devices": [auto]}
    assert b["processes"] == {"count": 2, "items_per_process": [2, 2], "devices": ["cpu", "cpu"]}
    assert _differences(a, b) == []
